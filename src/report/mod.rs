//! What a run reports: the per-stage memory and time table, as JSON and as text.

pub mod html;

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::memory::fmt_bytes;

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

fn opt(b: Option<u64>) -> String {
    b.map_or_else(|| "-".into(), fmt_bytes)
}

impl fmt::Display for RunSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{:<10} {:>12} {:>14} {:>12} {:>12} {:>9}",
            "stage", "budget", "peak reserved", "peak heap", "peak RSS", "seconds"
        )?;
        for s in &self.stages {
            writeln!(
                f,
                "{:<10} {:>12} {:>14} {:>12} {:>12} {:>9.2}",
                s.name,
                fmt_bytes(s.budget_bytes),
                fmt_bytes(s.peak_reserved_bytes),
                opt(s.peak_heap_bytes),
                opt(s.peak_rss_bytes),
                s.seconds
            )?;
        }
        write!(
            f,
            "{:<10} {:>12} {:>14} {:>12} {:>12} {:>9.2}",
            "run",
            fmt_bytes(self.total_budget_bytes),
            fmt_bytes(self.peak_reserved_bytes),
            opt(self.peak_heap_bytes),
            opt(self.peak_rss_bytes),
            self.seconds
        )
    }
}
