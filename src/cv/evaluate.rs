//! Scoring the out-of-fold predictions: per fold and pooled, for the meta-model, its
//! calibrated probabilities and the base model, with gene-level top-k; and the calibration
//! itself, cross-fitted so that no fold is scored by a calibrator that saw it.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::Serialize;

use super::{CvParams, FoldFit, Folds, RowState, EXCLUDED};
use crate::boost::Model;
use crate::eval::calibrate::{ClassCalibration, Method};
use crate::eval::{self, BinaryCounts, GeneTopK, Metrics, TopKSummary};
use crate::io::CLASS_NAMES;
use crate::memory::MemoryReservation;

/// Heap per scored row of the eval stage at its busiest, besides any copies of the rows
/// ([`SUBSET_BYTES_PER_ROW`]): fitting a calibrator on the chosen rows in place (their
/// indices, `u32`, and the isotonic fit's sort key, `u64`: 12) or scoring them (the splice
/// score, its sort key and flags: 13).
pub const EVAL_BYTES_PER_ROW: u64 = 13;

/// Heap per row of a part that does not hold every row, and so is copied: its indices
/// (`u32`), labels, gene indices and one set of three probabilities (`f32`).
pub const SUBSET_BYTES_PER_ROW: u64 = 4 + 1 + 4 + 12;

/// Heap of the report the eval stage returns, besides what grows with rows: 16 curves (ROC
/// and PR of the meta and base models, per class and for splice vs neither) of at most
/// [`CURVE_POINTS`] points, and 64 KiB for the reliability bins and the per-fold figures.
pub const REPORT_BYTES: u64 = 16 * CURVE_POINTS as u64 * 16 + (64 << 10);

/// Heap per gene of the eval stage: its row of `gene_metrics.tsv` (kept in the report), its
/// top-k figures for the two splice classes of the meta and base models while its fold is
/// scored, and its entry in the fold's row count.
pub const EVAL_BYTES_PER_GENE: u64 =
    (std::mem::size_of::<GeneRow>() + 4 * std::mem::size_of::<GeneTopK>() + 48) as u64;

/// Heap of the eval stage for `rows` out-of-fold predictions of `genes` genes, of which
/// the largest part copied has `copied` rows ([`copied_rows`]).
pub fn eval_bytes(rows: u64, copied: u64, genes: u64) -> u64 {
    rows * EVAL_BYTES_PER_ROW + copied * SUBSET_BYTES_PER_ROW + genes * EVAL_BYTES_PER_GENE + REPORT_BYTES
}

/// Rows of the largest part the eval stage copies: every kept row when some row is left out
/// (the pooled part is then copied too), else the largest fold's.
pub fn copied_rows(fold: &[u8], n_folds: usize) -> u64 {
    let mut per_fold = vec![0u64; n_folds];
    let mut excluded = 0u64;
    for &f in fold {
        match per_fold.get_mut(f as usize) {
            Some(k) => *k += 1,
            None => excluded += 1,
        }
    }
    if excluded > 0 {
        fold.len() as u64 - excluded
    } else {
        per_fold.into_iter().max().unwrap_or(0)
    }
}

/// Heap of the report once returned, which cross-validation keeps: the curves and figures,
/// a row per gene, and the fitted calibration (known only once fitted).
pub fn report_bytes(genes: u64) -> u64 {
    REPORT_BYTES + genes * std::mem::size_of::<GeneRow>() as u64
}

/// Points kept per curve in the report.
const CURVE_POINTS: usize = 400;
/// Bins of the reliability curves and of the expected calibration error.
const BINS: usize = 10;

/// Calls at a threshold, as a confusion of one class against the rest.
#[derive(Debug, Clone, Serialize)]
pub struct Calls {
    pub tp: u64,
    pub fp: u64,
    #[serde(rename = "fn")]
    pub fn_: u64,
    pub tn: u64,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
}

impl From<BinaryCounts> for Calls {
    fn from(b: BinaryCounts) -> Self {
        Self {
            tp: b.tp,
            fp: b.fp,
            fn_: b.fn_,
            tn: b.tn,
            precision: b.precision(),
            recall: b.recall(),
            f1: b.f1(),
        }
    }
}

/// The meta-model against the base model for one splice class (`donor`, `acceptor`), or for
/// any splice site (`splice`: donor or acceptor against neither, on P(donor) + P(acceptor)
/// and on `donor_score + acceptor_score`, as the Python original reports it). Both call a
/// site where their score reaches the threshold.
#[derive(Debug, Clone, Serialize)]
pub struct BaseVsMeta {
    pub class: String,
    pub threshold: f64,
    pub base: Calls,
    pub meta: Calls,
    /// Base minus meta: positive means the meta-model made fewer false positives.
    pub fp_reduction: i64,
    /// Base minus meta: positive means the meta-model missed fewer sites.
    pub fn_reduction: i64,
    /// Meta minus base: positive means the meta-model's F1 is higher.
    pub f1_gain: f64,
    pub base_roc_auc: Option<f64>,
    pub meta_roc_auc: Option<f64>,
    pub base_average_precision: Option<f64>,
    pub meta_average_precision: Option<f64>,
}

impl BaseVsMeta {
    fn new(class: &str, threshold: f64, base: Calls, meta: Calls) -> Self {
        Self {
            class: class.into(),
            threshold,
            fp_reduction: base.fp as i64 - meta.fp as i64,
            fn_reduction: base.fn_ as i64 - meta.fn_ as i64,
            f1_gain: meta.f1 - base.f1,
            base,
            meta,
            base_roc_auc: None,
            meta_roc_auc: None,
            base_average_precision: None,
            meta_average_precision: None,
        }
    }
}

/// The splice-vs-neither view of three probability columns: the summed splice score, the
/// calls at `thr`, the ROC-AUC and AP, and (when `curves`) the ROC and PR curves.
struct SpliceView {
    calls: Calls,
    auc: Option<f64>,
    ap: Option<f64>,
    roc: Vec<(f64, f64)>,
    pr: Vec<(f64, f64)>,
}

fn splice_view(p: [&[f32]; 3], is_splice: &[bool], thr: f32, curves: bool) -> SpliceView {
    let score: Vec<f32> = p[1].iter().zip(p[2]).map(|(d, a)| d + a).collect();
    let calls = BinaryCounts::from_threshold(&score, is_splice, thr).into();
    let mut keys = Vec::with_capacity(score.len());
    eval::curves::sort_descending(&score, &mut keys);
    let (auc, ap) = eval::curves::auc_and_ap(&score, &keys, |i| is_splice[i]);
    drop(keys);
    let (roc, pr) = if curves {
        (
            eval::roc_curve(&score, is_splice, CURVE_POINTS),
            eval::pr_curve(&score, is_splice, CURVE_POINTS),
        )
    } else {
        (vec![], vec![])
    };
    SpliceView {
        calls,
        auc,
        ap,
        roc,
        pr,
    }
}

/// One set of predictions scored.
#[derive(Debug, Clone, Serialize)]
pub struct Scored {
    pub metrics: Metrics,
    /// Gene-level top-k per splice class.
    pub top_k: BTreeMap<String, TopKSummary>,
}

/// Brier score and expected calibration error of one class, before and after calibration.
#[derive(Debug, Clone, Serialize)]
pub struct ClassCalibrationScore {
    pub class: String,
    pub brier_before: f64,
    pub brier_after: f64,
    pub ece_before: f64,
    pub ece_after: f64,
}

/// The scores of a fold, or of all folds pooled (`fold` = None).
#[derive(Debug, Clone, Serialize)]
pub struct PartReport {
    pub fold: Option<usize>,
    pub genes: u64,
    pub rows: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub training: Option<FoldFit>,
    pub meta: Scored,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub calibrated: Option<Scored>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub calibration: Option<Vec<ClassCalibrationScore>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base: Option<Scored>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base_vs_meta: Option<Vec<BaseVsMeta>>,
}

/// One gene's top-k counts.
#[derive(Debug, Clone)]
pub struct GeneRow {
    pub gene: u32,
    pub fold: u8,
    pub rows: u64,
    /// Per splice class (donor, acceptor): true sites, meta hits, base hits.
    pub sites: [u64; 2],
    pub meta_hits: [u64; 2],
    pub base_hits: [Option<u64>; 2],
}

/// Curves of one class, for the report.
#[derive(Debug, Clone, Default)]
pub struct Curves {
    pub roc_meta: Vec<(f64, f64)>,
    pub roc_base: Option<Vec<(f64, f64)>>,
    pub pr_meta: Vec<(f64, f64)>,
    pub pr_base: Option<Vec<(f64, f64)>>,
    pub reliability_before: Vec<(f64, f64)>,
    pub reliability_after: Option<Vec<(f64, f64)>>,
}

/// Everything the evaluation produced.
pub struct Report {
    pub folds: Vec<PartReport>,
    pub pooled: PartReport,
    pub genes: Vec<GeneRow>,
    /// Per class code.
    pub curves: Vec<Curves>,
    /// Donor or acceptor against neither, on P(donor) + P(acceptor) (and the base scores'
    /// sum); no reliability curves.
    pub splice_curves: Curves,
    /// Fitted on all out-of-fold predictions: the bundle's calibration.
    pub calibration: Option<ClassCalibration>,
    pub method: Method,
}

/// One feature's importance summed over a class's fold models.
#[derive(Debug, Clone, Copy, Default)]
pub struct FeatureSum {
    pub gain: f64,
    pub cover: f64,
    pub splits: u64,
    /// Models with at least one split on the feature.
    pub models: u64,
    /// The last model (by count) that split on it, so each model counts once.
    last: u64,
}

/// Summed importance of the fold models, per class: one entry per feature, in the models'
/// feature order, so that its size is known before the first fold ([`Self::bytes`]).
#[derive(Default)]
pub struct ImportanceSum {
    pub features: Vec<String>,
    pub sums: [Vec<FeatureSum>; 3],
    pub models: [u64; 3],
}

impl ImportanceSum {
    /// Heap bytes for `n_features` features whose names take `names_bytes`.
    pub fn bytes(n_features: usize, names_bytes: u64) -> u64 {
        names_bytes + 3 * (n_features * std::mem::size_of::<FeatureSum>()) as u64
    }

    pub fn new(features: Vec<String>) -> Self {
        let n = features.len();
        Self {
            features,
            sums: std::array::from_fn(|_| vec![FeatureSum::default(); n]),
            models: [0; 3],
        }
    }

    /// Adds a model of `class`, trained on these features.
    pub fn add(&mut self, class: usize, model: &Model) {
        debug_assert_eq!(model.features, self.features);
        self.models[class] += 1;
        let id = self.models[class];
        let sums = &mut self.sums[class];
        for t in &model.trees {
            for n in (0..t.len()).filter(|&n| !t.is_leaf(n)) {
                let e = &mut sums[t.feature[n] as usize];
                e.gain += t.loss_change[n] as f64;
                e.cover += t.sum_hess[n] as f64;
                e.splits += 1;
                if e.last != id {
                    e.last = id;
                    e.models += 1;
                }
            }
        }
    }
}

/// The rows a part chooses (`keep` true of their fold code), or `None` when it chooses every
/// row: the pooled part of a run without a filter, which then reads the row state in place.
fn chosen(st: &RowState, keep: impl Fn(u8) -> bool) -> Option<Vec<u32>> {
    if st.fold.iter().all(|&f| keep(f)) {
        return None;
    }
    Some(
        (0..st.fold.len() as u32)
            .filter(|&i| keep(st.fold[i as usize]))
            .collect(),
    )
}

/// The chosen rows' labels, gene indices and one set of their probabilities: borrowed from
/// the row state when every row is chosen, copied otherwise ([`SUBSET_BYTES_PER_ROW`]).
struct Subset<'a> {
    rows: Option<Vec<u32>>,
    y: Cow<'a, [u8]>,
    groups: Cow<'a, [u32]>,
    p: [Cow<'a, [f32]>; 3],
}

impl<'a> Subset<'a> {
    fn new(st: &'a RowState, keep: impl Fn(u8) -> bool) -> Self {
        let rows = chosen(st, keep);
        Self {
            y: gather(&st.labels, rows.as_deref()),
            groups: gather(&st.groups, rows.as_deref()),
            rows,
            p: std::array::from_fn(|_| Cow::Borrowed(&[][..])),
        }
    }

    /// Loads `src` (per class, all rows) at the chosen rows.
    fn load(&mut self, src: &'a [Vec<f32>; 3]) {
        for (dst, s) in self.p.iter_mut().zip(src) {
            // Refill a copy in place rather than allocate another.
            *dst = match (std::mem::take(dst), &self.rows) {
                (_, None) => Cow::Borrowed(s),
                (Cow::Owned(mut v), Some(r)) => {
                    v.clear();
                    v.extend(r.iter().map(|&i| s[i as usize]));
                    Cow::Owned(v)
                }
                (Cow::Borrowed(_), Some(r)) => gather(s, Some(r)),
            };
        }
    }

    fn p(&self) -> [&[f32]; 3] {
        [&self.p[0], &self.p[1], &self.p[2]]
    }

    fn len(&self) -> usize {
        self.y.len()
    }
}

/// `src` at `rows`: in place when `rows` is `None` (every row).
fn gather<'a, T: Copy>(src: &'a [T], rows: Option<&[u32]>) -> Cow<'a, [T]> {
    match rows {
        None => Cow::Borrowed(src),
        Some(r) => Cow::Owned(r.iter().map(|&i| src[i as usize]).collect()),
    }
}

/// Per splice class (donor, acceptor), every gene's top-k counts.
type PerGene = Vec<Vec<GeneTopK>>;

fn score(sub: &Subset, p: [&[f32]; 3]) -> (Scored, PerGene) {
    let per_gene: PerGene = (1..3u8)
        .map(|c| eval::gene_top_k(&sub.groups, &sub.y, p[c as usize], c))
        .collect();
    let top_k = per_gene
        .iter()
        .zip(&CLASS_NAMES[1..])
        .map(|(g, name)| (name.to_string(), eval::summarize(g)))
        .collect();
    let scored = Scored {
        metrics: eval::classify(&sub.y, p),
        top_k,
    };
    (scored, per_gene)
}

fn is_class(y: &[u8], c: usize) -> Vec<bool> {
    y.iter().map(|&l| l as usize == c).collect()
}

/// Scores one part (a fold, or all folds) from the row state; also returns the meta-model's
/// and the base model's per-gene top-k.
fn part<'a>(
    st: &'a RowState,
    sub: &mut Subset<'a>,
    cv: &CvParams,
    calibrated: bool,
) -> (PartReport, PerGene, Option<PerGene>) {
    let genes = {
        let mut seen = vec![false; sub.groups.iter().max().map_or(0, |&g| g as usize + 1)];
        for &g in sub.groups.iter() {
            seen[g as usize] = true;
        }
        seen.into_iter().filter(|&s| s).count() as u64
    };
    sub.load(&st.oof);
    let meta_p = sub.p();
    let (meta, meta_genes) = score(sub, meta_p);
    let thr = cv.base_threshold as f32;
    let meta_calls: Vec<Calls> = (1..3)
        .map(|c| BinaryCounts::from_threshold(&sub.p[c], &is_class(&sub.y, c), thr).into())
        .collect();
    let meta_scored_auc: Vec<(Option<f64>, Option<f64>)> = meta
        .metrics
        .classes
        .iter()
        .map(|m| (m.roc_auc, m.average_precision))
        .collect();
    let meta_splice = {
        let is_splice: Vec<bool> = sub.y.iter().map(|&l| l != 0).collect();
        splice_view(sub.p(), &is_splice, thr, false)
    };
    let before: Vec<(f64, f64)> = (0..3)
        .map(|c| {
            let y = is_class(&sub.y, c);
            (eval::brier(&sub.p[c], &y), eval::ece(&sub.p[c], &y, BINS))
        })
        .collect();
    let (calibrated, calibration) = if calibrated {
        sub.load(&st.cal);
        let cal_p = sub.p();
        let scored = score(sub, cal_p).0;
        let scores = (0..3)
            .map(|c| {
                let y = is_class(&sub.y, c);
                ClassCalibrationScore {
                    class: CLASS_NAMES[c].into(),
                    brier_before: before[c].0,
                    brier_after: eval::brier(&sub.p[c], &y),
                    ece_before: before[c].1,
                    ece_after: eval::ece(&sub.p[c], &y, BINS),
                }
            })
            .collect();
        (Some(scored), Some(scores))
    } else {
        (None, None)
    };
    let (base, base_vs_meta, base_genes) = match &st.base {
        Some(b) => {
            sub.load(b);
            let base_p = sub.p();
            let (scored, per_gene) = score(sub, base_p);
            let mut cmp: Vec<BaseVsMeta> = (1..3)
                .zip(meta_calls)
                .map(|(c, meta)| {
                    let base: Calls =
                        BinaryCounts::from_threshold(&sub.p[c], &is_class(&sub.y, c), thr).into();
                    let mut x = BaseVsMeta::new(CLASS_NAMES[c], cv.base_threshold, base, meta);
                    x.base_roc_auc = scored.metrics.classes[c].roc_auc;
                    x.meta_roc_auc = meta_scored_auc[c].0;
                    x.base_average_precision = scored.metrics.classes[c].average_precision;
                    x.meta_average_precision = meta_scored_auc[c].1;
                    x
                })
                .collect();
            let is_splice: Vec<bool> = sub.y.iter().map(|&l| l != 0).collect();
            let b = splice_view(sub.p(), &is_splice, thr, false);
            let mut x = BaseVsMeta::new("splice", cv.base_threshold, b.calls, meta_splice.calls);
            x.base_roc_auc = b.auc;
            x.meta_roc_auc = meta_splice.auc;
            x.base_average_precision = b.ap;
            x.meta_average_precision = meta_splice.ap;
            cmp.push(x);
            (Some(scored), Some(cmp), Some(per_gene))
        }
        None => (None, None, None),
    };
    let report = PartReport {
        fold: None,
        genes,
        rows: sub.len() as u64,
        training: None,
        meta,
        calibrated,
        calibration,
        base,
        base_vs_meta,
    };
    (report, meta_genes, base_genes)
}

/// Fits calibrators on every fold but one and calibrates that one, fold by fold; then fits
/// the bundle's calibrator on all out-of-fold predictions. Returns the latter.
fn cross_fit(st: &mut RowState, cv: &CvParams) -> Option<ClassCalibration> {
    if cv.calibration == Method::None {
        return None;
    }
    // Read in place at the chosen rows: a fit takes most of them, and a copy of most of
    // the row state would cost more than the fit.
    let fit_on = |st: &RowState, keep: &dyn Fn(u8) -> bool| {
        let rows = chosen(st, keep);
        let p = [&st.oof[0][..], &st.oof[1][..], &st.oof[2][..]];
        ClassCalibration::fit_rows(
            cv.calibration,
            cv.calibration_mode,
            &st.labels,
            p,
            rows.as_deref(),
        )
    };
    for f in 0..cv.n_folds as u8 {
        let cal = fit_on(st, &|x| x != EXCLUDED && x != f);
        for i in 0..st.fold.len() {
            if st.fold[i] == f {
                let q = cal.apply([st.oof[0][i], st.oof[1][i], st.oof[2][i]]);
                for (dst, v) in st.cal.iter_mut().zip(q) {
                    dst[i] = v;
                }
            }
        }
    }
    Some(fit_on(st, &|x| x != EXCLUDED))
}

fn points(v: Vec<eval::ReliabilityBin>) -> Vec<(f64, f64)> {
    v.into_iter()
        .map(|b| (b.mean_predicted, b.fraction_positive))
        .collect()
}

/// The eval stage: calibration, per-fold and pooled scores, per-gene top-k and curves.
pub(crate) fn evaluate(
    st: &mut RowState,
    folds: &Folds,
    cv: &CvParams,
    fits: &[FoldFit],
    res: &mut MemoryReservation,
) -> anyhow::Result<Report> {
    let n = st.fold.iter().filter(|&&f| f != EXCLUDED).count() as u64;
    let n_genes: u64 = folds.genes.iter().sum();
    let need = eval_bytes(n, copied_rows(&st.fold, cv.n_folds), n_genes);
    res.require(need, format!("scoring {n} out-of-fold predictions"))?;
    res.try_grow(need)?;
    let calibration = cross_fit(st, cv);
    let has_cal = calibration.is_some();
    let st = &*st;

    let mut reports = vec![];
    let mut genes = Vec::with_capacity(n_genes as usize);
    for f in 0..cv.n_folds {
        let mut sub = Subset::new(st, |x| x as usize == f);
        let (mut r, meta, base) = part(st, &mut sub, cv, has_cal);
        r.fold = Some(f);
        r.training = fits.get(f).cloned();
        let mut rows_of: BTreeMap<u32, u64> = BTreeMap::new();
        for &g in sub.groups.iter() {
            *rows_of.entry(g).or_default() += 1;
        }
        for (&g, &rows) in &rows_of {
            let mut row = GeneRow {
                gene: g,
                fold: f as u8,
                rows,
                sites: [0; 2],
                meta_hits: [0; 2],
                base_hits: [None; 2],
            };
            // gene_top_k lists genes in id order.
            let find = |v: &[GeneTopK]| v.binary_search_by_key(&g, |t| t.group).ok().map(|i| v[i].clone());
            for k in 0..2 {
                if let Some(t) = find(&meta[k]) {
                    row.sites[k] = t.k;
                    row.meta_hits[k] = t.hits;
                }
                if let Some(b) = &base {
                    row.base_hits[k] = Some(find(&b[k]).map_or(0, |t| t.hits));
                }
            }
            genes.push(row);
        }
        reports.push(r);
    }
    let mut sub = Subset::new(st, |x| x != EXCLUDED);
    let mut pooled = part(st, &mut sub, cv, has_cal).0;
    pooled.genes = folds.genes.iter().sum();

    let curves = (0..3)
        .map(|c| {
            let y = is_class(&sub.y, c);
            let mut cu = Curves::default();
            sub.load(&st.oof);
            cu.roc_meta = eval::roc_curve(&sub.p[c], &y, CURVE_POINTS);
            cu.pr_meta = eval::pr_curve(&sub.p[c], &y, CURVE_POINTS);
            cu.reliability_before = points(eval::reliability(&sub.p[c], &y, BINS));
            if has_cal {
                sub.load(&st.cal);
                cu.reliability_after = Some(points(eval::reliability(&sub.p[c], &y, BINS)));
            }
            if let Some(b) = &st.base {
                sub.load(b);
                cu.roc_base = Some(eval::roc_curve(&sub.p[c], &y, CURVE_POINTS));
                cu.pr_base = Some(eval::pr_curve(&sub.p[c], &y, CURVE_POINTS));
            }
            cu
        })
        .collect();
    let is_splice: Vec<bool> = sub.y.iter().map(|&l| l != 0).collect();
    sub.load(&st.oof);
    let m = splice_view(sub.p(), &is_splice, cv.base_threshold as f32, true);
    let mut splice_curves = Curves {
        roc_meta: m.roc,
        pr_meta: m.pr,
        ..Curves::default()
    };
    if let Some(b) = &st.base {
        sub.load(b);
        let b = splice_view(sub.p(), &is_splice, cv.base_threshold as f32, true);
        splice_curves.roc_base = Some(b.roc);
        splice_curves.pr_base = Some(b.pr);
    }
    Ok(Report {
        folds: reports,
        pooled,
        genes,
        curves,
        splice_curves,
        calibration,
        method: cv.calibration,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_largest_copied_part_is_the_largest_fold_unless_a_row_is_left_out() {
        // Folds 0, 1, 1, 2: every row kept, so the pooled part is read in place and the
        // largest copy is fold 1's two rows.
        assert_eq!(copied_rows(&[0, 1, 1, 2], 3), 2);
        // A row left out: the pooled part (three rows) is copied too.
        assert_eq!(copied_rows(&[0, 1, EXCLUDED, 2], 3), 3);
        assert_eq!(copied_rows(&[], 3), 0);
    }
}
