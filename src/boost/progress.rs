//! The progress bar over trees that training and cross-validation share.

use indicatif::{ProgressBar, ProgressStyle};

/// A bar for `len` trees; hidden unless `show`.
pub fn tree_bar(show: bool, len: u64) -> ProgressBar {
    let bar = if show {
        ProgressBar::new(len)
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template("{prefix} {bar:30} {pos}/{len} trees  {msg}  eta {eta}")
            .expect("static template"),
    );
    bar
}
