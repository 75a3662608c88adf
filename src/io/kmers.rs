//! Sparse k-mer counts: the one place that counts k-mers, names them and stores them.
//!
//! MetaSpliceAI stores k-mer counts densely, one Float64 column per k-mer (`3mer_ACG`): at
//! k = 6 that is 4,096 columns, almost all zero in a 500-nt window, and at k = 8 65,536
//! columns no Parquet reader handles gracefully. spliceboost stores them sparsely instead and
//! reads them back as the same features, so that the counting, the naming and the order of
//! the k-mers must agree between the builder that writes them and every reader: they live
//! here, once.
//!
//! # Format
//!
//! One column per k (1 ≤ k ≤ 8), named `kmers_{k}`, of type
//! `List<Struct<index: UInt32 (non-null), count: UInt16 (non-null)>>`:
//!
//! - the list itself is non-null; an empty list means the window holds no k-mer of A, C, G
//!   and T (a null list, which spliceboost never writes, reads as missing values);
//! - `index` is the k-mer's base-4 code, A = 0, C = 1, G = 2, T = 3, first base most
//!   significant, so that index order is lexicographic order (`AA…A` = 0, `TT…T` = 4^k − 1)
//!   and feature `index` of `kmers_{k}` is the dense column `{k}mer_{SEQ}` of the same
//!   position in [`kmer_names`];
//! - items are sorted by `index`, each index at most once, and only counts > 0 are stored;
//! - `count` is the number of occurrences of the k-mer in the window, saturating at
//!   `u16::MAX`.
//!
//! Counting takes every overlapping k-mer of the window, case-insensitively; a k-mer holding
//! anything other than A, C, G or T (`N`, IUPAC codes, gaps) is skipped.
//!
//! Read back, `kmers_{k}` gives the 4^k integer features `{k}mer_AA…A` … `{k}mer_TT…T`, in
//! that order; a k-mer absent from a row's list counts 0.

use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Array, ListArray, StructArray, UInt16Array, UInt32Array};
use arrow::buffer::{OffsetBuffer, ScalarBuffer};
use arrow::datatypes::{DataType, Field, Fields};

/// The largest k stored: 4^8 = 65,536 features per column.
pub const MAX_K: usize = 8;

/// The prefix of sparse k-mer columns, `kmers_{k}`.
pub const SPARSE_PREFIX: &str = "kmers_";

/// The name of the sparse column holding the k-mers of length `k`: `kmers_{k}`.
pub fn sparse_column(k: usize) -> String {
    format!("{SPARSE_PREFIX}{k}")
}

fn item_fields() -> Fields {
    Fields::from(vec![
        Field::new("index", DataType::UInt32, false),
        Field::new("count", DataType::UInt16, false),
    ])
}

fn item_field() -> Arc<Field> {
    Arc::new(Field::new("item", DataType::Struct(item_fields()), false))
}

/// The Arrow field of the `kmers_{k}` column as spliceboost writes it.
pub fn sparse_field(k: usize) -> Field {
    Field::new(sparse_column(k), DataType::List(item_field()), false)
}

/// `Some(k)` when `field` is a sparse k-mer column: named `kmers_{k}` with 1 ≤ k ≤ 8, a list
/// (or large list) of structs holding integer fields `index` and `count`.
///
/// Other writers (Polars, pyarrow) may make the items nullable or widen the integers; those
/// columns read the same, so only the names and kinds of the fields are checked here.
pub fn sparse_k(field: &Field) -> Option<usize> {
    let k = parse_sparse_name(field.name())?;
    let item = match field.data_type() {
        DataType::List(item) | DataType::LargeList(item) => item,
        _ => return None,
    };
    let DataType::Struct(fields) = item.data_type() else {
        return None;
    };
    let int = |name: &str| {
        fields
            .iter()
            .find(|f| f.name() == name)
            .is_some_and(|f| f.data_type().is_integer())
    };
    (int("index") && int("count")).then_some(k)
}

/// `Some(k)` when `name` is `kmers_{k}` with 1 ≤ k ≤ 8, whatever the column's type.
pub fn parse_sparse_name(name: &str) -> Option<usize> {
    let digits = name.strip_prefix(SPARSE_PREFIX)?;
    if digits.len() != 1 {
        return None;
    }
    let k: usize = digits.parse().ok()?;
    (1..=MAX_K).contains(&k).then_some(k)
}

/// The base sequence of k-mer `index` of length `k`, `AC…`.
pub fn kmer_seq(k: usize, index: u32) -> String {
    (0..k)
        .map(|i| b"ACGT"[(index as usize >> (2 * (k - 1 - i))) & 3] as char)
        .collect()
}

/// The feature name of k-mer `index` of length `k`: `{k}mer_{SEQ}`, the name of MetaSpliceAI's
/// dense column.
pub fn kmer_name(k: usize, index: u32) -> String {
    format!("{k}mer_{}", kmer_seq(k, index))
}

/// The 4^k feature names of length-`k` k-mers in index order (`{k}mer_AA…A` first).
pub fn kmer_names(k: usize) -> Vec<String> {
    (0..kmer_count(k) as u32).map(|i| kmer_name(k, i)).collect()
}

/// The number of distinct k-mers of length `k`, 4^k.
pub fn kmer_count(k: usize) -> usize {
    1usize << (2 * k)
}

/// `Some((k, index))` when `name` is a k-mer feature name `{k}mer_{SEQ}` over A, C, G and T
/// (case-sensitive, as the writers spell them) with 1 ≤ k ≤ 8.
pub fn parse_kmer_name(name: &str) -> Option<(usize, u32)> {
    let (k, seq) = name.split_once("mer_")?;
    if k.len() != 1 {
        return None;
    }
    let k: usize = k.parse().ok()?;
    if !(1..=MAX_K).contains(&k) || seq.len() != k {
        return None;
    }
    let mut index = 0u32;
    for b in seq.bytes() {
        index = (index << 2) | base_code(b).filter(|_| b.is_ascii_uppercase())?;
    }
    Some((k, index))
}

/// `true` for names shaped like a dense k-mer column whose letters are not all A, C, G and T
/// (`3mer_NNN`, `2mer_AN`): the Python pipeline wrote some, no counter fills them, and the
/// dataset reader reports and ignores them.
pub fn is_stray_kmer_name(name: &str) -> bool {
    name.split_once("mer_").is_some_and(|(k, seq)| {
        k.parse::<usize>().is_ok_and(|k| k == seq.len())
            && seq.bytes().all(|b| b.is_ascii_uppercase())
            && parse_kmer_name(name).is_none()
    })
}

#[inline]
fn base_code(b: u8) -> Option<u32> {
    match b {
        b'A' | b'a' => Some(0),
        b'C' | b'c' => Some(1),
        b'G' | b'g' => Some(2),
        b'T' | b't' => Some(3),
        _ => None,
    }
}

/// Calls `f` with the code of every overlapping k-mer of `seq`, left to right, skipping those
/// that hold anything other than A, C, G or T (either case). Nothing for k outside 1..=8.
#[inline]
pub fn for_each_kmer(seq: &[u8], k: usize, mut f: impl FnMut(u32)) {
    if !(1..=MAX_K).contains(&k) || seq.len() < k {
        return;
    }
    let mask = (kmer_count(k) - 1) as u32;
    let mut code = 0u32;
    let mut valid = 0usize;
    for &b in seq {
        let Some(v) = base_code(b) else {
            valid = 0;
            continue;
        };
        code = ((code << 2) | v) & mask;
        valid += 1;
        if valid >= k {
            f(code);
        }
    }
}

/// Adds the counts of every k-mer of `seq` to `counts`, 4^k slots in index order: the dense
/// form of [`KmerBatch::push_window`], for callers that want every slot (counts do not
/// saturate here; a `u32` does not overflow on a window).
pub fn count_kmers(seq: &[u8], k: usize, counts: &mut [u32]) {
    debug_assert_eq!(counts.len(), kmer_count(k));
    for_each_kmer(seq, k, |c| counts[c as usize] += 1);
}

/// The sparse k-mer counts of a batch of windows for one k, in CSR form (one row per window,
/// 4^k columns), built row by row.
///
/// Counting sorts a row's codes in a reusable scratch vector instead of filling 4^k slots, so
/// a row costs O(window · log window) whatever k is, and the batch holds only its non-zero
/// counts.
#[derive(Debug, Clone)]
pub struct KmerBatch {
    k: usize,
    indptr: Vec<usize>,
    indices: Vec<u32>,
    counts: Vec<u16>,
    scratch: Vec<u32>,
}

impl KmerBatch {
    /// An empty batch for k-mers of length `k`.
    ///
    /// # Panics
    /// When `k` is outside 1..=8: callers check k where it is configured.
    pub fn new(k: usize) -> Self {
        assert!(
            (1..=MAX_K).contains(&k),
            "k-mer length {k} is outside 1..={MAX_K}"
        );
        Self {
            k,
            indptr: vec![0],
            indices: vec![],
            counts: vec![],
            scratch: vec![],
        }
    }

    /// The k-mer length.
    pub fn k(&self) -> usize {
        self.k
    }

    /// Counts the k-mers of `window` as the next row.
    pub fn push_window(&mut self, window: &[u8]) {
        self.scratch.clear();
        let scratch = &mut self.scratch;
        for_each_kmer(window, self.k, |c| scratch.push(c));
        self.scratch.sort_unstable();
        let mut i = 0;
        while i < self.scratch.len() {
            let code = self.scratch[i];
            let mut j = i + 1;
            while j < self.scratch.len() && self.scratch[j] == code {
                j += 1;
            }
            self.indices.push(code);
            self.counts.push(u16::try_from(j - i).unwrap_or(u16::MAX));
            i = j;
        }
        self.indptr.push(self.indices.len());
    }

    /// Rows pushed since the batch was made or cleared.
    pub fn rows(&self) -> usize {
        self.indptr.len() - 1
    }

    /// Non-zero counts held.
    pub fn nnz(&self) -> usize {
        self.indices.len()
    }

    /// Bytes the batch holds on the heap (capacities, not lengths), for reservations.
    pub fn heap_bytes(&self) -> u64 {
        (self.indptr.capacity() * size_of::<usize>()
            + self.indices.capacity() * size_of::<u32>()
            + self.counts.capacity() * size_of::<u16>()
            + self.scratch.capacity() * size_of::<u32>()) as u64
    }

    /// The batch as a borrowed sprs CSR matrix, rows × 4^k.
    pub fn csr_view(&self) -> sprs::CsMatViewI<'_, u16, u32, usize> {
        // The structure is valid by construction (indices sorted and unique within a row,
        // below 4^k); `try_new` checks it again in O(nnz), which costs nothing beside counting.
        sprs::CsMatViewI::try_new(
            (self.rows(), kmer_count(self.k)),
            &self.indptr[..],
            &self.indices[..],
            &self.counts[..],
        )
        .unwrap_or_else(|(_, _, _, e)| unreachable!("a KmerBatch is always a valid CSR matrix: {e}"))
    }

    /// The batch as an owned sprs CSR matrix, rows × 4^k.
    pub fn to_csr(&self) -> sprs::CsMatI<u16, u32, usize> {
        self.csr_view().to_owned()
    }

    /// The `kmers_{k}` column of the batch (see the module docs for the format).
    ///
    /// # Panics
    /// When the batch holds more than `i32::MAX` counts, which no memory budget allows.
    pub fn sparse_array(&self) -> ArrayRef {
        let offsets: Vec<i32> = self
            .indptr
            .iter()
            .map(|&o| i32::try_from(o).expect("a k-mer batch holds more than i32::MAX counts"))
            .collect();
        let items = StructArray::new(
            item_fields(),
            vec![
                Arc::new(UInt32Array::from(self.indices.clone())) as ArrayRef,
                Arc::new(UInt16Array::from(self.counts.clone())) as ArrayRef,
            ],
            None,
        );
        Arc::new(ListArray::new(
            item_field(),
            OffsetBuffer::new(ScalarBuffer::from(offsets)),
            Arc::new(items),
            None,
        ))
    }

    /// The batch in MetaSpliceAI's dense layout: the 4^k Float64 columns `{k}mer_{SEQ}` in
    /// index order, each `rows` long. Holds rows × 4^k values: for small k or small batches.
    pub fn dense_arrays(&self) -> Vec<(String, ArrayRef)> {
        let rows = self.rows();
        let mut cols = vec![vec![0f64; rows]; kmer_count(self.k)];
        for (r, span) in self.indptr.windows(2).enumerate() {
            for p in span[0]..span[1] {
                cols[self.indices[p] as usize][r] = f64::from(self.counts[p]);
            }
        }
        cols.into_iter()
            .enumerate()
            .map(|(i, c)| {
                (
                    kmer_name(self.k, i as u32),
                    Arc::new(Float64Array::from(c)) as ArrayRef,
                )
            })
            .collect()
    }

    /// Forgets every row, keeping the allocations for the next batch.
    pub fn clear(&mut self) {
        self.indptr.clear();
        self.indptr.push(0);
        self.indices.clear();
        self.counts.clear();
    }
}

/// An upper bound of the bytes one row of windows `window` nt long takes in the sparse
/// columns of every k in `ks`, whether held by a [`KmerBatch`] (8-byte row pointer, 4-byte
/// index, 2-byte count) or as a `kmers_{k}` Arrow column (4-byte offset, same items), plus
/// the counting scratch: for reservations.
pub fn window_row_bytes(ks: &[usize], window: usize) -> u64 {
    ks.iter()
        .map(|&k| {
            let kmers = window.saturating_sub(k.saturating_sub(1));
            let distinct = kmers.min(kmer_count(k.min(MAX_K)));
            (size_of::<usize>() + distinct * (size_of::<u32>() + size_of::<u16>())) as u64
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use arrow::array::{Array, AsArray};
    use arrow::datatypes::{UInt16Type, UInt32Type};
    use proptest::prelude::*;

    use super::*;

    /// Counts by sliding over the upper-cased text, with nothing shared with the code tested.
    fn naive(window: &[u8], k: usize) -> HashMap<String, u16> {
        let up = String::from_utf8(window.to_ascii_uppercase()).unwrap();
        let mut m: HashMap<String, u16> = HashMap::new();
        if up.len() >= k {
            for i in 0..=up.len() - k {
                let s = &up[i..i + k];
                if s.chars().all(|c| "ACGT".contains(c)) {
                    let n = m.entry(s.to_string()).or_default();
                    *n = n.saturating_add(1);
                }
            }
        }
        m
    }

    fn row_counts(b: &KmerBatch, r: usize) -> HashMap<String, u16> {
        let csr = b.csr_view();
        let row = csr.outer_view(r).unwrap();
        row.iter().map(|(i, &c)| (kmer_seq(b.k(), i as u32), c)).collect()
    }

    /// The counts of row `r` of a `kmers_{k}` column, read as Arrow without the batch.
    fn array_counts(a: &ArrayRef, k: usize, r: usize) -> HashMap<String, u16> {
        let list = a.as_list::<i32>();
        let items = list.value(r);
        let items = items.as_struct();
        let idx = items
            .column_by_name("index")
            .unwrap()
            .as_primitive::<UInt32Type>();
        let cnt = items
            .column_by_name("count")
            .unwrap()
            .as_primitive::<UInt16Type>();
        assert!(
            idx.values().windows(2).all(|w| w[0] < w[1]),
            "items sorted by index"
        );
        idx.values()
            .iter()
            .zip(cnt.values().iter())
            .map(|(&i, &c)| (kmer_seq(k, i), c))
            .collect()
    }

    fn windows() -> impl Strategy<Value = Vec<Vec<u8>>> {
        let base = prop::sample::select(b"ACGTNacgtn".to_vec());
        prop::collection::vec(prop::collection::vec(base, 0..600), 1..4)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn push_window_counts_every_acgt_kmer_like_a_naive_count(
            k in 1usize..=8,
            ws in windows(),
        ) {
            let mut b = KmerBatch::new(k);
            for w in &ws {
                b.push_window(w);
            }
            prop_assert_eq!(b.rows(), ws.len());
            let arr = b.sparse_array();
            prop_assert_eq!(arr.data_type(), &sparse_field(k).data_type().clone());
            for (r, w) in ws.iter().enumerate() {
                let want = naive(w, k);
                prop_assert_eq!(&row_counts(&b, r), &want);
                prop_assert_eq!(&array_counts(&arr, k, r), &want);
            }
            // A cleared batch starts again at row 0 and counts the same.
            b.clear();
            b.push_window(&ws[0]);
            prop_assert_eq!(b.rows(), 1);
            prop_assert_eq!(row_counts(&b, 0), naive(&ws[0], k));
        }
    }

    #[test]
    fn counts_saturate_at_u16_max() {
        let w = vec![b'A'; 70_000];
        let mut b = KmerBatch::new(1);
        b.push_window(&w);
        assert_eq!(row_counts(&b, 0)["A"], u16::MAX);
    }

    #[test]
    fn names_follow_index_order_and_parse_back() {
        assert_eq!(kmer_names(1), ["1mer_A", "1mer_C", "1mer_G", "1mer_T"]);
        let names = kmer_names(3);
        assert_eq!(names.len(), 64);
        assert_eq!(names[0], "3mer_AAA");
        assert_eq!(names[6], "3mer_ACG");
        assert_eq!(names[63], "3mer_TTT");
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(sorted, names, "index order is lexicographic order");
        for (i, n) in names.iter().enumerate() {
            assert_eq!(parse_kmer_name(n), Some((3, i as u32)));
        }
        assert_eq!(kmer_name(8, 65_535), "8mer_TTTTTTTT");
        assert_eq!(parse_kmer_name("3mer_NNN"), None);
        assert_eq!(parse_kmer_name("3mer_AC"), None);
        assert!(is_stray_kmer_name("3mer_NNN"));
        assert!(is_stray_kmer_name("6mer_ACGTNA"));
        assert!(!is_stray_kmer_name("3mer_ACG"));
        assert!(!is_stray_kmer_name("5mer_gc_content"));
        assert!(!is_stray_kmer_name("donor_score"));
    }

    #[test]
    fn dense_arrays_match_the_dense_count() {
        let w = b"ACGNACgtAC";
        let mut b = KmerBatch::new(2);
        b.push_window(w);
        b.push_window(b"");
        let mut dense = vec![0u32; 16];
        count_kmers(w, 2, &mut dense);
        let cols = b.dense_arrays();
        assert_eq!(cols.len(), 16);
        for (i, (name, col)) in cols.iter().enumerate() {
            assert_eq!(name, &kmer_names(2)[i]);
            let col = col.as_primitive::<arrow::datatypes::Float64Type>();
            assert_eq!(col.values().to_vec(), vec![f64::from(dense[i]), 0.0]);
        }
    }

    #[test]
    fn sparse_k_recognises_only_well_formed_columns() {
        for k in 1..=MAX_K {
            assert_eq!(sparse_k(&sparse_field(k)), Some(k));
            assert_eq!(sparse_column(k), format!("kmers_{k}"));
        }
        assert_eq!(sparse_k(&Field::new("kmers_3", DataType::Float64, true)), None);
        let mut f = sparse_field(3);
        f = f.with_name("kmers_9");
        assert_eq!(sparse_k(&f), None);
        assert_eq!(sparse_k(&sparse_field(3).with_name("kmers_x")), None);
    }

    #[test]
    fn window_row_bytes_bounds_what_a_batch_holds() {
        let ks = [1, 3, 6, 8];
        let w: Vec<u8> = (0..500).map(|i| b"ACGT"[(i * 7 + i / 3) % 4]).collect();
        let mut total = 0;
        for &k in &ks {
            let mut b = KmerBatch::new(k);
            b.push_window(&w);
            total += (b.nnz() * 6 + 8) as u64;
        }
        assert!(total <= window_row_bytes(&ks, w.len()));
    }
}
