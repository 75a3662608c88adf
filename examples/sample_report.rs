//! Writes a SAMPLE `report.html` from made-up numbers, to look at the page layout in a browser
//! (see `docs/screenshot.sh`) without running a cross-validation. Nothing in it is a measurement.
//!
//! `cargo run --example sample_report [-- OUT.html]`; the default is `target/sample_report.html`.

use std::path::PathBuf;

use spliceboost::memory::StageRecord;
use spliceboost::report::html::{self, ClassCurves, MetricRow, ReportData, Series, CLASS_LABELS};

/// A smooth made-up ROC curve whose area grows with `k`.
fn roc(k: f64) -> Vec<(f64, f64)> {
    (0..=50)
        .map(|i| i as f64 / 50.0)
        .map(|x| (x, x.powf(1.0 / k)))
        .collect()
}

fn pr(k: f64) -> Vec<(f64, f64)> {
    (1..=50)
        .map(|i| i as f64 / 50.0)
        .map(|r| (r, 1.0 - (1.0 - 1.0 / k) * r.powf(k)))
        .collect()
}

fn reliability(bias: f64) -> Vec<(f64, f64)> {
    (0..10)
        .map(|i| (i as f64 + 0.5) / 10.0)
        .map(|p| (p, p.powf(bias)))
        .collect()
}

fn main() -> anyhow::Result<()> {
    let out = std::env::args()
        .nth(1)
        .map_or_else(|| PathBuf::from("target/sample_report.html"), PathBuf::from);
    let row = |name: &str, v: [&str; 4]| MetricRow {
        name: name.into(),
        values: v.map(String::from).to_vec(),
    };
    let header = ["fold", "ROC AUC", "PR AUC", "log loss", "accuracy"]
        .map(String::from)
        .to_vec();
    let curves = CLASS_LABELS
        .iter()
        .zip([6.0, 9.0, 8.0])
        .map(|(class, k)| ClassCurves {
            class: class.to_string(),
            roc: vec![Series::new("meta", roc(k)), Series::new("base", roc(k / 2.0))],
            pr: vec![Series::new("meta", pr(k)), Series::new("base", pr(k / 2.0))],
            reliability: vec![
                Series::new("before calibration", reliability(1.6)),
                Series::new("after calibration", reliability(1.05)),
            ],
        })
        .collect();
    let importance = CLASS_LABELS
        .iter()
        .map(|class| {
            let features = (0..30)
                .map(|i| (format!("{class}_kmer_{i:02}"), 1.0e6 / (1.0 + i as f64).powf(1.3)))
                .chain([(
                    "a_very_long_annotation_feature_name_that_gets_shortened".into(),
                    2.0e5,
                )])
                .collect();
            (class.to_string(), features)
        })
        .collect();
    let stage = |name: &str, budget: u64, reserved: u64, heap: u64, rss: u64, seconds: f64| StageRecord {
        name: name.into(),
        budget_bytes: budget << 20,
        peak_reserved_bytes: reserved << 20,
        peak_heap_bytes: Some(heap << 20),
        peak_rss_bytes: Some(rss << 20),
        seconds,
    };
    let data = ReportData {
        title: "SAMPLE report (synthetic numbers, not a real run)".into(),
        summary: [
            (
                "note",
                "Every figure on this page is made up by examples/sample_report.rs.",
            ),
            ("dataset", "sample <synthetic>"),
            ("genes", "1,234"),
            ("rows", "2,500,000"),
            ("folds", "3 (grouped by gene)"),
            ("budget", "256 MiB"),
            ("wall time", "123.4 s"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .to_vec(),
        metrics_header: header.clone(),
        metrics: vec![
            row("1", ["0.981", "0.902", "0.071", "0.972"]),
            row("2", ["0.978", "0.897", "0.074", "0.970"]),
            row("3", ["0.983", "0.908", "0.069", "0.974"]),
            row(
                "mean ± sd",
                ["0.981 ± 0.003", "0.902 ± 0.006", "0.071 ± 0.003", "0.972 ± 0.002"],
            ),
        ],
        base_vs_meta: Some((
            ["model", "ROC AUC", "PR AUC", "log loss", "accuracy"]
                .map(String::from)
                .to_vec(),
            vec![
                row("base", ["0.952", "0.801", "0.130", "0.951"]),
                row("meta", ["0.981", "0.902", "0.071", "0.972"]),
            ],
        )),
        curves,
        confusion: vec![
            (
                "meta".into(),
                [
                    [2_401_200, 3_100, 2_950],
                    [1_020, 44_800, 180],
                    [990, 150, 45_610],
                ],
            ),
            (
                "base".into(),
                [
                    [2_390_000, 9_200, 8_050],
                    [3_900, 41_900, 200],
                    [4_100, 260, 42_390],
                ],
            ),
        ],
        importance,
        stages: vec![
            stage("scan", 256, 96, 60, 180, 12.5),
            stage("bin", 256, 140, 110, 210, 20.1),
            stage("train", 256, 230, 190, 300, 80.7),
            stage("eval", 256, 70, 40, 160, 10.1),
        ],
        config_toml: "# sample config\n[memory]\nbudget = \"256 MiB\"\n\n[train]\nrounds = 200\n".into(),
    };
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    html::write(&out, &data)?;
    println!("wrote {}", out.display());
    Ok(())
}
