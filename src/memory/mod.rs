//! Memory accounting: every stage reserves before it allocates, and the allocator measures what
//! really happened.
//!
//! The reservation side follows DataFusion's `MemoryPool` / `MemoryConsumer` /
//! `MemoryReservation` pattern: a stage registers a [`MemoryConsumer`] with the run's
//! [`MemoryPool`], gets a [`MemoryReservation`], calls [`MemoryReservation::try_grow`] before
//! it allocates, and releases on drop. A refusal is a [`MemoryError`] that names the stage, the
//! bytes asked for and left, and the config key to raise.
//!
//! The measuring side is [`CountingAllocator`], a global allocator that counts live and peak
//! heap bytes, so that the run summary reports measured peaks beside the reserved ones.
//!
//! ```
//! use std::sync::Arc;
//! use spliceboost::memory::{MemoryConsumer, MemoryPool};
//!
//! let pool = Arc::new(MemoryPool::new(1 << 20));
//! let mut scan = MemoryConsumer::new("scan")
//!     .with_budget(64 << 10, "memory.scan")
//!     .register(&pool);
//! scan.try_grow(32 << 10).unwrap();
//! let err = scan.try_grow(64 << 10).unwrap_err();
//! assert!(err.to_string().contains("memory.scan"));
//! drop(scan);
//! assert_eq!(pool.reserved(), 0);
//! ```

mod alloc;
mod budgets;
mod pool;
mod stages;

pub use alloc::{heap_live, heap_peak, heap_reset_peak, is_counting, CountingAllocator};
pub use budgets::{Budget, MemoryConfig, STAGES};
pub use pool::{
    fmt_bytes, suggest_budget, ConsumerStats, MemoryConsumer, MemoryError, MemoryPool, MemoryReservation,
};
pub use stages::{combine, pause_point, RunSummary, StageRecord, Stages};

/// Hands the allocator's free memory back to the kernel. glibc keeps what a stage freed in
/// its per-thread arenas, where the next stage's threads may not reuse it: on the 10k-gene
/// cross-validation the process's RSS then rose up to 30 MiB above what its stages had
/// reserved after the sketch and bin stages had run in it. Called as each stage ends.
pub fn trim_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free memory of glibc's own arenas to the kernel.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Heap bytes of a list of names: the list's buffer and each name's bytes. What the rooms
/// price for the feature and gene names they keep.
pub fn names_bytes<S: AsRef<str>>(names: &[S]) -> u64 {
    names
        .iter()
        .map(|s| (s.as_ref().len() + std::mem::size_of::<String>()) as u64)
        .sum()
}

/// Peak resident set size of this process (VmHWM), in bytes, where the platform tells it.
pub fn peak_rss_bytes() -> Option<u64> {
    proc_status_kib("VmHWM:").map(|k| k * 1024)
}

/// Current resident set size (VmRSS), in bytes.
pub fn rss_bytes() -> Option<u64> {
    proc_status_kib("VmRSS:").map(|k| k * 1024)
}

/// Resets the kernel's peak-RSS mark to the current RSS so that the next reading of
/// [`peak_rss_bytes`] covers only what follows. Returns false where the kernel refuses.
pub fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

fn proc_status_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find(|l| l.starts_with(field))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}
