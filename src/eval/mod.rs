//! Metrics, computed the way scikit-learn computes them.
//!
//! Training uses the binary ones here for early stopping and logging. The gene-wise
//! cross-validation report needs the rest, each in its own submodule: three-class scores
//! ([`mod@classify`]), curves to plot ([`curves`]), calibration ([`mod@reliability`]) and
//! SpliceAI's gene-level top-k ([`topk`]). Every function that allocates says how much in its
//! doc, because callers reserve from the run's memory pool first.

pub mod calibrate;
pub mod classify;
pub mod curves;
pub mod reliability;
pub mod sites;
pub mod topk;

pub use classify::{argmax3, classify, BinaryCounts, ClassMetrics, Metrics};
pub use curves::{pr_curve, roc_curve};
pub use reliability::{brier, ece, reliability, ReliabilityBin};
pub use topk::{gene_top_k, summarize, GeneTopK, TopKSummary};

/// One row's binary log loss, with `p` clipped to `[1e-15, 1 - 1e-15]` as scikit-learn does.
#[inline]
pub fn logloss_term(p: f32, y: f32) -> f64 {
    let eps = 1e-15;
    let p = (p as f64).clamp(eps, 1.0 - eps);
    // A 0/1 target needs one logarithm: the other term is 0 × a finite number, so the sum
    // is bit for bit the same without it (the training loss takes one a row every tree).
    if y == 1.0 {
        -p.ln()
    } else if y == 0.0 {
        -(1.0 - p).ln()
    } else {
        -(y as f64 * p.ln() + (1.0 - y as f64) * (1.0 - p).ln())
    }
}

/// Mean binary log loss of probabilities `p` against 0/1 labels.
pub fn logloss(p: &[f32], y: &[f32]) -> f64 {
    if p.is_empty() {
        return f64::NAN;
    }
    p.iter().zip(y).map(|(&p, &y)| logloss_term(p, y)).sum::<f64>() / p.len() as f64
}

/// ROC-AUC of `score` against 0/1 targets `y` (ties count half); NaN with one class only.
/// `keys` is the caller's sort buffer (8 bytes a row), reused across calls.
pub fn roc_auc(score: &[f32], y: &[f32], keys: &mut Vec<u64>) -> f64 {
    curves::sort_descending(score, keys);
    curves::auc_and_ap(score, keys, |i| y[i] > 0.5)
        .0
        .unwrap_or(f64::NAN)
}

/// Average precision of `score` against 0/1 targets `y`, as scikit-learn's
/// `average_precision_score`; NaN without positives. `keys` as for [`roc_auc`].
pub fn average_precision(score: &[f32], y: &[f32], keys: &mut Vec<u64>) -> f64 {
    curves::sort_descending(score, keys);
    curves::auc_and_ap(score, keys, |i| y[i] > 0.5)
        .1
        .unwrap_or(f64::NAN)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Expected values from scikit-learn 1.x on the same inputs.
    const S: [f32; 6] = [0.1, 0.4, 0.35, 0.8, 0.4, 0.9];
    const Y: [f32; 6] = [0.0, 0.0, 1.0, 1.0, 1.0, 0.0];

    #[test]
    fn auc_with_ties() {
        // roc_auc_score([0,0,1,1,1,0], [.1,.4,.35,.8,.4,.9]) = 0.5
        assert!((roc_auc(&S, &Y, &mut vec![]) - 0.5).abs() < 1e-12);
        assert!((roc_auc(&[0.1, 0.4, 0.35, 0.8], &[0.0, 0.0, 1.0, 1.0], &mut vec![]) - 0.75).abs() < 1e-12);
    }

    #[test]
    fn average_precision_with_ties() {
        // average_precision_score([0,0,1,1,1,0], [.1,.4,.35,.8,.4,.9]):
        // thresholds .9 (P 0/1), .8 (1/2, R 1/3), .4 (2/4, R 2/3), .35 (3/5, R 1)
        let expected = (1.0 / 3.0) * 0.5 + (1.0 / 3.0) * 0.5 + (1.0 / 3.0) * 0.6;
        assert!((average_precision(&S, &Y, &mut vec![]) - expected).abs() < 1e-12);
    }

    #[test]
    fn logloss_matches_definition() {
        let l = logloss(&[0.9, 0.2], &[1.0, 0.0]);
        assert!((l - (-(0.9f32 as f64).ln() - (1.0 - 0.2f32 as f64).ln()) / 2.0).abs() < 1e-12);
    }
}
