//! MetaSpliceAI's score-derived features, computed from one position's base scores and its
//! neighbours' scores.
//!
//! The synthetic generator and the dataset builder both use these formulas, so both write the
//! same columns with the same meaning (k-mers are counted in `crate::io::kmers`). The
//! definitions follow the Python original's training sets (see `docs/dataset.md`).

/// The small constant the original adds to denominators and logarithms.
pub const EPS: f64 = 1e-10;

/// The denominator floor the dataset builder uses in every ratio whose denominator can reach
/// zero. With the original's `EPS` a score of 0.5 over a flat neighbourhood of zeros gives a
/// ratio of 5e9, so a handful of rows decide a column's scale; with this floor a ratio of
/// probabilities stays within ±100 and a ratio of two such ratios within ±1e4.
pub const RATIO_FLOOR: f64 = 1e-2;

/// Names of the columns [`derive`] fills, in order.
pub const DERIVED_COLUMNS: [&str; 40] = [
    "context_score_m2",
    "context_score_m1",
    "context_score_p1",
    "context_score_p2",
    "context_neighbor_mean",
    "context_asymmetry",
    "context_max",
    "donor_diff_m1",
    "donor_diff_m2",
    "donor_diff_p1",
    "donor_diff_p2",
    "donor_surge_ratio",
    "donor_is_local_peak",
    "donor_weighted_context",
    "donor_peak_height_ratio",
    "donor_second_derivative",
    "donor_signal_strength",
    "donor_context_diff_ratio",
    "acceptor_diff_m1",
    "acceptor_diff_m2",
    "acceptor_diff_p1",
    "acceptor_diff_p2",
    "acceptor_surge_ratio",
    "acceptor_is_local_peak",
    "acceptor_weighted_context",
    "acceptor_peak_height_ratio",
    "acceptor_second_derivative",
    "acceptor_signal_strength",
    "acceptor_context_diff_ratio",
    "relative_donor_probability",
    "splice_probability",
    "donor_acceptor_diff",
    "splice_neither_diff",
    "donor_acceptor_logodds",
    "splice_neither_logodds",
    "probability_entropy",
    "donor_acceptor_peak_ratio",
    "type_signal_difference",
    "score_difference_ratio",
    "signal_strength_ratio",
];

/// One position's base scores and its neighbours on both tracks, as `[m2, m1, p1, p2]`
/// (zero-padded at gene ends).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScoreWindow {
    pub donor: f64,
    pub acceptor: f64,
    pub neither: f64,
    pub donor_ctx: [f64; 4],
    pub acceptor_ctx: [f64; 4],
    /// Whose track the `context_*` columns show. The synthetic generator mimics the Python's
    /// datasets, where it is the row's own type; the builder takes the stronger score's track,
    /// which does not depend on the label.
    pub own_is_donor: bool,
}

struct Shape {
    values: [f64; 11],
    peak_height_ratio: f64,
    signal_strength: f64,
}

/// `x / (|y| + floor)`: the original's `x / (y + eps)` when `floor` is `EPS` and `y` is not
/// negative, and bounded for the builder's floor.
fn ratio(x: f64, y: f64, floor: f64) -> f64 {
    x / (y.abs() + floor)
}

fn shape(s: f64, [m2, m1, p1, p2]: [f64; 4], floor: f64) -> Shape {
    let mean = (m2 + m1 + p1 + p2) / 4.0;
    let max = m2.max(m1).max(p1).max(p2);
    let peak_height_ratio = ratio(s, mean, floor);
    let signal_strength = s - mean;
    Shape {
        values: [
            s - m1,
            s - m2,
            s - p1,
            s - p2,
            ratio(s, m1 + p1, floor),
            f64::from(u8::from(s > m1 && s > p1 && s > 1e-3)),
            0.1 * m2 + 0.2 * m1 + 0.4 * s + 0.2 * p1 + 0.1 * p2,
            peak_height_ratio,
            (s - m1) - (p1 - s),
            signal_strength,
            ratio(s, max, floor),
        ],
        peak_height_ratio,
        signal_strength,
    }
}

/// Fills `out` with the [`DERIVED_COLUMNS`] of one position. `floor` is added to the
/// denominators of the ratios that can reach zero: [`EPS`] for the original's formulas,
/// [`RATIO_FLOOR`] for bounded ones.
pub fn derive(w: &ScoreWindow, floor: f64, out: &mut [f64; 40]) {
    let (d, a, n) = (w.donor, w.acceptor, w.neither);
    let ctx = if w.own_is_donor {
        w.donor_ctx
    } else {
        w.acceptor_ctx
    };
    let [m2, m1, p1, p2] = ctx;
    out[0..4].copy_from_slice(&ctx);
    out[4] = (m2 + m1 + p1 + p2) / 4.0;
    out[5] = (m1 + m2) - (p1 + p2);
    out[6] = m2.max(m1).max(p1).max(p2);
    let ds = shape(d, w.donor_ctx, floor);
    let as_ = shape(a, w.acceptor_ctx, floor);
    out[7..18].copy_from_slice(&ds.values);
    out[18..29].copy_from_slice(&as_.values);
    let da_max = d.max(a);
    out[29] = d / (d + a + EPS);
    out[30] = (d + a) / (d + a + n + EPS);
    out[31] = (d - a) / (da_max + EPS);
    out[32] = (da_max - n) / (da_max.max(n) + EPS);
    out[33] = (d + EPS).ln() - (a + EPS).ln();
    out[34] = (d + a + EPS).ln() - (n + EPS).ln();
    out[35] = -[d, a, n].iter().map(|&p| p * (p + EPS).ln()).sum::<f64>();
    out[36] = ratio(ds.peak_height_ratio, as_.peak_height_ratio, floor);
    out[37] = ds.signal_strength - as_.signal_strength;
    out[38] = (d - a) / (d + a + EPS);
    out[39] = ratio(ds.signal_strength, as_.signal_strength, floor);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peak_shape_features() {
        let w = ScoreWindow {
            donor: 0.9,
            acceptor: 0.01,
            neither: 0.09,
            donor_ctx: [0.1, 0.2, 0.3, 0.0],
            acceptor_ctx: [0.0; 4],
            own_is_donor: true,
        };
        let mut out = [0.0; 40];
        derive(&w, EPS, &mut out);
        let get = |name: &str| out[DERIVED_COLUMNS.iter().position(|c| *c == name).unwrap()];
        assert!((get("context_neighbor_mean") - 0.15).abs() < 1e-12);
        assert!((get("context_asymmetry") - 0.0).abs() < 1e-12);
        assert_eq!(get("donor_is_local_peak"), 1.0);
        assert!((get("donor_second_derivative") - ((0.9 - 0.2) - (0.3 - 0.9))).abs() < 1e-12);
        assert!((get("donor_weighted_context") - (0.01 + 0.04 + 0.36 + 0.06)).abs() < 1e-12);
        assert!((get("relative_donor_probability") - 0.9 / 0.91).abs() < 1e-9);
    }
}
