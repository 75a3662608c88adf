//! Gene-level top-k accuracy, as SpliceAI defines it.
//!
//! Splice sites are rare, so per-row accuracy flatters every model. SpliceAI's measure asks,
//! per gene, whether the k highest-scored positions are the gene's k true sites of a class;
//! it is threshold-free and comparable with the published numbers.

use serde::{Deserialize, Serialize};

/// One gene's top-k count for one class.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GeneTopK {
    pub group: u32,
    /// True sites of the class in the gene.
    pub k: u64,
    /// How many of the gene's k highest-scored rows are true sites.
    pub hits: u64,
}

/// Top-k over all genes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TopKSummary {
    /// Genes with at least one true site.
    pub genes: u64,
    /// Σ k.
    pub sites: u64,
    /// Σ hits.
    pub hits: u64,
    /// Σ hits / Σ k: SpliceAI's figure, weighting genes by their number of sites.
    pub micro: f64,
    /// Mean over genes of hits / k, weighting genes equally.
    pub macro_: f64,
}

/// Score order for ranking: NaN ranks below every number, and −0 equals +0 so that the
/// row-order tie-break also applies to them.
#[inline]
fn rank_key(s: f32) -> f32 {
    if s.is_nan() {
        f32::NEG_INFINITY
    } else if s == 0.0 {
        0.0
    } else {
        s
    }
}

/// Per gene (`groups[i]` is row i's gene; a gene's rows need not be contiguous), with
/// k = the gene's rows labelled `class`: how many of its k highest-scored rows are labelled
/// `class`. Genes with k = 0 are left out; the result is ordered by gene id.
///
/// Ties at the k-th score go to the earlier row (lower row index), so the result does not
/// depend on the sort; with many tied scores this is the only thing deciding hits, and a
/// model that outputs constant scores is credited by row position, not by skill.
///
/// Heap: sorts an index of n `u32` (4n bytes), plus the returned 24 bytes per gene.
///
/// # Panics
/// If `groups`, `y` and `score` differ in length.
pub fn gene_top_k(groups: &[u32], y: &[u8], score: &[f32], class: u8) -> Vec<GeneTopK> {
    assert!(
        groups.len() == y.len() && y.len() == score.len(),
        "groups, labels and scores differ in length"
    );
    let n = u32::try_from(y.len()).expect("a score column of at most 2³² rows");
    let mut idx: Vec<u32> = (0..n).collect();
    // One sort groups the genes and ranks rows within each, so no per-gene buffers.
    idx.sort_unstable_by(|&a, &b| {
        let (a, b) = (a as usize, b as usize);
        groups[a]
            .cmp(&groups[b])
            .then(rank_key(score[b]).total_cmp(&rank_key(score[a])))
            .then(a.cmp(&b))
    });
    let mut out = Vec::new();
    let mut start = 0;
    while start < idx.len() {
        let group = groups[idx[start] as usize];
        let mut end = start;
        while end < idx.len() && groups[idx[end] as usize] == group {
            end += 1;
        }
        let rows = &idx[start..end];
        let k = rows.iter().filter(|&&i| y[i as usize] == class).count();
        if k > 0 {
            let hits = rows[..k].iter().filter(|&&i| y[i as usize] == class).count();
            out.push(GeneTopK {
                group,
                k: k as u64,
                hits: hits as u64,
            });
        }
        start = end;
    }
    out
}

/// Totals of [`gene_top_k`]; the ratios are 0 when no gene has a true site.
pub fn summarize(genes: &[GeneTopK]) -> TopKSummary {
    let sites: u64 = genes.iter().map(|g| g.k).sum();
    let hits: u64 = genes.iter().map(|g| g.hits).sum();
    let micro = if sites == 0 {
        0.0
    } else {
        hits as f64 / sites as f64
    };
    let macro_ = if genes.is_empty() {
        0.0
    } else {
        genes.iter().map(|g| g.hits as f64 / g.k as f64).sum::<f64>() / genes.len() as f64
    };
    TopKSummary {
        genes: genes.len() as u64,
        sites,
        hits,
        micro,
        macro_,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_k_by_hand() {
        // Gene 7 (rows 0, 2, 4, 6), labels 1 0 1 0, scores .9 .8 .1 .3:
        //   k = 2; top 2 by score are rows 0 (.9, donor) and 2 (.8, not): hits = 1.
        // Gene 3 (rows 1, 3, 5), labels 1 0 0, scores .5 .5 .2:
        //   k = 1; rows 1 and 3 tie at .5, the earlier row 1 wins and is a donor: hits = 1.
        // Gene 9 (row 7), label 0: k = 0, omitted.
        let groups = [7, 3, 7, 3, 7, 3, 7, 9];
        let y = [1, 1, 0, 0, 1, 0, 0, 0];
        let score = [0.9, 0.5, 0.8, 0.5, 0.1, 0.2, 0.3, 0.99];
        let got = gene_top_k(&groups, &y, &score, 1);
        assert_eq!(
            got,
            vec![
                GeneTopK {
                    group: 3,
                    k: 1,
                    hits: 1
                },
                GeneTopK {
                    group: 7,
                    k: 2,
                    hits: 1
                }
            ]
        );
        // micro = (1 + 1) / (1 + 2) = 2/3; macro = (1/1 + 1/2) / 2 = 3/4.
        let s = summarize(&got);
        assert_eq!((s.genes, s.sites, s.hits), (2, 3, 2));
        assert!((s.micro - 2.0 / 3.0).abs() < 1e-15 && (s.macro_ - 0.75).abs() < 1e-15);
    }

    #[test]
    fn tie_break_is_row_order_even_if_rows_are_interleaved() {
        // One gene whose rows are interleaved with another's; all its scores tie, so the
        // k = 1 pick is its first row (row 1), which is not the acceptor (row 5).
        let groups = [0, 1, 0, 1, 0, 1];
        let y = [2, 0, 0, 0, 0, 2];
        let score = [0.4, 0.5, 0.1, 0.5, 0.2, 0.5];
        let got = gene_top_k(&groups, &y, &score, 2);
        assert_eq!(
            got,
            vec![
                GeneTopK {
                    group: 0,
                    k: 1,
                    hits: 1
                },
                GeneTopK {
                    group: 1,
                    k: 1,
                    hits: 0
                }
            ]
        );
    }

    #[test]
    fn genes_without_true_sites_are_ignored() {
        let got = gene_top_k(&[5, 5, 6], &[0, 0, 1], &[0.9, 0.8, 0.1], 1);
        assert_eq!(
            got,
            vec![GeneTopK {
                group: 6,
                k: 1,
                hits: 1
            }]
        );
        let none = gene_top_k(&[5, 5], &[0, 0], &[0.9, 0.8], 1);
        assert!(none.is_empty());
        assert_eq!(
            summarize(&none),
            TopKSummary {
                genes: 0,
                sites: 0,
                hits: 0,
                micro: 0.0,
                macro_: 0.0
            }
        );
    }
}
