//! The base model's quality against the annotation, from its per-position scores alone.
//!
//! Before any boosting, a run should say how well SpliceAI itself recovers the annotated
//! sites of this genome: a model trained on one species or annotation can be poor on
//! another, or offset by a base (see `crate::score::shifts`). This module measures it gene by
//! gene as the score stage produces them, in the three ways the literature quotes: PR-AUC
//! over every position, SpliceAI's top-k (pooled and per gene), and exact-position
//! precision, recall and F1 at 0.5.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use serde::Serialize;

use crate::eval::curves;
use crate::genome::{Site, SiteKind};

/// Label bits of a position: it can be both a donor and an acceptor (of different
/// transcripts).
const ACCEPTOR_BIT: u8 = 1;
const DONOR_BIT: u8 = 2;

/// The threshold of the `*_at_half` figures.
const HALF: f32 = 0.5;

/// Running counts of one site type.
#[derive(Debug, Clone, Default)]
struct Counts {
    /// Positions labelled with this type.
    sites: u64,
    /// Σ over genes of hits in the gene's top k_g.
    gene_hits: u64,
    /// Positions scored ≥ 0.5 that are / are not sites.
    tp: u64,
    fp: u64,
}

/// Accumulates per-position scores against the annotation, gene by gene.
///
/// Top-k ranks by score descending ([`f32::total_cmp`]), ties broken by position order: the
/// earlier position wins, where "earlier" is genomic order within a gene and, for the pooled
/// figure, the order positions were added (gene by gene). The result is thus deterministic,
/// and a constant score is credited by position, not skill.
///
/// Sites outside a gene's scored span (`gene_start .. gene_start + scores.len()`) are
/// ignored: there is no score to rank them by.
#[derive(Debug, Clone, Default)]
pub struct SiteQuality {
    donor: Vec<f32>,
    acceptor: Vec<f32>,
    /// [`ACCEPTOR_BIT`] | [`DONOR_BIT`] per position.
    labels: Vec<u8>,
    genes: u64,
    donor_counts: Counts,
    acceptor_counts: Counts,
    /// A gene's k_g best positions; kept between genes to reuse its allocation.
    heap: BinaryHeap<Reverse<u64>>,
}

impl SiteQuality {
    /// Bytes held per position added: its donor and acceptor scores and its labels, kept
    /// because PR-AUC and the pooled top-k need every position at once. Exact when built by
    /// [`SiteQuality::with_capacity`] for the total; otherwise the vectors grow by doubling
    /// and [`SiteQuality::heap_bytes`] tells what they really hold.
    pub const BYTES_PER_POSITION: u64 = 4 + 4 + 1;
    /// What [`SiteQuality::report`] allocates a position: its sort key.
    pub const REPORT_BYTES_PER_POSITION: u64 = 8;

    /// An empty accumulator.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty accumulator with room for `positions` positions, so that adding them never
    /// reallocates (no doubling slack, no copy holding two buffers at once).
    pub fn with_capacity(positions: usize) -> Self {
        Self {
            donor: Vec::with_capacity(positions),
            acceptor: Vec::with_capacity(positions),
            labels: Vec::with_capacity(positions),
            ..Self::default()
        }
    }

    /// Heap bytes held now (capacities, not lengths), for a caller that tops up its
    /// reservation to what growth really took.
    pub fn heap_bytes(&self) -> u64 {
        (self.donor.capacity() * 4
            + self.acceptor.capacity() * 4
            + self.labels.capacity()
            + self.heap.capacity() * 8) as u64
    }

    /// Bytes [`SiteQuality::report`] allocates for the time of the call: one sort key a
    /// position, reused for both types.
    pub fn report_bytes(&self) -> u64 {
        self.labels.len() as u64 * Self::REPORT_BYTES_PER_POSITION
    }

    /// Adds one gene: `scores[i]` (`[neither, acceptor, donor]`) is genomic position
    /// `gene_start + i`; `sites` its annotated sites, in any order.
    ///
    /// Heap: grows the held state by [`SiteQuality::BYTES_PER_POSITION`] per row, plus 8
    /// bytes per site of the gene's most numerous type for the per-gene top-k.
    ///
    /// # Panics
    /// If the gene has 2³² positions or more (a per-gene rank key packs the row in 32 bits).
    pub fn add_gene(&mut self, gene_start: u64, scores: &[[f32; 3]], sites: &[Site]) {
        assert!(
            u32::try_from(scores.len()).is_ok(),
            "gene of {} positions",
            scores.len()
        );
        let base = self.labels.len();
        self.donor.extend(scores.iter().map(|r| r[2]));
        self.acceptor.extend(scores.iter().map(|r| r[1]));
        self.labels.resize(base + scores.len(), 0);
        let labels = &mut self.labels[base..];
        for s in sites {
            if let Some(i) = s
                .position
                .checked_sub(gene_start)
                .filter(|&i| i < scores.len() as u64)
            {
                labels[i as usize] |= match s.kind {
                    SiteKind::Donor => DONOR_BIT,
                    SiteKind::Acceptor => ACCEPTOR_BIT,
                };
            }
        }
        let labels = &self.labels[base..];
        for (counts, channel, bit) in [
            (&mut self.donor_counts, 2, DONOR_BIT),
            (&mut self.acceptor_counts, 1, ACCEPTOR_BIT),
        ] {
            // Counted from the labels, not from `sites`, so a repeated site counts once.
            let k = labels.iter().filter(|&&l| l & bit != 0).count();
            counts.sites += k as u64;
            counts.gene_hits += top_k_hits(scores, channel, labels, bit, k, &mut self.heap);
            for (row, &l) in scores.iter().zip(labels) {
                if row[channel] >= HALF {
                    if l & bit != 0 {
                        counts.tp += 1;
                    } else {
                        counts.fp += 1;
                    }
                }
            }
        }
        self.genes += 1;
    }

    /// The figures over every gene added so far.
    ///
    /// Heap: [`SiteQuality::report_bytes`] for the time of the call.
    pub fn report(&self) -> QualityReport {
        let mut keys = Vec::new();
        let mut quality = |scores: &[f32], counts: &Counts, bit: u8| {
            let is_site = |i: usize| self.labels[i] & bit != 0;
            // The body of `crate::eval::average_precision`, called on its parts so that the
            // labels need not be widened to an f32 column per type, and so that the same sort
            // also ranks the pooled top-k (its ties are in position order too).
            curves::sort_descending(scores, &mut keys);
            let (_, pr_auc) = curves::auc_and_ap(scores, &keys, is_site);
            let k = counts.sites as usize;
            let top_k = (k > 0).then(|| {
                keys[..k].iter().filter(|&&i| is_site(curves::key_row(i))).count() as f64 / k as f64
            });
            let ratio = |n: u64, d: u64| (d > 0).then(|| n as f64 / d as f64);
            let fn_ = counts.sites - counts.tp;
            TypeQuality {
                sites: counts.sites,
                pr_auc,
                top_k,
                gene_top_k: ratio(counts.gene_hits, counts.sites),
                f1_at_half: ratio(2 * counts.tp, 2 * counts.tp + counts.fp + fn_),
                precision_at_half: ratio(counts.tp, counts.tp + counts.fp),
                recall_at_half: ratio(counts.tp, counts.sites),
            }
        };
        let donor = quality(&self.donor, &self.donor_counts, DONOR_BIT);
        let acceptor = quality(&self.acceptor, &self.acceptor_counts, ACCEPTOR_BIT);
        QualityReport {
            genes: self.genes,
            positions: self.labels.len() as u64,
            donor,
            acceptor,
        }
    }
}

/// A key whose integer order is the ranking: score by [`f32::total_cmp`] in the high half,
/// then the earlier row in the low half.
fn rank_key(score: f32, row: usize) -> u64 {
    (u64::from(curves::order_bits(score)) << 32) | u64::from(u32::MAX - row as u32)
}

/// How many of the gene's `k` best rows of `channel` carry `bit`. A bounded min-heap keeps
/// the best `k` seen so far, so a gene costs no index of its length, only `k` keys.
fn top_k_hits(
    scores: &[[f32; 3]],
    channel: usize,
    labels: &[u8],
    bit: u8,
    k: usize,
    heap: &mut BinaryHeap<Reverse<u64>>,
) -> u64 {
    if k == 0 {
        return 0;
    }
    heap.clear();
    for (row, s) in scores.iter().enumerate() {
        let key = rank_key(s[channel], row);
        if heap.len() < k {
            heap.push(Reverse(key));
        } else if let Some(mut worst) = heap.peek_mut() {
            if key > worst.0 {
                *worst = Reverse(key);
            }
        }
    }
    heap.iter()
        .filter(|Reverse(key)| labels[(u32::MAX - *key as u32) as usize] & bit != 0)
        .count() as u64
}

/// The base model's figures over every gene added.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QualityReport {
    pub genes: u64,
    pub positions: u64,
    pub donor: TypeQuality,
    pub acceptor: TypeQuality,
}

/// One site type's figures; `None` where undefined (no site, or no call for precision).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TypeQuality {
    /// Annotated sites of this type inside the scored genes.
    pub sites: u64,
    /// Average precision over every position of every gene (scikit-learn's
    /// `average_precision_score`).
    pub pr_auc: Option<f64>,
    /// SpliceAI's figure: all positions of all genes ranked together, k = the number of
    /// sites; the fraction of the top k that are sites.
    pub top_k: Option<f64>,
    /// Per gene, k_g = its sites of this type and hits = sites among its top k_g; Σ hits /
    /// Σ k_g (genes without a site of the type add nothing).
    pub gene_top_k: Option<f64>,
    /// Exact-position calls at score ≥ 0.5.
    pub f1_at_half: Option<f64>,
    pub precision_at_half: Option<f64>,
    pub recall_at_half: Option<f64>,
}

impl QualityReport {
    /// A short table, one row per site type, figures to 4 decimals (`-` where undefined).
    pub fn render(&self) -> String {
        use std::fmt::Write;
        let cell = |v: Option<f64>| v.map_or_else(|| "-".to_string(), |v| format!("{v:.4}"));
        let mut out = format!(
            "Base model against the annotation: {} genes, {} positions\n\
             {:<9} {:>9} {:>7} {:>7} {:>10} {:>9} {:>7} {:>7}   (the last three at score >= 0.5)\n",
            self.genes,
            self.positions,
            "type",
            "sites",
            "PR-AUC",
            "top-k",
            "gene top-k",
            "precision",
            "recall",
            "F1"
        );
        for (name, q) in [("donor", &self.donor), ("acceptor", &self.acceptor)] {
            let _ = writeln!(
                out,
                "{name:<9} {:>9} {:>7} {:>7} {:>10} {:>9} {:>7} {:>7}",
                q.sites,
                cell(q.pr_auc),
                cell(q.top_k),
                cell(q.gene_top_k),
                cell(q.precision_at_half),
                cell(q.recall_at_half),
                cell(q.f1_at_half)
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(acceptor: [f32; 4], donor: [f32; 4]) -> Vec<[f32; 3]> {
        acceptor
            .iter()
            .zip(&donor)
            .map(|(&a, &d)| [1.0 - a - d, a, d])
            .collect()
    }

    fn site(position: u64, kind: SiteKind) -> Site {
        Site { position, kind }
    }

    /// Gene A at 100..=103 (added first), gene B at 200..=203.
    fn two_genes() -> SiteQuality {
        let mut q = SiteQuality::new();
        // A: donor site 101, acceptor site 103; donor 99 and acceptor 104 lie outside the
        // span, ignored.
        q.add_gene(
            100,
            &rows([0.0, 0.5, 0.0, 0.8], [0.3, 0.35, 0.1, 0.05]),
            &[
                site(99, SiteKind::Donor),
                site(101, SiteKind::Donor),
                site(103, SiteKind::Acceptor),
                site(104, SiteKind::Acceptor),
            ],
        );
        // B: donor sites 200 and 202, acceptor 201.
        q.add_gene(
            200,
            &rows([0.1, 0.5, 0.2, 0.0], [0.9, 0.4, 0.7, 0.7]),
            &[
                site(200, SiteKind::Donor),
                site(201, SiteKind::Acceptor),
                site(202, SiteKind::Donor),
            ],
        );
        q
    }

    #[test]
    fn figures_by_hand() {
        let r = two_genes().report();
        assert_eq!((r.genes, r.positions), (2, 8));
        let (d, a) = (&r.donor, &r.acceptor);
        assert_eq!((d.sites, a.sites), (3, 2));

        // Donor, per gene. A: k = 1, its best is 101 (0.35): 1 hit. B: k = 2, 200 (0.9)
        // then a tie at 0.7 between 202 (site) and 203, which goes to the earlier, 202:
        // 2 hits. Σ hits / Σ k = 3/3.
        // Pooled, k = 3: 0.9 (B 200, site), then 0.7 twice (B 202 site, B 203 not): 2/3.
        assert_eq!(d.gene_top_k, Some(1.0));
        assert_eq!(d.top_k, Some(2.0 / 3.0));

        // Acceptor, per gene: A's best is 103 (0.8, site), B's is 201 (0.5, site): 2/2.
        // Pooled, k = 2: 103 (0.8), then 0.5 tied between A 101 (not a site, added first)
        // and B 201 (site): A 101 wins, 1/2.
        assert_eq!(a.gene_top_k, Some(1.0));
        assert_eq!(a.top_k, Some(0.5));

        // At ≥ 0.5. Donor calls: B 200, 202 (sites), 203 (not); A 101 missed.
        //   precision 2/3, recall 2/3, F1 2·2 / (2·2 + 1 + 1) = 2/3.
        // Acceptor calls: A 101 (0.5, not), A 103, B 201 (0.5, site): precision 2/3,
        //   recall 1, F1 4 / (4 + 1 + 0) = 0.8.
        assert_eq!(d.precision_at_half, Some(2.0 / 3.0));
        assert_eq!(d.recall_at_half, Some(2.0 / 3.0));
        assert_eq!(d.f1_at_half, Some(2.0 / 3.0));
        assert_eq!(a.precision_at_half, Some(2.0 / 3.0));
        assert_eq!(a.recall_at_half, Some(1.0));
        assert_eq!(a.f1_at_half, Some(0.8));

        // From scikit-learn (benches/.venv), positions in the order added:
        //   average_precision_score([0,1,0,0,1,0,1,0], [.3,.35,.1,.05,.9,.4,.7,.7])
        //     = 0.7555555555555555 (34/45 by hand)
        //   average_precision_score([0,0,0,1,0,1,0,0], [0,.5,0,.8,.1,.5,.2,0])
        //     = 0.8333333333333333
        assert!((d.pr_auc.unwrap() - 0.7555555555555555).abs() < 1e-12);
        assert!((a.pr_auc.unwrap() - 0.8333333333333333).abs() < 1e-12);

        let text = r.render();
        assert!(text.contains("2 genes, 8 positions"), "{text}");
        assert!(
            text.lines()
                .any(|l| l.starts_with("donor") && l.contains("0.7556")),
            "{text}"
        );
    }

    #[test]
    fn undefined_without_sites_or_calls() {
        let mut q = SiteQuality::with_capacity(4);
        assert_eq!(q.heap_bytes(), 4 * SiteQuality::BYTES_PER_POSITION);
        q.add_gene(
            1,
            &rows([0.1, 0.2, 0.3, 0.4], [0.0; 4]),
            &[site(2, SiteKind::Acceptor)],
        );
        // Exactly reserved: adding the 4 positions did not grow the columns.
        assert_eq!(
            (q.donor.capacity(), q.acceptor.capacity(), q.labels.capacity()),
            (4, 4, 4)
        );
        assert_eq!(q.report_bytes(), 4 * 8);
        let r = q.report();
        // No donor site: every donor figure is undefined but precision, which has no call
        // either.
        let d = &r.donor;
        assert_eq!(
            (
                d.sites,
                d.pr_auc,
                d.top_k,
                d.gene_top_k,
                d.f1_at_half,
                d.precision_at_half,
                d.recall_at_half
            ),
            (0, None, None, None, None, None, None)
        );
        // One acceptor site, ranked 3rd of 4 (0.2 < 0.3, 0.4), no call at 0.5: top-k 0,
        // recall 0, precision undefined, F1 0 (a site was missed).
        let a = &r.acceptor;
        assert_eq!((a.top_k, a.gene_top_k), (Some(0.0), Some(0.0)));
        assert_eq!(
            (a.precision_at_half, a.recall_at_half, a.f1_at_half),
            (None, Some(0.0), Some(0.0))
        );
        // AP with the one positive third: precision 1/3 when it is reached.
        assert!((a.pr_auc.unwrap() - 1.0 / 3.0).abs() < 1e-12);
    }
}
