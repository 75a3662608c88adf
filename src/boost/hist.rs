//! Gradient histograms: per node, per feature, per bin, the sums of gradients and hessians.
//!
//! Built from binned pages, one row at a time, for the smaller child of each split; the
//! larger child is the parent minus the smaller ([`Histogram::subtract_from`]), as LightGBM
//! and XGBoost do. Sums are `f64`, so a histogram built from `f32` gradients does not lose
//! the small ones.

use crate::binning::cache::{Layout, Page, Position};

use crate::binning::Cuts;

/// Gradient and hessian sums.
pub type GradPair = [f64; 2];

/// One node's histogram: each feature's slots (see [`Cuts::slot_offsets`]) of gradient pairs.
#[derive(Debug, Clone, PartialEq)]
pub struct Histogram {
    pub bins: Vec<GradPair>,
}

impl Histogram {
    /// Heap bytes of one node's histogram of `slots` slots.
    pub fn bytes(slots: usize) -> u64 {
        (slots * std::mem::size_of::<GradPair>()) as u64
    }

    /// An empty histogram of `slots` slots (the last of the slot offsets).
    pub fn zeros(slots: usize) -> Self {
        Self {
            bins: vec![[0.0; 2]; slots],
        }
    }

    /// The slots of feature `f`.
    #[inline]
    pub fn feature<'a>(&'a self, f: usize, offsets: &[usize]) -> &'a [GradPair] {
        &self.bins[offsets[f]..offsets[f + 1]]
    }

    pub fn clear(&mut self) {
        self.bins.fill([0.0; 2]);
    }

    /// Adds `other` slot by slot.
    pub fn add(&mut self, other: &Histogram) {
        for (a, b) in self.bins.iter_mut().zip(&other.bins) {
            a[0] += b[0];
            a[1] += b[1];
        }
    }

    /// Turns `self` (a child) into `parent − self` (its sibling).
    pub fn subtract_from(&mut self, parent: &Histogram) {
        for (a, p) in self.bins.iter_mut().zip(&parent.bins) {
            a[0] = p[0] - a[0];
            a[1] = p[1] - a[1];
        }
    }

    /// Adds page rows `rows` (ascending) with weights `gh` (one pair per row, in the same
    /// order). Dense features go column by column, so one feature's slots and one short
    /// column are all a loop touches; sparse features get only their stored (non-zero)
    /// values here, and [`Self::fill_sparse_zeros`] adds the zeros afterwards. Every slot
    /// sums its rows in row order, whatever the layout.
    pub fn add_rows(&mut self, page: &Page<'_>, pf: &PageFeatures, rows: &[u32], gh: &[GradPair]) {
        debug_assert_eq!(rows.len(), gh.len());
        for (d, &off) in pf.dense_offsets.iter().enumerate() {
            let col = page.dense_column(d);
            let n = pf.offsets_end[d] - off;
            let slots = &mut self.bins[off..off + n];
            for (&r, w) in rows.iter().zip(gh) {
                let s = &mut slots[col[r as usize] as usize];
                s[0] += w[0];
                s[1] += w[1];
            }
        }
        if !pf.sparse.is_empty() {
            let ip = page.sparse.indptr();
            let ip = ip.raw_storage();
            let (indices, data) = (page.sparse.indices(), page.sparse.data());
            for (&r, w) in rows.iter().zip(gh) {
                let (lo, hi) = (ip[r as usize] as usize, ip[r as usize + 1] as usize);
                for (&s_i, &code) in indices[lo..hi].iter().zip(&data[lo..hi]) {
                    let s = &mut self.bins[pf.sparse_offsets[s_i as usize] + code as usize];
                    s[0] += w[0];
                    s[1] += w[1];
                }
            }
        }
    }

    /// Puts into each sparse feature's zero bin what the node's total leaves after its
    /// stored (non-zero) values.
    pub fn fill_sparse_zeros(&mut self, cuts: &Cuts, pf: &PageFeatures, total: GradPair) {
        for (&f, &off) in pf.sparse.iter().zip(&pf.sparse_offsets) {
            let z = cuts.features[f].zero_bin as usize;
            let slots = &mut self.bins[off..off + cuts.features[f].n_slots()];
            let (mut g, mut h) = (0.0, 0.0);
            for (i, s) in slots.iter().enumerate() {
                if i != z {
                    g += s[0];
                    h += s[1];
                }
            }
            slots[z] = [total[0] - g, total[1] - h];
        }
    }
}

/// The features stored dense and sparse, as feature indices in page order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageFeatures {
    pub dense: Vec<usize>,
    pub sparse: Vec<usize>,
    /// Each feature's first histogram slot, in the same orders.
    pub dense_offsets: Vec<usize>,
    pub sparse_offsets: Vec<usize>,
    /// One past each dense feature's last slot.
    pub offsets_end: Vec<usize>,
    /// Slot offsets of every feature (the last entry is the total).
    pub offsets: Vec<usize>,
}

/// Reads [`PageFeatures`] off a cache layout and its cuts.
pub fn page_features(layout: &Layout, cuts: &Cuts) -> PageFeatures {
    let mut dense = vec![0; layout.n_dense];
    let mut sparse = vec![];
    for (f, p) in layout.position.iter().enumerate() {
        match *p {
            Position::Dense(d) => dense[d] = f,
            Position::Sparse(s) => {
                if sparse.len() <= s {
                    sparse.resize(s + 1, 0);
                }
                sparse[s] = f;
            }
        }
    }
    let offsets = cuts.slot_offsets();
    PageFeatures {
        dense_offsets: dense.iter().map(|&f| offsets[f]).collect(),
        offsets_end: dense.iter().map(|&f| offsets[f + 1]).collect(),
        sparse_offsets: sparse.iter().map(|&f| offsets[f]).collect(),
        dense,
        sparse,
        offsets,
    }
}
