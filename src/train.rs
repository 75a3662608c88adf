//! The training job: sketch → bin → train, with each stage under its own budget.
//!
//! A binned cache is reused when the dataset's files, features and `max_bin` are unchanged,
//! so a second training on the same data skips both passes over the Parquet files. Before
//! any pass, the train stage's need is priced from the dataset's footers and refused if it
//! cannot fit, with the smallest budget that would.

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};

use crate::binning::{cache, sketch_dataset};
use crate::boost::{train, Model, Role, TrainParams};
use crate::error::InputError;
use crate::io::Dataset;
use crate::memory::MemoryError;
use crate::run::RunContext;

/// What a training run wrote.
#[derive(Debug, Clone)]
pub struct Trained {
    pub model: Model,
    pub cache_reused: bool,
    pub train_rows: usize,
    pub valid_rows: usize,
}

/// Assigns every gene to training or validation: a stable hash of the seed and the gene id
/// against `valid_fraction`, so the split depends on neither file order nor thread count.
pub fn gene_is_valid(seed: u64, gene: &str, valid_fraction: f64) -> bool {
    gene_draw(seed, gene) < valid_fraction
}

/// A stable draw in `[0, 1)` from the seed and the gene id: every gene-wise random choice
/// (validation split, fold order, gene sample) is made from it.
pub fn gene_draw(seed: u64, gene: &str) -> f64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ seed.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    for &b in gene.as_bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x100_0000_01b3);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    (h >> 11) as f64 / (1u64 << 53) as f64
}

/// Runs the three stages for `params` and writes the model and its reports to `out_dir`.
pub fn train_job(
    ctx: &RunContext,
    params: &TrainParams,
    out_dir: &Path,
    quiet: bool,
) -> anyhow::Result<Trained> {
    let cfg = &ctx.config;
    let ds = Dataset::open(&cfg.dataset)?;
    let (pages, reused) = binned_cache(ctx, &ds, params)?;
    let (model, train_rows, valid_rows) = ctx.stage("train", |res| {
        let labels = pages.labels()?;
        let groups = pages.groups()?;
        let genes = &pages.manifest.genes;
        let valid_gene: Vec<bool> = genes
            .iter()
            .map(|g| gene_is_valid(cfg.run.seed, g, params.valid_fraction))
            .collect();
        let roles: Vec<Role> = groups
            .iter()
            .map(|&g| {
                if valid_gene[g as usize] {
                    Role::Valid
                } else {
                    Role::Train
                }
            })
            .collect();
        drop(groups);
        let valid_rows = roles.iter().filter(|&&r| r == Role::Valid).count();
        let train_rows = roles.len() - valid_rows;
        write_lines(
            &out_dir.join("valid_genes.txt"),
            genes
                .iter()
                .zip(&valid_gene)
                .filter(|(_, &v)| v)
                .map(|(g, _)| g.as_str()),
        )?;
        let bar = tree_bar(ctx, quiet, params.n_estimators as u64);
        bar.set_prefix("train");
        let model = train(&pages, &labels, &roles, params, cfg.run.seed, res, |it| {
            bar.inc(1);
            bar.set_message(match it.valid_score {
                Some(v) => format!("train {:.5} valid {:.5}", it.train_loss, v),
                None => format!("train {:.5}", it.train_loss),
            });
        })?;
        bar.finish_and_clear();
        Ok((model, train_rows, valid_rows))
    })?;
    model.save(&out_dir.join("model.json"))?;
    crate::io::write_bytes_atomic(
        &out_dir.join("model.xgb.json"),
        serde_json::to_string(&model.to_xgboost_json())?.as_bytes(),
    )?;
    crate::io::write_atomic(&out_dir.join("training_log.tsv"), |w| {
        writeln!(
            w,
            "iteration\ttrain_loss\tvalid_{}\tseconds",
            serde_json::to_value(params.eval_metric)?
                .as_str()
                .unwrap_or("score")
        )?;
        for it in &model.log {
            let v = it.valid_score.map_or(String::new(), |v| format!("{v:.6}"));
            writeln!(
                w,
                "{}\t{:.6}\t{}\t{:.3}",
                it.iteration, it.train_loss, v, it.seconds
            )?;
        }
        Ok(())
    })?;
    crate::io::write_atomic(&out_dir.join("feature_importance.tsv"), |w| {
        writeln!(w, "feature\tgain\tcover\tweight")?;
        for i in model.importance() {
            writeln!(w, "{}\t{:.6}\t{:.6}\t{}", i.feature, i.gain, i.cover, i.weight)?;
        }
        Ok(())
    })?;
    Ok(Trained {
        model,
        cache_reused: reused,
        train_rows,
        valid_rows,
    })
}

/// The dataset's binned page cache for `params.max_bin`: found in the cache directory when
/// the files and features are unchanged, else sketched and binned under those stages'
/// budgets. Refuses first, before any pass, a train budget that cannot hold the per-row state
/// and one page; the histograms, whose size the cuts decide, are checked once known.
pub fn binned_cache(
    ctx: &RunContext,
    ds: &Dataset,
    params: &TrainParams,
) -> anyhow::Result<(cache::PageCache, bool)> {
    let cfg = &ctx.config;
    let state = ds.rows() * crate::plan::STATE_BYTES_PER_ROW;
    // A page of one byte per feature and row (sparse columns only take less).
    let page = ds.rows().min(crate::binning::cache::PAGE_ROWS as u64) * ds.roles.features.len() as u64;
    let train_budget = cfg.memory.budget("train");
    if state + page > train_budget {
        return Err(MemoryError::TooSmall {
            stage: "train".into(),
            key: "memory.train".into(),
            needed: state + page,
            budget: train_budget,
            what: format!(
                "per-row state for {} rows and one page of {} features",
                ds.rows(),
                ds.roles.features.len()
            ),
        }
        .into());
    }
    let fingerprint = cache::fingerprint(ds, params.max_bin, params.sketch_size);
    let dir = cfg.cache_dir().join(&fingerprint);
    let (manifest, reused) = match cache::find(&dir, &fingerprint) {
        Some(m) => (m, true),
        None => {
            let cuts = ctx.stage("sketch", |res| {
                sketch_dataset(ds, params.max_bin, params.sketch_size, res)
            })?;
            let m = ctx.stage("bin", |res| cache::build(ds, &cuts, &dir, &fingerprint, res))?;
            (m, false)
        }
    };
    Ok((cache::PageCache::open(&dir, manifest)?, reused))
}

/// A progress bar for `len` trees, hidden when quiet or when the config turns bars off.
pub fn tree_bar(ctx: &RunContext, quiet: bool, len: u64) -> ProgressBar {
    let bar = if quiet || !ctx.config.run.progress {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(len)
    };
    bar.set_style(
        ProgressStyle::with_template("{prefix} {bar:30} {pos}/{len} trees  {msg}  eta {eta}")
            .expect("static template"),
    );
    bar
}

pub(crate) fn write_lines<'a>(path: &Path, lines: impl Iterator<Item = &'a str>) -> anyhow::Result<()> {
    crate::io::write_atomic(path, |w| {
        for l in lines {
            writeln!(w, "{l}")?;
        }
        Ok(())
    })
}

/// What `predict` applies: a single one-vs-rest model from `train`, or the three-class
/// bundle from cross-validation.
pub enum Predictor {
    Model(Box<Model>),
    Bundle(Box<crate::cv::Bundle>),
}

impl Predictor {
    /// Reads either kind, telling them apart by their `format` field.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let v = crate::boost::read_json(path)?;
        if v.get("format").and_then(|f| f.as_str()) == Some(crate::cv::bundle::FORMAT) {
            return Ok(Self::Bundle(Box::new(crate::cv::Bundle::from_json(v, path)?)));
        }
        Ok(Self::Model(Box::new(Model::from_json(v, path)?)))
    }

    pub fn features(&self) -> &[String] {
        match self {
            Self::Model(m) => &m.features,
            Self::Bundle(b) => &b.features,
        }
    }

    /// The score columns this predictor writes.
    fn score_columns(&self) -> &'static [&'static str] {
        match self {
            Self::Model(_) => &["score", "margin"],
            Self::Bundle(_) => &["p_neither", "p_donor", "p_acceptor"],
        }
    }

    /// One row's scores, in [`Self::score_columns`] order.
    fn score(&self, x: &[f32], out: &mut [f32]) {
        match self {
            Self::Model(m) => {
                let margin = m.predict_margin(x);
                out[0] = m.objective.transform(margin);
                out[1] = margin;
            }
            Self::Bundle(b) => out.copy_from_slice(&b.predict(x).1),
        }
    }
}

/// Scores `ds` under the predict budget and writes `out` (Parquet): the row's gene id,
/// position and label where the dataset has them, then the predictor's scores (`score` and
/// `margin` for a model; class probabilities and `predicted_type` for a bundle).
pub fn predict_job(
    ds: &Dataset,
    predictor: &Predictor,
    out: &Path,
    res: &mut crate::memory::MemoryReservation,
) -> anyhow::Result<u64> {
    use arrow::array::{ArrayRef, Float32Array, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};
    use arrow::record_batch::RecordBatch;
    use rayon::prelude::*;
    use std::sync::Arc;

    let types: std::collections::HashMap<&str, &crate::io::Feature> =
        ds.roles.features.iter().map(|f| (f.name.as_str(), f)).collect();
    for f in predictor.features() {
        if !types.contains_key(f.as_str()) {
            return Err(InputError::new(
                "the model needs this feature, which the dataset lacks or holds as non-numbers",
            )
            .file(&ds.files[0].path)
            .column(f)
            .hint("score a dataset with the columns the model was trained on")
            .into());
        }
    }
    let keep: Vec<String> = ["gene_id", "position", "splice_type"]
        .iter()
        .filter(|c| ds.schema.field_with_name(c).is_ok())
        .map(|c| c.to_string())
        .collect();
    let mut columns = keep.clone();
    columns.extend(predictor.features().iter().cloned());
    let nf = predictor.features().len();
    let names = predictor.score_columns();
    let ns = names.len();
    let is_bundle = matches!(predictor, Predictor::Bundle(_));
    let scan = ds
        .scan()
        .with_columns(&columns)
        .with_extra_row_bytes(8 * nf as u64 + 8 * ns as u64 + 16);
    let mut fields: Vec<Field> = keep
        .iter()
        .map(|c| {
            ds.schema
                .field_with_name(c)
                .expect("checked")
                .clone()
                .with_nullable(true)
        })
        .collect();
    fields.extend(names.iter().map(|n| Field::new(*n, DataType::Float32, false)));
    if is_bundle {
        fields.push(Field::new("predicted_type", DataType::Utf8, false));
    }
    let schema = Arc::new(Schema::new(fields));
    res.try_grow(crate::io::parquet_writer_bytes(&schema))?;
    let scan = scan.build(res)?;
    crate::io::write_atomic(out, |w| {
        let mut writer = crate::io::parquet_writer(w, schema.clone())?;
        let mut rows = 0u64;
        let mut cols: Vec<Vec<f32>> = vec![Vec::new(); nf];
        for item in scan {
            let b = item?;
            let n = b.batch.num_rows();
            cols.par_iter_mut().enumerate().for_each(|(j, c)| {
                crate::io::to_f32(b.batch.column(keep.len() + j).as_ref(), c);
            });
            let mut scores = vec![0f32; n * ns];
            scores.par_chunks_mut(ns).enumerate().for_each_init(
                || vec![0f32; nf],
                |x, (r, out)| {
                    for (j, c) in cols.iter().enumerate() {
                        x[j] = c[r];
                    }
                    predictor.score(x, out);
                },
            );
            // Files may store strings in another flavour than the first file: cast to the
            // output's types (free when they already match).
            let mut arrays: Vec<ArrayRef> = schema.fields()[..keep.len()]
                .iter()
                .enumerate()
                .map(|(i, f)| arrow::compute::cast(b.batch.column(i), f.data_type()))
                .collect::<Result<_, _>>()?;
            for k in 0..ns {
                arrays.push(Arc::new(Float32Array::from_iter_values(
                    scores.iter().skip(k).step_by(ns).copied(),
                )));
            }
            if is_bundle {
                arrays.push(Arc::new(StringArray::from_iter_values(scores.chunks(ns).map(
                    |p| crate::io::CLASS_NAMES[crate::cv::argmax3([p[0], p[1], p[2]]) as usize],
                ))));
            }
            let out_batch = RecordBatch::try_new(schema.clone(), arrays).context("assembling scores")?;
            rows += n as u64;
            writer.write(&out_batch)?;
        }
        writer.close()?;
        Ok(rows)
    })
}
