//! What training a dataset needs, worked out before any work is done, and the cache it reads.
//!
//! The trainer keeps O(rows) small arrays in memory and reads the binned features from a
//! page cache on disk, one page at a time; histograms live in a pool. This module prices
//! those parts, so `inspect` can say which budgets work and the trainer can refuse a budget
//! that cannot, before it starts. (Each room prices what it allocates beside the code that
//! allocates it: the scan in `io::scan`, the sketch in `binning`, the cross-validation's
//! per-row state in `cv`; this is training's.)

use std::path::Path;

use serde::Serialize;

use super::hist::Histogram;
use super::{EvalMetric, TrainParams};
use crate::binning::cache::{self, PageCache, PAGE_ROWS};
use crate::binning::sketch_dataset;
use crate::io::Dataset;
use crate::memory::{MemoryError, Stages};

/// Bytes of per-row state while one binary model trains: margin, gradient and hessian
/// (`f32` each), the row's node (`u32`), its place in the tree's row partition (`u16`), its
/// quantised gradient pair (two 16-bit integers), its class code and role (a byte each). The target is read from the class code, and a
/// row's weight is folded into its gradient and hessian as they are taken.
pub const STATE_BYTES_PER_ROW: u64 = 24;
/// Per row, when early stopping watches a validation set: the margins at the best iteration.
pub const BEST_MARGIN_BYTES_PER_ROW: u64 = 4;
/// Per row, with GOSS: the gradient magnitudes it sorts.
pub const GOSS_BYTES_PER_ROW: u64 = 4;
/// Per validation row: its prediction and target, gathered each round.
pub const VALID_BYTES_PER_ROW: u64 = 8;
/// What an AUC validation metric adds per validation row: its sort key (`u64`).
pub const AUC_BYTES_PER_ROW: u64 = 8;

/// Per-row state for training with `params` on `rows` rows, `valid_rows` of which validate.
pub fn state_bytes(rows: u64, valid_rows: u64, params: &TrainParams) -> u64 {
    let per_row = STATE_BYTES_PER_ROW
        + if valid_rows > 0 && params.early_stopping_rounds > 0 {
            BEST_MARGIN_BYTES_PER_ROW
        } else {
            0
        }
        + if params.sampling == super::Sampling::Goss {
            GOSS_BYTES_PER_ROW
        } else {
            0
        };
    let per_valid = VALID_BYTES_PER_ROW
        + if params.eval_metric == EvalMetric::Auc {
            AUC_BYTES_PER_ROW
        } else {
            0
        };
    rows * per_row + valid_rows * per_valid
}
/// Histogram bins hold a quantised gradient and hessian sum, packed in an `i64`.
pub const BIN_BYTES: u64 = 8;
/// Rows of one page of the binned cache.
pub const MIN_PAGE_ROWS: u64 = PAGE_ROWS as u64;

/// Histograms held at the busiest level of depth-wise growth: the parents being split, one
/// copy per thread of the smaller children being built, and all the children.
pub fn hist_nodes(max_depth: u64, threads: u64) -> u64 {
    if max_depth <= 1 {
        1 + threads
    } else {
        (3 + threads) << (max_depth - 2).min(20)
    }
}

/// The shape of a training problem.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct TrainShape {
    pub rows: u64,
    /// Columns stored one byte per row.
    pub dense_features: u64,
    /// Columns stored sparse (bin index and row offset per non-zero value).
    pub sparse_features: u64,
    /// Non-zero values over all sparse columns.
    pub sparse_nonzeros: u64,
    pub max_bin: u64,
    pub max_depth: u64,
    pub threads: u64,
    /// Histogram slots of one node, all features together (at most 256 a feature).
    pub hist_slots: u64,
    /// The model while it grows ([`model_bytes`]).
    pub model_bytes: u64,
}

/// The parts a training run must hold in memory, and the cache it writes to disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct TrainNeeds {
    pub state_bytes: u64,
    pub histogram_bytes: u64,
    pub model_bytes: u64,
    pub min_page_bytes: u64,
    pub cache_bytes: u64,
}

/// How training would run under one budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct BudgetFit {
    pub budget_bytes: u64,
    pub fits: bool,
    /// The whole binned cache fits beside the state: no page is read twice from disk.
    pub cache_in_memory: bool,
    /// Rows per page when streaming (0 when it does not fit).
    pub page_rows: u64,
}

/// The level pass's scratch over all threads, and where each node's rows lie in every
/// segment of the pages of `rows` rows.
pub fn bucket_bytes(rows: u64, max_depth: u64, threads: u64) -> u64 {
    let builds = 1usize << max_depth.saturating_sub(1).min(20);
    threads * super::grow::Buckets::bytes(PAGE_ROWS, builds)
        + super::grow::segment_bytes(rows, max_depth.min(20) as usize, threads)
}

impl TrainShape {
    fn row_bytes(&self) -> f64 {
        self.dense_features as f64 + 5.0 * self.sparse_nonzeros as f64 / self.rows.max(1) as f64
    }

    /// Prices each part.
    pub fn needs(&self) -> TrainNeeds {
        let per_node = self.hist_slots * BIN_BYTES;
        let nodes = hist_nodes(self.max_depth, self.threads);
        TrainNeeds {
            // Whatever the parameters: as if every row validated, with early stopping.
            state_bytes: self.rows * (STATE_BYTES_PER_ROW + BEST_MARGIN_BYTES_PER_ROW + VALID_BYTES_PER_ROW),
            histogram_bytes: per_node * nodes + bucket_bytes(self.rows, self.max_depth, self.threads),
            model_bytes: self.model_bytes,
            min_page_bytes: (MIN_PAGE_ROWS as f64 * self.row_bytes()).ceil() as u64,
            cache_bytes: (self.rows as f64 * self.row_bytes()).ceil() as u64,
        }
    }

    /// The smallest budget that trains this shape.
    pub fn min_budget(&self) -> u64 {
        let n = self.needs();
        // Streaming reads the next page while it works on one.
        n.state_bytes
            + n.histogram_bytes
            + n.model_bytes
            + crate::binning::cache::streamed_bytes(2, n.min_page_bytes, self.rows)
    }

    /// How training runs with `budget` bytes.
    pub fn at_budget(&self, budget: u64) -> BudgetFit {
        let n = self.needs();
        let fixed = n.state_bytes + n.histogram_bytes + n.model_bytes;
        let fits = budget >= self.min_budget();
        let room = budget.saturating_sub(fixed);
        BudgetFit {
            budget_bytes: budget,
            fits,
            cache_in_memory: fits && room >= n.cache_bytes,
            page_rows: if fits {
                ((room as f64 / self.row_bytes().max(1.0)) as u64).min(self.rows)
            } else {
                0
            },
        }
    }
}

/// Heap bytes of the model while it trains: its finished trees, and the one growing (whose
/// arrays may have doubled).
pub fn model_bytes(params: &TrainParams, feature_names_bytes: u64) -> u64 {
    super::Model::max_bytes(params, feature_names_bytes)
        + 2 * super::tree::Tree::max_nodes(params.max_depth) * super::tree::NODE_BYTES
}

/// Heap bytes the trainer needs: per-row state ([`state_bytes`]), and the histogram pool for
/// nodes of `slots` histogram slots (the last of the cuts' slot offsets).
pub fn train_bytes(
    rows: u64,
    valid_rows: u64,
    slots: usize,
    params: &TrainParams,
    threads: usize,
) -> (u64, u64) {
    let state = state_bytes(rows, valid_rows, params);
    let hists = Histogram::bytes(slots) * hist_nodes(params.max_depth as u64, threads as u64)
        + bucket_bytes(rows, params.max_depth as u64, threads as u64);
    (state, hists)
}

/// The dataset's binned page cache for `params.max_bin`: found under `cache_root` when the
/// files and features are unchanged, else sketched and binned under those stages' budgets.
/// Refuses first, before any pass, a train budget that cannot hold the per-row state (at
/// least, with no validation rows) and two pages; the histograms, whose size the cuts
/// decide, are checked once known.
pub fn binned_cache(
    stages: &Stages,
    ds: &Dataset,
    params: &TrainParams,
    cache_root: &Path,
) -> anyhow::Result<(PageCache, bool)> {
    let state = state_bytes(ds.rows(), 0, params);
    // Two pages (one read while the other is worked on) of one byte per feature and row
    // (sparse columns only take less).
    let page = crate::binning::cache::streamed_bytes(
        2,
        ds.rows().min(PAGE_ROWS as u64) * ds.roles.features.len() as u64,
        ds.rows(),
    );
    let train_budget = stages.budget("train");
    if state + page > train_budget {
        return Err(MemoryError::TooSmall {
            stage: "train".into(),
            key: "memory.train".into(),
            needed: state + page,
            budget: train_budget,
            what: format!(
                "per-row state for {} rows and two pages of {} features",
                ds.rows(),
                ds.roles.features.len()
            ),
        }
        .into());
    }
    let fingerprint = cache::fingerprint(ds, params.max_bin, params.sketch_size);
    let dir = cache_root.join(&fingerprint);
    let (manifest, reused) = match cache::find(&dir, &fingerprint) {
        Some(m) => (m, true),
        None => {
            let cuts = stages.stage("sketch", |res| {
                sketch_dataset(ds, params.max_bin, params.sketch_size, res)
            })?;
            let m = stages.stage("bin", |res| cache::build(ds, &cuts, &dir, &fingerprint, res))?;
            (m, false)
        }
    };
    Ok((PageCache::open(&dir, manifest)?, reused))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape() -> TrainShape {
        TrainShape {
            rows: 2_500_000,
            dense_features: 124,
            sparse_features: 0,
            sparse_nonzeros: 0,
            max_bin: 256,
            max_depth: 6,
            threads: 2,
            hist_slots: 124 * 256,
            model_bytes: 1000,
        }
    }

    #[test]
    fn min_budget_is_state_histograms_and_two_pages() {
        let s = shape();
        assert_eq!(
            s.min_budget(),
            // State (24 + 4 + 8 bytes a row), histograms (8-byte slots, (3 + 2 threads) << 4
            // nodes), the model, two pages, and per thread the level pass's scratch for a whole
            // page (16,384 rows) and 32 built nodes: a u16 and a packed i64 a row, a (usize,
            // usize) a node; each of the 153 pages' 2 segments: its lock (a futex word and a
            // poison flag, padded to 8 bytes) around two slices, its row count and its range
            // vector (16 + 16 + 8 + 24 bytes), and a (u16, u16) range for each of a tree's 127
            // nodes; and the memory page each page may keep mapped when streamed.
            2_500_000 * 36
                + 124 * 256 * 8 * (5 * 16)
                + 1000
                + 2 * (16384 * 124 + 2 * 4096)
                + 2 * (16384 * 10 + 32 * 16)
                + 153 * 2 * (72 + 127 * 4)
                + 153 * 4096
        );
        assert!(!s.at_budget(s.min_budget() - 1).fits);
        assert!(s.at_budget(s.min_budget()).fits);
    }

    #[test]
    fn large_budget_holds_the_cache() {
        let s = shape();
        let fit = s.at_budget(16 << 30);
        assert!(fit.cache_in_memory);
        assert_eq!(fit.page_rows, s.rows);
        assert!(!s.at_budget(128 << 20).cache_in_memory);
    }
}
