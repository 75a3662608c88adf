//! Gene-wise cross-validation of the three-class meta-model: the user's daily job.
//!
//! For each fold, three one-vs-rest models (neither, donor, acceptor) train on the other
//! folds' genes, with a gene-wise validation split for early stopping, and predict the
//! fold's genes. The pooled out-of-fold predictions are evaluated against the labels and
//! against the base model's own scores, calibrated, and the final model is refitted on every
//! gene. All of it runs from the one binned page cache, under the `cv` stage's budget for
//! the out-of-fold state and the `train` / `eval` budgets for the rest.

pub mod bundle;
pub(crate) mod evaluate;
pub mod folds;
mod outputs;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use bundle::Bundle;
pub use folds::{Folds, EXCLUDED};

pub use evaluate::{BaseVsMeta, ImportanceSum, PartReport, Report};
pub use outputs::{fold_header, fold_row, is_cv_output, ranked};

use crate::boost::progress::tree_bar;
use crate::boost::sizing::binned_cache;
use crate::boost::{fit, Role, TrainParams};
use crate::error::InputError;
use crate::eval::calibrate::{Method, Mode};
use crate::io::{Dataset, DatasetConfig, CLASS_NAMES};
use crate::memory::{MemoryError, Stages};
use folds::{gene_draw, gene_is_valid};

/// The base model's score columns, by class code.
pub const BASE_COLUMNS: [&str; 3] = ["neither_score", "donor_score", "acceptor_score"];

/// Bytes per row the `cv` stage holds while folds train: class code, fold code, gene index
/// (`u32`), three out-of-fold probabilities, their three calibrated values and three base
/// scores (`f32` each), plus the gene indices' read buffer (4) and the filter's row mask (1)
/// while they load.
pub const CV_BYTES_PER_ROW: u64 = 1 + 1 + 4 + 12 + 12 + 12 + 4 + 1;

/// Bytes per gene the `cv` stage holds besides the gene's id: its kept rows (`u64`), rows per
/// class (3 × `u64`), ensemble member (`usize`), fold code and validation flag, and the fold
/// assignment's and the ensemble draw's sort keys and order (3 × 8) while they run.
pub const CV_BYTES_PER_GENE: u64 = 8 + 24 + 8 + 1 + 1 + 3 * 8;

/// Files of a previous cross-validation run; `run` refuses an out_dir holding one unless
/// told to overwrite.
pub const OUTPUTS: [&str; 7] = [
    "metrics_aggregate.json",
    "metrics_folds.tsv",
    "gene_metrics.tsv",
    "feature_importance.tsv",
    "oof_predictions.parquet",
    "model_bundle.json",
    "report.html",
];

/// The meta-model's boosting parameters, those of the Python original's trainer
/// (`run_gene_cv_sigmoid`: learning rate 0.1, depth 6, row and column subsampling 0.8, 256
/// bins) with 800 trees at most, as there, but stopped early on the gene-wise validation
/// split after 50 rounds without a better log loss. A cross-validation takes these for every
/// `[train]` key its config leaves out.
pub const META_MODEL_DEFAULTS: &str = "\
n_estimators = 800
learning_rate = 0.1
max_depth = 6
subsample = 0.8
colsample_bytree = 0.8
max_bin = 256
early_stopping_rounds = 50
eval_metric = \"logloss\"
";

/// The `[cv]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CvParams {
    /// Folds of genes (`GroupKFold`).
    #[serde(default = "d_folds")]
    pub n_folds: usize,
    /// Share of each training part's genes held out for early stopping.
    #[serde(default = "d_valid")]
    pub valid_size: f64,
    /// Use only this many genes, drawn deterministically from `run.seed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sample_genes: Option<usize>,
    /// Keep only rows where this SQL condition holds, e.g. `gene_type = 'protein_coding'`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<String>,
    /// `platt`, `isotonic` or `none`.
    #[serde(default = "d_method")]
    pub calibration: Method,
    /// `per_class` (then renormalised) or `splice` (on P(donor) + P(acceptor)).
    #[serde(default = "d_mode")]
    pub calibration_mode: Mode,
    /// The score at which the base model and the meta-model call a site.
    #[serde(default = "d_threshold")]
    pub base_threshold: f64,
    /// The final model as this many sub-models on disjoint gene subsets, averaged.
    #[serde(default = "d_one")]
    pub ensemble_size: usize,
    /// Refit the final model on every kept gene after the folds (`model_bundle.json`); off,
    /// the run gives the cross-validation's outputs only, as `xgb.cv` does.
    #[serde(default = "d_true")]
    pub refit: bool,
}

fn d_true() -> bool {
    true
}

fn d_folds() -> usize {
    5
}
fn d_valid() -> f64 {
    0.1
}
fn d_method() -> Method {
    Method::Isotonic
}
fn d_mode() -> Mode {
    Mode::PerClass
}
fn d_threshold() -> f64 {
    0.5
}
fn d_one() -> usize {
    1
}

impl Default for CvParams {
    fn default() -> Self {
        toml::from_str("").expect("every field has a default")
    }
}

impl CvParams {
    /// Checks ranges; the error names the key.
    pub fn validate(&self) -> Result<(), (String, String)> {
        let bad = |k: &str, m: &str| Err((format!("cv.{k}"), m.to_string()));
        if !(2..=100).contains(&self.n_folds) {
            return bad("n_folds", "must be from 2 to 100");
        }
        if !(0.0..1.0).contains(&self.valid_size) {
            return bad("valid_size", "must be in [0, 1)");
        }
        if self.sample_genes.is_some_and(|n| n < self.n_folds) {
            return bad("sample_genes", "must be at least n_folds");
        }
        if !(self.base_threshold > 0.0 && self.base_threshold < 1.0) {
            return bad("base_threshold", "must be in (0, 1)");
        }
        if self.ensemble_size == 0 {
            return bad("ensemble_size", "must be at least 1");
        }
        Ok(())
    }
}

/// The per-row state of a cross-validation, held by the `cv` stage.
pub(crate) struct RowState {
    pub labels: Vec<u8>,
    pub groups: Vec<u32>,
    /// Per row: the fold it tests in, or [`EXCLUDED`].
    pub fold: Vec<u8>,
    /// Out-of-fold probabilities, by class code.
    pub oof: [Vec<f32>; 3],
    /// The out-of-fold probabilities calibrated by a calibrator fitted on the other folds.
    pub cal: [Vec<f32>; 3],
    /// The base model's scores, by class code, when the dataset has them.
    pub base: Option<[Vec<f32>; 3]>,
}

/// What one fold's training left besides its predictions.
#[derive(Debug, Clone, Serialize)]
pub struct FoldFit {
    pub fold: usize,
    pub train_rows: usize,
    pub valid_rows: usize,
    pub test_rows: usize,
    /// Per class: trees kept and the best iteration.
    pub trees: [usize; 3],
    pub best_iteration: [Option<usize>; 3],
}

/// What a cross-validation run produced, for the caller's summary.
#[derive(Debug, Clone)]
pub struct CvOutcome {
    pub genes: u64,
    pub rows: u64,
    pub folds: usize,
    pub pooled: crate::eval::Metrics,
    /// The final model's trees per class; none with `cv.refit = false`.
    pub refit_trees: Option<[usize; 3]>,
    pub base_compared: bool,
    /// Why the base-vs-meta comparison was skipped, when it was.
    pub base_skipped: Option<String>,
}

/// Refuses a group column that cannot name genes: floating-point or boolean values would
/// make each distinct number (or two values) a "gene", and the folds meaningless.
pub fn check_group_column(ds: &Dataset) -> Result<(), InputError> {
    use arrow::datatypes::DataType;
    let Ok(field) = ds.schema.field_with_name(&ds.roles.group) else {
        return Ok(());
    };
    let dt = match field.data_type() {
        DataType::Dictionary(_, v) => v.as_ref(),
        t => t,
    };
    let unusable = dt.is_floating()
        || matches!(
            dt,
            DataType::Boolean | DataType::Decimal128(..) | DataType::Decimal256(..)
        );
    if unusable {
        return Err(InputError::new(format!(
            "the group column holds {dt} values, which cannot name genes: gene-wise folds need a gene id per row"
        ))
        .file(&ds.files[0].path)
        .column(&ds.roles.group)
        .hint("set `dataset.group` to the gene id column (strings or integers), such as `gene_id`"));
    }
    Ok(())
}

/// The class codes and gene indices of the binned cache, with the file named when they
/// cannot be read.
pub(crate) fn cache_rows(pages: &crate::binning::cache::PageCache) -> anyhow::Result<(Vec<u8>, Vec<u32>)> {
    let locate = |e: anyhow::Error, name: &str| -> anyhow::Error {
        let io = e.chain().find_map(|c| c.downcast_ref::<std::io::Error>());
        if io.is_none() && crate::error::exit_code(&e) == 2 {
            // Already says where and what to do.
            return e;
        }
        let cause = match io {
            Some(io) => format!("cannot read the binned cache: {io}"),
            None => format!("the binned cache is damaged: {e:#}"),
        };
        InputError::new(cause)
            .file(pages.dir.join(name))
            .hint("delete the cache directory; the next run rebuilds it")
            .into()
    };
    let labels = pages.labels().map_err(|e| locate(e, "labels.bin"))?;
    let groups = pages.groups().map_err(|e| locate(e, "groups.bin"))?;
    Ok((labels, groups))
}

/// Refuses an out_dir that holds a previous run's results unless `overwrite`.
pub fn check_out_dir(out_dir: &Path, overwrite: bool) -> Result<(), InputError> {
    if overwrite {
        return Ok(());
    }
    if let Some(f) = OUTPUTS.iter().find(|f| out_dir.join(f).exists()) {
        return Err(InputError::new(format!(
            "the output directory holds a previous cross-validation run ({f})"
        ))
        .file(out_dir)
        .hint("pass --overwrite to replace it, or set `run.out_dir` to another directory"));
    }
    Ok(())
}

/// What a cross-validation takes from the run it is part of.
pub struct CvJob<'a> {
    pub stages: &'a Stages,
    pub dataset: &'a DatasetConfig,
    pub seed: u64,
    /// Where binned page caches live.
    pub cache_root: PathBuf,
    /// Progress bars on standard error.
    pub progress: bool,
    /// The run's config as TOML, kept in the bundle to say how it was made.
    pub config_toml: String,
}

/// What a cross-validation produced: the caller's summary, and what report.html shows.
pub struct CvResult {
    pub outcome: CvOutcome,
    pub report: Report,
    pub importance: ImportanceSum,
}

/// Runs the cross-validation `cv` describes with the boosting parameters `params` (their
/// `class` and `valid_fraction` are set per model) and writes its metrics, tables,
/// predictions and bundle to `out_dir`.
pub fn cv_job(
    job: &CvJob,
    cv: &CvParams,
    params: &TrainParams,
    out_dir: &Path,
    quiet: bool,
) -> anyhow::Result<CvResult> {
    let ctx = job.stages;
    let seed = job.seed;
    let ds = Dataset::open(job.dataset)?;
    check_group_column(&ds)?;
    let missing: Vec<&str> = BASE_COLUMNS
        .iter()
        .copied()
        .filter(|c| !ds.roles.features.iter().any(|f| f.name == *c))
        .collect();
    let has_base = missing.is_empty();
    let mut base_skipped = None;
    if !has_base {
        let why = format!(
            "the dataset has no base-model score column {}",
            missing.join(", ")
        );
        eprintln!("warning: {why}: the base-vs-meta comparison is skipped");
        base_skipped = Some(why);
    }
    let n = ds.rows() as usize;
    // Everything that can be priced before any work is: a budget found too small after
    // the folds trained would waste them.
    let cv_budget = ctx.budget("cv");
    let need = n as u64 * CV_BYTES_PER_ROW;
    let too_small = |stage: &str, needed: u64, budget: u64, what: String| MemoryError::TooSmall {
        stage: stage.into(),
        key: format!("memory.{stage}"),
        needed,
        budget,
        what,
    };
    if need > cv_budget {
        return Err(too_small(
            "cv",
            need,
            cv_budget,
            format!("labels, folds and out-of-fold predictions for {n} rows"),
        )
        .into());
    }
    if has_base {
        // The base scores are read under the cv reservation, beside the per-row state.
        let (scan, what) = ds
            .scan()
            .with_columns(&BASE_COLUMNS)
            .with_extra_row_bytes(4)
            .min_bytes();
        if need + scan > cv_budget {
            return Err(too_small(
                "cv",
                need + scan,
                cv_budget,
                format!("labels, folds and out-of-fold predictions for {n} rows, and {what} to read the base scores"),
            )
            .into());
        }
    }
    let (oof_need, oof_what) = outputs::oof_bytes(&ds, cv.calibration != Method::None);
    if oof_need > ctx.budget("scan") {
        return Err(too_small(
            "scan",
            oof_need,
            ctx.budget("scan"),
            format!("writing oof_predictions.parquet: {oof_what}"),
        )
        .into());
    }
    ctx.stage("cv", |res| {
        res.try_grow(need)?;
        let (pages, reused) = binned_cache(ctx, &ds, params, &job.cache_root).map_err(|e| {
            crate::error::locate_io(e, &job.cache_root, "cannot build or read the binned page cache")
        })?;
        if !quiet && reused {
            eprintln!("cv: binned cache reused");
        }
        // What the stage keeps beside its per-row state, priced once the cache tells the
        // features and genes: the open cache, per gene its id and counts, the summed
        // importance, the refitted models and the report (its calibration once fitted).
        let names: Vec<String> = pages.manifest.cuts.names();
        let names_bytes = crate::memory::names_bytes(&names);
        let n_genes = pages.manifest.genes.len() as u64;
        let refit_models = if cv.refit { 3 * cv.ensemble_size as u64 } else { 0 };
        let held = pages.heap_bytes()
            + crate::memory::names_bytes(&pages.manifest.genes)
            + n_genes * CV_BYTES_PER_GENE
            + evaluate::ImportanceSum::bytes(names.len(), names_bytes)
            + refit_models * crate::boost::Model::max_bytes(params, names_bytes)
            + evaluate::report_bytes(n_genes);
        res.require(
            need + held,
            format!(
                "labels, folds and out-of-fold predictions for {n} rows; the binned cache's \
                 manifest, {n_genes} genes, {} features' importance, {} refitted models of up \
                 to {} trees and the report",
                names.len(),
                refit_models,
                params.n_estimators
            ),
        )?;
        res.try_grow(held)?;
        let genes = pages.manifest.genes.clone();
        let (labels, groups) = cache_rows(&pages)?;
        let mut fold = vec![0u8; n];
        // Rows the filter keeps: marked now, turned into folds below.
        if let Some(filter) = &cv.filter {
            // Read under the cv reservation, which holds the mask: the scan's buffers come
            // from what it has left.
            let mask = row_mask(&ds, filter, res)?;
            for (f, keep) in fold.iter_mut().zip(mask) {
                if !keep {
                    *f = EXCLUDED;
                }
            }
        }
        let mut rows_per_gene = vec![0u64; genes.len()];
        for (i, &g) in groups.iter().enumerate() {
            if fold[i] != EXCLUDED {
                rows_per_gene[g as usize] += 1;
            }
        }
        if let Some(k) = cv.sample_genes {
            let keep = folds::sample_genes(&genes, &rows_per_gene, k, seed);
            for (r, k) in rows_per_gene.iter_mut().zip(&keep) {
                if !k {
                    *r = 0;
                }
            }
        }
        let folds = folds::assign(&genes, &rows_per_gene, cv.n_folds, seed).map_err(|m| {
            InputError::new(m)
                .file(&job.dataset.path)
                .column(&ds.roles.group)
                .hint("lower `cv.n_folds`, or widen `cv.filter` / `cv.sample_genes`")
        })?;
        for (f, &g) in fold.iter_mut().zip(&groups) {
            if *f != EXCLUDED {
                *f = folds.fold_of_gene[g as usize];
            }
        }
        check_classes(&labels, &fold, cv.n_folds)?;
        let kept = fold.iter().filter(|&&f| f != EXCLUDED).count() as u64;
        let eval_need = evaluate::eval_bytes(
            kept,
            evaluate::copied_rows(&fold, cv.n_folds),
            folds.genes.iter().sum(),
        );
        if eval_need > ctx.budget("eval") {
            return Err(too_small(
                "eval",
                eval_need,
                ctx.budget("eval"),
                format!("scoring {kept} out-of-fold predictions"),
            )
            .into());
        }
        let mut class_rows = vec![[0u64; 3]; genes.len()];
        for ((&f, &g), &l) in fold.iter().zip(&groups).zip(&labels) {
            if f != EXCLUDED {
                class_rows[g as usize][l as usize] += 1;
            }
        }
        let member_of = ensemble_members(&genes, &class_rows, cv.ensemble_size, seed)?;
        let mut base = if has_base {
            Some(read_base(&ds, res)?)
        } else {
            None
        };
        if let Some(b) = &base {
            // A score column with no value in any kept row would make every base figure NaN.
            let empty: Vec<String> = (0..3)
                .filter(|&c| fold.iter().zip(&b[c]).all(|(&f, v)| f == EXCLUDED || v.is_nan()))
                .map(|c| format!("`{}`", BASE_COLUMNS[c]))
                .collect();
            if !empty.is_empty() {
                let why = format!(
                    "the base-model score column {} is null or NaN in every row",
                    empty.join(", ")
                );
                eprintln!("warning: {why}: the base-vs-meta comparison is skipped");
                base_skipped = Some(why);
                base = None;
            }
        }
        let mut st = RowState {
            labels,
            groups,
            fold,
            oof: std::array::from_fn(|_| vec![f32::NAN; n]),
            cal: std::array::from_fn(|_| vec![f32::NAN; n]),
            base,
        };

        let bar = tree_bar(
            !quiet && job.progress,
            (cv.n_folds * 3 * params.n_estimators) as u64,
        );
        let mut fits = vec![];
        let mut checkpoints = vec![];
        let mut importance = evaluate::ImportanceSum::new(names);
        for f in 0..cv.n_folds {
            let seed_f = seed ^ ((f as u64 + 1) << 32);
            let valid_gene: Vec<bool> = genes
                .iter()
                .map(|g| gene_is_valid(seed_f, g, cv.valid_size))
                .collect();
            let role = |i: usize| -> Role {
                let fi = st.fold[i];
                if fi == EXCLUDED || fi as usize == f {
                    Role::Skip
                } else if valid_gene[st.groups[i] as usize] {
                    Role::Valid
                } else {
                    Role::Train
                }
            };
            let mut ff = FoldFit {
                fold: f,
                train_rows: 0,
                valid_rows: 0,
                test_rows: st.fold.iter().filter(|&&x| x as usize == f).count(),
                trees: [0; 3],
                best_iteration: [None; 3],
            };
            for (c, class) in CLASS_NAMES.iter().enumerate() {
                let mut p = params.clone();
                p.class = class.to_string();
                p.valid_fraction = cv.valid_size;
                bar.set_prefix(format!("fold {}/{} {class:>8}", f + 1, cv.n_folds));
                let (oof_c, st_ro) = (&mut st.oof[c], (&st.fold, &st.labels));
                let mut resumed = 0;
                let model = ctx.stage("train", |r| {
                    let roles: Vec<Role> = (0..n).map(role).collect();
                    ff.train_rows = roles.iter().filter(|&&x| x == Role::Train).count();
                    ff.valid_rows = roles.iter().filter(|&&x| x == Role::Valid).count();
                    let done = bar.position();
                    let fitted = fit(&pages, st_ro.1, &roles, &p, seed_f, r, |it| {
                        bar.set_position(done + it.iteration as u64 + 1);
                        if let Some(v) = it.valid_score {
                            bar.set_message(format!("valid {v:.5}"));
                        }
                    })?;
                    // Early stopping may leave trees unbuilt: skip them on the bar.
                    bar.set_position(done + p.n_estimators as u64);
                    for (i, o) in oof_c.iter_mut().enumerate() {
                        if st_ro.0[i] as usize == f {
                            *o = p.objective.transform(fitted.margin[i]);
                        }
                    }
                    checkpoints.extend(fitted.checkpoint);
                    resumed = fitted.resumed;
                    Ok(fitted.model)
                })?;
                if resumed > 0 {
                    eprintln!(
                        "note: fold {}/{} {class}: {resumed} trees taken from the checkpoint of an interrupted run",
                        f + 1,
                        cv.n_folds
                    );
                }
                ff.trees[c] = model.trees.len();
                ff.best_iteration[c] = model.best_iteration;
                importance.add(c, &model);
                crate::memory::pause_point("fold");
                if !quiet {
                    let line = format!(
                        "fold {}/{} {class:>8}: {} trees{}",
                        f + 1,
                        cv.n_folds,
                        model.trees.len(),
                        model.best_score.map_or(String::new(), |s| format!(
                            ", validation {:?} {s:.5}",
                            p.eval_metric
                        ))
                    );
                    // Above the bar on a terminal; on its own line in a log.
                    if bar.is_hidden() {
                        eprintln!("{line}");
                    } else {
                        bar.println(line);
                    }
                }
            }
            fits.push(ff);
        }
        bar.finish_and_clear();

        let report = ctx.stage("eval", |r| evaluate::evaluate(&mut st, &folds, cv, &fits, r))?;
        // The calibration stays in the report, and the bundle takes a copy.
        if let Some(c) = &report.calibration {
            res.try_grow(2 * c.heap_bytes())?;
        }
        ctx.stage("scan", |r| outputs::write_oof(&ds, &st, &genes, out_dir, r))?;
        crate::memory::pause_point("oof");

        // The final model: every kept gene, as many trees as the folds found best.
        let refit_trees: Option<[usize; 3]> = cv
            .refit
            .then(|| std::array::from_fn(|c| refit_rounds(&fits, c, params.n_estimators)));
        if let Some(trees) = refit_trees {
            let k = cv.ensemble_size;
            let bar = tree_bar(
                !quiet && job.progress,
                (k * trees.iter().sum::<usize>()) as u64,
            );
            let mut models: Vec<Vec<crate::boost::Model>> = vec![vec![], vec![], vec![]];
            for (c, members) in models.iter_mut().enumerate() {
                for m in 0..k {
                    let mut p = params.clone();
                    p.class = CLASS_NAMES[c].into();
                    p.valid_fraction = 0.0;
                    p.early_stopping_rounds = 0;
                    p.n_estimators = trees[c];
                    bar.set_prefix(format!("refit {m}/{k} {:>8}", CLASS_NAMES[c]));
                    let model = ctx.stage("train", |r| {
                        let roles: Vec<Role> = (0..n)
                            .map(|i| {
                                if st.fold[i] != EXCLUDED && member_of[st.groups[i] as usize] == m {
                                    Role::Train
                                } else {
                                    Role::Skip
                                }
                            })
                            .collect();
                        let fitted = fit(&pages, &st.labels, &roles, &p, seed, r, |_| bar.inc(1))?;
                        if fitted.resumed > 0 {
                            eprintln!(
                                "note: final model {m} {}: {} trees taken from the checkpoint of an interrupted run",
                                CLASS_NAMES[c], fitted.resumed
                            );
                        }
                        checkpoints.extend(fitted.checkpoint);
                        Ok(fitted.model)
                    })?;
                    members.push(model);
                    crate::memory::pause_point("refit");
                }
            }
            bar.finish_and_clear();
            let bundle = Bundle::new(models, report.calibration.clone(), job.config_toml.clone())
                .map_err(anyhow::Error::msg)?;
            bundle.save(&out_dir.join("model_bundle.json"))?;
        }
        // Every model is written: nothing is left to resume.
        for p in &checkpoints {
            crate::boost::checkpoint::remove_checkpoint(p)?;
        }
        let rows = st.fold.iter().filter(|&&f| f != EXCLUDED).count() as u64;
        let outcome = CvOutcome {
            genes: folds.genes.iter().sum(),
            rows,
            folds: cv.n_folds,
            pooled: report.pooled.meta.metrics.clone(),
            refit_trees,
            base_compared: st.base.is_some(),
            base_skipped,
        };
        Ok((outcome, report, importance, genes))
    })
    .and_then(|(outcome, report, importance, genes)| {
        outputs::write_tables(out_dir, &report, &importance, &genes)?;
        Ok(CvResult {
            outcome,
            report,
            importance,
        })
    })
}

/// The ensemble member (sub-model) each gene trains, by a seeded hash of its id; refused
/// before any model trains when some member would lack a class's rows (its one-vs-rest model
/// could not train), with the largest `cv.ensemble_size` that works.
fn ensemble_members(
    genes: &[String],
    class_rows: &[[u64; 3]],
    k: usize,
    seed: u64,
) -> Result<Vec<usize>, InputError> {
    let draws: Vec<f64> = genes.iter().map(|g| gene_draw(seed ^ 0xE45E, g)).collect();
    let member = |d: f64, k: usize| ((d * k as f64) as usize).min(k - 1);
    // The first member without some class's rows, and that class.
    let lacking = |k: usize| -> Option<(usize, usize)> {
        let mut per = vec![[0u64; 3]; k];
        for (d, rows) in draws.iter().zip(class_rows) {
            for (m, r) in per[member(*d, k)].iter_mut().zip(rows) {
                *m += r;
            }
        }
        per.iter()
            .enumerate()
            .find_map(|(m, rows)| rows.iter().position(|&r| r == 0).map(|c| (m, c)))
    };
    let kept = class_rows.iter().filter(|r| r.iter().any(|&x| x > 0)).count();
    // Checked before `lacking(k)`, which allocates per member.
    let why = if k > kept {
        Some(format!(
            "asks for more sub-models than the {kept} genes the run keeps"
        ))
    } else {
        lacking(k).map(|(m, c)| {
            format!(
                "leaves sub-model {m} without `{}` rows: none of the {kept} genes the run keeps that have such rows falls to it",
                CLASS_NAMES[c]
            )
        })
    };
    if let Some(why) = why {
        let best = (1..k.min(kept + 1))
            .rev()
            .find(|&j| lacking(j).is_none())
            .unwrap_or(1);
        return Err(InputError::new(format!(
            "`cv.ensemble_size` = {k} {why} (genes go to sub-models by a seeded hash of their id)"
        ))
        .hint(format!(
            "lower `cv.ensemble_size` to {best}, the largest size below {k} that gives every sub-model rows of each class"
        )));
    }
    Ok(draws.iter().map(|&d| member(d, k)).collect())
}

/// Trees for the final model of class `c`: the mean over folds of the trees each fold's
/// model kept, which is what its out-of-fold predictions (and so the calibration) came from:
/// the best iteration's count with early stopping, all `n_estimators` without.
fn refit_rounds(fits: &[FoldFit], c: usize, n_estimators: usize) -> usize {
    let total: usize = fits.iter().map(|f| f.trees[c]).sum();
    ((total as f64 / fits.len().max(1) as f64).round() as usize).clamp(1, n_estimators)
}

/// Refuses folds whose test part or training part lacks a class: the one-vs-rest model of
/// that class could not train, or its metrics would be undefined.
fn check_classes(labels: &[u8], fold: &[u8], n_folds: usize) -> Result<(), InputError> {
    let mut counts = vec![[0u64; 3]; n_folds];
    for (&l, &f) in labels.iter().zip(fold) {
        if f != EXCLUDED {
            counts[f as usize][l as usize] += 1;
        }
    }
    let total: [u64; 3] = std::array::from_fn(|c| counts.iter().map(|k| k[c]).sum());
    for (f, k) in counts.iter().enumerate() {
        for c in 0..3 {
            if k[c] == 0 || k[c] == total[c] {
                let side = if k[c] == 0 { "test" } else { "training" };
                return Err(InputError::new(format!(
                    "fold {f} has no `{}` rows in its {side} part ({} `{}` rows in all)",
                    CLASS_NAMES[c], total[c], CLASS_NAMES[c]
                ))
                .hint("lower `cv.n_folds`, use more genes, or check the label column"));
            }
        }
    }
    Ok(())
}

/// The base model's three scores for every row, in dataset order.
fn read_base(ds: &Dataset, res: &mut crate::memory::MemoryReservation) -> anyhow::Result<[Vec<f32>; 3]> {
    let n = ds.rows() as usize;
    let mut out: [Vec<f32>; 3] = std::array::from_fn(|_| Vec::with_capacity(n));
    let mut buf = vec![];
    for item in ds
        .scan()
        .with_columns(&BASE_COLUMNS)
        .with_extra_row_bytes(4)
        .build(res)?
    {
        let b = item?;
        for (c, o) in out.iter_mut().enumerate() {
            crate::io::to_f32(b.batch.column(c).as_ref(), &mut buf);
            o.extend_from_slice(&buf);
        }
    }
    Ok(out)
}

#[cfg(feature = "sql")]
fn row_mask(
    ds: &Dataset,
    filter: &str,
    res: &mut crate::memory::MemoryReservation,
) -> anyhow::Result<Vec<bool>> {
    crate::query::row_mask(ds, filter, "cv.filter", res)
}

#[cfg(not(feature = "sql"))]
fn row_mask(_: &Dataset, _: &str, _: &mut crate::memory::MemoryReservation) -> anyhow::Result<Vec<bool>> {
    Err(
        InputError::new("`cv.filter` needs the SQL engine, which this build lacks")
            .hint("rebuild with the default `sql` feature, or remove cv.filter")
            .into(),
    )
}
