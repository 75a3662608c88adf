//! How well predicted probabilities match observed frequencies.
//!
//! The meta-model's probabilities are read as probabilities (thresholds, expected counts), so
//! the report scores their calibration as well as their ranking: the Brier score, the expected
//! calibration error and the reliability diagram behind it. Bins are scikit-learn's
//! `calibration_curve(strategy="uniform")` bins: `(i/b, (i+1)/b]`, the first one closed, because
//! it places p with `np.searchsorted(edges, p)` (side "left"). For f32 inputs and 10 bins
//! this only matters at p = 0.5, which falls in bin 4, not 5.

use serde::{Deserialize, Serialize};

/// One non-empty bin of a reliability diagram.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReliabilityBin {
    pub lo: f64,
    pub hi: f64,
    pub mean_predicted: f64,
    pub fraction_positive: f64,
    pub count: u64,
}

/// Bin of probability `p` among `bins` equal-width bins on [0, 1], an edge value going to
/// the lower bin. Values outside [0, 1] (and NaN) fall in the nearest end bin rather than
/// out of range. For an f32 `p`, `p * bins` is exact in f64, so edges are decided exactly.
#[inline]
pub(crate) fn bin_of(p: f64, bins: usize) -> usize {
    let upper = (p * bins as f64).ceil();
    if upper >= 1.0 {
        (upper as usize - 1).min(bins - 1)
    } else {
        0
    }
}

/// Per-bin running sums, shared by [`ece`], [`reliability`] and `classify`.
#[derive(Debug, Clone)]
pub(crate) struct Bins {
    sum_p: Vec<f64>,
    pos: Vec<u64>,
    count: Vec<u64>,
}

impl Bins {
    /// `bins` must be at least 1.
    pub(crate) fn new(bins: usize) -> Self {
        Self {
            sum_p: vec![0.0; bins],
            pos: vec![0; bins],
            count: vec![0; bins],
        }
    }

    #[inline]
    pub(crate) fn add(&mut self, p: f32, y: bool) {
        let p = p as f64;
        let b = bin_of(p, self.count.len());
        self.sum_p[b] += p;
        self.pos[b] += y as u64;
        self.count[b] += 1;
    }

    /// Σ_b (n_b / n)·|mean p_b − fraction positive_b|; 0 for no rows.
    pub(crate) fn ece(&self) -> f64 {
        let n: u64 = self.count.iter().sum();
        if n == 0 {
            return 0.0;
        }
        let mut total = 0.0;
        for b in 0..self.count.len() {
            let c = self.count[b];
            if c > 0 {
                let gap = self.sum_p[b] / c as f64 - self.pos[b] as f64 / c as f64;
                total += c as f64 / n as f64 * gap.abs();
            }
        }
        total
    }

    pub(crate) fn diagram(&self) -> Vec<ReliabilityBin> {
        let bins = self.count.len();
        (0..bins)
            .filter(|&b| self.count[b] > 0)
            .map(|b| {
                let c = self.count[b] as f64;
                ReliabilityBin {
                    lo: b as f64 / bins as f64,
                    hi: (b + 1) as f64 / bins as f64,
                    mean_predicted: self.sum_p[b] / c,
                    fraction_positive: self.pos[b] as f64 / c,
                    count: self.count[b],
                }
            })
            .collect()
    }
}

fn check_lengths(p: &[f32], y: &[bool]) {
    assert_eq!(p.len(), y.len(), "probabilities and labels differ in length");
}

/// Brier score, mean (p − y)² in f64 (scikit-learn's `brier_score_loss`); 0 for no rows, so
/// that results stay JSON numbers. Allocates nothing.
///
/// # Panics
/// If `p` and `y` differ in length.
pub fn brier(p: &[f32], y: &[bool]) -> f64 {
    check_lengths(p, y);
    if p.is_empty() {
        return 0.0;
    }
    let sum: f64 = p
        .iter()
        .zip(y)
        .map(|(&p, &y)| {
            let d = p as f64 - y as u8 as f64;
            d * d
        })
        .sum();
    sum / p.len() as f64
}

/// Expected calibration error over `bins` equal-width bins on [0, 1] (see the module doc):
/// Σ_b (n_b / n)·|mean p_b − fraction positive_b|; 0 for no rows. `bins` = 0 is taken as 1.
///
/// Heap: 3 × `bins` words.
///
/// # Panics
/// If `p` and `y` differ in length.
pub fn ece(p: &[f32], y: &[bool], bins: usize) -> f64 {
    check_lengths(p, y);
    let mut b = Bins::new(bins.max(1));
    p.iter().zip(y).for_each(|(&p, &y)| b.add(p, y));
    b.ece()
}

/// Reliability diagram: the non-empty bins among `bins` equal-width bins on [0, 1], with
/// their mean probability and fraction of positives (scikit-learn's `calibration_curve`
/// with `strategy="uniform"`, plus bin edges and counts). `bins` = 0 is taken as 1.
///
/// Heap: 3 × `bins` words while counting, plus the returned ≤ `bins` × 40 bytes.
///
/// # Panics
/// If `p` and `y` differ in length.
pub fn reliability(p: &[f32], y: &[bool], bins: usize) -> Vec<ReliabilityBin> {
    check_lengths(p, y);
    let mut b = Bins::new(bins.max(1));
    p.iter().zip(y).for_each(|(&p, &y)| b.add(p, y));
    b.diagram()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edges_follow_calibration_curve() {
        // 0.1f32 is just above 0.1, so it opens bin 1; 0.5 is an edge and closes bin 4;
        // 0 and 1 close the end bins.
        assert_eq!(bin_of(0.1f32 as f64, 10), 1);
        assert_eq!(bin_of(0.5, 10), 4);
        assert_eq!(bin_of(1.0, 10), 9);
        assert_eq!(bin_of(0.0, 10), 0);
        assert_eq!(
            (bin_of(-0.5, 10), bin_of(1.5, 10), bin_of(f64::NAN, 10)),
            (0, 9, 0)
        );
    }

    #[test]
    fn ece_by_hand() {
        // Bin 0: p .05, .05 with one positive: gap |.05 − .5| = .45 over 2 of 4 rows.
        // Bin 9: p .95, 1.0 both positive: gap |.975 − 1| = .025 over 2 of 4 rows.
        let p = [0.05f32, 0.05, 0.95, 1.0];
        let y = [true, false, true, true];
        let mean_hi = (0.95f32 as f64 + 1.0) / 2.0;
        let expected = 0.5 * (0.05f32 as f64 - 0.5).abs() + 0.5 * (mean_hi - 1.0).abs();
        assert!((ece(&p, &y, 10) - expected).abs() < 1e-15);
        let d = reliability(&p, &y, 10);
        assert_eq!(d.len(), 2);
        assert_eq!((d[1].lo, d[1].hi, d[1].count), (0.9, 1.0, 2));
    }

    #[test]
    fn empty_input_scores_zero() {
        assert_eq!(brier(&[], &[]), 0.0);
        assert_eq!(ece(&[], &[], 10), 0.0);
        assert!(reliability(&[], &[], 10).is_empty());
    }
}
