//! Regression trees: split finding on histograms, the tree itself, and prediction.
//!
//! Gains and leaf weights follow XGBoost's second-order formulas, with L1 (`alpha`) as a
//! soft threshold on the gradient sum and L2 (`lambda`) added to the hessian sum. A missing
//! value goes to the side its split learned (`default_left`).

use serde::{Deserialize, Serialize};

use super::hist::{Histogram, Packed, Quantizer};
use crate::binning::{json_float, Cuts};

/// The regularisation that split finding and leaf weights use.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SplitParams {
    pub lambda: f64,
    pub alpha: f64,
    pub gamma: f64,
    pub min_child_weight: f64,
}

impl SplitParams {
    fn threshold_l1(&self, g: f64) -> f64 {
        if g > self.alpha {
            g - self.alpha
        } else if g < -self.alpha {
            g + self.alpha
        } else {
            0.0
        }
    }

    /// The structure score of a node with sums `g`, `h`.
    pub fn gain(&self, g: f64, h: f64) -> f64 {
        let t = self.threshold_l1(g);
        t * t / (h + self.lambda)
    }

    /// The optimal leaf weight (before the learning rate).
    pub fn weight(&self, g: f64, h: f64) -> f64 {
        -self.threshold_l1(g) / (h + self.lambda)
    }
}

/// The best split of a node.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Split {
    pub feature: usize,
    /// Value bins `0..=bin` go left.
    pub bin: usize,
    pub default_left: bool,
    /// Loss reduction: `gain(L) + gain(R) − gain(parent)`.
    pub loss_change: f64,
    /// The children's quantised sums.
    pub left: Packed,
    pub right: Packed,
}

/// One split node in one small record: routing a row reads it instead of the tree's
/// separate arrays.
#[derive(Debug, Clone, Copy)]
pub struct Step {
    /// Value bins `0..=bin` go left.
    pub bin: u16,
    /// The split feature's missing-value code, when it has missing values.
    pub missing: Option<u8>,
    pub default_left: bool,
    pub left: u32,
    pub right: u32,
}

impl Step {
    /// Whether a row with bin `code` of the split feature goes left.
    #[inline]
    pub fn goes_left(&self, code: u8) -> bool {
        // Rows go either way at random: a branch here would be mispredicted half the time,
        // so both tests are taken and combined.
        let missing = self.missing == Some(code);
        (missing & self.default_left) | (!missing & (code as u16 <= self.bin))
    }

    /// The child a row with bin `code` of the split feature goes to.
    #[inline]
    pub fn child(&self, code: u8) -> usize {
        std::hint::select_unpredictable(self.goes_left(code), self.left, self.right) as usize
    }
}

/// The best split over `features` of a node with histogram `hist` and sums `total`, or
/// `None` when no split reduces the loss by more than `gamma`. Ties go to the lower feature
/// and bin, so the choice is deterministic.
pub fn best_split(
    hist: &Histogram,
    total: Packed,
    q: &Quantizer,
    cuts: &Cuts,
    offsets: &[usize],
    features: &[usize],
    p: &SplitParams,
) -> Option<Split> {
    let t = q.pair(total);
    let parent = p.gain(t[0], t[1]);
    let mut best: Option<Split> = None;
    for &f in features {
        let fb = &cuts.features[f];
        let n = fb.n_bins();
        if n < 2 {
            continue;
        }
        let slots = hist.feature(f, offsets);
        let miss = if fb.has_missing { slots[n] } else { Packed::ZERO };
        let mut left = Packed::ZERO;
        for (b, &s) in slots.iter().enumerate().take(n - 1) {
            left = left.plus(s);
            let right = total.minus(left).minus(miss);
            // Missing values right, then left; without missing values both are one split.
            let options: &[bool] = if fb.has_missing { &[false, true] } else { &[false] };
            for &miss_left in options {
                let (l, r) = if miss_left {
                    (left.plus(miss), right)
                } else {
                    (left, right.plus(miss))
                };
                let (lp, rp) = (q.pair(l), q.pair(r));
                if lp[1] < p.min_child_weight || rp[1] < p.min_child_weight {
                    continue;
                }
                let change = p.gain(lp[0], lp[1]) + p.gain(rp[0], rp[1]) - parent;
                if best.is_none_or(|bs| change > bs.loss_change) {
                    best = Some(Split {
                        feature: f,
                        bin: b,
                        default_left: miss_left,
                        loss_change: change,
                        left: l,
                        right: r,
                    });
                }
            }
        }
    }
    best.filter(|s| s.loss_change > p.gamma.max(1e-6))
}

/// The parent of the root, as XGBoost writes it.
pub const NO_PARENT: i32 = i32::MAX;

/// A tree in XGBoost's array layout: node 0 is the root; a leaf has `left == -1`.
///
/// Floats are written explicitly ([`crate::binning::json_float`]), though [`Tree::check`]
/// refuses any that is not finite: a threshold is a cut, and cuts are finite.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tree {
    pub left: Vec<i32>,
    pub right: Vec<i32>,
    pub parent: Vec<i32>,
    pub feature: Vec<u32>,
    /// Value bins `0..=split_bin` go left: the same test as `x < threshold`.
    pub split_bin: Vec<u16>,
    #[serde(with = "json_float::f32s")]
    pub threshold: Vec<f32>,
    pub default_left: Vec<bool>,
    /// A leaf's output (learning rate applied); an inner node's weight, for reference.
    #[serde(with = "json_float::f32s")]
    pub value: Vec<f32>,
    #[serde(with = "json_float::f32s")]
    pub loss_change: Vec<f32>,
    #[serde(with = "json_float::f32s")]
    pub sum_hess: Vec<f32>,
}

/// Heap bytes of one node: the ten per-node arrays' elements.
pub const NODE_BYTES: u64 = 3 * 4 + 4 + 2 + 4 + 1 + 4 + 4 + 4;

impl Tree {
    /// Nodes of a tree of depth `max_depth` at most (every level full).
    pub fn max_nodes(max_depth: usize) -> u64 {
        (1u64 << (max_depth.min(30) + 1)) - 1
    }

    /// Heap bytes a finished tree holds at most, once [`Self::shrink_to_fit`]: its nodes,
    /// plus its own slot in the model's list.
    pub fn max_bytes(max_depth: usize) -> u64 {
        Self::max_nodes(max_depth) * NODE_BYTES + std::mem::size_of::<Tree>() as u64
    }

    /// Drops the room the arrays grew into, so that a kept tree holds what
    /// [`Self::max_bytes`] prices: growth doubles capacity, and a model keeps hundreds of trees.
    pub fn shrink_to_fit(&mut self) {
        self.left.shrink_to_fit();
        self.right.shrink_to_fit();
        self.parent.shrink_to_fit();
        self.feature.shrink_to_fit();
        self.split_bin.shrink_to_fit();
        self.threshold.shrink_to_fit();
        self.default_left.shrink_to_fit();
        self.value.shrink_to_fit();
        self.loss_change.shrink_to_fit();
        self.sum_hess.shrink_to_fit();
    }

    /// A tree of one leaf.
    pub fn root(weight: f32, sum_hess: f32) -> Self {
        Self {
            left: vec![-1],
            right: vec![-1],
            parent: vec![NO_PARENT],
            feature: vec![0],
            split_bin: vec![0],
            threshold: vec![0.0],
            default_left: vec![false],
            value: vec![weight],
            loss_change: vec![0.0],
            sum_hess: vec![sum_hess],
        }
    }

    pub fn len(&self) -> usize {
        self.left.len()
    }

    pub fn is_empty(&self) -> bool {
        self.left.is_empty()
    }

    pub fn is_leaf(&self, n: usize) -> bool {
        self.left[n] < 0
    }

    /// Splits leaf `n`, whose children have weights `weights` and hessian sums `hess`;
    /// returns the new (left, right) node ids.
    pub fn split(
        &mut self,
        n: usize,
        s: &Split,
        threshold: f32,
        weights: (f32, f32),
        hess: (f64, f64),
    ) -> (usize, usize) {
        let l = self.len();
        for (w, h) in [(weights.0, hess.0), (weights.1, hess.1)] {
            self.left.push(-1);
            self.right.push(-1);
            self.parent.push(n as i32);
            self.feature.push(0);
            self.split_bin.push(0);
            self.threshold.push(0.0);
            self.default_left.push(false);
            self.value.push(w);
            self.loss_change.push(0.0);
            self.sum_hess.push(h as f32);
        }
        self.left[n] = l as i32;
        self.right[n] = l as i32 + 1;
        self.feature[n] = s.feature as u32;
        self.split_bin[n] = s.bin as u16;
        self.threshold[n] = threshold;
        self.default_left[n] = s.default_left;
        self.loss_change[n] = s.loss_change as f32;
        (l, l + 1)
    }

    /// See [`super::Model::check`]; `features` is the model's feature count.
    pub fn check(&self, features: usize) -> Result<(), String> {
        let n = self.len();
        if n == 0 {
            return Err("no nodes".into());
        }
        let lengths = [
            ("right", self.right.len()),
            ("parent", self.parent.len()),
            ("feature", self.feature.len()),
            ("split_bin", self.split_bin.len()),
            ("threshold", self.threshold.len()),
            ("default_left", self.default_left.len()),
            ("value", self.value.len()),
            ("loss_change", self.loss_change.len()),
            ("sum_hess", self.sum_hess.len()),
        ];
        if let Some((name, len)) = lengths.iter().find(|(_, l)| *l != n) {
            return Err(format!("`{name}` has {len} entries for {n} nodes"));
        }
        if self.parent[0] != NO_PARENT {
            return Err(format!("the root has parent {}, not {NO_PARENT}", self.parent[0]));
        }
        // Every node but the root is the child of exactly one node, which comes before it:
        // the nodes form one tree, and no path can loop.
        let mut has_parent = vec![false; n];
        for k in 0..n {
            let (l, r) = (self.left[k], self.right[k]);
            for (name, v) in [
                ("value", self.value[k]),
                ("loss_change", self.loss_change[k]),
                ("sum_hess", self.sum_hess[k]),
            ] {
                if !v.is_finite() {
                    return Err(format!("node {k} has a non-finite {name} ({v})"));
                }
            }
            if l == -1 && r == -1 {
                continue;
            }
            for c in [l, r] {
                if c <= k as i32 || c >= n as i32 {
                    return Err(format!(
                        "node {k} has child {c}: children must come after their node and inside the tree's {n} nodes"
                    ));
                }
                if std::mem::replace(&mut has_parent[c as usize], true) {
                    return Err(format!("node {c} is the child of two nodes"));
                }
                if self.parent[c as usize] != k as i32 {
                    return Err(format!(
                        "node {c} is a child of node {k} but names parent {}",
                        self.parent[c as usize]
                    ));
                }
            }
            if self.feature[k] as usize >= features {
                return Err(format!(
                    "node {k} splits on feature {} of {features}",
                    self.feature[k]
                ));
            }
            if !self.threshold[k].is_finite() {
                return Err(format!(
                    "node {k} has a non-finite threshold ({})",
                    self.threshold[k]
                ));
            }
        }
        if let Some(k) = (1..n).find(|&k| !has_parent[k]) {
            return Err(format!("node {k} is not reachable from the root"));
        }
        Ok(())
    }

    /// The child a row with bin `code` of the split feature goes to.
    #[inline]
    pub fn route_bin(&self, n: usize, code: u8, missing: Option<u8>) -> usize {
        self.step(n, missing).child(code)
    }

    /// Split node `n` as routing reads it, given its feature's missing-value code.
    #[inline]
    pub fn step(&self, n: usize, missing: Option<u8>) -> Step {
        Step {
            bin: self.split_bin[n],
            missing,
            default_left: self.default_left[n],
            left: self.left[n] as u32,
            right: self.right[n] as u32,
        }
    }

    /// The leaf a row of raw values reaches.
    pub fn leaf(&self, x: &[f32]) -> usize {
        let mut n = 0;
        while !self.is_leaf(n) {
            let v = x[self.feature[n] as usize];
            let left = if v.is_nan() {
                self.default_left[n]
            } else {
                v < self.threshold[n]
            };
            n = (if left { self.left[n] } else { self.right[n] }) as usize;
        }
        n
    }

    /// The tree's output for a row of raw values.
    pub fn predict(&self, x: &[f32]) -> f32 {
        self.value[self.leaf(x)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::binning::FeatureBins;

    fn cuts(has_missing: bool) -> Cuts {
        Cuts {
            max_bin: 256,
            features: vec![FeatureBins {
                name: "x".into(),
                cuts: vec![1.0, 2.0, 3.0],
                has_missing,
                sparse: false,
                zero_bin: 0,
                present: 0,
                zeros: 0,
            }],
        }
    }

    fn params() -> SplitParams {
        SplitParams {
            lambda: 1.0,
            alpha: 0.0,
            gamma: 0.0,
            min_child_weight: 0.0,
        }
    }

    /// Steps of 0.5 for gradients and hessians: the hand-worked values below are exact.
    const HALVES: Quantizer = Quantizer {
        g_step: 0.5,
        h_step: 0.5,
    };

    /// Rows as (bin, g, h); the histogram and total built by hand.
    fn hist_of(rows: &[(u8, f64, f64)]) -> (Histogram, Packed) {
        let mut h = Histogram::zeros(5);
        let mut t = Packed::ZERO;
        for &(b, g, hh) in rows {
            let w = Packed::new((g / 0.5) as i32, (hh / 0.5) as u32);
            h.bins[b as usize] = h.bins[b as usize].plus(w);
            t = t.plus(w);
        }
        (h, t)
    }

    #[test]
    fn split_gain_matches_a_hand_worked_example() {
        // Bins 0..3 with (g, h); lambda 1. Parent: G = -0.5, H = 4.5.
        let rows = [
            (0, -2.0, 1.0),
            (1, -1.5, 1.0),
            (2, 1.0, 1.0),
            (3, 2.5, 1.0),
            (1, -0.5, 0.5),
        ];
        let (h, t) = hist_of(&rows);
        let s = best_split(&h, t, &HALVES, &cuts(false), &[0, 4], &[0], &params()).unwrap();
        // By hand, G²/(H + 1) per side minus the parent's 0.25/5.5:
        //   bins 0 | 1..3: 4/2 + 2.25/4.5 = 2.5
        //   bins 0..1 | 2..3: 16/3.5 + 12.25/3 = 8.6548
        //   bins 0..2 | 3: 9/4.5 + 6.25/2 = 5.125
        assert_eq!(s.bin, 1);
        assert!((s.loss_change - (16.0 / 3.5 + 12.25 / 3.0 - 0.25 / 5.5)).abs() < 1e-12);
        assert_eq!(HALVES.pair(s.left), [-4.0, 2.5]);
        assert_eq!(HALVES.pair(s.right), [3.5, 2.0]);
    }

    #[test]
    fn missing_values_learn_their_direction() {
        // Missing rows look like the high bins: they should go right.
        let rows = [
            (0, -2.0, 1.0),
            (0, -2.0, 1.0),
            (3, 2.0, 1.0),
            (4, 2.0, 1.0),
            (4, 2.0, 1.0),
        ];
        let (h, t) = hist_of(&rows);
        let s = best_split(&h, t, &HALVES, &cuts(true), &[0, 5], &[0], &params()).unwrap();
        assert!(!s.default_left);
        assert_eq!(HALVES.pair(s.right), [6.0, 3.0]);
        let mut tree = Tree::root(0.0, 5.0);
        tree.split(0, &s, 1.0, (-1.0, 1.0), (2.0, 3.0));
        assert_eq!(tree.leaf(&[f32::NAN]), 2);
        assert_eq!(tree.leaf(&[0.5]), 1);
        assert_eq!(tree.route_bin(0, 4, Some(4)), 2);
    }

    #[test]
    fn gamma_blocks_weak_splits() {
        let (h, t) = hist_of(&[(0, -1.0, 1.0), (3, 1.0, 1.0)]);
        let mut p = params();
        let s = best_split(&h, t, &HALVES, &cuts(false), &[0, 4], &[0], &p).unwrap();
        p.gamma = s.loss_change + 1e-9;
        assert!(best_split(&h, t, &HALVES, &cuts(false), &[0, 4], &[0], &p).is_none());
    }
}
