//! Which positions of a gene become training rows, and their labels.
//!
//! The Python original evaluates donors and acceptors separately, stacks the two evaluators'
//! rows (a base may appear twice, once per evaluator), de-duplicates by a non-deterministic
//! transcript choice and samples true negatives unseeded. Here a gene is labelled once: one row
//! per position, the label from the annotation at that exact position, the base model's call
//! per site type kept beside it as metadata, and every random draw seeded per gene so that a
//! gene's rows do not depend on which genes share its batch or on thread scheduling.

use rand::seq::index::sample;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::config::{Downsample, TnMode};
use crate::genome::SiteKind;

/// Column of each class in a score row, in SpliceAI's output order.
pub const NEITHER: usize = 0;
pub const ACCEPTOR: usize = 1;
pub const DONOR: usize = 2;

/// The base model's call at a row for one site type, judged against the annotation with the
/// consensus window (python-builder.md section 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Call {
    /// Not a site, not predicted.
    Tn,
    /// Predicted (score at or above the threshold) where no site of the type is.
    Fp,
    /// A site with no prediction within the consensus window.
    Fn,
    /// A site with a prediction within the consensus window.
    Tp,
}

impl Call {
    pub fn as_str(self) -> &'static str {
        match self {
            Call::Tp => "TP",
            Call::Fn => "FN",
            Call::Fp => "FP",
            Call::Tn => "TN",
        }
    }
}

/// A training row of a gene: its position as an offset from the gene's first genomic base.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidate {
    pub offset: u32,
    /// 0 neither, 1 donor, 2 acceptor (the engine's class codes).
    pub label: u8,
    /// The base model's call for donors, then acceptors.
    pub calls: [Call; 2],
}

impl Candidate {
    /// The best call of the two types (TP > FN > FP > TN), as the Python's `pred_type`.
    pub fn pred_type(&self) -> Call {
        self.calls[0].max(self.calls[1])
    }
}

/// How candidates are chosen.
#[derive(Debug, Clone)]
pub struct LabelParams {
    pub threshold: f32,
    pub consensus_window: u32,
    pub tn_mode: TnMode,
    pub tn_sample_factor: f64,
    pub tn_window: u32,
    pub downsample: Downsample,
}

/// Per-gene tallies, for the run summary and the gene manifest. Site-level TP/FN/FP follow the
/// Python's definitions: a site is TP when a prediction lies within the window, a prediction is
/// FP when no site of its type does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct GeneCounts {
    pub donor_sites: u64,
    pub acceptor_sites: u64,
    /// `[donor, acceptor]`.
    pub tp: [u64; 2],
    pub fn_: [u64; 2],
    pub fp: [u64; 2],
    /// Rows by class: neither, donor, acceptor.
    pub rows: [u64; 3],
    /// True negatives sampled, and of those kept by down-sampling.
    pub tn_sampled: u64,
    pub tn_kept: u64,
    /// Sites outside the gene's scored positions (counted, skipped).
    pub sites_outside: u64,
}

/// Bytes [`label_gene`] holds for a gene of `len` positions at most, for the caller's
/// reservation: the per-position marks (1), the TN pool and its split or distances (4 + 8),
/// the draw's index vector and its output (4 + 4), and the rows (8 a row, doubled while the
/// vector grows, at most one a position).
pub fn label_bytes(len: usize) -> u64 {
    (len * (1 + 4 + 8 + 4 + 4 + 16)) as u64
}

const SITE_DONOR: u8 = 1;
const SITE_ACCEPTOR: u8 = 2;
const HIT_DONOR: u8 = 4;
const HIT_ACCEPTOR: u8 = 8;

/// Labels one gene. `scores[i]` holds the base scores of offset `i` (genomic order);
/// `sites` the annotated sites as offsets. `seed` is the gene's own seed.
pub fn label_gene(
    scores: &[[f32; 3]],
    sites: &[(u32, SiteKind)],
    p: &LabelParams,
    seed: u64,
) -> (Vec<Candidate>, GeneCounts) {
    let len = scores.len();
    let mut counts = GeneCounts::default();
    let mut marks = vec![0u8; len];
    for &(off, kind) in sites {
        let Some(m) = marks.get_mut(off as usize) else {
            counts.sites_outside += 1;
            continue;
        };
        match kind {
            SiteKind::Donor => *m |= SITE_DONOR,
            SiteKind::Acceptor => *m |= SITE_ACCEPTOR,
        }
    }
    for (m, s) in marks.iter_mut().zip(scores) {
        if s[DONOR] >= p.threshold {
            *m |= HIT_DONOR;
        }
        if s[ACCEPTOR] >= p.threshold {
            *m |= HIT_ACCEPTOR;
        }
    }
    let cw = p.consensus_window as usize;
    let hit_near = |i: usize, hit: u8| {
        let lo = i.saturating_sub(cw);
        let hi = (i + cw).min(len - 1);
        marks[lo..=hi].iter().any(|m| m & hit != 0)
    };
    let call = |i: usize, site: u8, hit: u8| -> Call {
        let m = marks[i];
        if m & site != 0 {
            if hit_near(i, hit) {
                Call::Tp
            } else {
                Call::Fn
            }
        } else if m & hit != 0 {
            Call::Fp
        } else {
            Call::Tn
        }
    };

    // Every site and every prediction is a row; the rest are TN candidates.
    let mut rows: Vec<Candidate> = vec![];
    for (i, &m) in marks.iter().enumerate() {
        if m == 0 {
            continue;
        }
        let calls = [
            call(i, SITE_DONOR, HIT_DONOR),
            call(i, SITE_ACCEPTOR, HIT_ACCEPTOR),
        ];
        for (t, c) in calls.iter().enumerate() {
            match c {
                Call::Tp => counts.tp[t] += 1,
                Call::Fn => counts.fn_[t] += 1,
                Call::Fp => counts.fp[t] += 1,
                Call::Tn => {}
            }
        }
        if m & SITE_DONOR != 0 {
            counts.donor_sites += 1;
        }
        if m & SITE_ACCEPTOR != 0 {
            counts.acceptor_sites += 1;
        }
        // A base annotated as both (rare: a one-base exon) is labelled a donor.
        let label = if m & SITE_DONOR != 0 {
            1
        } else if m & SITE_ACCEPTOR != 0 {
            2
        } else {
            0
        };
        rows.push(Candidate {
            offset: i as u32,
            label,
            calls,
        });
    }
    // A prediction that matched a site from a neighbouring base is an FP row (the base model
    // called a site where there is none) but not an FP of the base model under the
    // Python's definition: the site it matched is the TP.
    for (t, site) in [SITE_DONOR, SITE_ACCEPTOR].into_iter().enumerate() {
        for r in &rows {
            if r.calls[t] == Call::Fp && site_near(&marks, r.offset as usize, cw, site) {
                counts.fp[t] -= 1;
            }
        }
    }
    let non_tn = rows.len();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let tn = sample_tn(&marks, &rows, p, non_tn, &mut rng);
    counts.tn_sampled = tn.len() as u64;
    let tn = match p.downsample.enabled {
        true => downsample(scores, &rows, tn, &p.downsample, &mut rng),
        false => tn,
    };
    counts.tn_kept = tn.len() as u64;
    rows.extend(tn.into_iter().map(|offset| Candidate {
        offset,
        label: 0,
        calls: [Call::Tn, Call::Tn],
    }));
    rows.sort_unstable_by_key(|r| r.offset);
    for r in &rows {
        counts.rows[r.label as usize] += 1;
    }
    (rows, counts)
}

fn site_near(marks: &[u8], i: usize, cw: usize, site: u8) -> bool {
    let lo = i.saturating_sub(cw);
    let hi = (i + cw).min(marks.len() - 1);
    marks[lo..=hi].iter().any(|m| m & site != 0)
}

/// Draws the gene's true negatives: `tn_sample_factor` per non-TN row, at most every
/// candidate. Returned sorted.
fn sample_tn(
    marks: &[u8],
    rows: &[Candidate],
    p: &LabelParams,
    non_tn: usize,
    rng: &mut ChaCha8Rng,
) -> Vec<u32> {
    let pool: Vec<u32> = (0..marks.len() as u32)
        .filter(|&i| marks[i as usize] == 0)
        .collect();
    let n = ((p.tn_sample_factor * non_tn as f64) as usize).min(pool.len());
    if n == pool.len() {
        return pool;
    }
    // Distances to the nearest prediction, for the two modes that favour them.
    // The base model's predictions themselves (a TP site's prediction may be a base away).
    let predicted: Vec<u32> = rows
        .iter()
        .filter(|r| marks[r.offset as usize] & (HIT_DONOR | HIT_ACCEPTOR) != 0)
        .map(|r| r.offset)
        .collect();
    let mut chosen: Vec<u32> = match p.tn_mode {
        TnMode::Random => draw(&pool, n, rng),
        _ if predicted.is_empty() => draw(&pool, n, rng),
        TnMode::Proximity => {
            let mut by_distance: Vec<(u32, u32)> =
                pool.iter().map(|&i| (distance(&predicted, i), i)).collect();
            by_distance.sort_unstable();
            by_distance.truncate(n);
            by_distance.into_iter().map(|(_, i)| i).collect()
        }
        TnMode::Window => {
            let (near, far): (Vec<u32>, Vec<u32>) = pool
                .iter()
                .partition(|&&i| distance(&predicted, i) <= p.tn_window);
            if near.len() >= n {
                draw(&near, n, rng)
            } else {
                let rest = n - near.len();
                let mut out = near;
                out.extend(draw(&far, rest, rng));
                out
            }
        }
    };
    chosen.sort_unstable();
    chosen
}

/// `n` distinct elements of `from`, uniformly, seeded.
fn draw(from: &[u32], n: usize, rng: &mut ChaCha8Rng) -> Vec<u32> {
    let n = n.min(from.len());
    sample(rng, from.len(), n).into_iter().map(|k| from[k]).collect()
}

/// Distance from `i` to the nearest of the sorted `at` (which is not empty).
fn distance(at: &[u32], i: u32) -> u32 {
    let k = at.partition_point(|&a| a < i);
    let right = at.get(k).map_or(u32::MAX, |&a| a - i);
    let left = if k > 0 { i - at[k - 1] } else { u32::MAX };
    left.min(right)
}

/// MetaSpliceAI's TN down-sampling, within the gene: keep hard TNs (a donor or acceptor score
/// of `hard_prob` or more), TNs within `window` nt of a non-TN row, and of the rest a seeded
/// `easy_ratio` per non-TN row.
fn downsample(
    scores: &[[f32; 3]],
    rows: &[Candidate],
    tn: Vec<u32>,
    d: &Downsample,
    rng: &mut ChaCha8Rng,
) -> Vec<u32> {
    let anchors: Vec<u32> = rows.iter().map(|r| r.offset).collect();
    let (mut keep, easy): (Vec<u32>, Vec<u32>) = tn.into_iter().partition(|&i| {
        let s = scores[i as usize];
        s[DONOR].max(s[ACCEPTOR]) >= d.hard_prob || (!anchors.is_empty() && distance(&anchors, i) <= d.window)
    });
    let n_easy = (d.easy_ratio * rows.len() as f64) as usize;
    keep.extend(draw(&easy, n_easy, rng));
    keep.sort_unstable();
    keep
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> LabelParams {
        LabelParams {
            threshold: 0.5,
            consensus_window: 2,
            tn_mode: TnMode::Random,
            tn_sample_factor: 0.0,
            tn_window: 50,
            downsample: Downsample {
                enabled: false,
                ..Downsample::default()
            },
        }
    }

    fn scores(len: usize, donor: &[(usize, f32)], acceptor: &[(usize, f32)]) -> Vec<[f32; 3]> {
        let mut s = vec![[1.0, 0.0, 0.0]; len];
        for &(i, v) in donor {
            s[i][DONOR] = v;
            s[i][NEITHER] = 1.0 - v;
        }
        for &(i, v) in acceptor {
            s[i][ACCEPTOR] = v;
            s[i][NEITHER] = 1.0 - v;
        }
        s
    }

    fn table(rows: &[Candidate]) -> Vec<(u32, u8, &'static str, &'static str)> {
        rows.iter()
            .map(|r| (r.offset, r.label, r.calls[0].as_str(), r.calls[1].as_str()))
            .collect()
    }

    // Hand-worked: donor sites at 10 and 40, acceptor site at 25; the base model fires at 12
    // (2 nt from the donor at 10: inside the window), at 43 (3 nt from 40: outside), at 25
    // (the acceptor, exactly) and at 60 (nothing there).
    #[test]
    fn sites_and_predictions_get_the_window_calls() {
        let s = scores(80, &[(12, 0.9), (43, 0.7), (60, 0.5)], &[(25, 0.8)]);
        let sites = [
            (10, SiteKind::Donor),
            (25, SiteKind::Acceptor),
            (40, SiteKind::Donor),
        ];
        let (rows, c) = label_gene(&s, &sites, &params(), 1);
        assert_eq!(
            table(&rows),
            vec![
                (10, 1, "TP", "TN"),
                (12, 0, "FP", "TN"),
                (25, 2, "TN", "TP"),
                (40, 1, "FN", "TN"),
                (43, 0, "FP", "TN"),
                (60, 0, "FP", "TN"),
            ]
        );
        assert_eq!(c.tp, [1, 1]);
        assert_eq!(c.fn_, [1, 0]);
        // 12 matched the site at 10, so the base model's FPs are 43 and 60.
        assert_eq!(c.fp, [2, 0]);
        assert_eq!(c.rows, [3, 2, 1]);
    }

    #[test]
    fn the_window_edges_are_inclusive_at_two_and_exclusive_at_three() {
        let sites = [(20, SiteKind::Acceptor)];
        for (hit, want) in [(18, "TP"), (22, "TP"), (17, "FN"), (23, "FN")] {
            let s = scores(50, &[], &[(hit, 0.6)]);
            let (rows, _) = label_gene(&s, &sites, &params(), 1);
            let r = rows.iter().find(|r| r.offset == 20).unwrap();
            assert_eq!(r.calls[1].as_str(), want, "prediction at {hit}");
        }
    }

    #[test]
    fn a_score_just_under_the_threshold_is_not_a_prediction() {
        let s = scores(30, &[(5, 0.4999)], &[]);
        let (rows, c) = label_gene(&s, &[(5, SiteKind::Donor)], &params(), 1);
        assert_eq!(table(&rows), vec![(5, 1, "FN", "TN")]);
        assert_eq!(c.fn_, [1, 0]);
    }

    #[test]
    fn tn_sampling_is_seeded_and_sized_by_the_factor() {
        let s = scores(1000, &[(100, 0.9), (700, 0.9)], &[]);
        let sites = [(100, SiteKind::Donor), (300, SiteKind::Donor)];
        let mut p = params();
        p.tn_sample_factor = 1.2;
        let (a, c) = label_gene(&s, &sites, &p, 7);
        let (b, _) = label_gene(&s, &sites, &p, 7);
        let (other, _) = label_gene(&s, &sites, &p, 8);
        assert_eq!(a, b);
        assert_ne!(a, other);
        // 3 non-TN rows (100 TP, 300 FN, 700 FP): int(1.2 × 3) = 3 TNs.
        assert_eq!(c.tn_sampled, 3);
        assert_eq!(a.len(), 6);
        assert!(a.windows(2).all(|w| w[0].offset < w[1].offset));
    }

    #[test]
    fn proximity_mode_takes_the_negatives_nearest_a_prediction() {
        let s = scores(1000, &[(500, 0.9)], &[]);
        let mut p = params();
        p.tn_sample_factor = 4.0;
        p.tn_mode = TnMode::Proximity;
        let (rows, _) = label_gene(&s, &[], &p, 3);
        let tn: Vec<u32> = rows
            .iter()
            .filter(|r| r.calls == [Call::Tn; 2])
            .map(|r| r.offset)
            .collect();
        assert_eq!(tn, vec![498, 499, 501, 502]);
    }

    #[test]
    fn window_mode_draws_near_predictions_first() {
        let s = scores(2000, &[(1000, 0.9)], &[]);
        let mut p = params();
        p.tn_sample_factor = 10.0;
        p.tn_mode = TnMode::Window;
        p.tn_window = 50;
        let (rows, _) = label_gene(&s, &[], &p, 3);
        assert_eq!(rows.len(), 11);
        assert!(rows.iter().all(|r| r.offset.abs_diff(1000) <= 50));
    }

    #[test]
    fn downsampling_keeps_hard_and_near_negatives_and_an_easy_quota() {
        // One FP at 500; every other position is a TN candidate and all are sampled.
        let mut s = scores(3000, &[(500, 0.9)], &[]);
        s[2000][ACCEPTOR] = 0.2; // hard: kept whatever its distance
        let mut p = params();
        p.tn_sample_factor = 1e9;
        p.downsample = Downsample::default();
        let (rows, c) = label_gene(&s, &[], &p, 5);
        let tn: Vec<u32> = rows
            .iter()
            .filter(|r| r.offset != 500)
            .map(|r| r.offset)
            .collect();
        let near = tn.iter().filter(|&&i| i.abs_diff(500) <= 75).count();
        assert_eq!(near, 150);
        assert!(tn.contains(&2000));
        // easy_ratio 0.5 × 1 non-TN row = 0 easy negatives.
        assert_eq!(tn.len(), 151);
        assert_eq!(c.tn_kept, 151);
    }
}
