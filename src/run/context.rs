//! A run's shared state: its config and its measured stages.

use std::path::{Path, PathBuf};

use super::config::Config;
use crate::memory::{RunSummary, Stages};

/// The shared state of one run.
pub struct RunContext {
    pub config: Config,
    pub stages: Stages,
}

impl RunContext {
    /// Sets up the pool and the worker threads from `config`.
    pub fn new(config: Config, command: impl Into<String>) -> Self {
        let threads = config.run.threads;
        // The global pool can be set once per process; later runs (tests) keep the first.
        let _ = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build_global();
        Self {
            stages: Stages::new(config.memory.clone(), command),
            config,
        }
    }

    /// Runs `work` as stage `name`: see [`Stages::stage`].
    pub fn stage<T>(
        &self,
        name: &str,
        work: impl FnOnce(&mut crate::memory::MemoryReservation) -> anyhow::Result<T>,
    ) -> anyhow::Result<T> {
        self.stages.stage(name, work)
    }

    /// The summary so far.
    pub fn summary(&self) -> RunSummary {
        self.stages.summary()
    }

    /// Writes `run_summary.json` into `out_dir` and returns the summary.
    pub fn finish(&self, out_dir: &Path) -> anyhow::Result<(RunSummary, PathBuf)> {
        let summary = self.summary();
        let path = out_dir.join("run_summary.json");
        crate::io::write_bytes_atomic(&path, serde_json::to_string_pretty(&summary)?.as_bytes())?;
        Ok((summary, path))
    }
}
