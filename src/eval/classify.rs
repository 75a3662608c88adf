//! Three-class scores of a splice-site model, as scikit-learn reports them.
//!
//! Cross-validation folds are compared with published numbers computed by scikit-learn, so
//! every convention follows it: argmax ties go to the lowest class, a 0/0 precision, recall
//! or F1 is 0 (`zero_division=0`), ROC-AUC and AP are one-vs-rest per class, and a metric
//! scikit-learn refuses to compute is `None` rather than a number.

use serde::{Deserialize, Serialize};

use super::curves::{auc_and_ap, sort_descending};
use super::reliability::Bins;
use crate::io::CLASS_NAMES;

/// Bins of the expected calibration error in [`classify`].
pub const ECE_BINS: usize = 10;

/// One class's scores, one-vs-rest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassMetrics {
    /// `neither`, `donor` or `acceptor`, so that the JSON report is self-describing.
    pub class: String,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    /// Rows whose true label is this class.
    pub support: u64,
    /// `None` when the class has no positives or no negatives.
    pub roc_auc: Option<f64>,
    /// `None` when the class has no positives (with no negatives it is 1, as in scikit-learn).
    pub average_precision: Option<f64>,
    pub brier: f64,
    pub ece: f64,
}

/// Scores of a three-class prediction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    pub rows: u64,
    pub accuracy: f64,
    /// Mean of the three classes' F1, absent classes included (scikit-learn's
    /// `f1_score(labels=[0, 1, 2], average="macro", zero_division=0)`; without `labels` it
    /// would average only over the classes present in the labels or the predictions).
    pub macro_f1: f64,
    /// In class-code order: neither, donor, acceptor.
    pub classes: Vec<ClassMetrics>,
    /// `confusion[true][predicted]`, as `confusion_matrix(labels=[0, 1, 2])`.
    pub confusion: [[u64; 3]; 3],
}

/// Confusion counts of one binary call, e.g. a base model's score ≥ 0.5.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct BinaryCounts {
    pub tp: u64,
    pub fp: u64,
    pub fn_: u64,
    pub tn: u64,
}

/// `num / den`, or 0 when `den` is 0 (scikit-learn's `zero_division=0`).
fn ratio(num: u64, den: u64) -> f64 {
    if den == 0 {
        0.0
    } else {
        num as f64 / den as f64
    }
}

impl BinaryCounts {
    /// Counts the calls `score >= threshold` against `y`. Allocates nothing.
    ///
    /// # Panics
    /// If `score` and `y` differ in length.
    pub fn from_threshold(score: &[f32], y: &[bool], threshold: f32) -> Self {
        assert_eq!(score.len(), y.len(), "scores and labels differ in length");
        let mut c = Self::default();
        for (&s, &y) in score.iter().zip(y) {
            match (s >= threshold, y) {
                (true, true) => c.tp += 1,
                (true, false) => c.fp += 1,
                (false, true) => c.fn_ += 1,
                (false, false) => c.tn += 1,
            }
        }
        c
    }

    /// tp / (tp + fp), 0 when nothing is called.
    pub fn precision(&self) -> f64 {
        ratio(self.tp, self.tp + self.fp)
    }

    /// tp / (tp + fn), 0 when there are no positives.
    pub fn recall(&self) -> f64 {
        ratio(self.tp, self.tp + self.fn_)
    }

    /// 2tp / (2tp + fp + fn), 0 when that is 0/0 — the harmonic mean of precision and
    /// recall written as scikit-learn computes it.
    pub fn f1(&self) -> f64 {
        ratio(2 * self.tp, 2 * self.tp + self.fp + self.fn_)
    }
}

/// The predicted class code: the argmax, ties to the lowest code (NumPy's `argmax`). A NaN
/// never wins against a number; all NaN gives class 0. Every predicted type spliceboost
/// writes or scores (the confusion matrix, `oof_predictions.parquet`, `predict`) comes from
/// here.
#[inline]
pub fn argmax3(p: [f32; 3]) -> u8 {
    let mut best = 0;
    let mut top = p[0];
    for (c, &v) in p.iter().enumerate().skip(1) {
        if v > top || (top.is_nan() && !v.is_nan()) {
            best = c;
            top = v;
        }
    }
    best as u8
}

/// Scores three-class probabilities `p` (one slice per class code) against labels `y`.
///
/// All arithmetic is f64 on the f32 inputs. Empty input gives zero scores and `None` curves.
///
/// Heap: sorts a key a row once per class, reusing one buffer (8n bytes), plus
/// small fixed-size tallies.
///
/// # Panics
/// If a column's length differs from `y`'s, or a label is not 0, 1 or 2 (labels come from
/// [`crate::io::decode_labels`], which guarantees it).
pub fn classify(y: &[u8], p: [&[f32]; 3]) -> Metrics {
    let n = y.len();
    for col in p {
        assert_eq!(col.len(), n, "probability column and labels differ in length");
    }
    let mut confusion = [[0u64; 3]; 3];
    let mut sq_err = [0.0f64; 3];
    let mut bins = [Bins::new(ECE_BINS), Bins::new(ECE_BINS), Bins::new(ECE_BINS)];
    for i in 0..n {
        let t = y[i] as usize;
        assert!(t < 3, "label {t} at row {i} is not a class code 0, 1 or 2");
        confusion[t][argmax3([p[0][i], p[1][i], p[2][i]]) as usize] += 1;
        for c in 0..3 {
            let pos = t == c;
            let d = p[c][i] as f64 - pos as u8 as f64;
            sq_err[c] += d * d;
            bins[c].add(p[c][i], pos);
        }
    }

    let mut keys = Vec::new();
    let mut classes = Vec::with_capacity(3);
    for c in 0..3 {
        let tp = confusion[c][c];
        let support: u64 = confusion[c].iter().sum();
        let predicted: u64 = (0..3).map(|t| confusion[t][c]).sum();
        let (fp, fn_) = (predicted - tp, support - tp);
        let counts = BinaryCounts {
            tp,
            fp,
            fn_,
            tn: n as u64 - tp - fp - fn_,
        };
        sort_descending(p[c], &mut keys);
        let (roc_auc, average_precision) = auc_and_ap(p[c], &keys, |i| y[i] as usize == c);
        classes.push(ClassMetrics {
            class: CLASS_NAMES[c].to_string(),
            precision: counts.precision(),
            recall: counts.recall(),
            f1: counts.f1(),
            support,
            roc_auc,
            average_precision,
            brier: if n == 0 { 0.0 } else { sq_err[c] / n as f64 },
            ece: bins[c].ece(),
        });
    }
    let correct: u64 = (0..3).map(|c| confusion[c][c]).sum();
    Metrics {
        rows: n as u64,
        accuracy: ratio(correct, n as u64),
        macro_f1: classes.iter().map(|m| m.f1).sum::<f64>() / 3.0,
        classes,
        confusion,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argmax_ties_go_to_the_lowest_class() {
        assert_eq!(argmax3([0.4, 0.4, 0.2]), 0);
        assert_eq!(argmax3([0.2, 0.4, 0.4]), 1);
        assert_eq!(argmax3([f32::NAN, 0.1, 0.2]), 2);
        assert_eq!(argmax3([0.3, f32::NAN, 0.2]), 0);
        assert_eq!(argmax3([f32::NAN; 3]), 0);
    }

    #[test]
    fn zero_division_is_zero() {
        let c = BinaryCounts::from_threshold(&[0.1, 0.2], &[false, false], 0.5);
        assert_eq!(
            c,
            BinaryCounts {
                tp: 0,
                fp: 0,
                fn_: 0,
                tn: 2
            }
        );
        assert_eq!((c.precision(), c.recall(), c.f1()), (0.0, 0.0, 0.0));
    }

    #[test]
    fn metrics_serialize_with_class_names() {
        let m = classify(
            &[0, 1, 2, 1],
            [
                &[0.8, 0.1, 0.1, 0.3],
                &[0.1, 0.8, 0.1, 0.6],
                &[0.1, 0.1, 0.8, 0.1],
            ],
        );
        assert_eq!(m.accuracy, 1.0);
        let json = serde_json::to_string(&m).unwrap();
        assert!(json.contains("\"class\":\"acceptor\""));
        // serde_json without its `float_roundtrip` feature may read a float back 1 ulp off.
        let back: Metrics = serde_json::from_str(&json).unwrap();
        assert_eq!((back.rows, back.confusion), (m.rows, m.confusion));
        for (b, c) in back.classes.iter().zip(&m.classes) {
            assert_eq!((&b.class, b.support, b.roc_auc), (&c.class, c.support, c.roc_auc));
            assert!((b.ece - c.ece).abs() < 1e-15 && (b.brier - c.brier).abs() < 1e-15);
        }
    }
}
