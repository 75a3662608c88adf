//! Probability calibration of the one-vs-rest models' outputs.
//!
//! Boosted trees rank well but their probabilities are often over- or under-confident, and
//! the three one-vs-rest models do not sum to 1. A calibrator is fitted on held-out
//! predictions (a cross-validation fold's) and maps a raw probability to a calibrated one.
//! Both methods are scikit-learn's, so that results carry over: Platt scaling as
//! `_sigmoid_calibration` (on logits, with Platt's smoothed targets) and isotonic regression as
//! `IsotonicRegression(out_of_bounds="clip")`.

use super::curves::{from_order_bits, order_bits};
use serde::{Deserialize, Serialize};

/// How a probability is mapped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    Platt,
    Isotonic,
    None,
}

/// What is calibrated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Each class's probability on its own, then renormalised to sum 1.
    PerClass,
    /// Only "is a splice site" (p1 + p2); donor and acceptor keep their ratio. Fits one
    /// calibrator where sites are too rare to fit two.
    Splice,
}

/// A fitted map from raw to calibrated probability.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Calibrator {
    Identity,
    /// sigmoid(a·logit(p) + b). scikit-learn stores the opposite signs (it predicts
    /// expit(−(A·f + B))): a = −A, b = −B.
    Platt {
        a: f64,
        b: f64,
    },
    /// Increasing step-and-ramp function through the points (`x` strictly increasing),
    /// linear between them and flat outside.
    Isotonic {
        x: Vec<f64>,
        y: Vec<f64>,
    },
}

/// Platt's inputs are logits; probabilities of exactly 0 or 1 are clamped this far inside.
pub const LOGIT_EPS: f64 = 1e-7;

fn logit(p: f64) -> f64 {
    let p = p.clamp(LOGIT_EPS, 1.0 - LOGIT_EPS);
    (p / (1.0 - p)).ln()
}

fn sigmoid(z: f64) -> f64 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

/// ln(1 + e^z) without overflow.
fn softplus(z: f64) -> f64 {
    z.max(0.0) + (-z.abs()).exp().ln_1p()
}

impl Calibrator {
    /// Fits `method` to probabilities `p` of a binary event and its outcomes `y`. Rows with a
    /// NaN probability are skipped; with no rows left, the result is [`Calibrator::Identity`].
    ///
    /// Heap: Platt allocates nothing (Newton's method re-reads `p` each iteration). Isotonic
    /// sorts one u64 key per row (8n bytes), then holds at most 24 bytes per distinct `p`
    /// while pooling, and returns at most 32 bytes per distinct `p` — worst case about 56n
    /// bytes at peak, typically near 8n because pooled blocks are few.
    ///
    /// # Panics
    /// If `p` and `y` differ in length.
    pub fn fit(method: Method, p: &[f32], y: &[bool]) -> Calibrator {
        assert_eq!(p.len(), y.len(), "probabilities and labels differ in length");
        Self::fit_with(method, p.len(), |i| p[i], |i| y[i])
    }

    /// [`Calibrator::fit`] over rows `0..n` read through closures, so that derived columns
    /// (p1 + p2, y ≠ 0) need no buffers.
    fn fit_with(
        method: Method,
        n: usize,
        p: impl Fn(usize) -> f32 + Copy,
        y: impl Fn(usize) -> bool + Copy,
    ) -> Calibrator {
        match method {
            Method::None => Calibrator::Identity,
            Method::Platt => fit_platt(n, p, y),
            Method::Isotonic => fit_isotonic(n, p, y),
        }
    }

    /// The method that fits this kind of calibrator.
    pub fn method(&self) -> Method {
        match self {
            Calibrator::Identity => Method::None,
            Calibrator::Platt { .. } => Method::Platt,
            Calibrator::Isotonic { .. } => Method::Isotonic,
        }
    }

    /// What a fit always gives, so that a calibrator read from a file maps as it was fitted:
    /// Platt's `a` and `b` finite; an isotonic map of at least one point, `x` and `y` of one
    /// length, `x` finite and strictly increasing, `y` in [0, 1] and non-decreasing.
    pub fn check(&self) -> Result<(), String> {
        match self {
            Calibrator::Identity => Ok(()),
            Calibrator::Platt { a, b } => {
                if a.is_finite() && b.is_finite() {
                    Ok(())
                } else {
                    Err(format!("Platt parameters a = {a}, b = {b} are not finite"))
                }
            }
            Calibrator::Isotonic { x, y } => {
                if x.len() != y.len() {
                    return Err(format!(
                        "isotonic map with {} x values and {} y values",
                        x.len(),
                        y.len()
                    ));
                }
                if x.is_empty() {
                    return Err("isotonic map with no points".into());
                }
                if let Some(i) = x.iter().position(|v| !v.is_finite()) {
                    return Err(format!("isotonic x[{i}] = {} is not finite", x[i]));
                }
                if let Some(i) = x.windows(2).position(|w| w[0] >= w[1]) {
                    return Err(format!(
                        "isotonic x is not strictly increasing: x[{}] = {} after x[{i}] = {}",
                        i + 1,
                        x[i + 1],
                        x[i]
                    ));
                }
                if let Some(i) = y.iter().position(|v| !(0.0..=1.0).contains(v)) {
                    return Err(format!("isotonic y[{i}] = {} is not a probability", y[i]));
                }
                if let Some(i) = y.windows(2).position(|w| w[0] > w[1]) {
                    return Err(format!(
                        "isotonic y decreases: y[{}] = {} after y[{i}] = {}",
                        i + 1,
                        y[i + 1],
                        y[i]
                    ));
                }
                Ok(())
            }
        }
    }

    /// Calibrated probability of `p`, computed in f64.
    pub fn apply(&self, p: f32) -> f32 {
        self.apply_f64(p as f64) as f32
    }

    /// [`Calibrator::apply`] without the final rounding to f32. Never panics, even on a
    /// deserialized isotonic map whose `x` and `y` differ in length (the shorter one rules).
    pub fn apply_f64(&self, p: f64) -> f64 {
        match self {
            Calibrator::Identity => p,
            Calibrator::Platt { a, b } => sigmoid(a * logit(p) + b),
            Calibrator::Isotonic { x, y } => {
                let n = x.len().min(y.len());
                if n == 0 || p.is_nan() {
                    return p;
                }
                let (x, y) = (&x[..n], &y[..n]);
                if p <= x[0] {
                    return y[0];
                }
                if p >= x[n - 1] {
                    return y[n - 1];
                }
                let j = x.partition_point(|&v| v <= p);
                if j == 0 || j >= n {
                    return y[j.min(n - 1)];
                }
                // scipy's interp1d, which scikit-learn uses, in the same order of operations.
                let slope = (y[j] - y[j - 1]) / (x[j] - x[j - 1]);
                slope * (p - x[j - 1]) + y[j - 1]
            }
        }
    }
}

/// Newton iterations; each is one pass over the rows (plus one per line-search trial). It
/// converges quadratically, so this is only a guard.
const PLATT_MAX_ITER: usize = 100;

/// Logistic regression of Platt's smoothed targets on logit(p), by Newton's method with a
/// backtracking line search (Lin, Lin & Weng 2007, "A note on Platt's probabilistic outputs
/// for support vector machines"), iterated to machine precision: scikit-learn's L-BFGS stops
/// at a 1e-6 gradient, so its (a, b) agree only to about 1e-8.
fn fit_platt(n: usize, p: impl Fn(usize) -> f32 + Copy, y: impl Fn(usize) -> bool + Copy) -> Calibrator {
    let rows = || (0..n).filter(move |&i| !p(i).is_nan());
    let (mut n_pos, mut n_neg) = (0u64, 0u64);
    for i in rows() {
        if y(i) {
            n_pos += 1;
        } else {
            n_neg += 1;
        }
    }
    if n_pos + n_neg == 0 {
        return Calibrator::Identity;
    }
    // Platt's targets: the outcomes shrunk towards the prior, so that separable data still
    // has a finite optimum.
    let t_pos = (n_pos as f64 + 1.0) / (n_pos as f64 + 2.0);
    let t_neg = 1.0 / (n_neg as f64 + 2.0);
    let target = move |i: usize| if y(i) { t_pos } else { t_neg };
    let loss = |a: f64, b: f64| -> f64 {
        rows()
            .map(|i| {
                let z = a * logit(p(i) as f64) + b;
                softplus(z) - target(i) * z
            })
            .sum()
    };

    let (mut a, mut b) = (0.0f64, ((n_pos as f64 + 1.0) / (n_neg as f64 + 1.0)).ln());
    for _ in 0..PLATT_MAX_ITER {
        let (mut f0, mut g0, mut g1, mut h00, mut h01, mut h11) = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0);
        for i in rows() {
            let f = logit(p(i) as f64);
            let z = a * f + b;
            let s = sigmoid(z);
            f0 += softplus(z) - target(i) * z;
            let r = s - target(i);
            g0 += r * f;
            g1 += r;
            let w = s * (1.0 - s);
            h00 += w * f * f;
            h01 += w * f;
            h11 += w;
        }
        // Platt's tiny ridge keeps the system solvable when every p is the same.
        let (h00, h11) = (h00 + 1e-12, h11 + 1e-12);
        let det = h00 * h11 - h01 * h01;
        if !(det.is_finite() && det > 0.0) {
            break;
        }
        let d0 = -(h11 * g0 - h01 * g1) / det;
        let d1 = -(h00 * g1 - h01 * g0) / det;
        let slope = g0 * d0 + g1 * d1;
        // Near the optimum the loss decrease falls below its rounding, so the line search
        // cannot see it; such small Newton steps are safe and taken whole.
        let tiny = d0.abs().max(d1.abs()) < 1e-6 * (1.0 + a.abs() + b.abs());
        let mut step = 1.0;
        let accepted = tiny
            || loop {
                if loss(a + step * d0, b + step * d1) <= f0 + 1e-4 * step * slope {
                    break true;
                }
                step /= 2.0;
                if step < 1e-10 {
                    // No decrease left above rounding noise: (a, b) is the optimum.
                    break false;
                }
            };
        if !accepted {
            break;
        }
        a += step * d0;
        b += step * d1;
        if (step * d0).abs().max((step * d1).abs()) <= 1e-13 * (1.0 + a.abs().max(b.abs())) {
            break;
        }
    }
    Calibrator::Platt { a, b }
}

/// A pooled run of distinct probabilities; its value is pos / w, kept as integers so that
/// comparisons between blocks are exact.
struct Block {
    lo: f32,
    hi: f32,
    pos: u64,
    w: u64,
}

/// Weighted pool-adjacent-violators over the distinct probabilities (each weighted by its
/// row count, valued by its fraction of positives, as scikit-learn's `_make_unique`), keeping
/// the end points of each constant block as scikit-learn's `trim_duplicates` does.
fn fit_isotonic(n: usize, p: impl Fn(usize) -> f32, y: impl Fn(usize) -> bool) -> Calibrator {
    let mut keys: Vec<u64> = Vec::with_capacity(n);
    for i in 0..n {
        let v = p(i);
        if v.is_nan() {
            continue;
        }
        // −0 and +0 are one probability.
        let v = if v == 0.0 { 0.0 } else { v };
        keys.push(((order_bits(v) as u64) << 1) | y(i) as u64);
    }
    if keys.is_empty() {
        return Calibrator::Identity;
    }
    keys.sort_unstable();

    let mut blocks: Vec<Block> = Vec::new();
    let mut i = 0;
    while i < keys.len() {
        let bits = keys[i] >> 1;
        let (mut pos, mut w) = (0u64, 0u64);
        while i < keys.len() && keys[i] >> 1 == bits {
            pos += keys[i] & 1;
            w += 1;
            i += 1;
        }
        let x = from_order_bits(bits as u32);
        blocks.push(Block { lo: x, hi: x, pos, w });
        // Pool while the previous block is not below the last; equal values pool too, which
        // leaves the same end points as scikit-learn's trimming of equal neighbours.
        while blocks.len() >= 2 {
            let (prev, last) = (&blocks[blocks.len() - 2], &blocks[blocks.len() - 1]);
            if (prev.pos as u128) * (last.w as u128) < (last.pos as u128) * (prev.w as u128) {
                break;
            }
            let (hi, pos, w) = (last.hi, last.pos, last.w);
            blocks.truncate(blocks.len() - 1);
            let k = blocks.len() - 1;
            blocks[k].hi = hi;
            blocks[k].pos += pos;
            blocks[k].w += w;
        }
    }
    drop(keys);

    let points = blocks.iter().map(|b| if b.lo == b.hi { 1 } else { 2 }).sum();
    let (mut x, mut y) = (Vec::with_capacity(points), Vec::with_capacity(points));
    for b in &blocks {
        let v = b.pos as f64 / b.w as f64;
        x.push(b.lo as f64);
        y.push(v);
        if b.hi != b.lo {
            x.push(b.hi as f64);
            y.push(v);
        }
    }
    Calibrator::Isotonic { x, y }
}

/// Calibration of a three-class prediction (class codes 0 neither, 1 donor, 2 acceptor).
///
/// Deserializing checks the calibrator count against the mode, so [`ClassCalibration::apply`]
/// cannot index out of range.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "ClassCalibrationRepr")]
pub struct ClassCalibration {
    mode: Mode,
    /// Three (per class) or one (splice).
    calibrators: Vec<Calibrator>,
}

#[derive(Deserialize)]
struct ClassCalibrationRepr {
    mode: Mode,
    calibrators: Vec<Calibrator>,
}

impl TryFrom<ClassCalibrationRepr> for ClassCalibration {
    type Error = String;
    fn try_from(r: ClassCalibrationRepr) -> Result<Self, String> {
        let want = match r.mode {
            Mode::PerClass => 3,
            Mode::Splice => 1,
        };
        if r.calibrators.len() != want {
            return Err(format!(
                "calibration mode {:?} needs {want} calibrators, found {}",
                r.mode,
                r.calibrators.len()
            ));
        }
        Ok(Self {
            mode: r.mode,
            calibrators: r.calibrators,
        })
    }
}

impl ClassCalibration {
    /// Heap bytes it holds: an isotonic map's points (as many as the fit's blocks, so known
    /// only once fitted).
    pub fn heap_bytes(&self) -> u64 {
        let points: usize = self
            .calibrators
            .iter()
            .map(|c| match c {
                Calibrator::Isotonic { x, y } => x.capacity() + y.capacity(),
                _ => 0,
            })
            .sum();
        (8 * points + self.calibrators.len() * std::mem::size_of::<Calibrator>()) as u64
    }

    /// Fits calibrators to held-out probabilities `p` (one column per class code) and labels
    /// `y`. Splice mode calibrates s = p1 + p2 (summed in f32) against "y is 1 or 2".
    ///
    /// Heap: that of one [`Calibrator::fit`] at a time (fits are sequential), plus the kept
    /// calibrators; no per-row buffers beyond the fit's own.
    ///
    /// # Panics
    /// If a column's length differs from `y`'s.
    pub fn fit(method: Method, mode: Mode, y: &[u8], p: [&[f32]; 3]) -> Self {
        Self::fit_rows(method, mode, y, p, None)
    }

    /// [`ClassCalibration::fit`] on the rows `rows` of the columns (every row when `None`),
    /// read in place, so that fitting on most rows needs no copy of them.
    ///
    /// # Panics
    /// If a column's length differs from `y`'s, or a row is past them.
    pub fn fit_rows(method: Method, mode: Mode, y: &[u8], p: [&[f32]; 3], rows: Option<&[u32]>) -> Self {
        for col in p {
            assert_eq!(
                col.len(),
                y.len(),
                "probability column and labels differ in length"
            );
        }
        let n = rows.map_or(y.len(), <[u32]>::len);
        let row = |i: usize| rows.map_or(i, |r| r[i] as usize);
        let calibrators = match mode {
            Mode::PerClass => (0..3u8)
                .map(|c| Calibrator::fit_with(method, n, |i| p[c as usize][row(i)], |i| y[row(i)] == c))
                .collect(),
            Mode::Splice => {
                vec![Calibrator::fit_with(
                    method,
                    n,
                    |i| p[1][row(i)] + p[2][row(i)],
                    |i| y[row(i)] != 0,
                )]
            }
        };
        Self { mode, calibrators }
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Checks every calibrator ([`Calibrator::check`]) and that each was fitted by `method`
    /// (or is the identity, which a fit gives when it has no rows).
    pub fn check(&self, method: Method) -> Result<(), String> {
        for (i, cal) in self.calibrators.iter().enumerate() {
            let which = match self.mode {
                Mode::PerClass => format!("calibrator {i} (`{}`)", crate::io::CLASS_NAMES[i]),
                Mode::Splice => "the splice calibrator".to_string(),
            };
            cal.check().map_err(|e| format!("{which}: {e}"))?;
            if !matches!(cal, Calibrator::Identity) && cal.method() != method {
                let name = |m: Method| format!("{m:?}").to_lowercase();
                return Err(format!(
                    "{which} is {} where the config says `{}`",
                    name(cal.method()),
                    name(method)
                ));
            }
        }
        Ok(())
    }

    pub fn calibrators(&self) -> &[Calibrator] {
        &self.calibrators
    }

    /// Calibrated (p0, p1, p2), summing to 1 up to f32 rounding. Per class: each calibrated,
    /// then divided by their sum (1/3 each if the sum is 0). Splice: s' = calibrated p1 + p2
    /// (clamped to [0, 1]), p1 and p2 scaled by s'/s (s'/2 each when s = 0), p0 = 1 − s'.
    /// Allocates nothing.
    pub fn apply(&self, p: [f32; 3]) -> [f32; 3] {
        match self.mode {
            Mode::PerClass => {
                let mut q = [0.0f64; 3];
                for (c, cal) in self.calibrators.iter().enumerate().take(3) {
                    q[c] = cal.apply_f64(p[c] as f64);
                }
                let sum: f64 = q.iter().sum();
                if sum > 0.0 {
                    q.map(|v| (v / sum) as f32)
                } else {
                    [1.0 / 3.0; 3]
                }
            }
            Mode::Splice => {
                let s = p[1] + p[2];
                let cal = self.calibrators.first().unwrap_or(&Calibrator::Identity);
                let s_new = cal.apply_f64(s as f64).clamp(0.0, 1.0);
                let (p1, p2) = if s > 0.0 {
                    let scale = s_new / s as f64;
                    (p[1] as f64 * scale, p[2] as f64 * scale)
                } else {
                    (s_new / 2.0, s_new / 2.0)
                };
                [(1.0 - s_new) as f32, p1 as f32, p2 as f32]
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::brier;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// y ~ Bernoulli(q) with q uniform, reported as p = q³: over-confident towards 0.
    fn miscalibrated(n: usize, seed: u64) -> (Vec<f32>, Vec<bool>) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut p = Vec::with_capacity(n);
        let mut y = Vec::with_capacity(n);
        for _ in 0..n {
            let q: f64 = rng.random();
            y.push(rng.random::<f64>() < q);
            p.push(q.powi(3) as f32);
        }
        (p, y)
    }

    fn grid() -> Vec<f32> {
        (0..=200).map(|i| i as f32 / 200.0).collect()
    }

    #[test]
    fn isotonic_and_platt_are_monotone() {
        let (p, y) = miscalibrated(5000, 1);
        for method in [Method::Isotonic, Method::Platt] {
            let cal = Calibrator::fit(method, &p, &y);
            let out: Vec<f32> = grid().iter().map(|&v| cal.apply(v)).collect();
            assert!(out.windows(2).all(|w| w[0] <= w[1]), "{method:?} not monotone");
            assert!(out.iter().all(|v| (0.0..=1.0).contains(v)));
        }
    }

    #[test]
    fn calibration_lowers_brier_on_miscalibrated_input() {
        let (p, y) = miscalibrated(20_000, 2);
        let (p_test, y_test) = miscalibrated(20_000, 3);
        let before = brier(&p_test, &y_test);
        for method in [Method::Isotonic, Method::Platt] {
            let cal = Calibrator::fit(method, &p, &y);
            let after: Vec<f32> = p_test.iter().map(|&v| cal.apply(v)).collect();
            let after = brier(&after, &y_test);
            assert!(after < before - 0.01, "{method:?}: {after} vs {before}");
        }
    }

    #[test]
    fn isotonic_pools_violators() {
        // p .1 .2 .3 .3 .4 with y 0 1 0 0 1: unique x .1 (0), .2 (1), .3 (0/2), .4 (1);
        // .2 and .3 pool to 1/3 over three rows: points (.1, 0) (.2, 1/3) (.3, 1/3) (.4, 1).
        let cal = Calibrator::fit(
            Method::Isotonic,
            &[0.1, 0.2, 0.3, 0.3, 0.4],
            &[false, true, false, false, true],
        );
        let Calibrator::Isotonic { x, y } = &cal else {
            panic!("not isotonic")
        };
        assert_eq!(x, &[0.1f32 as f64, 0.2f32 as f64, 0.3f32 as f64, 0.4f32 as f64]);
        assert_eq!(y, &[0.0, 1.0 / 3.0, 1.0 / 3.0, 1.0]);
        assert_eq!(cal.apply_f64(0.0), 0.0);
        assert_eq!(cal.apply_f64(0.9), 1.0);
    }

    #[test]
    fn class_calibration_sums_to_one() {
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        let n = 3000;
        let y: Vec<u8> = (0..n).map(|_| rng.random_range(0..3u8)).collect();
        let mut cols = [vec![], vec![], vec![]];
        for &t in &y {
            let mut v = [rng.random::<f32>(), rng.random::<f32>(), rng.random::<f32>()];
            v[t as usize] += 0.5;
            let s: f32 = v.iter().sum();
            for c in 0..3 {
                cols[c].push(v[c] / s);
            }
        }
        let p = [&cols[0][..], &cols[1][..], &cols[2][..]];
        for method in [Method::Platt, Method::Isotonic, Method::None] {
            for mode in [Mode::PerClass, Mode::Splice] {
                let cal = ClassCalibration::fit(method, mode, &y, p);
                for i in (0..n).step_by(7) {
                    let q = cal.apply([p[0][i], p[1][i], p[2][i]]);
                    let sum: f32 = q.iter().sum();
                    assert!((sum - 1.0).abs() < 1e-5, "{method:?} {mode:?}: {q:?}");
                    assert!(q.iter().all(|v| *v >= 0.0));
                }
                assert_eq!(cal.apply([0.0, 0.0, 0.0]).iter().sum::<f32>().round(), 1.0);
            }
        }
    }

    #[test]
    fn check_refuses_maps_a_fit_cannot_give() {
        let (p, y) = miscalibrated(2000, 5);
        for method in [Method::Isotonic, Method::Platt] {
            assert_eq!(Calibrator::fit(method, &p, &y).check(), Ok(()));
        }
        let iso = |x: Vec<f64>, y: Vec<f64>| Calibrator::Isotonic { x, y }.check().unwrap_err();
        assert!(iso(vec![0.1, 0.2], vec![0.5]).contains("2 x values and 1 y values"));
        assert!(iso(vec![], vec![]).contains("no points"));
        assert!(iso(vec![0.2, 0.1], vec![0.1, 0.2]).contains("x[1] = 0.1 after x[0] = 0.2"));
        assert!(iso(vec![0.1, 0.1], vec![0.1, 0.2]).contains("not strictly increasing"));
        assert!(iso(vec![0.1, f64::NAN], vec![0.1, 0.2]).contains("x[1] = NaN is not finite"));
        assert!(iso(vec![0.1, 0.2], vec![f64::NAN, 0.2]).contains("y[0] = NaN is not a probability"));
        assert!(iso(vec![0.1, 0.2], vec![0.3, 0.2]).contains("y decreases"));
        let platt = Calibrator::Platt {
            a: f64::INFINITY,
            b: 0.0,
        };
        assert!(platt.check().unwrap_err().contains("not finite"));
        let y3 = [0u8, 1, 2, 0, 1, 2];
        let p3 = [0.5f32, 0.2, 0.1, 0.6, 0.3, 0.2];
        let cal = ClassCalibration::fit(Method::Isotonic, Mode::PerClass, &y3, [&p3, &p3, &p3]);
        assert_eq!(cal.check(Method::Isotonic), Ok(()));
        let err = cal.check(Method::Platt).unwrap_err();
        assert!(
            err.contains("calibrator 0 (`neither`) is isotonic where the config says `platt`"),
            "{err}"
        );
    }

    /// Eight rows of labels and three-class probabilities.
    const EIGHT_ROWS: ([u8; 8], [[f32; 8]; 3]) = (
        [0, 1, 2, 0, 1, 2, 0, 0],
        [
            [0.7, 0.2, 0.1, 0.6, 0.3, 0.2, 0.9, 0.5],
            [0.2, 0.7, 0.1, 0.3, 0.5, 0.2, 0.05, 0.25],
            [0.1, 0.1, 0.8, 0.1, 0.2, 0.6, 0.05, 0.25],
        ],
    );

    #[test]
    fn class_calibration_serde_round_trip() {
        let (y, [p0, p1, p2]) = EIGHT_ROWS;
        for (method, mode) in [(Method::Isotonic, Mode::PerClass), (Method::Platt, Mode::Splice)] {
            let cal = ClassCalibration::fit(method, mode, &y, [&p0, &p1, &p2]);
            let json = serde_json::to_string(&cal).unwrap();
            let back: ClassCalibration = serde_json::from_str(&json).unwrap();
            assert_eq!(back.mode(), cal.mode());
            assert_eq!(back.calibrators().len(), cal.calibrators().len());
            // serde_json without its `float_roundtrip` feature may read a float back 1 ulp
            // off, so the maps are compared by their outputs.
            for (b, c) in back.calibrators().iter().zip(cal.calibrators()) {
                assert_eq!(std::mem::discriminant(b), std::mem::discriminant(c));
                for v in grid() {
                    assert!((b.apply_f64(v as f64) - c.apply_f64(v as f64)).abs() < 1e-12);
                }
            }
        }
        let json = r#"{"mode":"per_class","calibrators":[{"kind":"identity"}]}"#;
        let err = serde_json::from_str::<ClassCalibration>(json).unwrap_err();
        assert!(err.to_string().contains("needs 3 calibrators"));
        let json = r#"{"mode":"splice","calibrators":[{"kind":"platt","a":1.5,"b":-0.5}]}"#;
        let cal: ClassCalibration = serde_json::from_str(json).unwrap();
        assert_eq!(cal.calibrators(), &[Calibrator::Platt { a: 1.5, b: -0.5 }]);
    }

    #[test]
    fn fitting_on_chosen_rows_is_fitting_on_those_rows_alone() {
        let (y, [p0, p1, p2]) = EIGHT_ROWS;
        // Rows 0, 2, 3, 5 and 6, written out by hand.
        let ys = [0u8, 2, 0, 2, 0];
        let q0 = [0.7f32, 0.1, 0.6, 0.2, 0.9];
        let q1 = [0.2f32, 0.1, 0.3, 0.2, 0.05];
        let q2 = [0.1f32, 0.8, 0.1, 0.6, 0.05];
        let rows = [0u32, 2, 3, 5, 6];
        for method in [Method::Isotonic, Method::Platt] {
            for mode in [Mode::PerClass, Mode::Splice] {
                let chosen = ClassCalibration::fit_rows(method, mode, &y, [&p0, &p1, &p2], Some(&rows));
                let alone = ClassCalibration::fit(method, mode, &ys, [&q0, &q1, &q2]);
                assert_eq!(chosen, alone, "{method:?} {mode:?}");
                let all = ClassCalibration::fit_rows(method, mode, &y, [&p0, &p1, &p2], None);
                assert_ne!(
                    all, alone,
                    "{method:?} {mode:?}: the rows left out change the fit"
                );
            }
        }
    }
}
