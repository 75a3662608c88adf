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
    /// Peaks seen by the run (first) and by the stages now running, outermost first: a stage
    /// resets the peak marks when it opens, so it hands what it saw up to its parents.
    open: Mutex<Vec<Peaks>>,
}

/// Absolute heap and RSS peaks seen by a running stage.
#[derive(Default, Clone, Copy)]
struct Peaks {
    heap: usize,
    rss: u64,
}

impl Peaks {
    fn now() -> Self {
        Self {
            heap: memory::heap_peak(),
            rss: memory::peak_rss_bytes().unwrap_or(0),
        }
    }

    fn raise(&mut self, other: Peaks) {
        self.heap = self.heap.max(other.heap);
        self.rss = self.rss.max(other.rss);
    }
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
            open: Mutex::new(vec![Peaks::default()]),
        }
    }

    /// Runs `work` as stage `name` with a reservation bound by `memory.<name>`, and records
    /// what it used. A stage run twice is recorded once, with the larger peaks and the summed
    /// time. A stage may run inside another (cross-validation holds its out-of-fold state
    /// while each fold trains): the outer stage's peaks then include the inner one's.
    pub fn stage<T>(
        &self,
        name: &str,
        work: impl FnOnce(&mut MemoryReservation) -> anyhow::Result<T>,
    ) -> anyhow::Result<T> {
        let budget = self.config.memory.budget(name);
        let mut reservation = MemoryConsumer::new(name)
            .with_budget(budget, format!("memory.{name}"))
            .register(&self.pool);
        {
            let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
            let seen = Peaks::now();
            open.iter_mut().for_each(|o| o.raise(seen));
            open.push(Peaks::default());
        }
        let heap_base = memory::heap_reset_peak();
        let rss_reset = memory::reset_peak_rss();
        let t0 = Instant::now();
        let result = work(&mut reservation);
        let seconds = t0.elapsed().as_secs_f64();
        let mut mine = Peaks::now();
        {
            let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
            if open.len() > 1 {
                mine.raise(open.pop().expect("this stage's entry"));
            }
            open.iter_mut().for_each(|o| o.raise(mine));
        }
        let heap = memory::is_counting().then(|| (mine.heap.saturating_sub(heap_base)) as u64);
        let rss = if rss_reset {
            Some(mine.rss).filter(|&r| r > 0)
        } else {
            None
        };
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
        let mut run = self.open.lock().unwrap_or_else(|p| p.into_inner())[0];
        run.raise(Peaks::now());
        RunSummary {
            command: self.command.clone(),
            total_budget_bytes: self.pool.total(),
            peak_reserved_bytes: self.pool.peak(),
            peak_heap_bytes: memory::is_counting().then_some(run.heap as u64),
            peak_rss_bytes: memory::peak_rss_bytes().map(|r| r.max(run.rss)),
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
            let mut cfg = Config::load(&config, &overrides.set)?;
            cfg.cv.get_or_insert_with(Default::default);
            run_job(cfg, quiet, overwrite)
        }
        Command::Train { config, overrides } => {
            let mut cfg = Config::load(&config, &overrides.set)?;
            if cfg.train.is_none() {
                return Err(crate::config::ConfigError {
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
            let predictor = crate::train::Predictor::load(&model)?;
            let ctx = RunContext::new(cfg, "predict");
            let rows = ctx.stage("predict", |res| {
                let ds = Dataset::open_unlabelled(&ctx.config.dataset)?;
                crate::train::predict_job(&ds, &predictor, &out, res)
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
        let params = ctx.config.train.clone().unwrap_or_default();
        let o = crate::cv::cv_job(&ctx, &cv, &params, &out_dir, quiet)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outer_stage_and_run_see_the_peak_of_a_stage_inside() {
        if !memory::is_counting() {
            return;
        }
        let ctx = RunContext::new(Config::default(), "test");
        ctx.stage("cv", |_| {
            ctx.stage("train", |_| {
                let v = vec![1u8; 8 << 20];
                std::hint::black_box(&v);
                Ok(())
            })
        })
        .unwrap();
        let s = ctx.summary();
        let heap = |name: &str| {
            s.stages
                .iter()
                .find(|r| r.name == name)
                .and_then(|r| r.peak_heap_bytes)
                .unwrap()
        };
        assert!(heap("train") >= 8 << 20);
        assert!(
            heap("cv") >= 8 << 20,
            "the inner stage reset the outer one's peak"
        );
        assert!(s.peak_heap_bytes.unwrap() >= 8 << 20);
    }
}
