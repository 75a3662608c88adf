//! The commands: a parsed command line in, each job carried out from its typed config.
//!
//! This room sits on top of every other: it turns the config into the parameters each room
//! takes, runs the stages in order and prints what the user asked for.

pub mod cli;
pub mod config;
mod context;
mod train;

use std::path::{Path, PathBuf};

pub use context::RunContext;
pub use train::{train_job, Trained};

use self::cli::{Cli, Command};
use self::config::Config;
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
    let quiet = cli.quiet;
    match cli.command {
        Command::Run {
            config,
            overwrite,
            overrides,
        } => {
            let cfg = Config::load(&config, &overrides.set)?;
            run_job(cfg, quiet, overwrite)
        }
        Command::Cv {
            config,
            overwrite,
            overrides,
        } => {
            // `cv` runs a cross-validation whether or not the file has a [cv] section.
            let mut set = overrides.set.clone();
            set.push("cv={}".into());
            let cfg = Config::load(&config, &set)?;
            run_job(cfg, quiet, overwrite)
        }
        Command::Train { config, overrides } => {
            let mut cfg = Config::load(&config, &overrides.set)?;
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
            let cfg = config_for_dataset(config.as_deref(), &overrides.set, dataset)?;
            let predictor = crate::predict::Predictor::load(&model)?;
            let ctx = RunContext::new(cfg, "predict");
            let rows = ctx.stage("predict", |res| {
                let ds = Dataset::open_unlabelled(&ctx.config.dataset)?;
                crate::predict::predict_job(&ds, &predictor, &out, res)
            })?;
            println!("wrote {rows} scores to {}", out.display());
            show_summary(&ctx, quiet, summary.as_deref())
        }
        Command::CheckConfig { config, overrides } => {
            let cfg = Config::load(&config, &overrides.set)?;
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
            summary,
            overrides,
        } => {
            let cfg = config_for_dataset(config.as_deref(), &overrides.set, dataset)?;
            let ctx = RunContext::new(cfg, "inspect");
            let report = ctx.stage("scan", |res| {
                let ds = Dataset::open(&ctx.config.dataset)?;
                inspect(&ds, res)
            })?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", report.render());
            }
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
            config,
            summary,
            overrides,
        } => {
            let cfg = load_config(config.as_deref(), &overrides.set)?;
            let ctx = RunContext::new(cfg, "synth");
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
        } => query_command(sql, dataset, config, out, max_rows, summary, overrides.set, quiet),
    }
}

#[cfg(feature = "sql")]
#[allow(clippy::too_many_arguments)]
fn query_command(
    sql: String,
    dataset: Option<PathBuf>,
    config: Option<PathBuf>,
    out: Option<PathBuf>,
    max_rows: usize,
    summary: Option<PathBuf>,
    overrides: Vec<String>,
    quiet: bool,
) -> anyhow::Result<()> {
    use crate::query::{run_query, QueryOutput};
    let cfg = config_for_dataset(config.as_deref(), &overrides, dataset)?;
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
#[allow(clippy::too_many_arguments)]
fn query_command(
    _: String,
    _: Option<PathBuf>,
    _: Option<PathBuf>,
    _: Option<PathBuf>,
    _: usize,
    _: Option<PathBuf>,
    _: Vec<String>,
    _: bool,
) -> anyhow::Result<()> {
    Err(crate::error::InputError::new("this build has no SQL engine")
        .hint("rebuild with the default `sql` feature")
        .into())
}

/// `spliceboost run CONFIG`: writes the synthetic dataset the config asks for (once), then
/// cross-validates (`[cv]`), trains (`[train]`) or scans the dataset, and reports.
pub fn run_job(cfg: Config, quiet: bool, overwrite: bool) -> anyhow::Result<()> {
    let out_dir = cfg.run.out_dir.clone();
    if cfg.cv.is_some() {
        crate::cv::check_out_dir(&out_dir, overwrite)?;
    }
    std::fs::create_dir_all(&out_dir).map_err(|e| {
        crate::error::InputError::new(format!("cannot create the output directory: {e}"))
            .file(&out_dir)
            .hint("set `run.out_dir` to a writable directory")
    })?;
    let ctx = RunContext::new(cfg, "run");
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
            let written = ctx.stage("synth", |res| write_dataset(&ctx.config.dataset.path, &opts, res))?;
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
        let result = crate::cv::cv_job(&job, &cv, &params, &out_dir, quiet)?;
        crate::report::cv::write(
            &out_dir,
            &result,
            &ctx.summary(),
            &ctx.config.dataset.path,
            &config_toml,
        )?;
        let o = &result.outcome;
        if !quiet {
            println!(
                "cross-validated {} genes, {} rows, {} folds: accuracy {:.4}, macro-F1 {:.4} (pooled out-of-fold)",
                o.genes, o.rows, o.folds, o.pooled.accuracy, o.pooled.macro_f1
            );
            for (c, m) in o.pooled.classes.iter().enumerate() {
                println!(
                    "  {:<9} F1 {:.4}  ROC-AUC {}  AP {}",
                    crate::io::CLASS_NAMES[c],
                    m.f1,
                    m.roc_auc.map_or("-".into(), |v| format!("{v:.4}")),
                    m.average_precision.map_or("-".into(), |v| format!("{v:.4}"))
                );
            }
            println!(
                "final model: {} / {} / {} trees (neither / donor / acceptor){}",
                o.refit_trees[0],
                o.refit_trees[1],
                o.refit_trees[2],
                if o.base_compared {
                    ""
                } else {
                    "; no base scores to compare"
                }
            );
            println!("wrote {}", out_dir.join("report.html").display());
        }
    } else if let Some(params) = ctx.config.train.clone() {
        let t = train_job(&ctx, &params, &out_dir, quiet)?;
        if !quiet {
            let m = &t.model;
            println!(
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
            );
            if let (Some(i), Some(s)) = (m.best_iteration, m.best_score) {
                println!("best iteration {i}: validation {:?} {s:.6}", m.params.eval_metric);
            }
            println!("wrote {}", out_dir.join("model.json").display());
        }
    } else {
        let report = ctx.stage("scan", |res| {
            let ds = Dataset::open(&ctx.config.dataset)?;
            inspect(&ds, res)
        })?;
        crate::io::write_bytes_atomic(
            &out_dir.join("inspect.json"),
            serde_json::to_string_pretty(&report)?.as_bytes(),
        )?;
        if !quiet {
            print!("{}", report.render());
        }
    }
    let (summary, path) = ctx.finish(&out_dir)?;
    if !quiet {
        eprintln!("{summary}");
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}
