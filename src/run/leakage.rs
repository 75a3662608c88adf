//! `inspect --leakage`: the single-feature AUC report of [`crate::leakage`], run as stages of
//! the inspect command and written to `run.out_dir/leakage.tsv`.

use std::path::PathBuf;

use super::RunContext;
use crate::inspect::InspectReport;
use crate::io::Dataset;
use crate::leakage::{leakage_in_stages, LeakageOptions, LeakageReport};

/// Unflagged features the printed table shows after the flagged ones.
const SHOWN_UNFLAGGED: usize = 20;

/// `inspect CONFIG`: a config file where the dataset goes stands for `--config` (a dataset
/// is never a `.toml` file).
pub(super) fn config_in_place(
    dataset: Option<PathBuf>,
    config: Option<PathBuf>,
) -> (Option<PathBuf>, Option<PathBuf>) {
    match (dataset, config) {
        (Some(d), None) if d.extension().is_some_and(|e| e.eq_ignore_ascii_case("toml")) => (None, Some(d)),
        other => other,
    }
}

/// Measures leakage on the config's dataset with training's binning (so that the two share
/// one binned cache) and writes leakage.tsv; returns the report and where it went.
pub(super) fn leakage_stage(ctx: &RunContext, threshold: f64) -> anyhow::Result<(LeakageReport, PathBuf)> {
    let cfg = &ctx.config;
    let out_dir = &cfg.run.out_dir;
    std::fs::create_dir_all(out_dir).map_err(|e| {
        crate::error::io_error(out_dir, "cannot create the output directory", &e)
            .hint("set `run.out_dir` to a directory you can write to")
    })?;
    // The cache lives under the out_dir by default: a run there may be building it.
    let lock = super::staging::OutDirLock::acquire(out_dir)?;
    let params = cfg.train.clone().unwrap_or_default();
    let opts = LeakageOptions {
        threshold,
        max_bin: params.max_bin,
        sketch_size: params.sketch_size,
        cache_root: cfg.cache_dir(),
    };
    let ds = Dataset::open(&cfg.dataset)?;
    let report = leakage_in_stages(&ctx.stages, &ds, &opts)?;
    let path = out_dir.join("leakage.tsv");
    report.write_tsv(&path)?;
    drop(lock);
    Ok((report, path))
}

/// Prints the inspect report and, when measured, the leakage table and its one-line
/// summary. With `json`, standard output is one JSON object (the leakage report under
/// `leakage`) and the summary goes to standard error.
pub(super) fn print(
    report: &InspectReport,
    leak: Option<&(LeakageReport, PathBuf)>,
    json: bool,
    quiet: bool,
) -> anyhow::Result<()> {
    if json {
        let mut v = serde_json::to_value(report)?;
        if let (Some((l, _)), Some(obj)) = (leak, v.as_object_mut()) {
            obj.insert("leakage".into(), serde_json::to_value(l)?);
        }
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        print!("{}", report.render());
    }
    let Some((l, path)) = leak else {
        return Ok(());
    };
    if json {
        eprintln!("{}", l.summary_line());
    } else {
        print!("{}", l.render(SHOWN_UNFLAGGED));
        println!("{}", l.summary_line());
    }
    if !quiet {
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}
