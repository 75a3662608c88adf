//! Gene-wise folds: every gene's rows go to one fold, so no gene is ever seen on both sides
//! of a split, and folds are balanced by rows as scikit-learn's `GroupKFold` balances them.

/// A gene left out of every fold (filtered away or not sampled).
pub const EXCLUDED: u8 = u8::MAX;

/// Which fold each gene tests in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Folds {
    pub n_folds: usize,
    /// Per gene: its fold, or [`EXCLUDED`].
    pub fold_of_gene: Vec<u8>,
    pub rows: Vec<u64>,
    pub genes: Vec<u64>,
}

/// Assigns the genes with rows to `n_folds` folds: largest gene first, each to the fold with
/// the fewest rows so far (the lowest fold on a tie), as `GroupKFold` does. Genes of equal
/// size are ordered by a seeded hash of their id, so the seed reshuffles them.
pub fn assign(genes: &[String], rows_per_gene: &[u64], n_folds: usize, seed: u64) -> Result<Folds, String> {
    let mut order: Vec<usize> = (0..genes.len()).filter(|&g| rows_per_gene[g] > 0).collect();
    if order.len() < n_folds {
        return Err(format!(
            "{} genes cannot fill {n_folds} folds: every fold needs at least one gene",
            order.len()
        ));
    }
    let key: Vec<f64> = genes.iter().map(|g| gene_draw(seed ^ 0xF01D, g)).collect();
    order.sort_by(|&a, &b| {
        rows_per_gene[b]
            .cmp(&rows_per_gene[a])
            .then(key[a].total_cmp(&key[b]))
            .then(a.cmp(&b))
    });
    let mut folds = Folds {
        n_folds,
        fold_of_gene: vec![EXCLUDED; genes.len()],
        rows: vec![0; n_folds],
        genes: vec![0; n_folds],
    };
    for g in order {
        let f = (0..n_folds)
            .min_by_key(|&f| (folds.rows[f], f))
            .expect("n_folds ≥ 1");
        folds.fold_of_gene[g] = f as u8;
        folds.rows[f] += rows_per_gene[g];
        folds.genes[f] += 1;
    }
    Ok(folds)
}

/// The `n` genes (of those with rows) with the smallest seeded draws: a deterministic sample
/// that does not depend on file order. Returns a per-gene keep flag.
pub fn sample_genes(genes: &[String], rows_per_gene: &[u64], n: usize, seed: u64) -> Vec<bool> {
    let mut cand: Vec<(f64, usize)> = (0..genes.len())
        .filter(|&g| rows_per_gene[g] > 0)
        .map(|g| (gene_draw(seed ^ 0x5A3F_1E00, &genes[g]), g))
        .collect();
    cand.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    let mut keep = vec![false; genes.len()];
    for &(_, g) in cand.iter().take(n) {
        keep[g] = true;
    }
    keep
}

/// Assigns every gene to training or validation: a stable hash of the seed and the gene id
/// against `valid_fraction`, so the split depends on neither file order nor thread count.
pub fn gene_is_valid(seed: u64, gene: &str, valid_fraction: f64) -> bool {
    gene_draw(seed, gene) < valid_fraction
}

/// A stable draw in `[0, 1)` from the seed and the gene id: every gene-wise random choice
/// (validation split, fold order, gene sample) is made from it.
pub fn gene_draw(seed: u64, gene: &str) -> f64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ seed.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    for &b in gene.as_bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x100_0000_01b3);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    (h >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn genes(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("ENSG{i:05}")).collect()
    }

    #[test]
    fn every_gene_lands_in_exactly_one_fold_and_folds_balance() {
        let g = genes(103);
        let rows: Vec<u64> = (0..103).map(|i| 50 + (i * 37 % 400) as u64).collect();
        let f = assign(&g, &rows, 5, 7).unwrap();
        assert!(f.fold_of_gene.iter().all(|&x| (x as usize) < 5));
        assert_eq!(f.genes.iter().sum::<u64>(), 103);
        assert_eq!(f.rows.iter().sum::<u64>(), rows.iter().sum::<u64>());
        // Greedy largest-first keeps every fold within one gene of the mean.
        let mean = f.rows.iter().sum::<u64>() as f64 / 5.0;
        let largest = *rows.iter().max().unwrap() as f64;
        for &r in &f.rows {
            assert!((r as f64 - mean).abs() <= largest, "{:?}", f.rows);
        }
    }

    #[test]
    fn genes_without_rows_are_excluded() {
        let g = genes(6);
        let f = assign(&g, &[5, 0, 5, 5, 0, 5], 2, 1).unwrap();
        assert_eq!(f.fold_of_gene[1], EXCLUDED);
        assert_eq!(f.fold_of_gene[4], EXCLUDED);
        assert_eq!(f.genes, vec![2, 2]);
    }

    #[test]
    fn fewer_genes_than_folds_is_refused() {
        let err = assign(&genes(3), &[1, 1, 1], 5, 0).unwrap_err();
        assert!(err.contains("3 genes cannot fill 5 folds"), "{err}");
    }

    #[test]
    fn gene_sample_is_deterministic_and_sized() {
        let g = genes(50);
        let rows = vec![10u64; 50];
        let a = sample_genes(&g, &rows, 12, 3);
        assert_eq!(a.iter().filter(|&&k| k).count(), 12);
        assert_eq!(a, sample_genes(&g, &rows, 12, 3));
        assert_ne!(a, sample_genes(&g, &rows, 12, 4));
    }
}
