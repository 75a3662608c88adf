//! From raw feature values to small bin codes: the bin mapper, apart from the learner.
//!
//! A streaming pass ([`sketch_dataset`]; for wide data under a small budget, several passes
//! over groups of columns) finds each feature's cut points: exact cuts for a column with few
//! distinct values (k-mer counts, flags), quantiles from a [`QuantileSketch`] otherwise. A value's bin is the number of cuts at or below it, so a
//! split "bin ≤ b goes left" is the threshold test `x < cuts[b]`, XGBoost's own rule; missing
//! values (null or NaN) have a bin of their own. The second pass ([`cache`]) writes every
//! row's bins into a page cache on disk that training reads memory-mapped.
//!
//! Cuts are always finite, so that every split threshold is an ordinary number in a saved
//! model and in XGBoost's format: +inf falls in the top bin and -inf in the bottom one (a
//! candidate cut at ±inf is clamped to ±`f32::MAX`, or dropped when that repeats the cut
//! before it); NaN stays a missing value.

pub mod cache;
pub mod checksum;
pub mod json_float;
mod sketch;

pub use sketch::QuantileSketch;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::io::{Dataset, FeatureReader};
use crate::memory::{MemoryError, MemoryReservation};

/// The most histogram slots a feature can have: 256 value bins, or 255 and a missing bin.
pub const MAX_SLOTS: usize = 256;
/// A column whose values are at least this often zero is stored sparse.
pub const SPARSE_ZERO_FRACTION: f64 = 0.75;

/// How one feature's values map to bins.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureBins {
    pub name: String,
    /// Strictly ascending and finite; value bin `b` holds `[cuts[b-1], cuts[b])`.
    #[serde(with = "json_float::f32s")]
    pub cuts: Vec<f32>,
    /// Missing values were seen: code `n_bins()` means missing (so at most 255 value bins).
    pub has_missing: bool,
    /// Stored sparse: only non-zero values are written, zero being `zero_bin`.
    pub sparse: bool,
    pub zero_bin: u8,
    /// Values seen (not missing) and how many were zero.
    pub present: u64,
    pub zeros: u64,
}

impl FeatureBins {
    /// Value bins (the missing bin not counted).
    pub fn n_bins(&self) -> usize {
        self.cuts.len() + 1
    }

    /// The bin of `x`; a missing value's code is the one after the last value bin.
    #[inline]
    pub fn bin(&self, x: f32) -> u8 {
        if x.is_nan() {
            self.missing_code()
        } else {
            self.cuts.partition_point(|&c| c <= x) as u8
        }
    }

    /// The code of a missing value (meaningful when `has_missing`).
    #[inline]
    pub fn missing_code(&self) -> u8 {
        self.n_bins().min(255) as u8
    }

    /// Histogram slots: one per value bin, and one for missing values when there are any.
    /// A stored code is its own slot.
    pub fn n_slots(&self) -> usize {
        self.n_bins() + usize::from(self.has_missing)
    }

    /// The threshold of the split "bins ≤ `bin` go left": `x < threshold` goes left.
    pub fn threshold(&self, bin: usize) -> f32 {
        self.cuts[bin]
    }
}

/// Cut points of every feature, in dataset feature order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cuts {
    pub max_bin: usize,
    pub features: Vec<FeatureBins>,
}

impl Cuts {
    /// The features' names, in cut order: what models and reports label them with.
    pub fn names(&self) -> Vec<String> {
        self.features.iter().map(|f| f.name.clone()).collect()
    }

    /// Where each feature's slots start in a node's histogram; the last entry is the total.
    /// Features get only the slots they use, as LightGBM's bin offsets do: a k-mer count
    /// column with eight distinct values takes eight slots, not 256.
    pub fn slot_offsets(&self) -> Vec<usize> {
        let mut off = Vec::with_capacity(self.features.len() + 1);
        let mut at = 0;
        off.push(0);
        for f in &self.features {
            at += f.n_slots();
            off.push(at);
        }
        off
    }
}

/// Per-feature state of the sketch pass.
#[derive(Debug, Clone)]
struct Acc {
    /// `None` in a first pass that only looks for few distinct values.
    sketch: Option<QuantileSketch>,
    /// Distinct values while there are few enough for exact cuts.
    distinct: Option<Vec<f32>>,
    present: u64,
    missing: u64,
    zeros: u64,
}

impl Acc {
    fn new(sketch: Option<usize>, distinct: bool) -> Self {
        Self {
            sketch: sketch.map(QuantileSketch::new),
            distinct: distinct.then(Vec::new),
            present: 0,
            missing: 0,
            zeros: 0,
        }
    }

    fn add(&mut self, values: &[f32], limit: usize) {
        for &v in values {
            if v.is_nan() {
                self.missing += 1;
                continue;
            }
            // -0.0 and 0.0 are one value.
            let v = if v == 0.0 { 0.0 } else { v };
            self.present += 1;
            self.zeros += u64::from(v == 0.0);
            if let Some(s) = &mut self.sketch {
                s.insert(v);
            }
            if let Some(d) = &mut self.distinct {
                if let Err(pos) = d.binary_search_by(|x| x.total_cmp(&v)) {
                    if d.len() >= limit {
                        self.distinct = None;
                    } else {
                        d.insert(pos, v);
                    }
                }
            }
        }
    }

    /// Value bins available: 256, or 255 beside a missing bin.
    fn bins(&self, max_bin: usize) -> usize {
        if self.missing > 0 {
            max_bin.min(255)
        } else {
            max_bin.min(256)
        }
    }

    /// Whether the cuts must come from a sketch: too many distinct values for one bin each.
    fn needs_sketch(&self, max_bin: usize) -> bool {
        self.distinct
            .as_ref()
            .is_none_or(|d| d.len() > self.bins(max_bin))
    }

    fn finish(self, name: &str, max_bin: usize) -> FeatureBins {
        let has_missing = self.missing > 0;
        let bins = self.bins(max_bin);
        let cuts = finite_cuts(match (&self.distinct, &self.sketch) {
            // Few distinct values: one bin each.
            (Some(d), _) if d.len() <= bins => d.iter().skip(1).copied().collect(),
            (_, Some(s)) => quantile_cuts(s, bins),
            (_, None) => unreachable!("a feature with many distinct values is sketched"),
        });
        let mut fb = FeatureBins {
            name: name.to_string(),
            cuts,
            has_missing,
            sparse: false,
            zero_bin: 0,
            present: self.present,
            zeros: self.zeros,
        };
        let total = self.present + self.missing;
        fb.zero_bin = fb.bin(0.0);
        fb.sparse = total > 0 && self.zeros as f64 >= SPARSE_ZERO_FRACTION * total as f64;
        fb
    }
}

/// `cuts` (ascending) with ±inf clamped to ±`f32::MAX` and any cut that no longer exceeds
/// the one before dropped: a threshold is always a finite number, +inf still lands in the
/// top bin (above `f32::MAX`'s cut) and -inf in the bottom one.
fn finite_cuts(cuts: Vec<f32>) -> Vec<f32> {
    let mut out: Vec<f32> = Vec::with_capacity(cuts.len());
    for c in cuts {
        if c.is_nan() {
            continue;
        }
        let c = c.clamp(-f32::MAX, f32::MAX);
        if out.last().is_none_or(|&p| p < c) {
            out.push(c);
        }
    }
    out
}

/// Up to `bins - 1` strictly increasing cuts at evenly spaced ranks of the sketch.
fn quantile_cuts(s: &QuantileSketch, bins: usize) -> Vec<f32> {
    let items = s.weighted();
    let total: u64 = items.iter().map(|&(_, w)| w).sum();
    let mut cuts: Vec<f32> = Vec::with_capacity(bins);
    let mut acc = 0u64;
    let mut next = 1;
    for &(v, w) in &items {
        // A cut at v puts v in the upper bin; place it once the ranks below v reach the
        // next target.
        while next < bins && acc * bins as u64 >= next as u64 * total {
            if cuts.last().is_none_or(|&c| c < v) && acc > 0 {
                cuts.push(v);
            }
            next += 1;
        }
        acc += w;
    }
    cuts
}

/// Heap bytes the sketch pass holds for `features` features with sketch parameter `k` over
/// `rows` rows, besides its scan, when it sketches every feature in one pass: every
/// feature's sketch and distinct values, and the sorted copy of one sketch at a time while
/// its cuts are read.
pub fn sketch_bytes(k: usize, rows: u64, max_bin: usize, features: usize) -> u64 {
    (QuantileSketch::max_bytes(k, rows) + distinct_bytes(max_bin)) * features as u64
        + QuantileSketch::weighted_bytes(k, rows)
}

/// Heap bytes of one feature's state without its sketch: the distinct values (at most
/// `max_bin` floats) and the state's own fields.
fn distinct_bytes(max_bin: usize) -> u64 {
    (max_bin as u64 + 1) * 4 + 128
}

/// The default sketch parameter `k` (`train.sketch_size`): its rank error is far below the
/// width of one of 256 bins.
pub const DEFAULT_SKETCH_SIZE: usize = 2048;

/// Finds every feature's cuts, from sketches of parameter `sketch_size`.
///
/// When the budget holds a sketch for every feature, one pass does it all. Otherwise (wide
/// data: 4,160 k-mer columns need about 774 MiB of sketches at the default size) a first
/// pass counts each feature's distinct values and settles those with few (k-mer counts,
/// flags: exact cuts need no sketch); a second pass sketches only the rest. Either pass
/// reads its features in as many column groups, one scan each, as the budget needs, and
/// each scan reads only its group's columns.
///
/// Each feature sees its values in dataset order, and its sketch is built the same way in
/// either plan; the sketch size is a parameter, never a consequence of the budget. So the
/// cuts are the same for any thread count and any budget that fits (a budget that cannot
/// hold one feature's sketch beside its scan is refused before any pass).
pub fn sketch_dataset(
    ds: &Dataset,
    max_bin: usize,
    sketch_size: usize,
    res: &mut MemoryReservation,
) -> anyhow::Result<Cuts> {
    let n = ds.roles.features.len();
    let rows = ds.rows();
    let k = sketch_size;
    let all: Vec<usize> = (0..n).collect();
    let all_sketches = sketch_bytes(k, rows, max_bin, n);
    let names: Vec<&str> = ds.roles.features.iter().map(|f| f.name.as_str()).collect();
    let mut done: Vec<Option<FeatureBins>> = vec![None; n];
    if all_sketches + scan_bytes(ds, &all).0 <= res.available() {
        scan_groups(
            ds,
            &[all],
            all_sketches,
            res,
            max_bin,
            || Acc::new(Some(k), true),
            |j, a| done[j] = Some(a.finish(names[j], max_bin)),
        )?;
    } else {
        // Every feature's distinct values (then its cuts) stay reserved throughout.
        let distinct = distinct_bytes(max_bin) * n as u64;
        res.try_grow(distinct)?;
        // First the distinct values, in as many groups as the scan needs; a feature with few
        // is finished at once.
        let groups = plan_groups(ds, &all, 0, 0, res, k)?;
        let mut pending: Vec<Option<Acc>> = vec![None; n];
        scan_groups(
            ds,
            &groups,
            0,
            res,
            max_bin,
            || Acc::new(None, true),
            |j, mut a| {
                if a.needs_sketch(max_bin) {
                    // Its cuts will come from the sketch.
                    a.distinct = None;
                    pending[j] = Some(a);
                } else {
                    done[j] = Some(a.finish(names[j], max_bin));
                }
            },
        )?;
        // Then the others' sketches, group by group, each finished after its group's scan.
        let many: Vec<usize> = (0..n).filter(|&j| pending[j].is_some()).collect();
        let per = QuantileSketch::max_bytes(k, rows);
        let extra = QuantileSketch::weighted_bytes(k, rows);
        let groups = plan_groups(ds, &many, per, extra, res, k)?;
        let state = groups
            .iter()
            .map(|g| per * g.len() as u64 + extra)
            .max()
            .unwrap_or(0);
        scan_groups(
            ds,
            &groups,
            state,
            res,
            max_bin,
            || Acc::new(Some(k), false),
            |j, a| {
                if let Some(mut acc) = pending[j].take() {
                    acc.sketch = a.sketch;
                    done[j] = Some(acc.finish(names[j], max_bin));
                }
            },
        )?;
        res.shrink(distinct);
    }
    crate::memory::pause_point("sketch");
    Ok(Cuts {
        max_bin,
        features: done
            .into_iter()
            .map(|f| f.expect("every feature is read"))
            .collect(),
    })
}

/// Bytes the scan of features `feats` needs at least, and what they are.
fn scan_bytes(ds: &Dataset, feats: &[usize]) -> (u64, String) {
    let reader = FeatureReader::subset(ds, feats);
    let threads = rayon::current_num_threads() as u64;
    ds.scan()
        .with_features(&reader)
        .with_extra_row_bytes(4 * threads)
        .min_bytes()
}

/// Splits `feats` (in order) into groups whose scan and state — `per` bytes a feature and
/// `extra` a group — fit what `res` has left; refuses a budget that cannot hold one feature.
fn plan_groups(
    ds: &Dataset,
    feats: &[usize],
    per: u64,
    extra: u64,
    res: &MemoryReservation,
    k: usize,
) -> anyhow::Result<Vec<Vec<usize>>> {
    // The cost of a group grows with every feature added, so each group is the longest run
    // from where the last ended that fits: found by bisection, since pricing a group builds
    // its reader.
    let cost = |g: &[usize]| scan_bytes(ds, g).0 + per * g.len() as u64 + extra;
    let room = res.available();
    let mut groups: Vec<Vec<usize>> = vec![];
    let mut start = 0;
    while start < feats.len() {
        let one = &feats[start..start + 1];
        if cost(one) > room {
            // Not even this feature alone fits beside what the stage holds already.
            let (scan, what) = scan_bytes(ds, one);
            return Err(MemoryError::TooSmall {
                stage: res.stage().to_string(),
                key: res.key().to_string(),
                needed: res.size() + scan + per + extra,
                budget: res.budget(),
                what: format!(
                    "{what}, and the state of one feature at train.sketch_size = {k} (or lower that)"
                ),
            }
            .into());
        }
        let (mut fits, mut over) = (start + 1, feats.len() + 1);
        while over - fits > 1 {
            let mid = (fits + over) / 2;
            if cost(&feats[start..mid]) <= room {
                fits = mid;
            } else {
                over = mid;
            }
        }
        groups.push(feats[start..fits].to_vec());
        start = fits;
    }
    Ok(groups)
}

/// One scan per group of features, each reading only its group's columns: every feature's
/// values go to a state `make` gives, which `keep` receives after its group's scan. `state`
/// bytes (the largest group's) stay reserved throughout.
fn scan_groups(
    ds: &Dataset,
    groups: &[Vec<usize>],
    state: u64,
    res: &mut MemoryReservation,
    max_bin: usize,
    make: impl Fn() -> Acc,
    mut keep: impl FnMut(usize, Acc),
) -> anyhow::Result<()> {
    let threads = rayon::current_num_threads() as u64;
    res.try_grow(state)?;
    for g in groups {
        let reader = FeatureReader::subset(ds, g);
        let scan = ds.scan().with_features(&reader).with_extra_row_bytes(4 * threads);
        let mut accs: Vec<Acc> = g.iter().map(|_| make()).collect();
        for item in scan.build(res)? {
            let b = item?;
            let fb = reader.read(&b)?;
            accs.par_iter_mut()
                .enumerate()
                .for_each_init(Vec::new, |buf, (i, acc)| {
                    fb.fill(i, buf);
                    acc.add(buf, max_bin.min(256));
                });
        }
        for (&j, a) in g.iter().zip(accs) {
            keep(j, a);
        }
    }
    res.shrink(state);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fit(values: &[f32], max_bin: usize) -> FeatureBins {
        let mut a = Acc::new(Some(64), true);
        a.add(values, max_bin);
        a.finish("f", max_bin)
    }

    #[test]
    fn few_distinct_values_get_exact_bins() {
        let fb = fit(&[3.0, 0.0, 1.0, 3.0, 0.0, f32::NAN], 256);
        assert_eq!(fb.cuts, vec![1.0, 3.0]);
        assert_eq!(
            (fb.bin(0.0), fb.bin(1.0), fb.bin(3.0), fb.bin(f32::NAN)),
            (0, 1, 2, 3)
        );
        assert!(fb.has_missing);
        assert_eq!(fb.n_slots(), 4, "three value bins and a missing bin");
    }

    #[test]
    fn split_bin_matches_threshold_rule() {
        let values: Vec<f32> = (0..10_000).map(|i| ((i * 37) % 1000) as f32 / 7.0).collect();
        let fb = fit(&values, 32);
        assert!(fb.n_bins() <= 32 && fb.n_bins() > 16);
        for b in 0..fb.n_bins() - 1 {
            for &x in &values {
                assert_eq!(fb.bin(x) as usize <= b, x < fb.threshold(b));
            }
        }
    }

    #[test]
    fn infinities_get_finite_cuts_and_the_end_bins() {
        // Few distinct values: +inf would have been a cut of its own.
        let fb = fit(&[0.0, 1.0, f32::INFINITY, f32::NEG_INFINITY, f32::NAN, 1.0], 256);
        assert_eq!(fb.cuts, vec![0.0, 1.0, f32::MAX]);
        assert_eq!(
            (
                fb.bin(f32::NEG_INFINITY),
                fb.bin(0.0),
                fb.bin(1.0),
                fb.bin(f32::INFINITY)
            ),
            (0, 1, 2, 3)
        );
        assert_eq!(fb.bin(f32::NAN), fb.missing_code());
        // f32::MAX itself is a value: +inf shares its bin.
        let fb = fit(&[0.0, f32::MAX, f32::INFINITY], 256);
        assert_eq!(fb.cuts, vec![f32::MAX]);
        assert_eq!(fb.bin(f32::INFINITY), 1);
        // Quantile cuts, a third of the values infinite.
        let values: Vec<f32> = (0..30_000)
            .map(|i| match i % 3 {
                0 => f32::INFINITY,
                1 => f32::NEG_INFINITY,
                _ => (i % 1000) as f32,
            })
            .collect();
        let fb = fit(&values, 16);
        assert!(fb.cuts.iter().all(|c| c.is_finite()), "{:?}", fb.cuts);
        assert!(fb.cuts.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(fb.bin(f32::NEG_INFINITY), 0);
        assert_eq!(fb.bin(f32::INFINITY) as usize, fb.n_bins() - 1);
        for b in 0..fb.n_bins() - 1 {
            for &x in &values {
                assert_eq!(fb.bin(x) as usize <= b, x < fb.threshold(b));
            }
        }
    }

    #[test]
    fn sparse_columns_detected() {
        let mut v = vec![0.0f32; 90];
        v.extend((1..=10).map(|i| i as f32));
        let fb = fit(&v, 256);
        assert!(fb.sparse);
        assert_eq!(fb.zero_bin, 0);
    }
}
