//! Position offsets applied to the base model's donor and acceptor tracks, per strand.
//!
//! A network trained on one annotation's convention (which base of the boundary is "the"
//! site) can peak one or two bases away from another annotation's sites. The Python original
//! corrects this with "adjustments": it rolls each score track by an offset per site type and
//! strand, and can search offsets -5..5 for the best F1 at threshold 0.5. [`Shifts`] is that
//! correction, read from `[score.shifts]`; [`ShiftFit`] is the search, counted gene by gene
//! so that it never holds more than the gene in hand.

use serde::{Deserialize, Serialize};

use crate::genome::{Site, SiteKind, Strand};

/// Channels of a score row, in Keras's order.
const ACCEPTOR: usize = 1;
const DONOR: usize = 2;

/// The largest offset [`Shifts::validate`] accepts: beyond it a shift is no longer a
/// convention mismatch but a broken model or annotation.
pub const MAX_SHIFT: i32 = 100;

fn channel(kind: SiteKind) -> usize {
    match kind {
        SiteKind::Donor => DONOR,
        SiteKind::Acceptor => ACCEPTOR,
    }
}

/// Genomic direction of "downstream in transcription order".
fn direction(strand: Strand) -> i64 {
    match strand {
        Strand::Plus => 1,
        Strand::Minus => -1,
    }
}

/// Offsets in bases for each site type and strand; all 0 (no change) by default.
///
/// A shift of `s` for a type moves that type's score track `s` bases **downstream in
/// transcription order** (towards the 3' end): in transcript-order index j, `new[j] =
/// old[j - s]`; positions whose source lies outside the gene get 0. On the plus strand
/// transcript order is genomic order; on the minus strand it is reversed (so a minus-strand
/// shift of +1 moves scores to the genomic position - 1).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Shifts {
    #[serde(default)]
    pub donor_plus: i32,
    #[serde(default)]
    pub donor_minus: i32,
    #[serde(default)]
    pub acceptor_plus: i32,
    #[serde(default)]
    pub acceptor_minus: i32,
}

impl Shifts {
    /// Whether every shift is 0, so that [`Shifts::apply`] changes nothing.
    pub fn is_zero(&self) -> bool {
        *self == Self::default()
    }

    /// The shift of `kind` on `strand`.
    pub fn get(&self, kind: SiteKind, strand: Strand) -> i32 {
        match (kind, strand) {
            (SiteKind::Donor, Strand::Plus) => self.donor_plus,
            (SiteKind::Donor, Strand::Minus) => self.donor_minus,
            (SiteKind::Acceptor, Strand::Plus) => self.acceptor_plus,
            (SiteKind::Acceptor, Strand::Minus) => self.acceptor_minus,
        }
    }

    fn set(&mut self, kind: SiteKind, strand: Strand, value: i32) {
        *match (kind, strand) {
            (SiteKind::Donor, Strand::Plus) => &mut self.donor_plus,
            (SiteKind::Donor, Strand::Minus) => &mut self.donor_minus,
            (SiteKind::Acceptor, Strand::Plus) => &mut self.acceptor_plus,
            (SiteKind::Acceptor, Strand::Minus) => &mut self.acceptor_minus,
        } = value;
    }

    /// Checks that every shift is within ±[`MAX_SHIFT`]; the error names the key.
    pub fn validate(&self) -> Result<(), (String, String)> {
        for (key, v) in [
            ("donor_plus", self.donor_plus),
            ("donor_minus", self.donor_minus),
            ("acceptor_plus", self.acceptor_plus),
            ("acceptor_minus", self.acceptor_minus),
        ] {
            if !(-MAX_SHIFT..=MAX_SHIFT).contains(&v) {
                return Err((
                    format!("score.shifts.{key}"),
                    format!("must be from -{MAX_SHIFT} to {MAX_SHIFT} (got {v})"),
                ));
            }
        }
        Ok(())
    }

    /// The `[score.shifts]` section that sets these shifts, to paste into a config.
    pub fn toml_block(&self) -> String {
        format!(
            "[score.shifts]\ndonor_plus = {}\ndonor_minus = {}\nacceptor_plus = {}\nacceptor_minus = {}\n",
            self.donor_plus, self.donor_minus, self.acceptor_plus, self.acceptor_minus
        )
    }

    /// Applies the shifts to one gene's scores in place.
    ///
    /// `scores` is the gene in genomic order (row i is `gene.start + i`), rows `[neither,
    /// acceptor, donor]`. The donor track (channel 2) moves by the donor shift of `strand`,
    /// the acceptor track (channel 1) by the acceptor shift, as the type's doc says; then
    /// neither (channel 0) becomes max(0, 1 - donor - acceptor) so that rows still sum to 1
    /// where they can. When both shifts of `strand` are 0 the scores are left bit-identical
    /// (neither is not recomputed), so a default configuration reproduces the network's
    /// output exactly. Allocates nothing.
    pub fn apply(&self, strand: Strand, scores: &mut [[f32; 3]]) {
        let donor = self.get(SiteKind::Donor, strand);
        let acceptor = self.get(SiteKind::Acceptor, strand);
        if donor == 0 && acceptor == 0 {
            return;
        }
        let dir = direction(strand);
        shift_channel(scores, DONOR, dir * i64::from(donor));
        shift_channel(scores, ACCEPTOR, dir * i64::from(acceptor));
        for row in scores.iter_mut() {
            row[0] = (1.0 - row[DONOR] - row[ACCEPTOR]).max(0.0);
        }
    }
}

/// Moves channel `c` by `g` rows in genomic order (`new[i] = old[i - g]`), filling with 0.
/// The channel is strided inside the rows, so `copy_within` cannot move it; walking away from
/// the side being overwritten does the same in place.
fn shift_channel(scores: &mut [[f32; 3]], c: usize, g: i64) {
    let n = scores.len();
    let m = g.unsigned_abs().min(n as u64) as usize;
    if g > 0 {
        for i in (m..n).rev() {
            scores[i][c] = scores[i - m][c];
        }
        for row in &mut scores[..m] {
            row[c] = 0.0;
        }
    } else if g < 0 {
        for i in 0..n - m {
            scores[i][c] = scores[i + m][c];
        }
        for row in &mut scores[n - m..] {
            row[c] = 0.0;
        }
    }
}

/// The (type, strand) pairs in the order [`ShiftFit`] stores and prints them.
const PAIRS: [(SiteKind, Strand); 4] = [
    (SiteKind::Donor, Strand::Plus),
    (SiteKind::Donor, Strand::Minus),
    (SiteKind::Acceptor, Strand::Plus),
    (SiteKind::Acceptor, Strand::Minus),
];

fn pair_index(kind: SiteKind, strand: Strand) -> usize {
    match (kind, strand) {
        (SiteKind::Donor, Strand::Plus) => 0,
        (SiteKind::Donor, Strand::Minus) => 1,
        (SiteKind::Acceptor, Strand::Plus) => 2,
        (SiteKind::Acceptor, Strand::Minus) => 3,
    }
}

/// Accumulates, gene by gene, TP/FP/FN at a threshold for every offset in -radius..=radius,
/// per (type, strand).
///
/// Matching rule, per type: a prediction is a position whose shifted score of that type is
/// ≥ the threshold; TP = predictions at an annotated site of that type (exact position),
/// FP = other predictions, FN = annotated sites with no prediction. Predictions that the
/// shift moves outside the gene are dropped (neither TP nor FP), as [`Shifts::apply`] drops
/// them. Sites outside the scored span are ignored: no offset could find them.
///
/// Shifting moves scores without changing them, so the shifted predictions are the raw ones
/// moved: each raw prediction is visited once and tested at every offset, instead of
/// materialising 2·radius + 1 shifted copies. Holds 16 bytes per (pair, offset), nothing per
/// gene.
#[derive(Debug, Clone)]
pub struct ShiftFit {
    radius: i32,
    threshold: f32,
    /// `[tp, fp]` at index `pair * (2 * radius + 1) + (offset + radius)`.
    calls: Vec<[u64; 2]>,
    /// Annotated sites inside the scored spans, per pair.
    sites: [u64; 4],
}

impl ShiftFit {
    /// A search over offsets -`radius`..=`radius` calling predictions at score ≥ `threshold`
    /// (the CLI uses radius 5, threshold 0.5).
    ///
    /// # Panics
    /// If `radius` is outside 0..=[`MAX_SHIFT`] (its result would not validate) or
    /// `threshold` is NaN.
    pub fn new(radius: i32, threshold: f32) -> Self {
        assert!(
            (0..=MAX_SHIFT).contains(&radius),
            "shift radius {radius} outside 0..={MAX_SHIFT}"
        );
        assert!(!threshold.is_nan(), "shift threshold is NaN");
        Self {
            radius,
            threshold,
            calls: vec![[0; 2]; 4 * (2 * radius as usize + 1)],
            sites: [0; 4],
        }
    }

    fn width(&self) -> usize {
        2 * self.radius as usize + 1
    }

    fn slot(&self, pair: usize, offset: i32) -> usize {
        pair * self.width() + (offset + self.radius) as usize
    }

    /// Raw (unshifted) scores of one gene in genomic order, and its sites.
    ///
    /// `scores[i]` is position `gene_start + i`; `sites` sorted and distinct, as
    /// [`crate::genome::Gene::sites`] returns them (they are binary-searched).
    pub fn add_gene(&mut self, strand: Strand, gene_start: u64, scores: &[[f32; 3]], sites: &[Site]) {
        debug_assert!(
            sites.windows(2).all(|w| w[0] < w[1]),
            "sites must be sorted and distinct"
        );
        let n = scores.len() as i64;
        let span = gene_start..gene_start + scores.len() as u64;
        let dir = direction(strand);
        for kind in [SiteKind::Donor, SiteKind::Acceptor] {
            let pair = pair_index(kind, strand);
            let c = channel(kind);
            self.sites[pair] += sites
                .iter()
                .filter(|s| s.kind == kind && span.contains(&s.position))
                .count() as u64;
            // NaN scores are no call: only a score that compares ≥ passes the filter.
            for (i, _) in scores.iter().enumerate().filter(|(_, r)| r[c] >= self.threshold) {
                for offset in -self.radius..=self.radius {
                    // Transcript-order index j + offset is genomic index i + dir·offset.
                    let j = i as i64 + dir * i64::from(offset);
                    if !(0..n).contains(&j) {
                        continue;
                    }
                    let site = Site {
                        position: gene_start + j as u64,
                        kind,
                    };
                    let miss = sites.binary_search(&site).is_err();
                    let slot = self.slot(pair, offset);
                    self.calls[slot][usize::from(miss)] += 1;
                }
            }
        }
    }

    /// `(tp, fp, fn)` of `kind` on `strand` at `offset`.
    ///
    /// # Panics
    /// If `offset` is outside -radius..=radius.
    pub fn counts(&self, kind: SiteKind, strand: Strand, offset: i32) -> (u64, u64, u64) {
        assert!(
            offset.abs() <= self.radius,
            "offset {offset} outside ±{}",
            self.radius
        );
        let pair = pair_index(kind, strand);
        let [tp, fp] = self.calls[self.slot(pair, offset)];
        (tp, fp, self.sites[pair] - tp)
    }

    /// 2·TP / (2·TP + FP + FN) as a fraction, `None` when no site and no prediction.
    fn f1_ratio(&self, kind: SiteKind, strand: Strand, offset: i32) -> Option<(u64, u64)> {
        let (tp, fp, fn_) = self.counts(kind, strand, offset);
        let den = 2 * tp + fp + fn_;
        (den > 0).then_some((2 * tp, den))
    }

    /// F1 of `kind` on `strand` at `offset`; `None` when there is no site and no prediction.
    pub fn f1(&self, kind: SiteKind, strand: Strand, offset: i32) -> Option<f64> {
        self.f1_ratio(kind, strand, offset)
            .map(|(n, d)| n as f64 / d as f64)
    }

    /// The offset with the best F1 of `kind` on `strand` (tie rule as [`ShiftFit::best`]).
    fn best_offset(&self, kind: SiteKind, strand: Strand) -> i32 {
        let mut best: Option<(i32, (u64, u64))> = None;
        // Visiting 0, -1, 1, -2, 2, ... and replacing only on a strictly better F1 is the tie
        // rule; fractions compare exactly by cross-multiplying, so equal F1s do tie.
        let preference = std::iter::once(0).chain((1..=self.radius).flat_map(|d| [-d, d]));
        for offset in preference {
            let Some((n, den)) = self.f1_ratio(kind, strand, offset) else {
                continue;
            };
            let better = best.is_none_or(|(_, (bn, bd))| {
                u128::from(n) * u128::from(bd) > u128::from(bn) * u128::from(den)
            });
            if better {
                best = Some((offset, (n, den)));
            }
        }
        best.map_or(0, |(o, _)| o)
    }

    /// The offset with the best F1 per (type, strand); ties → the offset of smallest
    /// |offset|, then the negative one; no data → 0.
    pub fn best(&self) -> Shifts {
        let mut s = Shifts::default();
        for (kind, strand) in PAIRS {
            s.set(kind, strand, self.best_offset(kind, strand));
        }
        s
    }

    /// [`ShiftFit::table`], then the TOML `[score.shifts]` block of [`ShiftFit::best`] to paste.
    pub fn render(&self) -> String {
        format!("{}\n{}", self.table(), self.best().toml_block())
    }

    /// A plain-text table: one row per (type, strand), columns offset -r..r with F1 (3
    /// decimals, `-` without data), the best marked `*`.
    pub fn table(&self) -> String {
        use std::fmt::Write;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "F1 of exact-position calls (score >= {}) by shift, in bases downstream in \
             transcription order; * marks the best.",
            self.threshold
        );
        let _ = write!(out, "{:<8} {:<6} {:>9}", "type", "strand", "sites");
        for offset in -self.radius..=self.radius {
            let _ = write!(out, " {offset:>7}");
        }
        out.push('\n');
        let best = self.best();
        for (kind, strand) in PAIRS {
            let pair = pair_index(kind, strand);
            let _ = write!(
                out,
                "{:<8} {:<6} {:>9}",
                kind.as_str(),
                strand.as_char(),
                self.sites[pair]
            );
            let has_data = (-self.radius..=self.radius).any(|o| self.f1(kind, strand, o).is_some());
            for offset in -self.radius..=self.radius {
                let mark = if has_data && offset == best.get(kind, strand) {
                    "*"
                } else {
                    " "
                };
                let cell = self
                    .f1(kind, strand, offset)
                    .map_or_else(|| "-".to_string(), |f| format!("{f:.3}"));
                let _ = write!(out, " {cell:>6}{mark}");
            }
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `[neither, acceptor, donor]` rows from acceptor and donor columns, neither at 0.5 so
    /// that a recomputation shows.
    fn rows(acceptor: &[f32], donor: &[f32]) -> Vec<[f32; 3]> {
        acceptor.iter().zip(donor).map(|(&a, &d)| [0.5, a, d]).collect()
    }

    const A: [f32; 6] = [0.1, 0.0, 0.2, 0.7, 0.4, 0.0];
    const D: [f32; 6] = [0.0, 0.9, 0.3, 0.0, 0.0, 0.1];

    fn assert_rows(got: &[[f32; 3]], neither: [f32; 6], acceptor: [f32; 6], donor: [f32; 6]) {
        for (i, row) in got.iter().enumerate() {
            // Moved tracks are copies, so exact; neither is a subtraction, so within rounding.
            assert_eq!((row[1], row[2]), (acceptor[i], donor[i]), "row {i}: {row:?}");
            assert!((row[0] - neither[i]).abs() < 1e-6, "row {i}: {row:?}");
        }
    }

    const SHIFTS: Shifts = Shifts {
        donor_plus: 1,
        donor_minus: 1,
        acceptor_plus: -2,
        acceptor_minus: -2,
    };

    #[test]
    fn apply_plus_strand() {
        // Plus: transcript order is genomic. Donor +1: new[i] = old[i - 1], new[0] = 0 and
        // old[5] = 0.1 falls off. Acceptor -2: new[i] = old[i + 2], the last two 0.
        // Neither = max(0, 1 - d - a): row 2 has 0.9 + 0.4 > 1, so 0.
        let mut s = rows(&A, &D);
        SHIFTS.apply(Strand::Plus, &mut s);
        assert_rows(
            &s,
            [0.8, 0.3, 0.0, 0.7, 1.0, 1.0],
            [0.2, 0.7, 0.4, 0.0, 0.0, 0.0],
            [0.0, 0.0, 0.9, 0.3, 0.0, 0.0],
        );
    }

    #[test]
    fn apply_minus_strand() {
        // Minus: transcript order is reversed, so donor +1 is genomic new[i] = old[i + 1]
        // (old[0] falls off, new[5] = 0) and acceptor -2 is new[i] = old[i - 2] (new[0..2] = 0,
        // old[4] and old[5] fall off).
        let mut s = rows(&A, &D);
        SHIFTS.apply(Strand::Minus, &mut s);
        assert_rows(
            &s,
            [0.1, 0.7, 0.9, 1.0, 0.7, 0.3],
            [0.0, 0.0, 0.1, 0.0, 0.2, 0.7],
            [0.9, 0.3, 0.0, 0.0, 0.1, 0.0],
        );
    }

    #[test]
    fn zero_shifts_are_bit_identical() {
        // Neither deliberately inconsistent (and one NaN) so that any recomputation shows.
        let mut original = rows(&A, &D);
        original[3][0] = f32::NAN;
        original[4][2] = -0.0;
        let bits = |s: &[[f32; 3]]| s.iter().flatten().map(|v| v.to_bits()).collect::<Vec<_>>();
        let mut s = original.clone();
        Shifts::default().apply(Strand::Plus, &mut s);
        Shifts::default().apply(Strand::Minus, &mut s);
        // Shifts of the other strand only: this strand's are all 0.
        let plus_only = Shifts {
            donor_plus: 3,
            acceptor_plus: -1,
            ..Shifts::default()
        };
        plus_only.apply(Strand::Minus, &mut s);
        assert_eq!(bits(&s), bits(&original));
        assert!(Shifts::default().is_zero() && !plus_only.is_zero());
    }

    #[test]
    fn shift_longer_than_the_gene_empties_the_track() {
        let mut s = rows(&A, &D);
        Shifts {
            acceptor_minus: 100,
            ..Shifts::default()
        }
        .apply(Strand::Minus, &mut s);
        assert!(s.iter().all(|r| r[1] == 0.0));
        assert_eq!(s.iter().map(|r| r[2]).collect::<Vec<_>>(), D);
    }

    #[test]
    fn get_validate_and_toml() {
        let s: Shifts = toml::from_str("donor_minus = -3\nacceptor_plus = 2").unwrap();
        assert_eq!(
            s,
            Shifts {
                donor_minus: -3,
                acceptor_plus: 2,
                ..Shifts::default()
            }
        );
        assert_eq!(s.get(SiteKind::Donor, Strand::Minus), -3);
        assert_eq!(s.get(SiteKind::Acceptor, Strand::Plus), 2);
        assert_eq!(s.get(SiteKind::Donor, Strand::Plus), 0);
        assert!(toml::from_str::<Shifts>("donor = 1").is_err());
        assert!(s.validate().is_ok());
        let edge = Shifts {
            donor_plus: -100,
            acceptor_minus: 100,
            ..Shifts::default()
        };
        assert!(edge.validate().is_ok());
        let bad = Shifts {
            acceptor_minus: -101,
            ..Shifts::default()
        };
        assert_eq!(bad.validate().unwrap_err().0, "score.shifts.acceptor_minus");
    }

    fn site(position: u64, kind: SiteKind) -> Site {
        Site { position, kind }
    }

    /// A plus gene at 1000..=1011: donor sites at indices 2 and 8, acceptor at 5. Raw donor
    /// calls (≥ 0.5) at 3 and 9 (one base downstream of each site), 6 and 11 (strays), 8 (at
    /// 0.5, on a site); 0.49 at site 2 is not a call. Acceptor called exactly at its site.
    fn plus_gene() -> (Vec<[f32; 3]>, Vec<Site>) {
        let mut donor = [0.0f32; 12];
        for (i, v) in [(2, 0.49), (3, 0.9), (6, 0.6), (8, 0.5), (9, 0.8), (11, 0.55)] {
            donor[i] = v;
        }
        let mut acceptor = [0.0f32; 12];
        acceptor[5] = 0.95;
        let sites = vec![
            site(1002, SiteKind::Donor),
            site(1005, SiteKind::Acceptor),
            site(1008, SiteKind::Donor),
        ];
        (rows(&acceptor, &donor), sites)
    }

    /// The plus gene mirrored onto the minus strand at 2000..=2011: genomic index i holds the
    /// plus gene's 11 - i, so in transcription order it is the same gene.
    fn minus_gene() -> (Vec<[f32; 3]>, Vec<Site>) {
        let (mut scores, sites) = plus_gene();
        scores.reverse();
        let mut sites: Vec<Site> = sites
            .iter()
            .map(|s| site(2000 + 11 - (s.position - 1000), s.kind))
            .collect();
        sites.sort_unstable();
        (scores, sites)
    }

    #[test]
    fn fit_finds_one_base_upstream_on_both_strands() {
        let mut fit = ShiftFit::new(2, 0.5);
        let (s, sites) = plus_gene();
        fit.add_gene(Strand::Plus, 1000, &s, &sites);
        let (s, sites) = minus_gene();
        fit.add_gene(Strand::Minus, 2000, &s, &sites);
        // Donor calls at 3, 6, 8, 9, 11 (transcript order, both genes); sites 2 and 8.
        //   -2: 1 4 6 7 9        tp 0 fp 5 fn 2  F1 0
        //   -1: 2 5 7 8 10       tp 2 fp 3 fn 0  F1 4/7
        //    0: 3 6 8 9 11       tp 1 fp 4 fn 1  F1 2/7
        //   +1: 4 7 9 10 (12)    tp 0 fp 4 fn 2  F1 0     (12 is outside: dropped)
        //   +2: 5 8 10 11 (13)   tp 1 fp 3 fn 1  F1 1/3
        for strand in [Strand::Plus, Strand::Minus] {
            let d = SiteKind::Donor;
            assert_eq!(fit.counts(d, strand, -2), (0, 5, 2));
            assert_eq!(fit.counts(d, strand, -1), (2, 3, 0));
            assert_eq!(fit.counts(d, strand, 0), (1, 4, 1));
            assert_eq!(fit.counts(d, strand, 1), (0, 4, 2));
            assert_eq!(fit.counts(d, strand, 2), (1, 3, 1));
            assert_eq!(fit.f1(d, strand, 0), Some(2.0 / 7.0));
            assert_eq!(fit.f1(d, strand, -1), Some(4.0 / 7.0));
            assert_eq!(fit.f1(d, strand, 2), Some(1.0 / 3.0));
            // Acceptor: one call on its one site at 0, off it elsewhere.
            assert_eq!(fit.f1(SiteKind::Acceptor, strand, 0), Some(1.0));
            assert_eq!(fit.counts(SiteKind::Acceptor, strand, 1), (0, 1, 1));
        }
        // Minus-strand peaks are at the genomic site - 1: a strand-blind search would pick +1.
        assert_eq!(
            fit.best(),
            Shifts {
                donor_plus: -1,
                donor_minus: -1,
                acceptor_plus: 0,
                acceptor_minus: 0,
            }
        );
        // Applying the found shifts turns the offset -1 counts into offset 0 ones.
        let mut refit = ShiftFit::new(2, 0.5);
        for (strand, start, (mut s, sites)) in [
            (Strand::Plus, 1000, plus_gene()),
            (Strand::Minus, 2000, minus_gene()),
        ] {
            fit.best().apply(strand, &mut s);
            refit.add_gene(strand, start, &s, &sites);
        }
        assert_eq!(refit.counts(SiteKind::Donor, Strand::Minus, 0), (2, 3, 0));
        assert_eq!(refit.counts(SiteKind::Donor, Strand::Plus, 0), (2, 3, 0));
    }

    #[test]
    fn fit_tie_rule() {
        // Plus gene of 5 at 1..=5, both sites at index 2 (position 3).
        let sites = [site(3, SiteKind::Donor), site(3, SiteKind::Acceptor)];
        let (mut donor, mut acceptor) = ([0.0f32; 5], [0.0f32; 5]);
        // Donor calls at 1 and 3: offsets -1 and +1 each put one on the site (tp 1 fp 1,
        // F1 2/3), 0 puts none: the tie goes to the negative, -1.
        donor[1] = 0.9;
        donor[3] = 0.9;
        // Acceptor calls at 1 and 4: +1 gives 2 and 5 (outside, dropped), -2 gives -1
        // (dropped) and 2: both tp 1 fp 0, F1 1. The smaller |offset|, +1, wins over the
        // negative one.
        acceptor[1] = 0.9;
        acceptor[4] = 0.9;
        let mut fit = ShiftFit::new(2, 0.5);
        fit.add_gene(Strand::Plus, 1, &rows(&acceptor, &donor), &sites);
        assert_eq!(fit.f1(SiteKind::Donor, Strand::Plus, 1), Some(2.0 / 3.0));
        assert_eq!(fit.f1(SiteKind::Acceptor, Strand::Plus, -2), Some(1.0));
        assert_eq!(fit.f1(SiteKind::Acceptor, Strand::Plus, 1), Some(1.0));
        // A minus gene without sites but with a donor call: F1 0 at every offset → 0.
        let mut lone = [0.0f32; 5];
        lone[0] = 0.9;
        fit.add_gene(Strand::Minus, 10, &rows(&[0.0; 5], &lone), &[]);
        assert_eq!(fit.f1(SiteKind::Donor, Strand::Minus, 0), Some(0.0));
        // No site, no call: None everywhere → 0.
        assert_eq!(fit.f1(SiteKind::Acceptor, Strand::Minus, 0), None);
        let best = fit.best();
        assert_eq!(
            best,
            Shifts {
                donor_plus: -1,
                donor_minus: 0,
                acceptor_plus: 1,
                acceptor_minus: 0,
            }
        );
        // The block printed under the table parses back to the same shifts.
        let text = fit.render();
        let block = &text[text.find("[score.shifts]").unwrap()..];
        let table: toml::Table = toml::from_str(block).unwrap();
        let parsed: Shifts = table["score"]["shifts"].clone().try_into().unwrap();
        assert_eq!(parsed, best);
        assert!(text.contains("0.667*"), "{text}");
        assert!(text.contains("1.000*"), "{text}");
    }
}
