//! `spliceboost score` and the score stage of `run`: the genome opened, the base model run
//! over the selected genes, and, with `--fit-shifts`, the scores checked against the
//! annotation.

use std::path::Path;

use serde::Serialize;

use super::config::{Config, ConfigError};
use super::RunContext;
use crate::eval::sites::{QualityReport, SiteQuality};
use crate::genome::Genome;
use crate::score::shifts::{ShiftFit, Shifts};
use crate::score::store::ScoreReader;
use crate::score::{score_job, ScoreJob, ScoreSummary};

/// Offsets `--fit-shifts` tries on each side, and its threshold: the Python original's.
const FIT_RADIUS: i32 = 5;
const FIT_THRESHOLD: f32 = 0.5;

/// Runs the score stage of `ctx` (which has a `[genome]`), with the `[score]` section or
/// its defaults.
pub fn score_stage(ctx: &RunContext, overwrite: bool) -> anyhow::Result<ScoreSummary> {
    let config = &ctx.config;
    let genome_cfg = config.genome.as_ref().expect("validated: [score] needs [genome]");
    let score_cfg = config.score.clone().unwrap_or_default();
    ctx.stage("score", |res| {
        let mut genome = open_genome(config, genome_cfg, res)?;
        score_job(
            ScoreJob {
                genome: &mut genome,
                config: &score_cfg,
                seed: config.run.seed,
                out: config.score_dir(),
                overwrite,
                progress: config.run.progress,
            },
            res,
        )
    })
}

/// The genome of `[genome]`, its indexes cached under the run's cache directory.
pub(super) fn open_genome(
    config: &Config,
    genome_cfg: &crate::genome::GenomeConfig,
    res: &crate::memory::MemoryReservation,
) -> anyhow::Result<Genome> {
    Genome::open(
        genome_cfg,
        &config.cache_dir().join("genome"),
        config.run.seed,
        res,
    )
}

/// Creates `dir` and takes it for this process: one run per directory at a time, and what
/// killed runs left there (temporary batch files) goes first.
pub(super) fn claim(
    dir: &Path,
    what: &str,
    hint: &str,
) -> anyhow::Result<Option<super::staging::OutDirLock>> {
    std::fs::create_dir_all(dir).map_err(|e| {
        crate::error::io_error(dir, &format!("cannot create the {what} directory"), &e).hint(hint)
    })?;
    let lock = super::staging::OutDirLock::acquire(dir)?;
    let notes =
        super::staging::clean_leftovers(dir, lock.is_some(), dir, None, None, std::time::SystemTime::now());
    for note in notes {
        eprintln!("note: {note}");
    }
    Ok(lock)
}

/// One line on what the stage did.
pub fn describe(s: &ScoreSummary) -> String {
    let mut line = format!(
        "scored {} genes, {} positions into {} ({} batches; {})",
        s.genes,
        s.positions,
        s.out.display(),
        s.batches,
        s.source
    );
    if s.reused_batches > 0 {
        line += &format!(
            "; {} batches ({} genes) kept from an earlier run",
            s.reused_batches, s.reused_genes
        );
    }
    if s.scored_genes > 0 {
        line += &format!("; {:.0} positions/s", s.positions_per_second());
    }
    line
}

/// `spliceboost score CONFIG [--fit-shifts]`.
pub fn score_command(
    mut cfg: Config,
    path: &Path,
    fit_shifts: bool,
    overwrite: bool,
    quiet: bool,
) -> anyhow::Result<()> {
    if cfg.genome.is_none() {
        return Err(ConfigError {
            source: path.display().to_string(),
            line: None,
            key: Some("genome".into()),
            message: "no [genome] section: `score` needs `fasta` and `annotation` to score".into(),
        }
        .into());
    }
    if quiet {
        cfg.run.progress = false;
    }
    let _lock = claim(
        &cfg.score_dir(),
        "score",
        "set `score.out` to a directory you can write to",
    )?;
    let ctx = RunContext::new(cfg, "score");
    let summary = score_stage(&ctx, overwrite)?;
    println!("{}", describe(&summary));
    if fit_shifts {
        let fit = fit_and_evaluate(&ctx)?;
        print!("{}", fit.render());
        crate::io::write_bytes_atomic(
            &ctx.config.score_dir().join(crate::score::store::QUALITY),
            serde_json::to_string_pretty(&fit)?.as_bytes(),
        )?;
        println!(
            "wrote {}",
            ctx.config
                .score_dir()
                .join(crate::score::store::QUALITY)
                .display()
        );
    }
    if !quiet {
        eprintln!("{}", ctx.summary());
    }
    Ok(())
}

/// The scores against the annotation: the shifts that fit best and the base model's
/// quality with the scores as written and with those shifts added.
#[derive(Debug, Serialize)]
pub struct ShiftReport {
    /// The shifts the scores were written with.
    pub applied: Shifts,
    /// The best further shifts, relative to the written scores.
    pub fitted: Shifts,
    /// `applied` plus `fitted`: the `[score.shifts]` to use.
    pub total: Shifts,
    pub before: QualityReport,
    /// The quality with `fitted` applied (the same as `before` when they are zero).
    pub after: QualityReport,
    #[serde(skip)]
    table: String,
}

impl ShiftReport {
    pub fn render(&self) -> String {
        let mut s = String::new();
        s += "F1 at 0.5 by offset (exact positions), relative to the scores as written:\n";
        s += &self.table;
        s += "\nbase model against the annotation, scores as written:\n";
        s += &self.before.render();
        if !self.fitted.is_zero() {
            s += "\nwith the fitted shifts:\n";
            s += &self.after.render();
        } else {
            s += "\nthe fitted shifts are zero: the scores sit on the annotated sites\n";
        }
        s += "\n";
        s += &self.total.toml_block();
        s
    }
}

/// Reads the finished scores back gene by gene beside the annotation's genes (the same
/// selection, in the same order) and hands each pair to `each`.
fn for_each_scored_gene(
    ctx: &RunContext,
    res: &mut crate::memory::MemoryReservation,
    mut each: impl FnMut(&crate::genome::Gene, &mut [[f32; 3]]) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let config = &ctx.config;
    let genome = Genome::open(
        config.genome.as_ref().expect("checked"),
        &config.cache_dir().join("genome"),
        config.run.seed,
        res,
    )?;
    let dir = config.score_dir();
    let (_, mut reader) = ScoreReader::open(&dir, res)?;
    for gene in genome.genes(res)? {
        let gene = gene?;
        let mut stored = reader.next_gene()?.ok_or_else(|| {
            crate::error::InputError::new(format!("has no scores for gene {}", gene.id))
                .file(dir.join(crate::score::store::MANIFEST))
                .hint("run `spliceboost score` again (with --overwrite if the selection changed)")
        })?;
        if stored.gene_id != gene.id || stored.start != gene.start || stored.scores.len() as u64 != gene.len()
        {
            return Err(crate::error::InputError::new(format!(
                "holds gene {} at {}, where the selection yields {} ({}..={})",
                stored.gene_id, stored.start, gene.id, gene.start, gene.end
            ))
            .file(dir.join(crate::score::store::MANIFEST))
            .hint("run `spliceboost score` with --overwrite to score the selection again")
            .into());
        }
        each(&gene, &mut stored.scores)?;
    }
    Ok(())
}

/// `--fit-shifts`: one pass fits the shifts and measures the scores as written; a second
/// measures them with the fitted shifts, when those are not zero.
pub fn fit_and_evaluate(ctx: &RunContext) -> anyhow::Result<ShiftReport> {
    let applied = ctx.config.score.clone().unwrap_or_default().shifts;
    let dir = ctx.config.score_dir();
    ctx.stage("eval", |res| {
        let rows = crate::score::store::Manifest::read(&dir)?.map_or(0, |m| m.rows());
        let mut fit = ShiftFit::new(FIT_RADIUS, FIT_THRESHOLD);
        // Every position's scores and label are held for the PR-AUC; the sort keys of the
        // report come on top.
        let mut held = res.new_empty();
        // (The per-gene top-k sorts a gene's sites: 64 KiB covers 8,000 of them.)
        held.try_grow(
            (SiteQuality::BYTES_PER_POSITION + SiteQuality::REPORT_BYTES_PER_POSITION) * rows + (64 << 10),
        )?;
        let mut before = SiteQuality::with_capacity(rows as usize);
        for_each_scored_gene(ctx, res, |gene, scores| {
            let sites = gene.sites();
            fit.add_gene(gene.strand, gene.start, scores, &sites);
            before.add_gene(gene.start, scores, &sites);
            Ok(())
        })?;
        let fitted = fit.best();
        let before_report = before.report();
        drop(before);
        let after = if fitted.is_zero() {
            before_report.clone()
        } else {
            let mut after = SiteQuality::with_capacity(rows as usize);
            for_each_scored_gene(ctx, res, |gene, scores| {
                fitted.apply(gene.strand, scores);
                after.add_gene(gene.start, scores, &gene.sites());
                Ok(())
            })?;
            after.report()
        };
        let total = Shifts {
            donor_plus: applied.donor_plus + fitted.donor_plus,
            donor_minus: applied.donor_minus + fitted.donor_minus,
            acceptor_plus: applied.acceptor_plus + fitted.acceptor_plus,
            acceptor_minus: applied.acceptor_minus + fitted.acceptor_minus,
        };
        Ok(ShiftReport {
            applied,
            fitted,
            total,
            before: before_report,
            after,
            // Without the fit's own [score.shifts] block: the total is printed below.
            table: fit.table(),
        })
    })
}
