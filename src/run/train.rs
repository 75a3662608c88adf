//! The training job: sketch → bin → train, with each stage under its own budget.
//!
//! A binned cache is reused when the dataset's files, features and `max_bin` are unchanged,
//! so a second training on the same data skips both passes over the Parquet files. Before
//! any pass, the train stage's need is priced from the dataset's footers and refused if it
//! cannot fit, with the smallest budget that would.

use std::path::Path;

use crate::boost::checkpoint::remove_checkpoint;
use crate::boost::progress::tree_bar;
use crate::boost::sizing::binned_cache;
use crate::boost::{fit, Model, Role, TrainParams};
use crate::cv::folds::gene_is_valid;
use crate::io::{write_lines, write_table, Dataset};

use super::RunContext;

/// What a training run wrote.
#[derive(Debug, Clone)]
pub struct Trained {
    pub model: Model,
    pub cache_reused: bool,
    pub train_rows: usize,
    pub valid_rows: usize,
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
    crate::cv::check_group_column(&ds)?;
    let cache_dir = cfg.cache_dir();
    let (pages, reused) = binned_cache(&ctx.stages, &ds, params, &cache_dir)
        .map_err(|e| crate::error::locate_io(e, &cache_dir, "cannot build or read the binned page cache"))?;
    let (model, train_rows, valid_rows) = ctx.stage("train", |res| {
        let (labels, groups) = crate::cv::cache_rows(&pages)?;
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
        let bar = tree_bar(!quiet && cfg.run.progress, params.n_estimators as u64);
        bar.set_prefix("train");
        let fitted = fit(&pages, &labels, &roles, params, cfg.run.seed, res, |it| {
            bar.inc(1);
            bar.set_message(match it.valid_score {
                Some(v) => format!("train {:.5} valid {:.5}", it.train_loss, v),
                None => format!("train {:.5}", it.train_loss),
            });
        })?;
        bar.finish_and_clear();
        Ok((fitted, train_rows, valid_rows))
    })?;
    let crate::boost::Fit {
        model,
        checkpoint,
        resumed,
        ..
    } = model;
    if resumed > 0 {
        eprintln!("note: {resumed} trees taken from the checkpoint of an interrupted run");
    }
    model.save(&out_dir.join("model.json"))?;
    crate::io::write_bytes_atomic(
        &out_dir.join("model.xgb.json"),
        serde_json::to_string(&model.to_xgboost_json())?.as_bytes(),
    )?;
    let metric = serde_json::to_value(params.eval_metric)?;
    let valid_col = format!("valid_{}", metric.as_str().unwrap_or("score"));
    write_table(
        &out_dir.join("training_log.tsv"),
        b'\t',
        &["iteration", "train_loss", &valid_col, "seconds"],
        model.log.iter().map(|it| {
            [
                it.iteration.to_string(),
                format!("{:.6}", it.train_loss),
                it.valid_score.map_or(String::new(), |v| format!("{v:.6}")),
                format!("{:.3}", it.seconds),
            ]
        }),
    )?;
    write_table(
        &out_dir.join("feature_importance.tsv"),
        b'\t',
        &["feature", "gain", "cover", "weight"],
        model.importance().into_iter().map(|i| {
            [
                i.feature,
                format!("{:.6}", i.gain),
                format!("{:.6}", i.cover),
                i.weight.to_string(),
            ]
        }),
    )?;
    // Everything is written: nothing is left to resume.
    if let Some(p) = checkpoint {
        remove_checkpoint(&p)?;
    }
    Ok(Trained {
        model,
        cache_reused: reused,
        train_rows,
        valid_rows,
    })
}
