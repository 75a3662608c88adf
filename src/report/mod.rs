//! What a run reports: the per-stage memory and time table, as JSON and as text.

pub mod cv;
pub mod html;
pub mod png;

use std::fmt;

use crate::memory::fmt_bytes;
use crate::memory::{RunSummary, StageRecord};

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
