//! A run: its config, its memory pool, and the record of every stage it went through.
//!
//! Each stage gets a [`MemoryReservation`] limited by its budget, and the run measures while
//! the stage works: peak reserved bytes, peak heap bytes (from the counting allocator), peak
//! resident set size and seconds. [`RunContext::finish`] writes them to `run_summary.json`.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::config::Config;
use crate::memory::{self, MemoryConsumer, MemoryPool, MemoryReservation};
use crate::report::{RunSummary, StageRecord};

/// The shared state of one run.
pub struct RunContext {
    pub config: Config,
    pub pool: Arc<MemoryPool>,
    command: String,
    started: Instant,
    stages: Mutex<Vec<StageRecord>>,
}

impl RunContext {
    /// Sets up the pool and the worker threads from `config`.
    pub fn new(config: Config, command: impl Into<String>) -> Self {
        let threads = config.run.threads;
        // The global pool can be set once per process; later runs (tests) keep the first.
        let _ = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build_global();
        memory::heap_reset_peak();
        Self {
            pool: Arc::new(MemoryPool::new(config.memory.total.as_u64())),
            config,
            command: command.into(),
            started: Instant::now(),
            stages: Mutex::new(vec![]),
        }
    }

    /// Runs `work` as stage `name` with a reservation bound by `memory.<name>`, and records
    /// what it used. Stages run one after another; a stage run twice is recorded once, with
    /// the larger peaks and the summed time.
    pub fn stage<T>(
        &self,
        name: &str,
        work: impl FnOnce(&mut MemoryReservation) -> anyhow::Result<T>,
    ) -> anyhow::Result<T> {
        let budget = self.config.memory.budget(name);
        let mut reservation = MemoryConsumer::new(name)
            .with_budget(budget, format!("memory.{name}"))
            .register(&self.pool);
        let heap_base = memory::heap_reset_peak();
        let rss_reset = memory::reset_peak_rss();
        let t0 = Instant::now();
        let result = work(&mut reservation);
        let seconds = t0.elapsed().as_secs_f64();
        let heap = memory::is_counting().then(|| (memory::heap_peak().saturating_sub(heap_base)) as u64);
        let rss = if rss_reset { memory::peak_rss_bytes() } else { None };
        let peak_reserved = reservation.peak();
        drop(reservation);
        let rec = StageRecord {
            name: name.to_string(),
            budget_bytes: budget,
            peak_reserved_bytes: peak_reserved,
            peak_heap_bytes: heap,
            peak_rss_bytes: rss,
            seconds,
        };
        let mut stages = self.stages.lock().unwrap_or_else(|p| p.into_inner());
        match stages.iter_mut().find(|s| s.name == name) {
            Some(s) => s.merge(&rec),
            None => stages.push(rec),
        }
        drop(stages);
        result
    }

    /// The summary so far.
    pub fn summary(&self) -> RunSummary {
        RunSummary {
            command: self.command.clone(),
            total_budget_bytes: self.pool.total(),
            peak_reserved_bytes: self.pool.peak(),
            peak_heap_bytes: memory::is_counting().then(|| memory::heap_peak() as u64),
            peak_rss_bytes: memory::peak_rss_bytes(),
            seconds: self.started.elapsed().as_secs_f64(),
            stages: self.stages.lock().unwrap_or_else(|p| p.into_inner()).clone(),
        }
    }

    /// Writes `run_summary.json` into `out_dir` and returns the summary.
    pub fn finish(&self, out_dir: &Path) -> anyhow::Result<(RunSummary, PathBuf)> {
        let summary = self.summary();
        let path = out_dir.join("run_summary.json");
        crate::io::write_bytes_atomic(&path, serde_json::to_string_pretty(&summary)?.as_bytes())?;
        Ok((summary, path))
    }
}

use crate::cli::{Cli, Command};
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
        Command::Run { config, overrides } => {
            let cfg = Config::load(&config, &overrides.set)?;
            run_job(cfg, quiet)
        }
        Command::Train { config, overrides } => {
            let cfg = Config::load(&config, &overrides.set)?;
            if cfg.train.is_none() {
                return Err(crate::config::ConfigError {
                    source: config.display().to_string(),
                    line: None,
                    key: Some("train".into()),
                    message: "no [train] section: nothing to train".into(),
                }
                .into());
            }
            run_job(cfg, quiet)
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
            let model = crate::boost::Model::load(&model)?;
            let ctx = RunContext::new(cfg, "predict");
            let rows = ctx.stage("predict", |res| {
                let ds = Dataset::open_unlabelled(&ctx.config.dataset)?;
                crate::train::predict_job(&ds, &model, &out, res)
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
            for stage in crate::config::STAGES {
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

/// `spliceboost run CONFIG`: writes the synthetic dataset the config asks for (once), scans
/// the dataset, and reports.
pub fn run_job(cfg: Config, quiet: bool) -> anyhow::Result<()> {
    let out_dir = cfg.run.out_dir.clone();
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
    if let Some(params) = ctx.config.train.clone() {
        let t = crate::train::train_job(&ctx, &params, &out_dir, quiet)?;
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
