//! `spliceboost build` and the build stage of `run`: the genome opened, its base scores read
//! back, and the training set written in resumable batches.

use std::path::Path;

use super::config::{Config, ConfigError};
use super::score::{claim, open_genome, score_stage};
use super::RunContext;
use crate::build::{build_job, BuildJob, BuildSummary};

/// Runs the build stage of `ctx` (which has `[genome]` and `[build]`): `overwrite` replaces a
/// dataset built with other settings, `rebuild` builds every batch again.
pub fn build_stage(ctx: &RunContext, overwrite: bool, rebuild: bool) -> anyhow::Result<BuildSummary> {
    let config = &ctx.config;
    let genome_cfg = config.genome.as_ref().expect("validated: [build] needs [genome]");
    let build_cfg = config.build.clone().unwrap_or_default();
    ctx.stage("build", |res| {
        let mut genome = open_genome(config, genome_cfg, res)?;
        build_job(
            BuildJob {
                genome: &mut genome,
                config: &build_cfg,
                scores: config.build_scores(),
                out: config.build_dir(),
                seed: build_cfg.seed.unwrap_or(config.run.seed),
                overwrite,
                rebuild,
                progress: config.run.progress,
            },
            res,
        )
    })
}

/// One line on what the build did.
pub fn describe_build(s: &BuildSummary) -> String {
    let mut line = format!(
        "built {} genes, {} rows into {} ({} batches)",
        s.genes,
        s.rows,
        s.out.join("master").display(),
        s.batches
    );
    if s.reused_batches > 0 {
        line += &format!("; {} batches kept from an earlier run", s.reused_batches);
    }
    if s.built_genes > 0 {
        let [n, d, a] = s.rows_by_class;
        line += &format!(
            "; this run: {n} neither / {d} donor / {a} acceptor rows, base model donor TP {} FN {} FP {}, acceptor TP {} FN {} FP {}, {:.1} genes/s",
            s.tp[0], s.fn_[0], s.fp[0], s.tp[1], s.fn_[1], s.fp[1],
            s.built_genes as f64 / s.seconds.max(1e-9)
        );
    }
    if s.sites_outside > 0 {
        line += &format!(
            "; warning: {} annotated sites outside their gene's scores were skipped",
            s.sites_outside
        );
    }
    line
}

/// `spliceboost build CONFIG`.
pub fn build_command(mut cfg: Config, path: &Path, overwrite: bool, quiet: bool) -> anyhow::Result<()> {
    if cfg.genome.is_none() {
        return Err(ConfigError {
            source: path.display().to_string(),
            line: None,
            key: Some("genome".into()),
            message: "no [genome] section: `build` needs `fasta` and `annotation`".into(),
        }
        .into());
    }
    if cfg.build.is_none() {
        cfg.build = Some(Default::default());
    }
    if quiet {
        cfg.run.progress = false;
    }
    let out = cfg.build_dir().join("master");
    let _lock = claim(
        &out,
        "dataset",
        "set `build.out` (or `dataset.path`) to a directory you can write to",
    )?;
    let ctx = RunContext::new(cfg, "build");
    if ctx.config.score.is_some() && ctx.config.build.as_ref().is_some_and(|b| b.scores.is_none()) {
        println!("{}", super::score::describe(&score_stage(&ctx, false)?));
    }
    println!("{}", describe_build(&build_stage(&ctx, overwrite, overwrite)?));
    if !quiet {
        eprintln!("{}", ctx.summary());
    }
    Ok(())
}
