//! The reservation pool, in the pattern of DataFusion's `memory_pool` module.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

use bytesize::ByteSize;

/// Formats a byte count the way budgets are written in config files ("64.0 MiB").
pub fn fmt_bytes(bytes: u64) -> String {
    ByteSize::b(bytes).display().iec().to_string()
}

/// A budget worth suggesting to someone who needs `needed` bytes: the next power-of-two
/// multiple of 16 MiB, so that the advice is a value people write in configs.
pub fn suggest_budget(needed: u64) -> String {
    let b = suggest_bytes(needed);
    if b >= 1 << 30 && b.is_multiple_of(1 << 30) {
        format!("{}GiB", b >> 30)
    } else {
        format!("{}MiB", b >> 20)
    }
}

/// The bytes [`suggest_budget`] writes out.
pub(crate) fn suggest_bytes(needed: u64) -> u64 {
    let mut b: u64 = 16 << 20;
    while b < needed {
        b = b.saturating_mul(2);
    }
    b
}

/// A refusal to reserve memory. Every variant names the stage and the key to change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemoryError {
    /// A `try_grow` that would pass the stage's budget or the run's total.
    Exhausted {
        stage: String,
        key: String,
        requested: u64,
        available: u64,
        reserved: u64,
        budget: u64,
        limit: &'static str,
    },
    /// A stage whose smallest workable plan does not fit: found before any work is done.
    TooSmall {
        stage: String,
        key: String,
        needed: u64,
        budget: u64,
        what: String,
    },
}

impl MemoryError {
    /// The config key to raise and the bytes to raise it to.
    pub fn suggestion(&self) -> (&str, u64) {
        match self {
            Self::Exhausted {
                key,
                reserved,
                requested,
                ..
            } => (key, suggest_bytes(reserved.saturating_add(*requested))),
            Self::TooSmall { key, needed, .. } => (key, suggest_bytes(*needed)),
        }
    }

    /// The message; with `raise_total`, the advice also raises `memory.total` to at least
    /// that many bytes (for when the stage budget it suggests would not fit in the total).
    pub fn describe(&self, raise_total: Option<u64>) -> String {
        let (key, to) = self.suggestion();
        let suggest = suggest_budget(to);
        let (what, raise) = match self {
            Self::Exhausted {
                stage,
                requested,
                available,
                budget,
                limit,
                ..
            } => (
                format!(
                    "stage `{stage}` cannot reserve {} more: {} left of its {} {limit} budget",
                    fmt_bytes(*requested),
                    fmt_bytes(*available),
                    fmt_bytes(*budget)
                ),
                format!("raise `{key}` in the config"),
            ),
            Self::TooSmall {
                stage,
                needed,
                budget,
                what,
                ..
            } => (
                format!(
                    "stage `{stage}` needs at least {} ({what}) but its budget is {}",
                    fmt_bytes(*needed),
                    fmt_bytes(*budget)
                ),
                format!("raise `{key}` to at least {suggest}"),
            ),
        };
        match raise_total.filter(|_| key != "memory.total") {
            None => format!("{what}; {raise} (or pass --set {key}={suggest})"),
            Some(total) => {
                let total = suggest_budget(total);
                format!(
                    "{what}; raise `{key}` to at least {suggest} and `memory.total`, which must \
                     hold it, to at least {total} (or pass --set memory.total={total} \
                     --set {key}={suggest})"
                )
            }
        }
    }
}

impl fmt::Display for MemoryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe(None))
    }
}

impl std::error::Error for MemoryError {}

#[derive(Debug, Default)]
struct PoolState {
    reserved: u64,
    peak: u64,
    consumers: Vec<Arc<ConsumerState>>,
}

/// One pool per run: a total limit shared by the stages' consumers.
#[derive(Debug)]
pub struct MemoryPool {
    total: u64,
    state: Mutex<PoolState>,
}

impl MemoryPool {
    /// A pool that lets its consumers reserve `total` bytes together.
    pub fn new(total: u64) -> Self {
        Self {
            total,
            state: Mutex::new(PoolState::default()),
        }
    }

    /// The pool's limit in bytes.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Bytes reserved now, by all consumers together.
    pub fn reserved(&self) -> u64 {
        self.lock().reserved
    }

    /// The highest reserved total so far.
    pub fn peak(&self) -> u64 {
        self.lock().peak
    }

    /// Every consumer registered so far, in registration order.
    pub fn consumers(&self) -> Vec<ConsumerStats> {
        self.lock().consumers.iter().map(|c| c.stats()).collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, PoolState> {
        // A panic while holding the lock leaves plain counters, still valid to read.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[derive(Debug)]
struct ConsumerState {
    stage: String,
    key: String,
    budget: u64,
    reserved: AtomicU64,
    peak: AtomicU64,
}

impl ConsumerState {
    fn stats(&self) -> ConsumerStats {
        ConsumerStats {
            stage: self.stage.clone(),
            key: self.key.clone(),
            budget: self.budget,
            reserved: self.reserved.load(Relaxed),
            peak: self.peak.load(Relaxed),
        }
    }
}

/// What a consumer has reserved, for reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerStats {
    pub stage: String,
    pub key: String,
    pub budget: u64,
    pub reserved: u64,
    pub peak: u64,
}

/// A named user of the pool: one per stage.
#[derive(Debug, Clone)]
pub struct MemoryConsumer {
    stage: String,
    key: String,
    budget: Option<u64>,
}

impl MemoryConsumer {
    /// A consumer for `stage`, limited only by the pool total until [`Self::with_budget`].
    pub fn new(stage: impl Into<String>) -> Self {
        let stage = stage.into();
        let key = format!("memory.{stage}");
        Self {
            stage,
            key,
            budget: None,
        }
    }

    /// Limits the consumer to `budget` bytes; `key` is the config key that sets it, named in
    /// every refusal.
    pub fn with_budget(mut self, budget: u64, key: impl Into<String>) -> Self {
        self.budget = Some(budget);
        self.key = key.into();
        self
    }

    /// Registers with the pool and returns an empty reservation.
    pub fn register(self, pool: &Arc<MemoryPool>) -> MemoryReservation {
        let state = Arc::new(ConsumerState {
            budget: self.budget.unwrap_or(pool.total).min(pool.total),
            stage: self.stage,
            key: self.key,
            reserved: AtomicU64::new(0),
            peak: AtomicU64::new(0),
        });
        pool.lock().consumers.push(state.clone());
        MemoryReservation {
            pool: pool.clone(),
            consumer: state,
            size: 0,
        }
    }
}

/// Bytes held on behalf of a consumer; released when dropped.
#[derive(Debug)]
pub struct MemoryReservation {
    pool: Arc<MemoryPool>,
    consumer: Arc<ConsumerState>,
    size: u64,
}

impl MemoryReservation {
    /// Bytes this reservation holds.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The stage this reservation belongs to.
    pub fn stage(&self) -> &str {
        &self.consumer.stage
    }

    /// The config key that sets this stage's budget.
    pub fn key(&self) -> &str {
        &self.consumer.key
    }

    /// The highest the stage's reservations reached together.
    pub fn peak(&self) -> u64 {
        self.consumer.peak.load(Relaxed)
    }

    /// The stage's budget in bytes.
    pub fn budget(&self) -> u64 {
        self.consumer.budget
    }

    /// Bytes this stage could still reserve now (its budget and the pool's total both bind).
    pub fn available(&self) -> u64 {
        let pool = self.pool.lock();
        self.available_locked(&pool)
    }

    fn available_locked(&self, pool: &PoolState) -> u64 {
        let stage_left = self
            .consumer
            .budget
            .saturating_sub(self.consumer.reserved.load(Relaxed));
        stage_left.min(self.pool.total.saturating_sub(pool.reserved))
    }

    /// Reserves `bytes` more, or refuses with the stage, the bytes and the key to raise.
    pub fn try_grow(&mut self, bytes: u64) -> Result<(), MemoryError> {
        let mut pool = self.pool.lock();
        let available = self.available_locked(&pool);
        if bytes > available {
            let stage_left = self
                .consumer
                .budget
                .saturating_sub(self.consumer.reserved.load(Relaxed));
            let pool_binds = stage_left > available;
            return Err(MemoryError::Exhausted {
                stage: self.consumer.stage.clone(),
                key: if pool_binds {
                    "memory.total".into()
                } else {
                    self.consumer.key.clone()
                },
                requested: bytes,
                available,
                reserved: if pool_binds {
                    pool.reserved
                } else {
                    self.consumer.reserved.load(Relaxed)
                },
                budget: if pool_binds {
                    self.pool.total
                } else {
                    self.consumer.budget
                },
                limit: if pool_binds { "run total" } else { "stage" },
            });
        }
        pool.reserved += bytes;
        pool.peak = pool.peak.max(pool.reserved);
        let now = self.consumer.reserved.fetch_add(bytes, Relaxed) + bytes;
        self.consumer.peak.fetch_max(now, Relaxed);
        self.size += bytes;
        Ok(())
    }

    /// Releases up to `bytes` (never below zero).
    pub fn shrink(&mut self, bytes: u64) {
        let bytes = bytes.min(self.size);
        let mut pool = self.pool.lock();
        pool.reserved -= bytes;
        self.consumer.reserved.fetch_sub(bytes, Relaxed);
        self.size -= bytes;
    }

    /// Grows or shrinks to exactly `bytes`.
    pub fn try_resize(&mut self, bytes: u64) -> Result<(), MemoryError> {
        if bytes > self.size {
            self.try_grow(bytes - self.size)
        } else {
            self.shrink(self.size - bytes);
            Ok(())
        }
    }

    /// Releases everything; returns how much that was.
    pub fn free(&mut self) -> u64 {
        let size = self.size;
        self.shrink(size);
        size
    }

    /// A second, empty reservation on the same consumer (for a worker thread or a sub-part
    /// of the stage); both count against the stage's budget.
    pub fn new_empty(&self) -> MemoryReservation {
        MemoryReservation {
            pool: self.pool.clone(),
            consumer: self.consumer.clone(),
            size: 0,
        }
    }

    /// Fails with [`MemoryError::TooSmall`] when `needed` cannot fit in this stage at all,
    /// before any work is done. `what` says what the bytes are for.
    pub fn require(&self, needed: u64, what: impl fmt::Display) -> Result<(), MemoryError> {
        let budget = self.consumer.budget.min(self.pool.total);
        if needed > budget {
            return Err(MemoryError::TooSmall {
                stage: self.consumer.stage.clone(),
                key: self.consumer.key.clone(),
                needed,
                budget,
                what: what.to_string(),
            });
        }
        Ok(())
    }
}

impl Drop for MemoryReservation {
    fn drop(&mut self) {
        self.free();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(total: u64) -> Arc<MemoryPool> {
        Arc::new(MemoryPool::new(total))
    }

    #[test]
    fn reservation_released_on_drop() {
        let p = pool(1000);
        {
            let mut r = MemoryConsumer::new("scan").register(&p);
            r.try_grow(600).unwrap();
            assert_eq!(p.reserved(), 600);
        }
        assert_eq!(p.reserved(), 0);
        assert_eq!(p.peak(), 600);
    }

    #[test]
    fn stage_budget_binds_before_pool_total() {
        let p = pool(1000);
        let mut r = MemoryConsumer::new("scan")
            .with_budget(100, "memory.scan")
            .register(&p);
        r.try_grow(80).unwrap();
        let err = r.try_grow(30).unwrap_err();
        match &err {
            MemoryError::Exhausted {
                key,
                available,
                requested,
                ..
            } => {
                assert_eq!(key, "memory.scan");
                assert_eq!(*available, 20);
                assert_eq!(*requested, 30);
            }
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(r.size(), 80, "a refused grow reserves nothing");
    }

    #[test]
    fn pool_total_binds_across_stages() {
        let p = pool(100);
        let mut a = MemoryConsumer::new("scan").register(&p);
        let mut b = MemoryConsumer::new("train").register(&p);
        a.try_grow(70).unwrap();
        let err = b.try_grow(40).unwrap_err();
        assert!(err.to_string().contains("memory.total"), "{err}");
        drop(a);
        b.try_grow(40).unwrap();
    }

    #[test]
    fn sibling_reservations_share_stage_budget() {
        let p = pool(1000);
        let mut a = MemoryConsumer::new("bin")
            .with_budget(100, "memory.bin")
            .register(&p);
        let mut b = a.new_empty();
        a.try_grow(60).unwrap();
        assert!(b.try_grow(50).is_err());
        b.try_grow(40).unwrap();
        let stats = p.consumers();
        assert_eq!(stats[0].reserved, 100);
        assert_eq!(stats[0].peak, 100);
    }

    #[test]
    fn require_names_stage_bytes_and_key() {
        let p = pool(1 << 30);
        let r = MemoryConsumer::new("train")
            .with_budget(16 << 20, "memory.train")
            .register(&p);
        let err = r
            .require(40 << 20, "gradient state for 2,000,000 rows")
            .unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("`train`"), "{msg}");
        assert!(msg.contains("40.0 MiB"), "{msg}");
        assert!(msg.contains("16.0 MiB"), "{msg}");
        assert!(msg.contains("memory.train=64MiB"), "{msg}");
    }
}
