//! Gradient histograms: per node, per feature, per bin, the sums of gradients and hessians.
//!
//! Built from binned pages for the smaller child of each split; the larger child is the
//! parent minus the smaller ([`Histogram::subtract_from`]), as LightGBM and XGBoost do.
//!
//! Gradients are quantised, as LightGBM's `use_quantized_grad` does: each tree, every row's
//! gradient and hessian become small integers by stochastic rounding ([`Quantizer`]), and a
//! histogram slot holds their sums packed in one `i64` ([`Packed`]). That halves the bytes a
//! histogram moves against `f64` pairs, and integer sums are exact: the same in any order,
//! so the trees do not depend on the thread count, and a sibling by subtraction is exact.
//! Leaf values are then refitted from the true gradients (see `grow`).

use crate::binning::cache::{Page, Position};
use crate::binning::{Cuts, MAX_SLOTS};

/// Gradient and hessian sums, as real numbers.
pub type GradPair = [f64; 2];

/// A quantised gradient sum in the high 32 bits (signed) and a quantised hessian sum in the
/// low 32 bits (unsigned). Adding two adds both, as long as hessian sums stay below 2³² and
/// gradient sums within ±2³¹, which [`Quantizer`] keeps for any node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[repr(transparent)]
pub struct Packed(pub i64);

impl Packed {
    pub const ZERO: Packed = Packed(0);

    #[inline]
    pub fn new(g: i32, h: u32) -> Self {
        Packed(((g as i64) << 32) + h as i64)
    }

    /// The hessian sum.
    #[inline]
    pub fn h(self) -> u32 {
        self.0 as u32
    }

    /// The gradient sum.
    #[inline]
    pub fn g(self) -> i64 {
        (self.0 - self.h() as i64) >> 32
    }

    #[inline]
    pub fn plus(self, o: Packed) -> Packed {
        Packed(self.0.wrapping_add(o.0))
    }

    #[inline]
    pub fn minus(self, o: Packed) -> Packed {
        Packed(self.0.wrapping_sub(o.0))
    }
}

/// A row's quantised gradient and hessian.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QPair {
    pub g: i16,
    pub h: u16,
}

impl QPair {
    #[inline]
    pub fn packed(self) -> Packed {
        Packed::new(self.g as i32, self.h as u32)
    }
}

/// One tree's quantisation: the real value of one gradient step and one hessian step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Quantizer {
    pub g_step: f64,
    pub h_step: f64,
}

impl Quantizer {
    /// Most steps a row's hessian may take (its gradient takes half as many each way): as
    /// fine as an `i16` / `u16` pair holds.
    pub const MAX_LEVELS: u32 = 1 << 14;

    /// Levels for `rows` rows: as many as keep every sum over those rows inside [`Packed`].
    pub fn levels(rows: usize) -> u32 {
        ((u32::MAX as u64 / rows.max(1) as u64).min(Self::MAX_LEVELS as u64) as u32).max(2)
    }

    /// Steps for gradients up to `max_g` in size and hessians up to `max_h`, on `levels`.
    pub fn new(max_g: f64, max_h: f64, levels: u32) -> Self {
        let half = (levels / 2) as f64;
        let step = |m: f64, n: f64| if m > 0.0 && m.is_finite() { m / n } else { 1.0 };
        Self {
            g_step: step(max_g, half),
            h_step: step(max_h, levels as f64),
        }
    }

    /// `(g, h)` on the grid, each rounded down or up with the probability that keeps its
    /// mean exact; `u` holds two independent uniform draws in `[0, 1)`, and `levels` bounds
    /// the result.
    #[inline]
    pub fn quantize(&self, g: f32, h: f32, u: [f64; 2], levels: u32) -> QPair {
        let half = (levels / 2) as f64;
        let qg = floor((g as f64 / self.g_step) + u[0]).clamp(-half, half);
        let qh = floor((h as f64 / self.h_step) + u[1]).clamp(0.0, levels as f64);
        QPair {
            g: qg as i16,
            h: qh as u16,
        }
    }

    /// The real sums a packed slot stands for.
    #[inline]
    pub fn pair(&self, p: Packed) -> GradPair {
        [p.g() as f64 * self.g_step, p.h() as f64 * self.h_step]
    }
}

/// `x.floor()` for the quantiser's values (within ±2^63, or NaN, which the clamp and cast
/// after it turn into 0 either way): without SSE4.1 in the target, `f64::floor` is a call
/// into libm, 0.5 % of a cross-validation's time.
#[inline]
fn floor(x: f64) -> f64 {
    let t = x as i64 as f64;
    if t > x {
        t - 1.0
    } else {
        t
    }
}

/// One node's histogram: each feature's slots (see [`Cuts::slot_offsets`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Histogram {
    pub bins: Vec<Packed>,
}

impl Histogram {
    /// Heap bytes of one node's histogram of `slots` slots.
    pub fn bytes(slots: usize) -> u64 {
        (slots * std::mem::size_of::<Packed>()) as u64
    }

    /// An empty histogram of `slots` slots (the last of the slot offsets).
    pub fn zeros(slots: usize) -> Self {
        Self {
            bins: vec![Packed::ZERO; slots],
        }
    }

    /// The slots of feature `f`.
    #[inline]
    pub fn feature<'a>(&'a self, f: usize, offsets: &[usize]) -> &'a [Packed] {
        &self.bins[offsets[f]..offsets[f + 1]]
    }

    pub fn clear(&mut self) {
        self.bins.fill(Packed::ZERO);
    }

    /// Adds `other` slot by slot.
    pub fn add(&mut self, other: &Histogram) {
        for (a, b) in self.bins.iter_mut().zip(&other.bins) {
            *a = a.plus(*b);
        }
    }

    /// Turns `self` (a child) into `parent − self` (its sibling), exactly.
    pub fn subtract_from(&mut self, parent: &Histogram) {
        for (a, p) in self.bins.iter_mut().zip(&parent.bins) {
            *a = p.minus(*a);
        }
    }

    /// Adds page rows `rows` (ascending) with weights `gh` (one per row, in the same order):
    /// [`add_groups`] for one node.
    pub fn add_rows<R: PageRow>(
        &mut self,
        page: &Page<'_>,
        pf: &PageFeatures,
        cols: &Columns,
        rows: &[R],
        gh: &[Packed],
    ) {
        add_groups(
            std::slice::from_mut(self),
            page,
            pf,
            cols,
            &[(0, rows.len())],
            rows,
            gh,
        );
    }

    /// Puts into each sparse feature's zero bin what the node's total leaves after its
    /// stored (non-zero) values.
    pub fn fill_sparse_zeros(&mut self, cuts: &Cuts, pf: &PageFeatures, total: Packed) {
        for (&f, &off) in pf.sparse.iter().zip(&pf.sparse_offsets) {
            let z = cuts.features[f].zero_bin as usize;
            let slots = &mut self.bins[off..off + cuts.features[f].n_slots()];
            let mut rest = total;
            for (i, s) in slots.iter().enumerate() {
                if i != z {
                    rest = rest.minus(*s);
                }
            }
            slots[z] = rest;
        }
    }
}

/// Dense columns built together: a row's index and weight are read once for all of them,
/// and their slot updates are independent, so they overlap in the pipeline. Four measured
/// fastest (eight: 6 % slower on `cargo bench --bench kernels`).
const BLOCK: usize = 4;

/// Fewest rows of a node for which a block is summed in the stack scratch (whose `u8`-indexed
/// slots need no bounds checks) and then added to the histogram: below it, clearing and
/// adding back the scratch costs more than it saves. The scratch holds two copies of the
/// block's slots (16 KiB, in L1 beside the columns), even rows adding to one and odd rows to
/// the other: a feature with few distinct codes sends runs of rows to one slot, and with
/// one copy each add waits for the previous add's store to that slot (16 % faster on the
/// kernel bench with two). Clearing and adding back 2 × 4 × 256 slots costs about as much as
/// adding a few hundred rows: the 20-tree 10k-gene CV's train stage took 76.4 s with 64 here,
/// 72.1 with 128, 69.4–70.0 from 256 to 1,024 and 71.6 with 2,048 (one binary, the bound
/// read from the environment for the experiment, 2026-12-01).
const SCRATCH_MIN_ROWS: usize = 512;

/// A page row's index as the kernel reads it: `u32` in callers' row lists, `u16` in the
/// trainer's partition, which is half the size (a page has at most 2¹⁴ rows).
pub trait PageRow: Copy {
    fn at(self) -> usize;
}

impl PageRow for u16 {
    #[inline]
    fn at(self) -> usize {
        self as usize
    }
}

impl PageRow for u32 {
    #[inline]
    fn at(self) -> usize {
        self as usize
    }
}

/// Adds to each histogram `hists[k]` the page rows `rows[a..z]` with weights `gh[a..z]`,
/// where `(a, z) = groups[k]`. Dense features go [`BLOCK`] columns at a time, and within a
/// block node by node: the columns' slices of the page stay in cache while every node reads
/// them, and the loop touches one block's slots of one node at a time. Sparse features get only
/// their stored (non-zero) values here; [`Histogram::fill_sparse_zeros`] adds the zeros
/// afterwards. Only the columns in `cols` are built; the others' slots are left as they are.
pub fn add_groups<R: PageRow>(
    hists: &mut [Histogram],
    page: &Page<'_>,
    pf: &PageFeatures,
    cols: &Columns,
    groups: &[(usize, usize)],
    rows: &[R],
    gh: &[Packed],
) {
    debug_assert_eq!(rows.len(), gh.len());
    // Every dense column holds `page.rows` codes, so this one check covers the unchecked
    // reads below.
    assert!(
        rows.iter().all(|&r| r.at() < page.rows),
        "a row index past the page"
    );
    let mut scratch = [[[Packed::ZERO; MAX_SLOTS]; BLOCK]; 2];
    let mut blocks = cols.dense.chunks_exact(BLOCK);
    for block in &mut blocks {
        let d: [usize; BLOCK] = block.try_into().expect("a full block");
        let c = d.map(|d| page.dense_column(d));
        let ranges = d.map(|d| pf.dense_offsets[d]..pf.dense_ends[d]);
        for (h, &(a, z)) in hists.iter_mut().zip(groups) {
            let (rows, gh) = (&rows[a..z], &gh[a..z]);
            let mut slots = h
                .bins
                .get_disjoint_mut(ranges.clone())
                .expect("features' slots are disjoint");
            if rows.len() < SCRATCH_MIN_ROWS {
                for (&r, &w) in rows.iter().zip(gh) {
                    for (s, c) in slots.iter_mut().zip(&c) {
                        // SAFETY: r < page.rows == c.len(), checked on entry.
                        let p = &mut s[unsafe { *c.get_unchecked(r.at()) } as usize];
                        *p = p.plus(w);
                    }
                }
                continue;
            }
            for (sc, s) in scratch.iter_mut().flatten().zip(slots.iter().cycle()) {
                sc[..s.len()].fill(Packed::ZERO);
            }
            let [even, odd] = &mut scratch;
            let mut pairs = rows.chunks_exact(2).zip(gh.chunks_exact(2));
            for (r, w) in &mut pairs {
                for ((e, o), c) in even.iter_mut().zip(odd.iter_mut()).zip(&c) {
                    // SAFETY: as above. A `u8` code always indexes 256 slots; a code past
                    // the feature's slots (only in a damaged cache) lands in one never read.
                    let (a, b) = unsafe { (*c.get_unchecked(r[0].at()), *c.get_unchecked(r[1].at())) };
                    let p = &mut e[a as usize];
                    *p = p.plus(w[0]);
                    let p = &mut o[b as usize];
                    *p = p.plus(w[1]);
                }
            }
            if let (&[r], &[w]) = (rows.chunks_exact(2).remainder(), gh.chunks_exact(2).remainder()) {
                for (e, c) in even.iter_mut().zip(&c) {
                    let p = &mut e[c[r.at()] as usize];
                    *p = p.plus(w);
                }
            }
            for ((s, e), o) in slots.into_iter().zip(even.iter()).zip(odd.iter()) {
                for ((a, x), y) in s.iter_mut().zip(e).zip(o) {
                    *a = a.plus(x.plus(*y));
                }
            }
        }
    }
    for &d in blocks.remainder() {
        let (off, end) = (pf.dense_offsets[d], pf.dense_ends[d]);
        let col = page.dense_column(d);
        for (h, &(a, z)) in hists.iter_mut().zip(groups) {
            let slots = &mut h.bins[off..end];
            for (&r, &w) in rows[a..z].iter().zip(&gh[a..z]) {
                let s = &mut slots[col[r.at()] as usize];
                *s = s.plus(w);
            }
        }
    }
    if cols.sparse.iter().any(|&b| b) {
        let ip = page.sparse.indptr();
        let ip = ip.raw_storage();
        let (indices, data) = (page.sparse.indices(), page.sparse.data());
        for (h, &(a, z)) in hists.iter_mut().zip(groups) {
            for (&r, &w) in rows[a..z].iter().zip(&gh[a..z]) {
                let (lo, hi) = (ip[r.at()] as usize, ip[r.at() + 1] as usize);
                for (&s_i, &code) in indices[lo..hi].iter().zip(&data[lo..hi]) {
                    if cols.sparse[s_i as usize] {
                        let s = &mut h.bins[pf.sparse_offsets[s_i as usize] + code as usize];
                        *s = s.plus(w);
                    }
                }
            }
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
    pub dense_ends: Vec<usize>,
    /// Slot offsets of every feature (the last entry is the total).
    pub offsets: Vec<usize>,
}

/// The columns a tree's histograms are built for: the features it may split on (column
/// sampling leaves the others out, and nothing reads their slots).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Columns {
    /// Dense positions, ascending.
    pub dense: Vec<usize>,
    /// By sparse position: built or not.
    pub sparse: Vec<bool>,
}

impl PageFeatures {
    /// The columns of `features` (feature indices).
    pub fn columns(&self, features: &[usize]) -> Columns {
        let mut on = vec![false; self.offsets.len().saturating_sub(1)];
        for &f in features {
            on[f] = true;
        }
        Columns {
            dense: (0..self.dense.len()).filter(|&d| on[self.dense[d]]).collect(),
            sparse: self.sparse.iter().map(|&f| on[f]).collect(),
        }
    }

    /// Every column.
    pub fn all_columns(&self) -> Columns {
        Columns {
            dense: (0..self.dense.len()).collect(),
            sparse: vec![true; self.sparse.len()],
        }
    }
}

/// Reads [`PageFeatures`] off a cache layout and its cuts.
pub fn page_features(layout: &crate::binning::cache::Layout, cuts: &Cuts) -> PageFeatures {
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
        dense_ends: dense.iter().map(|&f| offsets[f + 1]).collect(),
        sparse_offsets: sparse.iter().map(|&f| offsets[f]).collect(),
        dense,
        sparse,
        offsets,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        #[test]
        fn the_quantisers_floor_is_std_floor(x in -1e18f64..1e18, small in -70_000.0f64..70_000.0) {
            for v in [x, small, small.trunc(), -small.trunc() - 0.0] {
                proptest::prop_assert_eq!(floor(v).to_bits() | (1 << 63), v.floor().to_bits() | (1 << 63), "{}", v);
            }
        }
    }

    #[test]
    fn packed_sums_unpack_to_their_parts() {
        // Sums of either sign, up to the bounds Quantizer keeps.
        let parts = [
            (-7, 3u32),
            (5, 0),
            (-(1 << 20), 1 << 20),
            (1 << 30, (1 << 31) + 5),
        ];
        let (mut p, mut g, mut h) = (Packed::ZERO, 0i64, 0u64);
        for &(gi, hi) in &parts {
            p = p.plus(Packed::new(gi, hi));
            g += gi as i64;
            h += hi as u64;
            assert_eq!((p.g(), p.h() as u64), (g, h));
        }
        let q = p.minus(Packed::new(-7, 3));
        assert_eq!((q.g(), q.h()), (g + 7, (h - 3) as u32));
    }

    #[test]
    fn stochastic_rounding_by_hand() {
        // Steps: 0.8 / 2 = 0.4 for gradients, 1.0 / 4 = 0.25 for hessians.
        let q = Quantizer::new(0.8, 1.0, 4);
        assert_eq!((q.g_step, q.h_step), (0.4, 0.25));
        // g = 0.5 is 1.25 steps: up with probability 0.25; h = 0.3 is 1.2 steps: up with 0.2.
        assert_eq!(q.quantize(0.5, 0.3, [0.74, 0.79], 4), QPair { g: 1, h: 1 });
        assert_eq!(q.quantize(0.5, 0.3, [0.76, 0.81], 4), QPair { g: 2, h: 2 });
        // -0.5 is -1.25 steps: -2 unless the draw lifts it past -1 (probability 0.75).
        assert_eq!(q.quantize(-0.5, 0.0, [0.2, 0.0], 4), QPair { g: -2, h: 0 });
        assert_eq!(q.quantize(-0.5, 0.0, [0.3, 0.0], 4), QPair { g: -1, h: 0 });
        // The largest values land on the last level.
        assert_eq!(q.quantize(-0.8, 1.0, [0.99, 0.99], 4), QPair { g: -2, h: 4 });
        assert_eq!(q.pair(Packed::new(-3, 6)), [-3.0 * 0.4, 1.5]);
    }

    #[test]
    fn levels_keep_every_sum_in_range() {
        assert_eq!(Quantizer::levels(1000), Quantizer::MAX_LEVELS);
        for rows in [262_145usize, 2_500_000, 25_000_000, 1 << 30] {
            let l = Quantizer::levels(rows) as u64;
            assert!(
                rows as u64 * l <= u32::MAX as u64,
                "{rows} rows: hessians fit 32 bits"
            );
            assert!(
                rows as u64 * (l / 2) < 1 << 31,
                "{rows} rows: gradients fit 31 bits"
            );
        }
    }
}
