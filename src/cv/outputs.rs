//! The files a cross-validation run leaves in its out_dir, each written to a temporary name
//! and renamed, so an interrupted run never leaves half a file nor loses a previous one.

use std::path::Path;
use std::sync::Arc;

use arrow::array::{ArrayRef, Float32Array, Int64Array, StringArray, UInt8Array};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::record_batch::RecordBatch;
use serde_json::Value;

use super::evaluate::{ImportanceSum, PartReport, Report};
use super::{RowState, EXCLUDED};
use crate::eval::argmax3;
use crate::io::{write_atomic, write_bytes_atomic, write_table, Dataset, CLASS_NAMES};
use crate::memory::MemoryReservation;

/// Rows per record batch of `oof_predictions.parquet` when the dataset has no position
/// column to stream alongside.
const OUT_BATCH_ROWS: usize = 65_536;

/// Whether `oof_predictions.parquet` carries the dataset's `position` column.
fn has_position(ds: &Dataset) -> bool {
    ds.schema
        .field_with_name("position")
        .is_ok_and(|f| f.data_type().is_integer())
}

/// The schema of `oof_predictions.parquet`.
fn oof_schema(ds: &Dataset, calibrated: bool) -> Arc<Schema> {
    let has_pos = has_position(ds);
    let mut fields = vec![Field::new("gene_id", DataType::Utf8, false)];
    if has_pos {
        fields.push(Field::new("position", DataType::Int64, true));
    }
    fields.push(Field::new("label", DataType::UInt8, false));
    fields.push(Field::new("splice_type", DataType::Utf8, false));
    fields.push(Field::new("fold", DataType::UInt8, false));
    for c in CLASS_NAMES {
        fields.push(Field::new(format!("p_{c}"), DataType::Float32, false));
    }
    if calibrated {
        for c in CLASS_NAMES {
            fields.push(Field::new(format!("cal_{c}"), DataType::Float32, false));
        }
    }
    fields.push(Field::new("predicted_type", DataType::Utf8, false));
    Arc::new(Schema::new(fields))
}

/// The scan budget [`write_oof`] needs at least, and what for: known before any work, so
/// that a budget too small is refused before the folds train rather than after.
pub(crate) fn oof_bytes(ds: &Dataset, calibrated: bool) -> (u64, String) {
    let writer = crate::io::parquet_writer_bytes(&oof_schema(ds, calibrated));
    if has_position(ds) {
        let (scan, what) = ds.scan().with_columns(&["position"]).min_bytes();
        (
            writer + scan,
            format!("the Parquet writer's row group, and {what}"),
        )
    } else {
        (
            writer + OUT_BATCH_ROWS as u64 * 64,
            "the Parquet writer's row group and one batch".into(),
        )
    }
}

/// `oof_predictions.parquet`: every kept row's gene, position (when the dataset has one),
/// label, fold, out-of-fold probabilities, their cross-fitted calibration and the class
/// called from them.
pub(crate) fn write_oof(
    ds: &Dataset,
    st: &RowState,
    genes: &[String],
    out_dir: &Path,
    res: &mut MemoryReservation,
) -> anyhow::Result<u64> {
    let has_pos = has_position(ds);
    let calibrated = st.cal[0].iter().any(|v| !v.is_nan());
    let schema = oof_schema(ds, calibrated);
    let batch_of = |r0: usize, r1: usize, pos: Option<&Int64Array>| -> anyhow::Result<Option<RecordBatch>> {
        let rows: Vec<usize> = (r0..r1).filter(|&i| st.fold[i] != EXCLUDED).collect();
        if rows.is_empty() {
            return Ok(None);
        }
        let f32s = |v: &Vec<f32>| -> ArrayRef {
            Arc::new(Float32Array::from_iter_values(rows.iter().map(|&i| v[i])))
        };
        let mut cols: Vec<ArrayRef> = vec![Arc::new(StringArray::from_iter_values(
            rows.iter().map(|&i| &genes[st.groups[i] as usize]),
        ))];
        if let Some(p) = pos {
            cols.push(Arc::new(Int64Array::from_iter(rows.iter().map(|&i| {
                let j = i - r0;
                p.is_valid(j).then(|| p.value(j))
            }))));
        }
        cols.push(Arc::new(UInt8Array::from_iter_values(
            rows.iter().map(|&i| st.labels[i]),
        )));
        cols.push(Arc::new(StringArray::from_iter_values(
            rows.iter().map(|&i| CLASS_NAMES[st.labels[i] as usize]),
        )));
        cols.push(Arc::new(UInt8Array::from_iter_values(
            rows.iter().map(|&i| st.fold[i]),
        )));
        cols.extend(st.oof.iter().map(f32s));
        let called = if calibrated { &st.cal } else { &st.oof };
        if calibrated {
            cols.extend(st.cal.iter().map(f32s));
        }
        cols.push(Arc::new(StringArray::from_iter_values(rows.iter().map(|&i| {
            CLASS_NAMES[argmax3([called[0][i], called[1][i], called[2][i]]) as usize]
        }))));
        Ok(Some(RecordBatch::try_new(schema.clone(), cols)?))
    };
    use arrow::array::Array;
    res.try_grow(crate::io::parquet_writer_bytes(&schema))?;
    write_atomic(&out_dir.join("oof_predictions.parquet"), |w| {
        let mut writer = crate::io::parquet_writer(w, schema.clone())?;
        let n = st.fold.len();
        if has_pos {
            let mut r0 = 0usize;
            for item in ds.scan().with_columns(&["position"]).build(res)? {
                let b = item?;
                let p = arrow::compute::cast(b.batch.column(0), &DataType::Int64)?;
                let p = p.as_any().downcast_ref::<Int64Array>().expect("cast to Int64");
                let r1 = r0 + p.len();
                if let Some(batch) = batch_of(r0, r1, Some(p))? {
                    writer.write(&batch)?;
                }
                r0 = r1;
            }
            anyhow::ensure!(r0 == n, "the dataset changed while the run read it");
        } else {
            res.try_grow(OUT_BATCH_ROWS as u64 * 64)?;
            for r0 in (0..n).step_by(OUT_BATCH_ROWS) {
                if let Some(batch) = batch_of(r0, (r0 + OUT_BATCH_ROWS).min(n), None)? {
                    writer.write(&batch)?;
                }
            }
        }
        writer.close()?;
        Ok(n as u64)
    })
}

/// Every number of a JSON value under a dotted path (arrays indexed by position, classes
/// named where an object says which class it is).
fn flatten(prefix: &str, v: &Value, out: &mut Vec<(String, f64)>) {
    let join = |k: &str| {
        if prefix.is_empty() {
            k.to_string()
        } else {
            format!("{prefix}.{k}")
        }
    };
    match v {
        Value::Number(x) => {
            if let Some(f) = x.as_f64() {
                out.push((prefix.to_string(), f));
            }
        }
        Value::Object(m) => {
            for (k, v) in m {
                if k != "fold" && k != "training" {
                    flatten(&join(k), v, out);
                }
            }
        }
        Value::Array(a) => {
            for (i, v) in a.iter().enumerate() {
                let name = v
                    .get("class")
                    .and_then(Value::as_str)
                    .map_or_else(|| i.to_string(), str::to_string);
                flatten(&join(&name), v, out);
            }
        }
        _ => {}
    }
}

/// Mean and sample standard deviation (n − 1) of every numeric metric over the folds.
fn aggregate(folds: &[PartReport]) -> anyhow::Result<Value> {
    let mut per_key: std::collections::BTreeMap<String, Vec<f64>> = Default::default();
    for f in folds {
        let mut flat = vec![];
        flatten("", &serde_json::to_value(f)?, &mut flat);
        for (k, v) in flat {
            per_key.entry(k).or_default().push(v);
        }
    }
    let mut mean = serde_json::Map::new();
    let mut sd = serde_json::Map::new();
    for (k, v) in per_key {
        if v.len() != folds.len() || v.iter().any(|x| !x.is_finite()) {
            continue;
        }
        let m = v.iter().sum::<f64>() / v.len() as f64;
        let s = if v.len() > 1 {
            (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (v.len() - 1) as f64).sqrt()
        } else {
            0.0
        };
        mean.insert(k.clone(), m.into());
        sd.insert(k, s.into());
    }
    Ok(serde_json::json!({ "folds": folds.len(), "mean": mean, "sd": sd }))
}

fn opt(v: Option<f64>) -> String {
    v.map_or_else(String::new, |x| format!("{x:.6}"))
}

/// The columns of metrics_folds.tsv for one part.
pub fn fold_row(r: &PartReport) -> Vec<String> {
    let m = &r.meta.metrics;
    let mut v = vec![
        r.fold.map_or_else(|| "pooled".into(), |f| f.to_string()),
        r.genes.to_string(),
        r.rows.to_string(),
        format!("{:.6}", m.accuracy),
        format!("{:.6}", m.macro_f1),
    ];
    for c in &m.classes {
        v.push(format!("{:.6}", c.f1));
        v.push(opt(c.roc_auc));
        v.push(opt(c.average_precision));
    }
    for c in ["donor", "acceptor"] {
        v.push(format!("{:.6}", r.meta.top_k[c].micro));
    }
    match &r.calibrated {
        Some(s) => {
            v.push(format!("{:.6}", s.metrics.accuracy));
            v.push(format!("{:.6}", s.metrics.macro_f1));
        }
        None => v.extend([String::new(), String::new()]),
    }
    match (&r.base, &r.base_vs_meta) {
        (Some(b), Some(cmp)) => {
            v.push(format!("{:.6}", b.metrics.accuracy));
            v.push(format!("{:.6}", b.metrics.macro_f1));
            for c in ["donor", "acceptor"] {
                v.push(format!("{:.6}", b.top_k[c].micro));
            }
            for x in cmp {
                v.push(x.fp_reduction.to_string());
                v.push(x.fn_reduction.to_string());
            }
        }
        _ => v.extend(std::iter::repeat_n(String::new(), 10)),
    }
    v
}

pub fn fold_header() -> Vec<String> {
    let mut h: Vec<String> = ["fold", "genes", "rows", "accuracy", "macro_f1"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    for c in CLASS_NAMES {
        h.extend([format!("{c}_f1"), format!("{c}_roc_auc"), format!("{c}_ap")]);
    }
    h.extend(
        [
            "donor_top_k",
            "acceptor_top_k",
            "calibrated_accuracy",
            "calibrated_macro_f1",
        ]
        .map(String::from),
    );
    h.extend(
        [
            "base_accuracy",
            "base_macro_f1",
            "base_donor_top_k",
            "base_acceptor_top_k",
        ]
        .map(String::from),
    );
    h.extend(
        [
            "donor_fp_reduction",
            "donor_fn_reduction",
            "acceptor_fp_reduction",
            "acceptor_fn_reduction",
            "splice_fp_reduction",
            "splice_fn_reduction",
        ]
        .map(String::from),
    );
    h
}

/// metrics_fold{i}.json, metrics_aggregate.json, metrics_folds.tsv, gene_metrics.tsv and
/// feature_importance.tsv.
pub fn write_tables(
    out_dir: &Path,
    report: &Report,
    importance: &ImportanceSum,
    genes: &[String],
) -> anyhow::Result<()> {
    for r in &report.folds {
        let f = r.fold.expect("fold reports carry their fold");
        write_bytes_atomic(
            &out_dir.join(format!("metrics_fold{f}.json")),
            serde_json::to_string_pretty(r)?.as_bytes(),
        )?;
    }
    // A previous run's fold files beyond this run's folds are removed when the outputs
    // are published (see `is_cv_output`), not here: `out_dir` is a staging directory.
    let mut agg = aggregate(&report.folds)?;
    agg["pooled"] = serde_json::to_value(&report.pooled)?;
    agg["calibration"] = serde_json::to_value(&report.calibration)?;
    write_bytes_atomic(
        &out_dir.join("metrics_aggregate.json"),
        serde_json::to_string_pretty(&agg)?.as_bytes(),
    )?;
    let header = fold_header();
    let header: Vec<&str> = header.iter().map(String::as_str).collect();
    write_table(
        &out_dir.join("metrics_folds.tsv"),
        b'\t',
        &header,
        report
            .folds
            .iter()
            .chain(std::iter::once(&report.pooled))
            .map(fold_row),
    )?;
    let b = |x: Option<u64>| x.map_or_else(String::new, |v| v.to_string());
    write_table(
        &out_dir.join("gene_metrics.tsv"),
        b'\t',
        &[
            "gene_id",
            "fold",
            "rows",
            "donor_sites",
            "donor_meta_hits",
            "donor_base_hits",
            "acceptor_sites",
            "acceptor_meta_hits",
            "acceptor_base_hits",
        ],
        report.genes.iter().map(|g| {
            [
                genes[g.gene as usize].clone(),
                g.fold.to_string(),
                g.rows.to_string(),
                g.sites[0].to_string(),
                g.meta_hits[0].to_string(),
                b(g.base_hits[0]),
                g.sites[1].to_string(),
                g.meta_hits[1].to_string(),
                b(g.base_hits[1]),
            ]
        }),
    )?;
    write_table(
        &out_dir.join("feature_importance.tsv"),
        b'\t',
        &["class", "feature", "gain", "cover", "weight", "models"],
        ranked(importance).into_iter().flat_map(|(c, rows)| {
            rows.into_iter()
                .map(move |(feature, gain, cover, weight, models)| {
                    [
                        CLASS_NAMES[c].to_string(),
                        feature,
                        format!("{gain:.6}"),
                        format!("{cover:.6}"),
                        format!("{weight:.3}"),
                        models.to_string(),
                    ]
                })
        }),
    )?;
    Ok(())
}

/// Whether `name` is an output a cross-validation run makes: one of [`super::OUTPUTS`] or a
/// fold's metrics file (`metrics_fold{i}.json`). A run removes the previous run's that it
/// did not make when it publishes: the extra folds of a run with more, or the model of a run
/// with `cv.refit` on.
pub fn is_cv_output(name: &str) -> bool {
    super::OUTPUTS.contains(&name)
        || name
            .strip_prefix("metrics_fold")
            .and_then(|r| r.strip_suffix(".json"))
            .is_some_and(|i| !i.is_empty() && i.chars().all(|c| c.is_ascii_digit()))
}

pub type Ranked = Vec<(String, f64, f64, f64, u64)>;

/// Per class, features by mean gain over the fold models (a model that never split on a
/// feature counts as zero), largest first.
pub fn ranked(imp: &ImportanceSum) -> Vec<(usize, Ranked)> {
    (0..3)
        .map(|c| {
            let k = imp.models[c].max(1) as f64;
            let mut rows: Ranked = imp
                .features
                .iter()
                .zip(&imp.sums[c])
                .map(|(f, s)| (f.clone(), s.gain / k, s.cover / k, s.splits as f64 / k, s.models))
                .collect();
            rows.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            (c, rows)
        })
        .collect()
}
