//! The commands: a parsed command line in, each job carried out from its typed config.
//!
//! This room sits on top of every other: it turns the config into the parameters each room
//! takes, runs the stages in order and prints what the user asked for.

mod build;
pub mod cli;
pub mod config;
mod context;
mod leakage;
mod score;
mod staging;
pub mod sweep;
mod train;

use std::path::{Path, PathBuf};

pub use context::RunContext;
pub use train::{train_job, Trained};

use self::cli::{Cli, Command};
use self::config::Config;
use crate::error::InputError;
use crate::inspect::inspect;
use crate::io::Dataset;
use crate::synth::{write_dataset, SynthOptions};

fn load_config(path: Option<&Path>, overrides: &[String]) -> anyhow::Result<Config> {
    Ok(match path {
        Some(p) => Config::load(p, overrides)?,
        None => Config::from_overrides(overrides)?,
    })
}

/// The config of a command that takes `--config` optionally and a dataset on its command line.
fn config_for_dataset(
    config: Option<&Path>,
    overrides: &[String],
    dataset: Option<PathBuf>,
) -> anyhow::Result<Config> {
    let mut cfg = load_config(config, overrides)?;
    if let Some(d) = dataset {
        cfg.dataset.path = d;
    }
    Ok(cfg)
}

fn show_summary(ctx: &RunContext, quiet: bool, path: Option<&Path>) -> anyhow::Result<()> {
    let summary = match path {
        Some(p) => {
            let s = ctx.summary();
            crate::io::write_bytes_atomic(p, serde_json::to_string_pretty(&s)?.as_bytes())?;
            s
        }
        None => ctx.summary(),
    };
    if !quiet {
        eprintln!("{summary}");
    }
    Ok(())
}

/// Carries out a parsed command line.
pub fn execute(cli: Cli) -> anyhow::Result<()> {
    let mut memory = None;
    dispatch(cli, &mut memory).map_err(|e| match &memory {
        Some(m) => with_total_advice(e, m),
        None => e,
    })
}

/// A budget refusal whose advice would not validate (a stage budget the configured
/// `memory.total` cannot hold beside the others) becomes one that raises the total too.
fn with_total_advice(err: anyhow::Error, memory: &crate::memory::MemoryConfig) -> anyhow::Error {
    let Some(refusal) = err
        .chain()
        .find_map(|e| e.downcast_ref::<crate::memory::MemoryError>())
    else {
        return err;
    };
    match memory.total_needed_for(refusal) {
        Some(total) => crate::error::BudgetAdvice {
            error: refusal.clone(),
            total,
        }
        .into(),
        None => err,
    }
}

/// Carries out `cli`, leaving in `memory` the budgets of the config it loaded.
fn dispatch(cli: Cli, memory: &mut Option<crate::memory::MemoryConfig>) -> anyhow::Result<()> {
    let quiet = cli.quiet;
    let mut loaded = |cfg: Config| {
        *memory = Some(cfg.memory.clone());
        cfg
    };
    match cli.command {
        Command::Run {
            config,
            overwrite,
            overrides,
        } => {
            let cfg = loaded(Config::load(&config, &overrides.set)?);
            run_job(cfg, quiet, overwrite)
        }
        Command::Sweep {
            config,
            budgets,
            overwrite,
            overrides,
        } => {
            let budgets = budgets
                .map(|b| sweep::parse_budgets(&b))
                .transpose()
                .map_err(|e| {
                    InputError::new(format!("--budgets {e}")).hint("write sizes such as 256MiB,1GiB")
                })?;
            sweep::sweep(&config, &overrides.set, budgets, quiet, overwrite)
        }
        Command::Cv {
            config,
            overwrite,
            overrides,
        } => {
            // `cv` runs a cross-validation whether or not the file has a [cv] section.
            let mut set = overrides.set.clone();
            set.push("cv={}".into());
            let cfg = loaded(Config::load(&config, &set)?);
            run_job(cfg, quiet, overwrite)
        }
        Command::Score {
            config,
            fit_shifts,
            overwrite,
            overrides,
        } => {
            let cfg = loaded(Config::load(&config, &overrides.set)?);
            score::score_command(cfg, &config, fit_shifts, overwrite, quiet)
        }
        Command::Build {
            config,
            overwrite,
            overrides,
        } => {
            let cfg = loaded(Config::load(&config, &overrides.set)?);
            build::build_command(cfg, &config, overwrite, quiet)
        }
        Command::Train { config, overrides } => {
            let mut cfg = loaded(Config::load(&config, &overrides.set)?);
            if cfg.train.is_none() {
                return Err(self::config::ConfigError {
                    source: config.display().to_string(),
                    line: None,
                    key: Some("train".into()),
                    message: "no [train] section: nothing to train".into(),
                }
                .into());
            }
            cfg.cv = None;
            run_job(cfg, quiet, false)
        }
        Command::Predict {
            model,
            dataset,
            out,
            config,
            summary,
            overrides,
        } => {
            let cfg = loaded(config_for_dataset(config.as_deref(), &overrides.set, dataset)?);
            let ds = Dataset::open_unlabelled(&cfg.dataset)?;
            for (path, flag) in
                std::iter::once((&out, "--out")).chain(summary.iter().map(|s| (s, "--summary")))
            {
                crate::predict::check_out_path(path, flag, &cfg.dataset.path, &ds, &model)?;
            }
            let predictor = crate::predict::Predictor::load(&model)?;
            let ctx = RunContext::new(cfg, "predict");
            let rows = ctx.stage("predict", |res| {
                crate::predict::predict_job(&ds, &predictor, &out, res)
            })?;
            println!("wrote {rows} scores to {}", out.display());
            show_summary(&ctx, quiet, summary.as_deref())
        }
        Command::CheckConfig { config, overrides } => {
            let cfg = loaded(Config::load(&config, &overrides.set)?);
            println!("# {}: valid", config.display());
            print!("{}", toml::to_string_pretty(&cfg)?);
            println!(
                "\n# stage budgets (memory.total = {})",
                crate::memory::fmt_bytes(cfg.memory.total.as_u64())
            );
            for stage in self::config::STAGES {
                println!(
                    "#   memory.{stage:<8} {}",
                    crate::memory::fmt_bytes(cfg.memory.budget(stage))
                );
            }
            Ok(())
        }
        Command::Inspect {
            dataset,
            config,
            json,
            leakage,
            leakage_threshold,
            summary,
            overrides,
        } => {
            let (dataset, config) = self::leakage::config_in_place(dataset, config);
            let cfg = loaded(config_for_dataset(config.as_deref(), &overrides.set, dataset)?);
            let ctx = RunContext::new(cfg, "inspect");
            let report = ctx.stage("scan", |res| {
                let ds = Dataset::open(&ctx.config.dataset)?;
                inspect(&ds, res)
            })?;
            let leak = if leakage {
                Some(self::leakage::leakage_stage(&ctx, leakage_threshold)?)
            } else {
                None
            };
            self::leakage::print(&report, leak.as_ref(), json, quiet)?;
            show_summary(&ctx, quiet, summary.as_deref())
        }
        Command::Synth {
            out,
            genes,
            rows_per_gene,
            kmer,
            genes_per_file,
            seed,
            with_sequence,
            genome,
            chromosomes,
            config,
            summary,
            overrides,
        } => {
            let cfg = loaded(load_config(config.as_deref(), &overrides.set)?);
            let ctx = RunContext::new(cfg, "synth");
            if genome {
                use crate::synth::genome::{write_genome, SynthGenomeOptions};
                let opts = SynthGenomeOptions {
                    chromosomes,
                    ..SynthGenomeOptions::new(genes, seed)
                };
                let s = ctx.stage("synth", |res| write_genome(&out, &opts, res))?;
                let size = |f: &str| crate::memory::fmt_bytes(s.files.get(f).copied().unwrap_or(0));
                println!(
                    "wrote {}: {} genes ({} single-exon) on {} chromosome(s), {} donors and {} acceptors, \
                     {} bases, {} scored positions; genome.fa {}, annotation.gff3 {}, scores.parquet {}",
                    s.path.display(),
                    s.genes,
                    s.single_exon_genes,
                    s.chromosomes.len(),
                    s.donors,
                    s.acceptors,
                    s.bases,
                    s.positions,
                    size("genome.fa"),
                    size("annotation.gff3"),
                    size("scores.parquet"),
                );
                return show_summary(&ctx, quiet, summary.as_deref());
            }
            let opts = SynthOptions {
                genes,
                rows_per_gene,
                kmer,
                genes_per_file,
                seed,
                with_sequence,
            };
            let s = ctx.stage("synth", |res| write_dataset(&out, &opts, res))?;
            println!(
                "wrote {}: {} genes, {} rows, {} columns in {} files ({})",
                s.path.display(),
                s.genes,
                s.rows,
                s.columns,
                s.files,
                crate::memory::fmt_bytes(s.bytes)
            );
            show_summary(&ctx, quiet, summary.as_deref())
        }
        Command::Query {
            sql,
            dataset,
            config,
            out,
            max_rows,
            summary,
            overrides,
        } => {
            let cfg = loaded(config_for_dataset(config.as_deref(), &overrides.set, dataset)?);
            query_command(cfg, sql, out, max_rows, summary, quiet)
        }
    }
}

#[cfg(feature = "sql")]
fn query_command(
    cfg: Config,
    sql: String,
    out: Option<PathBuf>,
    max_rows: usize,
    summary: Option<PathBuf>,
    quiet: bool,
) -> anyhow::Result<()> {
    use crate::query::{run_query, QueryOutput};
    if let Some(p) = &out {
        // A Parquet result inside the dataset directory would be read as data next time.
        let parquet = p.extension().is_some_and(|e| e.eq_ignore_ascii_case("parquet"));
        crate::predict::check_out_path_against(p, "--out", &cfg.dataset.path, &[], parquet)?;
    }
    let output = match &out {
        Some(p) => QueryOutput::to_file(p)?,
        None => QueryOutput::Print { max_rows },
    };
    let ctx = RunContext::new(cfg, "query");
    let spill = ctx.config.spill_dir();
    let result = ctx.stage("query", |res| {
        run_query(
            &ctx.config.dataset.path,
            &sql,
            &output,
            &spill,
            ctx.config.run.threads,
            res,
        )
    })?;
    match &out {
        Some(p) => println!("wrote {} rows to {}", result.rows, p.display()),
        None => println!("{}", result.printed),
    }
    show_summary(&ctx, quiet, summary.as_deref())
}

#[cfg(not(feature = "sql"))]
fn query_command(
    _: Config,
    _: String,
    _: Option<PathBuf>,
    _: usize,
    _: Option<PathBuf>,
    _: bool,
) -> anyhow::Result<()> {
    Err(crate::error::InputError::new("this build has no SQL engine")
        .hint("rebuild with the default `sql` feature")
        .into())
}

/// `spliceboost run CONFIG`: scores the genome's genes (`[score]`), writes the synthetic
/// dataset the config asks for (once), then cross-validates (`[cv]`), trains (`[train]`) or
/// scans the dataset (when it does none of these), and reports.
///
/// Every output is written into a staging directory inside `run.out_dir` and moved into
/// place only once all of them are written, so a run that fails or is killed leaves the
/// previous results as they were (see [`staging`] and docs/reliability.md). Before any work
/// the run locks the out_dir, cleans up what killed runs left, and checks that it can write
/// there.
pub fn run_job(cfg: Config, quiet: bool, overwrite: bool) -> anyhow::Result<()> {
    let started = std::time::SystemTime::now();
    let out_dir = cfg.run.out_dir.clone();
    std::fs::create_dir_all(&out_dir).map_err(|e| {
        crate::error::io_error(&out_dir, "cannot create the output directory", &e)
            .hint("set `run.out_dir` to a directory you can write to")
    })?;
    let lock = staging::OutDirLock::acquire(&out_dir)?;
    let synth_parent = cfg.synth.as_ref().map(|_| {
        cfg.dataset
            .path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .to_path_buf()
    });
    for note in staging::clean_leftovers(
        &out_dir,
        lock.is_some(),
        &cfg.cache_dir(),
        cfg.score.as_ref().map(|_| cfg.score_dir()).as_deref(),
        synth_parent.as_deref(),
        started,
    ) {
        eprintln!("note: {note}");
    }
    if cfg.cv.is_some() {
        crate::cv::check_out_dir(&out_dir, overwrite)?;
    }
    let staged = staging::Staging::create(&out_dir)?;
    let dir = staged.path().to_path_buf();
    let ctx = RunContext::new(cfg, "run");
    // What to print once the outputs are in place.
    let mut lines = vec![];
    if ctx.config.score.is_some() {
        // Score batches are resumable on their own and too large to stage: they are written
        // in place, each whole or not at all (see crate::score::store).
        lines.push(score::describe(&score::score_stage(&ctx, overwrite)?));
    }
    if ctx.config.build.is_some() {
        // Like the scores, the dataset's batches are resumable and written in place.
        lines.push(build::describe_build(&build::build_stage(
            &ctx, overwrite, false,
        )?));
    }
    if let Some(s) = &ctx.config.synth {
        if !ctx.config.dataset.path.exists() {
            let opts = SynthOptions {
                genes: s.genes,
                rows_per_gene: s.rows_per_gene,
                kmer: s.kmer,
                genes_per_file: s.genes_per_file,
                seed: s.seed.unwrap_or(ctx.config.run.seed),
                with_sequence: false,
            };
            let path = &ctx.config.dataset.path;
            let written = ctx
                .stage("synth", |res| write_dataset(path, &opts, res))
                .map_err(|e| crate::error::locate_io(e, path, "cannot write the synthetic dataset"))?;
            if !quiet {
                eprintln!(
                    "synth: wrote {} genes, {} rows to {}",
                    written.genes,
                    written.rows,
                    written.path.display()
                );
            }
        }
    }
    let mut stale: fn(&str) -> bool = |_| false;
    if let Some(cv) = ctx.config.cv.clone() {
        let params = ctx
            .config
            .train
            .clone()
            .expect("a [cv] config always has [train]");
        let config_toml = toml::to_string_pretty(&ctx.config)?;
        let job = crate::cv::CvJob {
            stages: &ctx.stages,
            dataset: &ctx.config.dataset,
            seed: ctx.config.run.seed,
            cache_root: ctx.config.cache_dir(),
            progress: ctx.config.run.progress,
            config_toml: config_toml.clone(),
        };
        let result = crate::cv::cv_job(&job, &cv, &params, &dir, quiet)?;
        crate::report::cv::write(
            &dir,
            &result,
            &ctx.summary(),
            &ctx.config.dataset.path,
            &config_toml,
        )?;
        stale = crate::cv::is_cv_output;
        let o = &result.outcome;
        lines.push(format!(
            "cross-validated {} genes, {} rows, {} folds: accuracy {:.4}, macro-F1 {:.4} (pooled out-of-fold)",
            o.genes, o.rows, o.folds, o.pooled.accuracy, o.pooled.macro_f1
        ));
        for (c, m) in o.pooled.classes.iter().enumerate() {
            lines.push(format!(
                "  {:<9} F1 {:.4}  ROC-AUC {}  AP {}",
                crate::io::CLASS_NAMES[c],
                m.f1,
                m.roc_auc.map_or("-".into(), |v| format!("{v:.4}")),
                m.average_precision.map_or("-".into(), |v| format!("{v:.4}"))
            ));
        }
        lines.push(format!(
            "final model: {}{}",
            match o.refit_trees {
                Some([a, b, c]) => format!("{a} / {b} / {c} trees (neither / donor / acceptor)"),
                None => "none (cv.refit = false)".into(),
            },
            if o.base_compared {
                ""
            } else {
                "; no base scores to compare"
            }
        ));
        lines.push(format!("wrote {}", out_dir.join("report.html").display()));
    } else if let Some(params) = ctx.config.train.clone() {
        let t = train_job(&ctx, &params, &dir, quiet)?;
        let m = &t.model;
        lines.push(format!(
            "trained `{}` vs rest: {} trees on {} rows ({} validation rows){}",
            m.class,
            m.trees.len(),
            t.train_rows,
            t.valid_rows,
            if t.cache_reused {
                ", binned cache reused"
            } else {
                ""
            }
        ));
        if let (Some(i), Some(s)) = (m.best_iteration, m.best_score) {
            lines.push(format!(
                "best iteration {i}: validation {:?} {s:.6}",
                m.params.eval_metric
            ));
        }
        lines.push(format!("wrote {}", out_dir.join("model.json").display()));
    } else if ctx.config.score.is_none() && ctx.config.build.is_none() {
        let report = ctx.stage("scan", |res| {
            let ds = Dataset::open(&ctx.config.dataset)?;
            inspect(&ds, res)
        })?;
        crate::io::write_bytes_atomic(
            &dir.join("inspect.json"),
            serde_json::to_string_pretty(&report)?.as_bytes(),
        )?;
        lines.push(report.render().trim_end().to_string());
    }
    let (summary, _) = ctx.finish(&dir)?;
    staged.publish(&stale)?;
    drop(lock);
    if !quiet {
        for l in &lines {
            println!("{l}");
        }
        eprintln!("{summary}");
        eprintln!("wrote {}", out_dir.join("run_summary.json").display());
    }
    Ok(())
}
