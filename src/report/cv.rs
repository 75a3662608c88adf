//! report.html for a cross-validation: its metrics, curves, confusion matrices, importance
//! and the memory each stage used.

use std::path::Path;

use super::html;
use crate::cv::{fold_header, fold_row, ranked, CvResult, Report};
use crate::io::CLASS_NAMES;
use crate::memory::RunSummary;

/// report.html: the curves, confusion matrices, importance and per-stage memory.
pub fn write(
    out_dir: &Path,
    cv: &CvResult,
    summary: &RunSummary,
    dataset: &Path,
    config_toml: &str,
) -> anyhow::Result<()> {
    let (report, importance, outcome) = (&cv.report, &cv.importance, &cv.outcome);
    let header = fold_header();
    let table: Vec<html::MetricRow> = report
        .folds
        .iter()
        .chain(std::iter::once(&report.pooled))
        .map(|r| {
            let mut values = fold_row(r);
            let name = values.remove(0);
            html::MetricRow {
                name: if name == "pooled" {
                    name
                } else {
                    format!("fold {name}")
                },
                values,
            }
        })
        .collect();
    let base_vs_meta = report.pooled.base_vs_meta.as_ref().map(|cmp| {
        let head = [
            "class",
            "threshold",
            "base F1",
            "meta F1",
            "F1 gain",
            "base FP",
            "meta FP",
            "FP reduction",
            "base FN",
            "meta FN",
            "FN reduction",
            "base AP",
            "meta AP",
        ]
        .map(String::from)
        .to_vec();
        let rows = cmp
            .iter()
            .map(|x| html::MetricRow {
                name: if x.class == "splice" {
                    "splice (donor + acceptor)".into()
                } else {
                    x.class.clone()
                },
                values: vec![
                    format!("{}", x.threshold),
                    format!("{:.4}", x.base.f1),
                    format!("{:.4}", x.meta.f1),
                    format!("{:+.4}", x.f1_gain),
                    x.base.fp.to_string(),
                    x.meta.fp.to_string(),
                    format!("{:+}", x.fp_reduction),
                    x.base.fn_.to_string(),
                    x.meta.fn_.to_string(),
                    format!("{:+}", x.fn_reduction),
                    fmt_opt(x.base_average_precision),
                    fmt_opt(x.meta_average_precision),
                ],
            })
            .collect();
        (head, rows)
    });
    let pooled = &report.pooled;
    let curves: Vec<html::ClassCurves> = report
        .curves
        .iter()
        .enumerate()
        .map(|(c, cu)| {
            let m = &pooled.meta.metrics.classes[c];
            let mut roc = vec![html::Series {
                label: format!("meta (AUC {})", fmt_opt(m.roc_auc)),
                points: cu.roc_meta.clone(),
            }];
            let mut pr = vec![html::Series {
                label: format!("meta (AP {})", fmt_opt(m.average_precision)),
                points: cu.pr_meta.clone(),
            }];
            if let (Some(b), Some(rb), Some(pb)) = (&pooled.base, &cu.roc_base, &cu.pr_base) {
                let bm = &b.metrics.classes[c];
                roc.push(html::Series {
                    label: format!("base (AUC {})", fmt_opt(bm.roc_auc)),
                    points: rb.clone(),
                });
                pr.push(html::Series {
                    label: format!("base (AP {})", fmt_opt(bm.average_precision)),
                    points: pb.clone(),
                });
            }
            let mut reliability = vec![html::Series {
                label: format!("uncalibrated (ECE {:.4})", m.ece),
                points: cu.reliability_before.clone(),
            }];
            if let (Some(after), Some(cal)) = (&cu.reliability_after, &pooled.calibrated) {
                reliability.push(html::Series {
                    label: format!("calibrated, cross-fitted (ECE {:.4})", cal.metrics.classes[c].ece),
                    points: after.clone(),
                });
            }
            html::ClassCurves {
                class: CLASS_NAMES[c].into(),
                roc,
                pr,
                reliability,
            }
        })
        .chain(std::iter::once(splice_curves(report)))
        .collect();
    let mut confusion = vec![("meta".to_string(), pooled.meta.metrics.confusion)];
    if let Some(c) = &pooled.calibrated {
        confusion.push(("meta, calibrated".into(), c.metrics.confusion));
    }
    if let Some(b) = &pooled.base {
        confusion.push(("base".into(), b.metrics.confusion));
    }
    let importance = ranked(importance)
        .into_iter()
        .map(|(c, rows)| {
            (
                CLASS_NAMES[c].to_string(),
                rows.into_iter().take(20).map(|r| (r.0, r.1)).collect(),
            )
        })
        .collect();
    let mut facts = vec![
        ("dataset".into(), dataset.display().to_string()),
        ("genes".into(), outcome.genes.to_string()),
        ("rows".into(), outcome.rows.to_string()),
        ("folds".into(), outcome.folds.to_string()),
        (
            "final model trees (neither / donor / acceptor)".into(),
            match outcome.refit_trees {
                Some([a, b, c]) => format!("{a} / {b} / {c}"),
                None => "none (cv.refit = false)".into(),
            },
        ),
        (
            "calibration".into(),
            format!("{:?}", report.method).to_lowercase(),
        ),
        (
            "memory.total".into(),
            crate::memory::fmt_bytes(summary.total_budget_bytes),
        ),
        (
            "peak RSS".into(),
            summary
                .peak_rss_bytes
                .map_or_else(|| "–".into(), crate::memory::fmt_bytes),
        ),
        ("wall time".into(), format!("{:.1} s", summary.seconds)),
    ];
    if let Some(why) = &outcome.base_skipped {
        facts.push(("base comparison".into(), format!("skipped: {why}")));
    }
    let data = html::ReportData {
        title: "spliceboost gene-wise cross-validation".into(),
        summary: facts,
        metrics_header: header,
        metrics: table,
        base_vs_meta,
        curves,
        confusion,
        importance,
        stages: summary.stages.clone(),
        config_toml: config_toml.to_string(),
    };
    html::write(&out_dir.join("report.html"), &data)
}

fn fmt_opt(v: Option<f64>) -> String {
    v.map_or_else(|| "–".into(), |x| format!("{x:.4}"))
}

/// The ROC and PR curves of splice (donor or acceptor) against neither, with the areas the
/// base-vs-meta table reports.
fn splice_curves(report: &Report) -> html::ClassCurves {
    let sc = &report.splice_curves;
    let cmp = report
        .pooled
        .base_vs_meta
        .as_ref()
        .and_then(|v| v.iter().find(|x| x.class == "splice"));
    let area = |f: fn(&crate::cv::BaseVsMeta) -> Option<f64>| fmt_opt(cmp.and_then(f));
    let (meta_auc, meta_ap) = match cmp {
        Some(_) => (area(|x| x.meta_roc_auc), area(|x| x.meta_average_precision)),
        None => ("–".into(), "–".into()),
    };
    let mut roc = vec![html::Series {
        label: format!("meta (AUC {meta_auc})"),
        points: sc.roc_meta.clone(),
    }];
    let mut pr = vec![html::Series {
        label: format!("meta (AP {meta_ap})"),
        points: sc.pr_meta.clone(),
    }];
    if let (Some(rb), Some(pb)) = (&sc.roc_base, &sc.pr_base) {
        roc.push(html::Series {
            label: format!("base (AUC {})", area(|x| x.base_roc_auc)),
            points: rb.clone(),
        });
        pr.push(html::Series {
            label: format!("base (AP {})", area(|x| x.base_average_precision)),
            points: pb.clone(),
        });
    }
    html::ClassCurves {
        class: "splice (donor + acceptor vs neither)".into(),
        roc,
        pr,
        reliability: vec![],
    }
}
