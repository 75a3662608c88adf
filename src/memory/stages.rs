//! The stages of a run, each measured while it works.
//!
//! Every room that runs a stage (binning, boosting, cross-validation, the commands) opens it
//! here, so one mechanism gives each stage its reservation under `memory.<stage>` and records
//! what it really used: peak reserved bytes, peak heap bytes (from the counting allocator),
//! peak resident set size and seconds.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::{MemoryConfig, MemoryConsumer, MemoryPool, MemoryReservation};

/// One stage's measured use.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageRecord {
    pub name: String,
    pub budget_bytes: u64,
    pub peak_reserved_bytes: u64,
    /// Highest heap above what was live when the stage began; `null` without the counting
    /// allocator.
    pub peak_heap_bytes: Option<u64>,
    /// Peak resident set size of the process while the stage ran (Linux only).
    pub peak_rss_bytes: Option<u64>,
    pub seconds: f64,
}

/// Combines two optional figures with `f`, keeping whichever is present when one is not.
pub fn combine<T>(a: Option<T>, b: Option<T>, f: impl FnOnce(T, T) -> T) -> Option<T> {
    match (a, b) {
        (Some(a), Some(b)) => Some(f(a, b)),
        (a, b) => a.or(b),
    }
}

impl StageRecord {
    /// Folds another run of the same stage in: larger peaks, summed time.
    pub fn merge(&mut self, other: &StageRecord) {
        self.peak_reserved_bytes = self.peak_reserved_bytes.max(other.peak_reserved_bytes);
        self.peak_heap_bytes = combine(self.peak_heap_bytes, other.peak_heap_bytes, u64::max);
        self.peak_rss_bytes = combine(self.peak_rss_bytes, other.peak_rss_bytes, u64::max);
        self.seconds += other.seconds;
    }
}

/// The contents of `run_summary.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSummary {
    pub command: String,
    pub total_budget_bytes: u64,
    pub peak_reserved_bytes: u64,
    pub peak_heap_bytes: Option<u64>,
    pub peak_rss_bytes: Option<u64>,
    pub seconds: f64,
    pub stages: Vec<StageRecord>,
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
            heap: super::heap_peak(),
            rss: super::peak_rss_bytes().unwrap_or(0),
        }
    }

    fn raise(&mut self, other: Peaks) {
        self.heap = self.heap.max(other.heap);
        self.rss = self.rss.max(other.rss);
    }
}

/// The memory pool of one run and the record of every stage it went through.
pub struct Stages {
    pub pool: Arc<MemoryPool>,
    budgets: MemoryConfig,
    command: String,
    started: Instant,
    records: Mutex<Vec<StageRecord>>,
    /// Peaks seen by the run (first) and by the stages now running, outermost first: a stage
    /// resets the peak marks when it opens, so it hands what it saw up to its parents.
    open: Mutex<Vec<Peaks>>,
}

impl Stages {
    /// A pool of `budgets.total` for the run `command`.
    pub fn new(budgets: MemoryConfig, command: impl Into<String>) -> Self {
        super::heap_reset_peak();
        Self {
            pool: Arc::new(MemoryPool::new(budgets.total.as_u64())),
            budgets,
            command: command.into(),
            started: Instant::now(),
            records: Mutex::new(vec![]),
            open: Mutex::new(vec![Peaks::default()]),
        }
    }

    /// The budget of stage `name`, in bytes.
    pub fn budget(&self, name: &str) -> u64 {
        self.budgets.budget(name)
    }

    /// Runs `work` as stage `name` with a reservation bound by `memory.<name>`, and records
    /// what it used. A stage run twice is recorded once, with the larger peaks and the summed
    /// time. A stage may run inside another (cross-validation holds its out-of-fold state
    /// while each fold trains): the outer stage's reserved and heap figures then leave the
    /// inner one's out, so each stage's heap compares with its own reservation, while the
    /// run's figures (and every stage's RSS, which the process shares) include them.
    pub fn stage<T>(
        &self,
        name: &str,
        work: impl FnOnce(&mut MemoryReservation) -> anyhow::Result<T>,
    ) -> anyhow::Result<T> {
        let budget = self.budget(name);
        let mut reservation = MemoryConsumer::new(name)
            .with_budget(budget, format!("memory.{name}"))
            .register(&self.pool);
        {
            let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
            let seen = Peaks::now();
            open.iter_mut().for_each(|o| o.raise(seen));
            open.push(Peaks::default());
        }
        let heap_base = super::heap_reset_peak();
        let rss_reset = super::reset_peak_rss();
        let t0 = Instant::now();
        let result = work(&mut reservation);
        let seconds = t0.elapsed().as_secs_f64();
        super::trim_heap();
        let mut mine = Peaks::now();
        {
            let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
            if open.len() > 1 {
                mine.raise(open.pop().expect("this stage's entry"));
            }
            // The run sees everything. An enclosing stage sees only what stays live after
            // this one: its figures, like its reservation, leave the inner stage's out.
            open[0].raise(mine);
            let after = Peaks {
                heap: super::heap_live(),
                rss: mine.rss,
            };
            open.iter_mut().skip(1).for_each(|o| o.raise(after));
            super::heap_reset_peak();
        }
        let heap = super::is_counting().then(|| (mine.heap.saturating_sub(heap_base)) as u64);
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
        let mut records = self.records.lock().unwrap_or_else(|p| p.into_inner());
        match records.iter_mut().find(|s| s.name == name) {
            Some(s) => s.merge(&rec),
            None => records.push(rec),
        }
        drop(records);
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
            peak_heap_bytes: super::is_counting().then_some(run.heap as u64),
            peak_rss_bytes: super::peak_rss_bytes().map(|r| r.max(run.rss)),
            seconds: self.started.elapsed().as_secs_f64(),
            stages: self.records.lock().unwrap_or_else(|p| p.into_inner()).clone(),
        }
    }
}

/// A test hook: when the environment variable `SPLICEBOOST_TEST_PAUSE_AT` names `point`,
/// says so on standard error and waits (at most five minutes) to be killed, so that tests
/// can kill a run at a known point. Points: `batch` (the first score or dataset batch
/// listed in its manifest), `write NAME` (the file NAME written under its temporary name, not
/// yet renamed), `sketch` (the cuts found, nothing written), `bin` (every page of the cache
/// written, its manifest not), `checkpoint` (the first training checkpoint written), `fold`
/// (the first fold model trained), `oof` (`oof_predictions.parquet` written), `refit` (the
/// first final model trained), `publish` (the first output moved into place). Does nothing
/// when the variable is unset.
#[doc(hidden)]
pub fn pause_point(point: &str) {
    if std::env::var_os("SPLICEBOOST_TEST_PAUSE_AT").is_some_and(|v| v == point) {
        eprintln!("paused at {point}");
        std::thread::sleep(std::time::Duration::from_secs(300));
    }
}
