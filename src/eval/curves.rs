//! Threshold sweeps over one score column.
//!
//! ROC-AUC, average precision and the plotted ROC and precision–recall curves all walk the
//! same descending order of scores, so one sort per score column serves them all. Tied scores
//! form one threshold, as in scikit-learn's `roc_curve` and `precision_recall_curve`.

use rayon::slice::ParallelSliceMut;

/// Monotone `u32` image of an `f32` in the order of [`f32::total_cmp`], so that scores sort
/// as plain integers.
pub(crate) fn order_bits(v: f32) -> u32 {
    let b = v.to_bits();
    if b & 0x8000_0000 != 0 {
        !b
    } else {
        b | 0x8000_0000
    }
}

/// The `f32` whose [`order_bits`] are `k`.
pub(crate) fn from_order_bits(k: u32) -> f32 {
    if k & 0x8000_0000 != 0 {
        f32::from_bits(k & 0x7fff_ffff)
    } else {
        f32::from_bits(!k)
    }
}

/// A row's place in a descending ranking of scores: the score's order inverted in the high
/// half, the row in the low half, so that ascending keys are descending scores, ties in row
/// order.
#[inline]
pub(crate) fn rank_key(score: f32, row: usize) -> u64 {
    (u64::from(!order_bits(score)) << 32) | row as u64
}

/// The row of a [`rank_key`].
#[inline]
pub(crate) fn key_row(key: u64) -> usize {
    key as u32 as usize
}

/// Fills `keys` with every row's [`rank_key`], sorted: rows by descending score, ties in row
/// order (so the result is deterministic). Scores compare by [`f32::total_cmp`]: a NaN score
/// ranks above every number. `keys` is reused so that a caller sorting three columns
/// allocates once (8n bytes). Sorting the keys themselves rather than row numbers by a
/// lookup of their scores reads memory in order: a training validated by AUC sorts its
/// validation rows after every tree, where the lookup's sort took a tenth of a one-model
/// training, and a cross-validation's evaluation sorts millions of rows. The sort runs on
/// rayon's threads, in place.
pub(crate) fn sort_descending(score: &[f32], keys: &mut Vec<u64>) {
    u32::try_from(score.len()).expect("a score column of at most 2³² rows");
    keys.clear();
    keys.extend(score.iter().enumerate().map(|(i, &s)| rank_key(s, i)));
    keys.par_sort_unstable();
}

/// Walks `keys` (from [`sort_descending`]) one group of equal scores at a time, calling
/// `at_threshold(tp, fp)` with the cumulative counts after each group.
pub(crate) fn sweep(
    score: &[f32],
    keys: &[u64],
    is_pos: impl Fn(usize) -> bool,
    mut at_threshold: impl FnMut(u64, u64),
) {
    let (mut tp, mut fp) = (0u64, 0u64);
    let mut i = 0;
    while i < keys.len() {
        let s = score[key_row(keys[i])];
        // At least one row per group, so that a NaN (never equal to itself) still advances.
        loop {
            if is_pos(key_row(keys[i])) {
                tp += 1;
            } else {
                fp += 1;
            }
            i += 1;
            if i == keys.len() || score[key_row(keys[i])] != s {
                break;
            }
        }
        at_threshold(tp, fp);
    }
}

/// ROC-AUC and average precision of one sorted column: `None` where scikit-learn refuses
/// (ROC-AUC without positives or without negatives; AP without positives).
///
/// The AUC is the trapezoid area summed in integers (ties count half, the Mann–Whitney
/// statistic), so it is exact up to the final division. Allocates nothing.
pub(crate) fn auc_and_ap(
    score: &[f32],
    keys: &[u64],
    is_pos: impl Fn(usize) -> bool + Copy,
) -> (Option<f64>, Option<f64>) {
    let pos = keys.iter().filter(|&&k| is_pos(key_row(k))).count() as u64;
    let neg = keys.len() as u64 - pos;
    let (mut area2, mut ap) = (0u128, 0.0f64);
    let (mut last_tp, mut last_fp) = (0u64, 0u64);
    sweep(score, keys, is_pos, |tp, fp| {
        area2 += (fp - last_fp) as u128 * (tp + last_tp) as u128;
        if tp > last_tp {
            ap += (tp - last_tp) as f64 / pos as f64 * (tp as f64 / (tp + fp) as f64);
        }
        last_tp = tp;
        last_fp = fp;
    });
    let auc = (pos > 0 && neg > 0).then(|| area2 as f64 / (2.0 * pos as f64 * neg as f64));
    (auc, (pos > 0).then_some(ap))
}

/// Number of distinct thresholds (groups of equal scores) in a sorted column.
fn thresholds(score: &[f32], keys: &[u64]) -> usize {
    let mut n = 0;
    sweep(score, keys, |_| false, |_, _| n += 1);
    n
}

/// Keeps at most `max_points` (at least 2) of the `total` points `point(j)` would give,
/// evenly spaced by index and always including the first and the last.
struct Thinner {
    total: usize,
    keep: usize,
    next: usize,
}

impl Thinner {
    fn new(total: usize, max_points: usize) -> Self {
        Self {
            total,
            keep: total.min(max_points.max(2)),
            next: 0,
        }
    }

    /// Index of the `i`-th kept point; strictly increasing in `i` because `keep <= total`.
    fn source(&self, i: usize) -> usize {
        if self.keep <= 1 {
            return 0;
        }
        (i as u128 * (self.total - 1) as u128 / (self.keep - 1) as u128) as usize
    }

    /// Whether point `j` (visited in order) is kept.
    fn take(&mut self, j: usize) -> bool {
        if self.next < self.keep && self.source(self.next) == j {
            self.next += 1;
            true
        } else {
            false
        }
    }
}

fn check_lengths(score: &[f32], y: &[bool]) {
    assert_eq!(score.len(), y.len(), "scores and labels differ in length");
}

/// ROC curve as (false positive rate, true positive rate) points for plotting: (0, 0), then
/// one point per distinct score from the highest down, ending at (1, 1); thinned to at most
/// `max_points` (at least 2) evenly spaced points, keeping both ends. Unthinned, it is
/// scikit-learn's `roc_curve(drop_intermediate=False)`. Empty when `y` has no positives or no
/// negatives.
///
/// Heap: sorts a key a row (8n bytes), plus the returned ≤ `max_points` × 16 bytes.
///
/// # Panics
/// If `score` and `y` differ in length.
pub fn roc_curve(score: &[f32], y: &[bool], max_points: usize) -> Vec<(f64, f64)> {
    check_lengths(score, y);
    let pos = y.iter().filter(|&&v| v).count() as u64;
    let neg = y.len() as u64 - pos;
    if pos == 0 || neg == 0 {
        return Vec::new();
    }
    curve(score, y, max_points, (0.0, 0.0), |tp, fp| {
        (fp as f64 / neg as f64, tp as f64 / pos as f64)
    })
}

/// Precision–recall curve as (recall, precision) points for plotting, by increasing recall:
/// (0, 1), then one point per distinct score from the highest down; thinned as
/// [`roc_curve`]. Unthinned, it is scikit-learn's `precision_recall_curve` reversed. Empty
/// when `y` has no positives.
///
/// Heap: sorts a key a row (8n bytes), plus the returned ≤ `max_points` × 16 bytes.
///
/// # Panics
/// If `score` and `y` differ in length.
pub fn pr_curve(score: &[f32], y: &[bool], max_points: usize) -> Vec<(f64, f64)> {
    check_lengths(score, y);
    let pos = y.iter().filter(|&&v| v).count() as u64;
    if pos == 0 {
        return Vec::new();
    }
    curve(score, y, max_points, (0.0, 1.0), |tp, fp| {
        (tp as f64 / pos as f64, tp as f64 / (tp + fp) as f64)
    })
}

/// The shared sweep of both curves: `first`, then `point(tp, fp)` at each distinct score
/// from the highest down, thinned to at most `max_points`.
fn curve(
    score: &[f32],
    y: &[bool],
    max_points: usize,
    first: (f64, f64),
    point: impl Fn(u64, u64) -> (f64, f64),
) -> Vec<(f64, f64)> {
    let mut keys = Vec::new();
    sort_descending(score, &mut keys);
    let mut thin = Thinner::new(thresholds(score, &keys) + 1, max_points);
    let mut out = Vec::with_capacity(thin.keep);
    let mut j = 0;
    if thin.take(j) {
        out.push(first);
    }
    sweep(
        score,
        &keys,
        |i| y[i],
        |tp, fp| {
            j += 1;
            if thin.take(j) {
                out.push(point(tp, fp));
            }
        },
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: [f32; 6] = [0.1, 0.4, 0.35, 0.8, 0.4, 0.9];
    const Y: [bool; 6] = [false, false, true, true, true, false];

    #[test]
    fn roc_curve_has_one_point_per_threshold() {
        // Thresholds .9, .8, .4 (one pos, one neg), .35, .1 over 3 positives and 3 negatives.
        let c = roc_curve(&S, &Y, 100);
        let third = 1.0 / 3.0;
        let expected = [
            (0.0, 0.0),
            (third, 0.0),
            (third, third),
            (2.0 * third, 2.0 * third),
        ];
        for (got, want) in c.iter().zip(expected) {
            assert!((got.0 - want.0).abs() < 1e-12 && (got.1 - want.1).abs() < 1e-12);
        }
        assert_eq!(c.len(), 6);
        assert_eq!(*c.last().unwrap(), (1.0, 1.0));
    }

    #[test]
    fn thinning_keeps_both_ends() {
        let s: Vec<f32> = (0..1000).map(|i| i as f32 / 1000.0).collect();
        let y: Vec<bool> = (0..1000).map(|i| i % 3 == 0).collect();
        let full = roc_curve(&s, &y, usize::MAX);
        assert_eq!(full.len(), 1001);
        let thin = roc_curve(&s, &y, 50);
        assert_eq!(thin.len(), 50);
        assert_eq!(thin[0], (0.0, 0.0));
        assert_eq!(*thin.last().unwrap(), (1.0, 1.0));
        assert!(thin.windows(2).all(|w| w[0].0 <= w[1].0 && w[0].1 <= w[1].1));
        let pr = pr_curve(&s, &y, 2);
        assert_eq!(pr, vec![(0.0, 1.0), (1.0, 334.0 / 1000.0)]);
    }

    #[test]
    fn curves_are_empty_when_undefined() {
        assert!(roc_curve(&[0.2, 0.3], &[true, true], 10).is_empty());
        assert!(pr_curve(&[0.2, 0.3], &[false, false], 10).is_empty());
    }
}
