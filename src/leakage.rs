//! `inspect --leakage`: how well each feature, alone, separates each class.
//!
//! The Python original's datasets carry structure columns that give the label away: they
//! are joined on the transcript id, which only TP and FN rows have, so FP and TN rows get
//! nulls, sentinels and zeros there. A model trained on them scores well and learns nothing
//! about splicing. This room measures, for every feature and each class one-vs-rest, the
//! ROC-AUC of the feature used as a score on its own, and flags a feature that separates a
//! class almost perfectly, and the Python's known structure columns by name.
//!
//! The AUC comes from the binned page cache training uses (built here when missing, reused
//! when there), in one pass that counts rows per (feature, bin, class): the per-feature work
//! is then a walk over at most 256 bins, whatever the number of rows. Missing values are a
//! bin of their own, ordered below every value; ties count half (Mann–Whitney, as
//! scikit-learn's `roc_auc_score`).
//!
//! The result is exact for a feature whose distinct values each got a bin of their own: at
//! most `max_bin` of them (`max_bin − 1`, and at most 255, when values are missing). A feature
//! with more is binned at quantiles of its sketch, and values sharing a bin become ties: the
//! AUC then moves by at most half the share of (positive, negative) pairs that fall in one
//! bin, `½ · Σ_b pos_b · neg_b / (P · N)`, in either direction (merging two values whose
//! local order goes against the overall one raises the separation). With 256 bins that is a
//! few thousandths at most for a continuous feature.

use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde::ser::SerializeStruct;
use serde::Serialize;

use crate::binning::cache::{self, PageCache};
use crate::binning::{sketch_dataset, Cuts, DEFAULT_SKETCH_SIZE};
use crate::error::InputError;
use crate::io::{write_table, Dataset, CLASS_NAMES};
use crate::memory::{MemoryReservation, Stages};

/// The default flagging threshold on a class's separation `max(AUC, 1 − AUC)`.
pub const DEFAULT_THRESHOLD: f64 = 0.95;

const JOIN: &str = "set by the Python's transcript join, which only TP and FN rows match \
                    (FP and TN rows have no transcript id)";
const STRUCTURE: &str = "transcript structure joined on transcript_id, which only TP and FN \
                         rows carry: FP and TN rows get nulls, sentinels or zeros";

/// The Python original's structure columns that leak the label in the datasets it builds,
/// with why. They are flagged by name whatever their AUC: on a sample where the join
/// happens to fail evenly they may look harmless, and still leak on the full dataset.
pub const KNOWN_LEAKY: [(&str, &str); 13] = [
    ("has_tx_info", JOIN),
    ("has_gene_info", JOIN),
    ("missing_transcript_feats", JOIN),
    ("distance_to_start", STRUCTURE),
    ("distance_to_end", STRUCTURE),
    ("num_exons", STRUCTURE),
    ("avg_exon_length", STRUCTURE),
    ("median_exon_length", STRUCTURE),
    ("total_exon_length", STRUCTURE),
    ("total_intron_length", STRUCTURE),
    ("tx_start", STRUCTURE),
    ("tx_end", STRUCTURE),
    ("transcript_length", STRUCTURE),
];

/// Why `name` is a known leaky column of the Python's datasets, if it is one.
pub fn known_leaky(name: &str) -> Option<&'static str> {
    KNOWN_LEAKY.iter().find(|(n, _)| *n == name).map(|(_, why)| *why)
}

/// Reads a `--leakage-threshold`: a separation, so from 0.5 (flags everything that is
/// not pure noise) to 1 (flags nothing by AUC).
pub fn parse_threshold(s: &str) -> Result<f64, String> {
    let t: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("`{s}` is not a number; give a separation from 0.5 to 1, such as 0.95"))?;
    check_threshold(t).map_err(|e| e.to_string())?;
    Ok(t)
}

fn check_threshold(t: f64) -> Result<(), InputError> {
    if (0.5..=1.0).contains(&t) {
        return Ok(());
    }
    Err(InputError::new(format!(
        "leakage threshold {t} is outside 0.5 to 1: a separation max(AUC, 1 − AUC) is never below 0.5"
    ))
    .hint(format!(
        "use a threshold from 0.5 to 1 (default {DEFAULT_THRESHOLD})"
    )))
}

/// What [`leakage`] measures and where it keeps the binned cache.
#[derive(Debug, Clone)]
pub struct LeakageOptions {
    /// Flag a feature when any class's separation is above this.
    pub threshold: f64,
    /// The binning of the cache: training's `max_bin` and `sketch_size`, so that the two
    /// share one cache.
    pub max_bin: usize,
    pub sketch_size: usize,
    /// The directory holding binned caches (`run.out_dir/cache` or `train.cache_dir`).
    pub cache_root: PathBuf,
}

impl LeakageOptions {
    /// The default threshold and training's default binning, caches under `cache_root`.
    pub fn new(cache_root: impl Into<PathBuf>) -> Self {
        Self {
            threshold: DEFAULT_THRESHOLD,
            max_bin: 256,
            sketch_size: DEFAULT_SKETCH_SIZE,
            cache_root: cache_root.into(),
        }
    }
}

/// One feature's single-feature AUCs and flags.
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureLeak {
    pub name: String,
    /// ROC-AUC of the feature alone for neither, donor and acceptor, each against the other
    /// two; NaN when the class has no rows or all of them.
    pub auc: [f64; 3],
    /// Some class's separation is above the threshold.
    pub flagged_by_auc: bool,
    /// Why the name is a known leaky structure column of the Python's datasets.
    pub flagged_by_name: Option<&'static str>,
}

impl FeatureLeak {
    /// `max(AUC, 1 − AUC)` per class: a feature that ranks a class low separates it as
    /// well as one that ranks it high.
    pub fn separation(&self) -> [f64; 3] {
        self.auc.map(|a| a.max(1.0 - a))
    }

    /// The largest separation of the three classes; NaN when none is defined.
    pub fn max_separation(&self) -> f64 {
        self.separation()
            .into_iter()
            .filter(|s| !s.is_nan())
            .fold(f64::NAN, f64::max)
    }

    pub fn flagged(&self) -> bool {
        self.flagged_by_auc || self.flagged_by_name.is_some()
    }
}

impl Serialize for FeatureLeak {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // The separation is derived, but a reader of the JSON should not have to know how.
        let mut st = s.serialize_struct("FeatureLeak", 5)?;
        st.serialize_field("name", &self.name)?;
        st.serialize_field("auc", &self.auc)?;
        st.serialize_field("separation", &self.separation())?;
        st.serialize_field("flagged_by_auc", &self.flagged_by_auc)?;
        st.serialize_field("flagged_by_name", &self.flagged_by_name)?;
        st.end()
    }
}

/// Every feature's single-feature AUCs, flagged ones first, then by separation.
#[derive(Debug, Clone, Serialize)]
pub struct LeakageReport {
    pub threshold: f64,
    pub rows: u64,
    pub class_counts: [u64; 3],
    /// The binned cache was there already (built by training or an earlier inspect).
    pub cache_reused: bool,
    pub features: Vec<FeatureLeak>,
}

impl LeakageReport {
    /// The report for `names` and their `aucs` (one `[neither, donor, acceptor]` each).
    pub fn new(names: &[String], aucs: &[[f64; 3]], threshold: f64, class_counts: [u64; 3]) -> Self {
        let mut features: Vec<FeatureLeak> = names
            .iter()
            .zip(aucs)
            .map(|(name, &auc)| {
                let mut f = FeatureLeak {
                    name: name.clone(),
                    auc,
                    flagged_by_auc: false,
                    flagged_by_name: known_leaky(name),
                };
                f.flagged_by_auc = f.separation().iter().any(|&s| s > threshold);
                f
            })
            .collect();
        // NaN (no separation defined) sorts last.
        let key = |f: &FeatureLeak| {
            let s = f.max_separation();
            if s.is_nan() {
                f64::NEG_INFINITY
            } else {
                s
            }
        };
        features.sort_by(|a, b| {
            b.flagged()
                .cmp(&a.flagged())
                .then(key(b).total_cmp(&key(a)))
                .then_with(|| a.name.cmp(&b.name))
        });
        Self {
            threshold,
            rows: class_counts.iter().sum(),
            class_counts,
            cache_reused: false,
            features,
        }
    }

    /// Features flagged by AUC, by name, or both.
    pub fn flagged(&self) -> usize {
        self.features.iter().filter(|f| f.flagged()).count()
    }

    /// The feature named `name`.
    pub fn feature(&self, name: &str) -> Option<&FeatureLeak> {
        self.features.iter().find(|f| f.name == name)
    }

    /// `N features flagged (…)`: the one line `inspect --leakage` ends with.
    pub fn summary_line(&self) -> String {
        let n = self.flagged();
        let by_auc = self.features.iter().filter(|f| f.flagged_by_auc).count();
        let by_name = self
            .features
            .iter()
            .filter(|f| !f.flagged_by_auc && f.flagged_by_name.is_some())
            .count();
        format!(
            "{n} feature{} flagged ({by_auc} with a separation above {}, {by_name} more by name)",
            if n == 1 { "" } else { "s" },
            self.threshold
        )
    }

    /// The table: every flagged feature, then the `others` most separating unflagged ones
    /// (the rest are in leakage.tsv: a dataset with k-mer counts has hundreds).
    pub fn render(&self, others: usize) -> String {
        use std::fmt::Write;
        let mut s = String::new();
        let _ = writeln!(
            s,
            "leakage: each feature alone as a score, ROC-AUC per class against the rest; \
             separation = max(AUC, 1 - AUC), flagged above {}",
            self.threshold
        );
        let _ = writeln!(
            s,
            "  {:<32} {:>8} {:>8} {:>8}  {:>8} {:>8} {:>8}  flag",
            "feature", "AUC nei", "AUC don", "AUC acc", "sep nei", "sep don", "sep acc"
        );
        let f = |v: f64| {
            if v.is_nan() {
                "-".to_string()
            } else {
                format!("{v:.4}")
            }
        };
        let flagged = self.flagged();
        for x in self.features.iter().take(flagged + others) {
            let sep = x.separation();
            let line = format!(
                "  {:<32} {:>8} {:>8} {:>8}  {:>8} {:>8} {:>8}  {}",
                x.name,
                f(x.auc[0]),
                f(x.auc[1]),
                f(x.auc[2]),
                f(sep[0]),
                f(sep[1]),
                f(sep[2]),
                flag_text(x)
            );
            let _ = writeln!(s, "{}", line.trim_end());
        }
        let rest = self.features.len().saturating_sub(flagged + others);
        if rest > 0 {
            let _ = writeln!(s, "  … and {rest} more unflagged features in leakage.tsv");
        }
        let mut reasons: Vec<&str> = self.features.iter().filter_map(|x| x.flagged_by_name).collect();
        reasons.sort_unstable();
        reasons.dedup();
        for why in reasons {
            let names: Vec<&str> = self
                .features
                .iter()
                .filter(|x| x.flagged_by_name == Some(why))
                .map(|x| x.name.as_str())
                .collect();
            let _ = writeln!(s, "  by name: {}: {why}", names.join(", "));
        }
        if flagged > 0 {
            let _ = writeln!(
                s,
                "  leave flagged Python structure columns out with `[dataset] exclude = [...]` \
                 (docs/dataset.md, Leakage)"
            );
        }
        s
    }

    /// Writes the whole table as TSV, atomically.
    pub fn write_tsv(&self, path: &Path) -> anyhow::Result<()> {
        let num = |v: f64| {
            if v.is_nan() {
                String::new()
            } else {
                format!("{v:.6}")
            }
        };
        let mut header = vec!["feature".to_string()];
        header.extend(CLASS_NAMES.iter().map(|c| format!("auc_{c}")));
        header.extend(CLASS_NAMES.iter().map(|c| format!("separation_{c}")));
        header.extend(["flagged_by_auc".into(), "flagged_by_name".into()]);
        let header: Vec<&str> = header.iter().map(String::as_str).collect();
        write_table(
            path,
            b'\t',
            &header,
            self.features.iter().map(|x| {
                let mut row = vec![x.name.clone()];
                row.extend(x.auc.iter().map(|&a| num(a)));
                row.extend(x.separation().iter().map(|&a| num(a)));
                row.push(x.flagged_by_auc.to_string());
                row.push(x.flagged_by_name.unwrap_or("").to_string());
                row
            }),
        )
    }
}

fn flag_text(x: &FeatureLeak) -> &'static str {
    match (x.flagged_by_auc, x.flagged_by_name.is_some()) {
        (true, true) => "AUC, name",
        (true, false) => "AUC",
        (false, true) => "name",
        (false, false) => "",
    }
}

/// Bytes of one set of counts: one `u64` per (bin, class) of every feature.
pub fn count_bytes(cuts: &Cuts) -> u64 {
    let slots = cuts.slot_offsets().last().copied().unwrap_or(0) as u64;
    slots * 3 * 8
}

/// The single-feature ROC-AUC of every feature (in the cache's feature order) for each
/// class one-vs-rest, from one pass over the cache's pages.
///
/// Reserves, before it reads anything, one byte per row (the labels) and, per worker,
/// [`count_bytes`] and the largest page mapped; it uses as many workers as the budget holds
/// (at least one). Each page is read once through its worker's slot, so the pass keeps no
/// more than a page per worker mapped. See the room's doc for when the AUC is exact.
pub fn single_feature_auc(pages: &PageCache, res: &mut MemoryReservation) -> anyhow::Result<Vec<[f64; 3]>> {
    let m = &pages.manifest;
    let feats = &m.cuts.features;
    let off = m.cuts.slot_offsets();
    let slots = off.last().copied().unwrap_or(0);
    let per_worker = count_bytes(&m.cuts) + m.max_page_len();
    // The memory page each page may keep mapped (`cache::streamed_bytes`).
    let shared = m.streamed_bytes(0);
    pages.set_resident(false);
    // Labels, the offset tables, the result, and 64 KiB for the workers' bookkeeping (their
    // results, the thread pool's jobs, the label file's read buffer rounding).
    let fixed =
        m.rows + 8 * (off.len() + 3 * feats.len()) as u64 + 24 * feats.len() as u64 + (64 << 10) + shared;
    res.require(
        fixed + per_worker,
        format!(
            "the class of each of {} rows and counts for {slots} bins of {} features × 3 classes",
            m.rows,
            feats.len()
        ),
    )?;
    res.try_grow(fixed)?;
    let labels = pages.labels()?;
    let n_pages = m.pages.len();
    let threads = rayon::current_num_threads().min(n_pages).max(1);
    let workers = (res.available() / per_worker.max(1)).clamp(1, threads as u64) as usize;
    res.try_grow(per_worker * workers as u64)?;

    // Where each stored column's counts start, and how many codes it may hold.
    let at = |j: usize| (off[j], feats[j].n_slots(), j);
    let dense: Vec<(usize, usize, usize)> = m.dense.iter().map(|&j| at(j)).collect();
    let sparse: Vec<(usize, usize, usize)> = m.sparse.iter().map(|&j| at(j)).collect();
    let corrupt = |i: usize, what: String| {
        InputError::new(format!("page {i} of the binned cache {what}"))
            .file(pages.dir.join("bins.bin"))
            .hint("delete the cache directory; the next run rebuilds it")
    };
    let chunk = n_pages.div_ceil(workers);
    let parts: Vec<anyhow::Result<Vec<[u64; 3]>>> = (0..workers)
        .into_par_iter()
        .map(|w| {
            let mut counts = vec![[0u64; 3]; slots];
            let mut buf = pages.page_slot();
            for i in w * chunk..((w + 1) * chunk).min(n_pages) {
                let page = pages.page(i, &mut buf)?;
                let first = page.first_row as usize;
                let y = labels
                    .get(first..first + page.rows)
                    .ok_or_else(|| corrupt(i, format!("lies beyond its {} rows", m.rows)))?;
                for (d, &(start, n, j)) in dense.iter().enumerate() {
                    for (&code, &c) in page.dense_column(d).iter().zip(y) {
                        if code as usize >= n {
                            return Err(corrupt(i, bad_code(code, &feats[j].name, n)).into());
                        }
                        counts[start + code as usize][c as usize] += 1;
                    }
                }
                let indptr = page.sparse.indptr();
                let indptr = indptr.raw_storage();
                let (indices, data) = (page.sparse.indices(), page.sparse.data());
                for (r, &c) in y.iter().enumerate() {
                    for k in indptr[r] as usize..indptr[r + 1] as usize {
                        let (code, (start, n, j)) = (data[k], sparse[indices[k] as usize]);
                        if code as usize >= n {
                            return Err(corrupt(i, bad_code(code, &feats[j].name, n)).into());
                        }
                        counts[start + code as usize][c as usize] += 1;
                    }
                }
            }
            Ok(counts)
        })
        .collect();
    let mut counts: Option<Vec<[u64; 3]>> = None;
    for p in parts {
        let p = p?;
        match &mut counts {
            None => counts = Some(p),
            Some(total) => {
                for (t, q) in total.iter_mut().zip(&p) {
                    for c in 0..3 {
                        t[c] += q[c];
                    }
                }
            }
        }
    }
    let mut counts = counts.unwrap_or_else(|| vec![[0; 3]; slots]);

    let mut class_rows = [0u64; 3];
    for &c in &labels {
        class_rows[c as usize] += 1;
    }
    // A sparse page stores only codes other than the zero bin: that bin holds the rest.
    for &j in &m.sparse {
        let bins = &mut counts[off[j]..off[j + 1]];
        for c in 0..3 {
            let stored: u64 = bins.iter().map(|b| b[c]).sum();
            bins[feats[j].zero_bin as usize][c] = class_rows[c].checked_sub(stored).ok_or_else(|| {
                InputError::new(format!(
                    "the binned cache stores more values of `{}` than it has rows",
                    feats[j].name
                ))
                .file(pages.dir.join("bins.bin"))
                .hint("delete the cache directory; the next run rebuilds it")
            })?;
        }
    }
    Ok(feats
        .iter()
        .enumerate()
        .map(|(j, f)| auc_from_counts(&counts[off[j]..off[j + 1]], f.has_missing))
        .collect())
}

fn bad_code(code: u8, name: &str, bins: usize) -> String {
    format!("holds bin code {code} for column `{name}`, which has {bins} bins")
}

/// ROC-AUC per class from one feature's row counts per (bin, class), bins in ascending
/// order of value with, when `missing_last`, the missing bin last: it is ranked below
/// every value. NaN for a class with no rows or with every row.
pub fn auc_from_counts(bins: &[[u64; 3]], missing_last: bool) -> [f64; 3] {
    let (values, missing) = match (missing_last, bins.split_last()) {
        (true, Some((m, v))) => (v, Some(m)),
        _ => (bins, None),
    };
    let mut total = [0u64; 3];
    for b in bins {
        for c in 0..3 {
            total[c] += b[c];
        }
    }
    let rows: u64 = total.iter().sum();
    std::array::from_fn(|c| {
        let (pos, neg) = (total[c], rows - total[c]);
        if pos == 0 || neg == 0 {
            return f64::NAN;
        }
        // Twice the area, in integers: a positive above a negative counts 2, a tie 1.
        let (mut area2, mut neg_below) = (0u128, 0u128);
        for b in missing.into_iter().chain(values) {
            let p = b[c] as u128;
            let n = (b[0] + b[1] + b[2] - b[c]) as u128;
            area2 += p * (2 * neg_below + n);
            neg_below += n;
        }
        area2 as f64 / (2.0 * pos as f64 * neg as f64)
    })
}

/// How the passes get their memory: as stages of a run, or from one reservation.
trait Budgets {
    fn stage<T>(
        &mut self,
        name: &str,
        work: impl FnOnce(&mut MemoryReservation) -> anyhow::Result<T>,
    ) -> anyhow::Result<T>;
}

impl Budgets for &Stages {
    fn stage<T>(
        &mut self,
        name: &str,
        work: impl FnOnce(&mut MemoryReservation) -> anyhow::Result<T>,
    ) -> anyhow::Result<T> {
        Stages::stage(self, name, work)
    }
}

impl Budgets for &mut MemoryReservation {
    fn stage<T>(
        &mut self,
        _: &str,
        work: impl FnOnce(&mut MemoryReservation) -> anyhow::Result<T>,
    ) -> anyhow::Result<T> {
        // Each pass its own share of the one budget, given back when the pass ends.
        work(&mut self.new_empty())
    }
}

/// The leakage report of `ds` within `res`'s budget: finds or builds the binned cache
/// (a sketch pass and a bin pass, one after the other, each released before the next),
/// then counts it ([`single_feature_auc`]).
pub fn leakage(
    ds: &Dataset,
    opts: &LeakageOptions,
    mut res: &mut MemoryReservation,
) -> anyhow::Result<LeakageReport> {
    run(ds, opts, &mut res)
}

/// [`leakage`] as stages of a run: `sketch` and `bin` when the cache must be built, then
/// `eval` for the counts, each under its own `memory.<stage>` budget.
pub fn leakage_in_stages(
    stages: &Stages,
    ds: &Dataset,
    opts: &LeakageOptions,
) -> anyhow::Result<LeakageReport> {
    run(ds, opts, &mut &*stages)
}

fn run(ds: &Dataset, opts: &LeakageOptions, budgets: &mut impl Budgets) -> anyhow::Result<LeakageReport> {
    check_threshold(opts.threshold)?;
    let fingerprint = cache::fingerprint(ds, opts.max_bin, opts.sketch_size);
    let dir = opts.cache_root.join(&fingerprint);
    let located =
        |e| crate::error::locate_io(e, &opts.cache_root, "cannot build or read the binned page cache");
    let (manifest, reused) = match cache::find(&dir, &fingerprint) {
        Some(m) => (m, true),
        None => {
            let cuts = budgets.stage("sketch", |res| {
                sketch_dataset(ds, opts.max_bin, opts.sketch_size, res)
            })?;
            let m = budgets
                .stage("bin", |res| cache::build(ds, &cuts, &dir, &fingerprint, res))
                .map_err(located)?;
            (m, false)
        }
    };
    let pages = PageCache::open(&dir, manifest).map_err(located)?;
    let aucs = budgets.stage("eval", |res| single_feature_auc(&pages, res))?;
    let names: Vec<String> = pages.manifest.cuts.names();
    let mut report = LeakageReport::new(&names, &aucs, opts.threshold, pages.manifest.class_counts);
    report.cache_reused = reused;
    Ok(report)
}
