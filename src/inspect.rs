//! `inspect`: what a dataset holds, in one streaming pass under the scan budget.
//!
//! Files, rows, genes, class counts, every feature's type and missing values, and what
//! training would need at a range of budgets. Files are read in parallel, each worker with
//! an equal share of the scan budget.

use anyhow::Context;
use rayon::prelude::*;
use serde::Serialize;

use crate::binning::SPARSE_ZERO_FRACTION;
use crate::boost::sizing::{BudgetFit, TrainNeeds, TrainShape};
use crate::io::{decode_labels, Dataset, FeatureReader, FeatureType, GeneIndex, CLASS_NAMES};
use crate::memory::combine;
use crate::memory::{fmt_bytes, MemoryReservation};

/// Budgets `inspect` prices training at.
pub const BUDGETS: [u64; 6] = [64 << 20, 256 << 20, 512 << 20, 1 << 30, 4 << 30, 16 << 30];

/// Rows per class.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ClassCounts {
    pub neither: u64,
    pub donor: u64,
    pub acceptor: u64,
}

/// One feature column.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FeatureSummary {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: FeatureType,
    pub physical_type: String,
    /// Missing values: nulls and NaN together.
    pub null_count: u64,
    pub nan_count: u64,
    pub zero_count: u64,
    pub min: Option<f64>,
    pub max: Option<f64>,
}

/// What training this dataset would take.
#[derive(Debug, Clone, Serialize)]
pub struct TrainingEstimate {
    pub shape: TrainShape,
    pub needs: TrainNeeds,
    pub min_budget_bytes: u64,
    pub budgets: Vec<BudgetFit>,
}

/// Everything `inspect` reports.
#[derive(Debug, Clone, Serialize)]
pub struct InspectReport {
    pub dataset: String,
    pub files: usize,
    pub bytes_on_disk: u64,
    pub rows: u64,
    pub genes: usize,
    pub label_column: String,
    pub group_column: String,
    pub class_counts: ClassCounts,
    pub kmer_features: usize,
    pub features: Vec<FeatureSummary>,
    pub metadata_columns: Vec<String>,
    pub training: TrainingEstimate,
    pub scan_workers: usize,
    pub scan_batch_rows: usize,
}

struct Partial {
    counts: [u64; 3],
    stats: Vec<FeatureSummary>,
    genes: GeneIndex,
    /// Pays for `genes` as long as it lives.
    _genes_res: Option<MemoryReservation>,
    batch_rows: usize,
}

impl Partial {
    fn new(ds: &Dataset) -> Self {
        Self {
            counts: [0; 3],
            stats: ds
                .roles
                .features
                .iter()
                .map(|f| FeatureSummary {
                    name: f.name.clone(),
                    kind: f.kind,
                    physical_type: f.data_type.to_string(),
                    null_count: 0,
                    nan_count: 0,
                    zero_count: 0,
                    min: None,
                    max: None,
                })
                .collect(),
            genes: GeneIndex::default(),
            _genes_res: None,
            batch_rows: 0,
        }
    }
}

/// Reads the whole dataset once, within `res`'s budget.
pub fn inspect(ds: &Dataset, res: &mut MemoryReservation) -> anyhow::Result<InspectReport> {
    let features = &ds.roles.features;
    let columns = [ds.roles.label.clone(), ds.roles.group.clone()];
    let reader = FeatureReader::all(ds);
    // Per row beyond the decoded batch: the f32 copy of one column, a label and a gene id.
    let extra = 4 + 1 + 4;
    let fixed_per_worker = (features.len() * std::mem::size_of::<FeatureSummary>()) as u64 + (64 << 10);
    let threads = rayon::current_num_threads().min(ds.files.len()).max(1);
    // As many workers as the budget can feed with batches of a useful size (8,192 rows, or
    // a whole row group when groups are smaller); never fewer than one.
    let probe = ds
        .scan()
        .with_columns(&columns)
        .with_features(&reader)
        .with_extra_row_bytes(extra);
    let (min_scan, what) = probe.min_bytes();
    res.require(fixed_per_worker + min_scan, what)?;
    let useful = probe.clone().with_max_batch_rows(8192);
    let per_worker = useful
        .plan(u64::MAX)
        .map_err(|_| anyhow::anyhow!("scan planning failed"))?
        .bytes();
    let workers = ((res.available() / (per_worker + fixed_per_worker)) as usize).clamp(1, threads);
    res.try_grow(fixed_per_worker * workers as u64)?;
    let share = res.available() / workers as u64;

    let file_lists: Vec<Vec<usize>> = (0..workers)
        .map(|w| (w..ds.files.len()).step_by(workers).collect())
        .collect();
    let parent = &*res;
    let partials: Vec<anyhow::Result<Partial>> = file_lists
        .into_par_iter()
        .map(|files| {
            let mut part = Partial::new(ds);
            let mut gene_res = parent.new_empty();
            let scan = ds
                .scan()
                .with_columns(&columns)
                .with_features(&reader)
                .with_files(files)
                .with_extra_row_bytes(extra)
                .with_max_bytes(share.saturating_sub(share / 8))
                .build(parent)?;
            part.batch_rows = scan.plan().batch_rows;
            let (mut labels, mut groups, mut values) = (vec![], vec![], vec![]);
            for item in scan {
                let b = item?;
                let path = &ds.files[b.file].path;
                labels.clear();
                decode_labels(b.batch.column(0).as_ref(), b.first_row, &mut labels)
                    .map_err(|e| e.file(path).column(&ds.roles.label))?;
                for &l in &labels {
                    part.counts[l as usize] += 1;
                }
                groups.clear();
                let added = part
                    .genes
                    .encode(b.batch.column(1).as_ref(), b.first_row, &mut groups)
                    .map_err(|e| e.file(path).column(&ds.roles.group))?;
                gene_res.try_grow(added)?;
                let fb = reader.read(&b)?;
                for (j, st) in part.stats.iter_mut().enumerate() {
                    fb.fill(j, &mut values);
                    let nulls = fb.null_count(j) as u64;
                    let mut nan = 0u64;
                    let mut zeros = 0u64;
                    let (mut lo, mut hi) = (f32::INFINITY, f32::NEG_INFINITY);
                    for &v in &values {
                        if v.is_nan() {
                            nan += 1;
                        } else {
                            zeros += u64::from(v == 0.0);
                            lo = lo.min(v);
                            hi = hi.max(v);
                        }
                    }
                    st.null_count += nan;
                    st.nan_count += nan - nulls;
                    st.zero_count += zeros;
                    if lo <= hi {
                        st.min = combine(st.min, Some(lo as f64), f64::min);
                        st.max = combine(st.max, Some(hi as f64), f64::max);
                    }
                }
            }
            part._genes_res = Some(gene_res);
            Ok(part)
        })
        .collect();

    let mut counts = [0u64; 3];
    let mut stats: Vec<FeatureSummary> = Partial::new(ds).stats;
    let mut genes = GeneIndex::default();
    let mut batch_rows = 0;
    for p in partials {
        let p = p?;
        batch_rows = batch_rows.max(p.batch_rows);
        for (total, n) in counts.iter_mut().zip(p.counts) {
            *total += n;
        }
        // A gene split across workers' files is counted once.
        let added = genes.extend_names(p.genes.names());
        res.try_grow(added)?;
        for (s, q) in stats.iter_mut().zip(p.stats) {
            s.null_count += q.null_count;
            s.nan_count += q.nan_count;
            s.zero_count += q.zero_count;
            s.min = combine(s.min, q.min, f64::min);
            s.max = combine(s.max, q.max, f64::max);
        }
    }
    let rows: u64 = counts.iter().sum();
    let (mut dense, mut sparse, mut nnz) = (0u64, 0u64, 0u64);
    for s in &stats {
        let present = rows - s.null_count;
        if present > 0 && s.zero_count as f64 >= SPARSE_ZERO_FRACTION * rows as f64 {
            sparse += 1;
            nnz += present - s.zero_count;
        } else {
            dense += 1;
        }
    }
    // Histogram slots: an integer or boolean column needs no more than its range holds; a
    // float column may need all 256. An upper bound, known before any cuts are made.
    let hist_slots: u64 = stats
        .iter()
        .map(|s| {
            let range = match (s.kind, s.min, s.max) {
                (FeatureType::Int | FeatureType::Bool, Some(lo), Some(hi)) => {
                    (hi - lo + 1.0).clamp(1.0, 256.0) as u64
                }
                _ => 256,
            };
            (range + u64::from(s.null_count > 0)).min(256)
        })
        .sum();
    // At the default depth and rounds, as the rest of the estimate.
    let shape = TrainShape {
        rows,
        dense_features: dense,
        sparse_features: sparse,
        sparse_nonzeros: nnz,
        max_bin: 256,
        max_depth: 6,
        threads: rayon::current_num_threads() as u64,
        hist_slots,
        model_bytes: crate::boost::sizing::model_bytes(
            &crate::boost::TrainParams::default(),
            crate::memory::names_bytes(&features.iter().map(|f| f.name.as_str()).collect::<Vec<_>>()),
        ),
    };
    let metadata_columns = ds
        .schema
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .filter(|n| !features.iter().any(|f| &f.column == n))
        .collect();
    anyhow::Ok(InspectReport {
        dataset: ds.root.display().to_string(),
        files: ds.files.len(),
        bytes_on_disk: ds.files.iter().map(|f| f.bytes).sum(),
        rows,
        genes: genes.len(),
        label_column: ds.roles.label.clone(),
        group_column: ds.roles.group.clone(),
        class_counts: ClassCounts {
            neither: counts[0],
            donor: counts[1],
            acceptor: counts[2],
        },
        kmer_features: features.iter().filter(|f| f.kmer.is_some()).count(),
        features: stats,
        metadata_columns,
        training: TrainingEstimate {
            shape,
            needs: shape.needs(),
            min_budget_bytes: shape.min_budget(),
            budgets: BUDGETS.iter().map(|&b| shape.at_budget(b)).collect(),
        },
        scan_workers: workers,
        scan_batch_rows: batch_rows,
    })
    .with_context(|| format!("inspecting {}", ds.root.display()))
}

impl InspectReport {
    /// The human-readable report.
    pub fn render(&self) -> String {
        use std::fmt::Write;
        let mut s = String::new();
        let c = &self.class_counts;
        let pct = |n: u64| 100.0 * n as f64 / self.rows.max(1) as f64;
        let _ = writeln!(s, "dataset   {}", self.dataset);
        let _ = writeln!(
            s,
            "files     {} ({} on disk)",
            self.files,
            fmt_bytes(self.bytes_on_disk)
        );
        let _ = writeln!(s, "rows      {}", self.rows);
        let _ = writeln!(
            s,
            "genes     {} (group column `{}`)",
            self.genes, self.group_column
        );
        let _ = writeln!(s, "label     `{}`", self.label_column);
        for (name, n) in CLASS_NAMES.iter().zip([c.neither, c.donor, c.acceptor]) {
            let _ = writeln!(s, "  {name:<9} {n:>12} ({:.1}%)", pct(n));
        }
        let _ = writeln!(
            s,
            "features  {} ({} k-mer counts); metadata columns: {}",
            self.features.len(),
            self.kmer_features,
            self.metadata_columns.len()
        );
        let _ = writeln!(
            s,
            "  {:<32} {:<6} {:<8} {:>10} {:>14} {:>14}",
            "name", "type", "stored", "missing", "min", "max"
        );
        let f = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.6}"));
        for x in &self.features {
            let kind = serde_json::to_value(x.kind)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default();
            let _ = writeln!(
                s,
                "  {:<32} {:<6} {:<8} {:>10} {:>14} {:>14}",
                x.name,
                kind,
                x.physical_type,
                x.null_count,
                f(x.min),
                f(x.max)
            );
        }
        let t = &self.training;
        let _ = writeln!(
            s,
            "training (one binary model, max_bin {}, depth {}): {} dense + {} sparse features",
            t.shape.max_bin, t.shape.max_depth, t.shape.dense_features, t.shape.sparse_features
        );
        let _ = writeln!(
            s,
            "  in memory: row state {}, histograms {}, model {}; on disk: binned cache {}; smallest budget {}",
            fmt_bytes(t.needs.state_bytes),
            fmt_bytes(t.needs.histogram_bytes),
            fmt_bytes(t.needs.model_bytes),
            fmt_bytes(t.needs.cache_bytes),
            fmt_bytes(t.min_budget_bytes)
        );
        for b in &t.budgets {
            let how = if !b.fits {
                "too small".to_string()
            } else if b.cache_in_memory {
                "fits; binned cache held in memory".to_string()
            } else {
                format!("fits; cache streamed in pages of {} rows", b.page_rows)
            };
            let _ = writeln!(s, "  memory.train = {:<10} {how}", fmt_bytes(b.budget_bytes));
        }
        s
    }
}
