//! Gradient boosting over the binned page cache, under the train budget.
//!
//! The room's parts, in the order data meets them: [`params`] (the `[train]` section),
//! [`objective`] (gradients into the caller's buffers), [`fit`] (the boosting loop, sampling,
//! validation and early stopping), `grow` (one tree, depth-wise, one pass over the pages per
//! level), [`hist`] and [`tree`] (histograms and split finding), [`sizing`] (what training
//! needs, priced before any work) and [`model`] (the saved model, its checks and its XGBoost
//! export). Features stay on disk in the page cache and are read one page at a time.

pub mod checkpoint;
pub mod fit;
mod grow;
pub mod hist;
pub mod model;
pub mod objective;
pub mod params;
pub mod progress;
pub mod sizing;
pub mod tree;

pub use fit::{fit, train, Fit};
pub(crate) use model::{read_json, versioned};
pub use model::{Importance, IterLog, Model};
pub use objective::Objective;
pub use params::{EvalMetric, Role, Sampling, TrainParams};
