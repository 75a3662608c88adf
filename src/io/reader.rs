//! One way for every consumer to read feature values, whatever layout stores them.
//!
//! A feature is either a numeric column or one k-mer of a sparse `kmers_{k}` column (see
//! [`super::kmers`]). The sketch pass, the bin pass, `predict` and `inspect` must see the same
//! values either way, or a model would depend on how its dataset was written; so none of them
//! touches the columns: they scan what [`FeatureReader::columns`] names and ask a
//! [`FeatureBatch`] for each feature's values as `f32`.
//!
//! A sparse column is decoded once per batch into a CSC matrix (sprs) of the k-mers asked
//! for, by a counting sort of its items: filling every feature then costs O(items + rows ×
//! features asked for), and nothing of rows × 4^k is ever held. A k-mer a row's list lacks
//! counts 0; a null list reads as missing (`NaN`) for every k-mer of the column, as a null
//! does in a plain column.

use std::collections::HashMap;
use std::path::PathBuf;

use arrow::array::{Array, AsArray, GenericListArray, OffsetSizeTrait, RecordBatch};
use arrow::buffer::NullBuffer;
use arrow::compute::{cast_with_options, CastOptions};
use arrow::datatypes::{DataType, UInt32Type};

use super::dataset::{Dataset, Feature};
use super::kmers;
use super::scan::ScanBatch;
use super::values::{to_f32, try_to_f32};
use crate::error::InputError;

/// Where one requested feature's values are.
#[derive(Debug, Clone, Copy)]
enum Source {
    /// At this position among [`FeatureReader::columns`].
    Dense(usize),
    /// In sparse column `col` of [`FeatureReader::sparse`], as column `slot` of its CSC.
    Sparse { col: usize, slot: usize },
}

/// A sparse `kmers_{k}` column some requested features come from.
#[derive(Debug, Clone)]
struct SparseColumn {
    /// Position among [`FeatureReader::columns`].
    position: usize,
    name: String,
    k: usize,
    /// Per k-mer index, its slot among the requested k-mers, or `u32::MAX` when not asked for.
    slot_of: Vec<u32>,
    slots: usize,
}

/// Reads a chosen list of features out of the batches of a scan.
///
/// Build it, pass it to [`ScanBuilder::with_features`](super::ScanBuilder::with_features)
/// (which appends [`Self::columns`] to the scan and prices [`Self::row_bytes`] and
/// [`Self::fixed_bytes`]), then [`Self::read`] each batch.
#[derive(Debug, Clone)]
pub struct FeatureReader {
    columns: Vec<String>,
    sources: Vec<Source>,
    names: Vec<String>,
    sparse: Vec<SparseColumn>,
    paths: Vec<PathBuf>,
    row_bytes: u64,
    fixed_bytes: u64,
}

impl FeatureReader {
    /// Reads every feature of the dataset, in [`ColumnRoles::features`] order.
    ///
    /// [`ColumnRoles::features`]: super::ColumnRoles::features
    pub fn all(ds: &Dataset) -> Self {
        Self::build(ds, ds.roles.features.iter())
    }

    /// Reads the features at these indices of [`ColumnRoles::features`], in this order.
    ///
    /// [`ColumnRoles::features`]: super::ColumnRoles::features
    pub fn subset(ds: &Dataset, indices: &[usize]) -> Self {
        Self::build(ds, indices.iter().map(|&j| &ds.roles.features[j]))
    }

    /// Reads the features named (a model's, in its order). A name that is not a feature of
    /// the dataset is an error naming it.
    pub fn named<S: AsRef<str>>(ds: &Dataset, names: &[S]) -> Result<Self, InputError> {
        let by_name: HashMap<&str, &Feature> =
            ds.roles.features.iter().map(|f| (f.name.as_str(), f)).collect();
        let mut feats = Vec::with_capacity(names.len());
        for n in names {
            let n = n.as_ref();
            let Some(f) = by_name.get(n) else {
                let mut e = InputError::new(
                    "the model needs this feature, which the dataset lacks or holds as non-numbers",
                )
                .column(n)
                .hint("score a dataset with the columns the model was trained on");
                if let Some(file) = ds.files.first() {
                    e = e.file(&file.path);
                }
                return Err(e);
            };
            feats.push(*f);
        }
        Ok(Self::build(ds, feats.into_iter()))
    }

    fn build<'f>(ds: &Dataset, feats: impl Iterator<Item = &'f Feature>) -> Self {
        let mut columns: Vec<String> = vec![];
        let mut position: HashMap<String, usize> = HashMap::new();
        let mut sparse: Vec<SparseColumn> = vec![];
        let mut sources = vec![];
        let mut names = vec![];
        for f in feats {
            let pos = *position.entry(f.column.clone()).or_insert_with(|| {
                columns.push(f.column.clone());
                columns.len() - 1
            });
            names.push(f.name.clone());
            let Some(index) = f.sparse_index else {
                sources.push(Source::Dense(pos));
                continue;
            };
            let col = match sparse.iter().position(|s| s.position == pos) {
                Some(c) => c,
                None => {
                    let k = f.kmer.unwrap_or(1);
                    sparse.push(SparseColumn {
                        position: pos,
                        name: f.column.clone(),
                        k,
                        slot_of: vec![u32::MAX; kmers::kmer_count(k)],
                        slots: 0,
                    });
                    sparse.len() - 1
                }
            };
            let s = &mut sparse[col];
            let Some(entry) = s.slot_of.get_mut(index as usize) else {
                // The dataset made the feature from this very column: cannot happen.
                sources.push(Source::Dense(pos));
                continue;
            };
            if *entry == u32::MAX {
                *entry = s.slots as u32;
                s.slots += 1;
            }
            sources.push(Source::Sparse {
                col,
                slot: *entry as usize,
            });
        }
        // Per row, for each sparse column: its items' index (when cast) and value as f32,
        // then the CSC's row index and value of each item asked for; a null flag per row.
        // Once: the slot map, and the CSC's column pointers with their fill cursors.
        let (mut row_bytes, mut fixed_bytes) = (0u64, 0u64);
        for s in &sparse {
            let items = ds
                .column_index(&s.name)
                .map_or(0.0, |i| ds.columns[i].items_per_row);
            let items = (items * 1.25).ceil() as u64 + 1;
            row_bytes += items * 16 + 1;
            fixed_bytes += s.slot_of.len() as u64 * 4 + 2 * (s.slots as u64 + 1) * 8;
        }
        Self {
            columns,
            sources,
            names,
            sparse,
            paths: ds.files.iter().map(|f| f.path.clone()).collect(),
            row_bytes,
            fixed_bytes,
        }
    }

    /// The schema columns to scan, in the order the batches must hold them (last).
    pub fn columns(&self) -> &[String] {
        &self.columns
    }

    /// Features read, in order.
    pub fn len(&self) -> usize {
        self.sources.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sources.is_empty()
    }

    /// The names of the features read, in order.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Bytes per batch row that [`Self::read`] holds besides the scanned columns.
    pub fn row_bytes(&self) -> u64 {
        self.row_bytes
    }

    /// Bytes [`Self::read`] holds whatever the batch size.
    pub fn fixed_bytes(&self) -> u64 {
        self.fixed_bytes
    }

    /// Decodes the feature columns of `b`, the last [`Self::columns`]`.len()` columns of the
    /// batch (where [`ScanBuilder::with_features`](super::ScanBuilder::with_features) puts
    /// them). A malformed sparse column (an index beyond 4^k, items out of order, a null item)
    /// is an error naming the file, row and column.
    pub fn read<'a>(&'a self, b: &'a ScanBatch) -> Result<FeatureBatch<'a>, InputError> {
        let path = self.paths.get(b.file).cloned().unwrap_or_default();
        let first = b
            .batch
            .num_columns()
            .checked_sub(self.columns.len())
            .ok_or_else(|| {
                InputError::new(format!(
                    "the batch holds {} columns, fewer than the {} feature columns",
                    b.batch.num_columns(),
                    self.columns.len()
                ))
                .file(&path)
                .hint("build the scan with `ScanBuilder::with_features`")
            })?;
        let mut decoded = Vec::with_capacity(self.sparse.len());
        for s in &self.sparse {
            let array = b.batch.column(first + s.position);
            let located = |e: InputError| e.file(&path).column(&s.name);
            let d = match array.data_type() {
                DataType::List(_) => decode(array.as_list::<i32>(), s, b.first_row),
                DataType::LargeList(_) => decode(array.as_list::<i64>(), s, b.first_row),
                DataType::Null => Ok(all_null(array.len(), s)),
                other => Err(InputError::new(format!(
                    "a sparse k-mer column holds {other}, not a list of (index, count)"
                ))
                .hint("rewrite the column as `kmers_{k}` is documented, or rename it")),
            }
            .map_err(located)?;
            decoded.push(d);
        }
        Ok(FeatureBatch {
            reader: self,
            batch: &b.batch,
            first,
            decoded,
        })
    }
}

/// The requested k-mers of one sparse column in one batch: rows × slots, CSC.
struct Decoded {
    csc: sprs::CsMatI<f32, u32, usize>,
    /// Rows whose list is null.
    nulls: Option<NullBuffer>,
}

fn all_null(rows: usize, s: &SparseColumn) -> Decoded {
    Decoded {
        csc: sprs::CsMatI::new_csc((rows, s.slots), vec![0; s.slots + 1], vec![], vec![]),
        nulls: Some(NullBuffer::new_null(rows)),
    }
}

fn decode<O: OffsetSizeTrait>(
    list: &GenericListArray<O>,
    s: &SparseColumn,
    first_row: u64,
) -> Result<Decoded, InputError> {
    let rows = list.len();
    let offsets = list.value_offsets();
    let start = offsets[0].as_usize();
    let end = offsets[rows].as_usize();
    let items = list.values().slice(start, end - start);
    let bad_type = || {
        InputError::new(format!(
            "a sparse k-mer column holds items of type {}, not (index, count)",
            items.data_type()
        ))
        .hint("items must be structs of an integer `index` and an integer `count`")
    };
    let items = items.as_struct_opt().ok_or_else(bad_type)?;
    let (Some(index), Some(count)) = (items.column_by_name("index"), items.column_by_name("count")) else {
        return Err(bad_type());
    };
    let list_nulls = list.nulls().filter(|n| n.null_count() > 0);
    let is_null = |r: usize| list_nulls.is_some_and(|n| n.is_null(r));
    // The first item of a non-null row that is null itself, or whose index is.
    let null_item = (0..rows).filter(|&r| !is_null(r)).find_map(|r| {
        (offsets[r].as_usize() - start..offsets[r + 1].as_usize() - start)
            .find(|&p| items.is_null(p) || index.is_null(p))
            .map(|_| r)
    });
    if let Some(r) = null_item {
        return Err(InputError::new("a k-mer item or its index is null")
            .row(first_row + r as u64)
            .hint("write each row's list with a non-null (index, count) per k-mer present"));
    }
    let cast;
    let index: &[u32] = if *index.data_type() == DataType::UInt32 {
        index.as_primitive::<UInt32Type>().values()
    } else {
        let strict = CastOptions {
            safe: false,
            ..CastOptions::default()
        };
        cast = cast_with_options(index, &DataType::UInt32, &strict).map_err(|e| {
            InputError::new(format!("a k-mer index is not a code from 0 to 4^k - 1: {e}"))
                .hint("indices are base-4 codes of the k-mers, A=0 C=1 G=2 T=3, first base most significant")
        })?;
        cast.as_primitive::<UInt32Type>().values()
    };
    let mut values = Vec::new();
    try_to_f32(count.as_ref(), &mut values)?;
    let n_kmers = s.slot_of.len() as u32;
    // Counting sort of the items asked for, by slot: first the column sizes, with the checks.
    let mut indptr = vec![0usize; s.slots + 1];
    for r in 0..rows {
        if is_null(r) {
            continue;
        }
        let (lo, hi) = (offsets[r].as_usize() - start, offsets[r + 1].as_usize() - start);
        for p in lo..hi {
            let i = index[p];
            if i >= n_kmers {
                return Err(InputError::new(format!(
                    "k-mer index {i} is beyond 4^{} - 1 = {}",
                    s.k,
                    n_kmers - 1
                ))
                .row(first_row + r as u64)
                .hint("indices are base-4 codes of the k-mers of the column's k; rewrite the column"));
            }
            if p > lo && index[p - 1] >= i {
                return Err(InputError::new(format!(
                    "k-mer index {i} follows index {}: items must be sorted by index, each index once",
                    index[p - 1]
                ))
                .row(first_row + r as u64)
                .hint("rewrite the column with each row's items sorted by index and merged"));
            }
            let slot = s.slot_of[i as usize];
            if slot != u32::MAX {
                indptr[slot as usize + 1] += 1;
            }
        }
    }
    for j in 0..s.slots {
        indptr[j + 1] += indptr[j];
    }
    let nnz = indptr[s.slots];
    let mut cursor = indptr[..s.slots].to_vec();
    let mut row_of = vec![0u32; nnz];
    let mut data = vec![0f32; nnz];
    for r in 0..rows {
        if is_null(r) {
            continue;
        }
        for p in offsets[r].as_usize() - start..offsets[r + 1].as_usize() - start {
            let slot = s.slot_of[index[p] as usize];
            if slot != u32::MAX {
                let at = &mut cursor[slot as usize];
                row_of[*at] = r as u32;
                data[*at] = values[p];
                *at += 1;
            }
        }
    }
    // Rows were visited in order, so each column's rows are sorted and distinct: the
    // structure is valid, and sprs checks it again in O(nnz).
    let csc = sprs::CsMatI::try_new_csc((rows, s.slots), indptr, row_of, data).map_err(|(_, _, _, e)| {
        InputError::new(format!("internal error decoding the k-mer column: {e}"))
            .hint("please report this with the file")
    })?;
    Ok(Decoded {
        csc,
        nulls: list_nulls.cloned(),
    })
}

/// The decoded features of one batch.
pub struct FeatureBatch<'a> {
    reader: &'a FeatureReader,
    batch: &'a RecordBatch,
    first: usize,
    decoded: Vec<Decoded>,
}

impl FeatureBatch<'_> {
    /// Rows of the batch.
    pub fn rows(&self) -> usize {
        self.batch.num_rows()
    }

    /// Features, as [`FeatureReader::len`].
    pub fn len(&self) -> usize {
        self.reader.len()
    }

    pub fn is_empty(&self) -> bool {
        self.reader.is_empty()
    }

    /// Writes feature `j`'s values into `out` (replacing its contents), `NaN` where missing.
    pub fn fill(&self, j: usize, out: &mut Vec<f32>) {
        match self.reader.sources[j] {
            Source::Dense(pos) => to_f32(self.batch.column(self.first + pos).as_ref(), out),
            Source::Sparse { col, slot } => {
                let d = &self.decoded[col];
                out.clear();
                out.resize(self.rows(), 0.0);
                if let Some(nulls) = &d.nulls {
                    for r in (0..out.len()).filter(|&r| nulls.is_null(r)) {
                        out[r] = f32::NAN;
                    }
                }
                if let Some(v) = d.csc.outer_view(slot) {
                    for (r, &x) in v.iter() {
                        out[r] = x;
                    }
                }
            }
        }
    }

    /// Null values of feature `j` (a null list for a sparse k-mer), NaN not counted.
    pub fn null_count(&self, j: usize) -> usize {
        match self.reader.sources[j] {
            Source::Dense(pos) => self.batch.column(self.first + pos).null_count(),
            Source::Sparse { col, .. } => self.decoded[col].nulls.as_ref().map_or(0, |n| n.null_count()),
        }
    }

    /// Bytes the decoded sparse columns hold.
    pub fn heap_bytes(&self) -> u64 {
        self.decoded
            .iter()
            .map(|d| {
                (d.csc.indptr().len() * 8 + d.csc.nnz() * 8 + d.nulls.as_ref().map_or(0, |n| n.len() / 8))
                    as u64
            })
            .sum()
    }
}
