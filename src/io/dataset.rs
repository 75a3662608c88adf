//! Finding a dataset's files, checking their schemas agree, and assigning column roles.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use bytes::Bytes;
use memmap2::Mmap;
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder,
};
use parquet::arrow::ProjectionMask;
use serde::{Deserialize, Serialize};

use super::kmers;
use crate::error::InputError;

/// Columns that describe a row but must never be features: identifiers, coordinates, the
/// label, and the base model's own call (`pred_type`), which leaks the answer.
pub const METADATA_COLUMNS: [&str; 17] = [
    "splice_type",
    "pred_type",
    "true_position",
    "predicted_position",
    "position",
    "absolute_position",
    "window_start",
    "window_end",
    "gene_id",
    "transcript_id",
    "gene_type",
    "strand",
    "chrom",
    "transcript_count",
    "gene_name",
    "sequence",
    "score",
];

/// The dataset and the roles of its columns.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetConfig {
    /// A directory (MetaSpliceAI's `master/batch_NNNNN.parquet` layout or any tree of
    /// Parquet files), one file, or a glob.
    #[serde(default)]
    pub path: PathBuf,
    /// The label column; by default `splice_type` if present, else `label`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// The grouping column for gene-wise splits.
    #[serde(default = "default_group")]
    pub group: String,
    /// When not empty, only these features (names or glob patterns such as `3mer_*`).
    #[serde(default)]
    pub include: Vec<String>,
    /// Features to leave out (names or glob patterns).
    #[serde(default)]
    pub exclude: Vec<String>,
}

impl Default for DatasetConfig {
    fn default() -> Self {
        Self {
            path: PathBuf::new(),
            label: None,
            group: default_group(),
            include: vec![],
            exclude: vec![],
        }
    }
}

fn default_group() -> String {
    "gene_id".into()
}

/// One Parquet file of the dataset.
#[derive(Debug, Clone)]
pub struct DataFile {
    pub path: PathBuf,
    pub rows: u64,
    pub row_groups: usize,
    pub bytes: u64,
    /// Heap its decoded footer takes while a scan has the file open: the Parquet metadata
    /// and the Arrow schema made from it. Thousands of columns (dense 6-mers) make it
    /// megabytes.
    pub footer_bytes: u64,
}

/// How a feature's values are stored in the files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FeatureType {
    Float,
    Int,
    Bool,
}

/// A feature: a numeric column, or one k-mer of a sparse `kmers_{k}` column.
///
/// Readers go through [`FeatureReader`](super::FeatureReader), which finds the values
/// wherever [`Self::column`] and [`Self::sparse_index`] say they are.
#[derive(Debug, Clone)]
pub struct Feature {
    pub name: String,
    /// The stored type: the column's, or for a sparse k-mer the type of its counts.
    pub data_type: DataType,
    pub kind: FeatureType,
    /// `Some(k)` for a k-mer count (`{k}mer_ACG…`), dense or sparse.
    pub kmer: Option<usize>,
    /// The schema column holding the values: the feature's own name, or `kmers_{k}`.
    pub column: String,
    /// For a k-mer of a sparse `kmers_{k}` column, its index there (see [`super::kmers`]).
    pub sparse_index: Option<u32>,
}

/// How the label column encodes classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LabelKind {
    /// `splice_type`: donor / acceptor / null.
    SpliceType,
    /// An integer column holding 0, 1 or 2.
    Integer,
}

/// The role of every column the engine reads.
#[derive(Debug, Clone)]
pub struct ColumnRoles {
    pub label: String,
    pub label_kind: LabelKind,
    pub group: String,
    pub features: Vec<Feature>,
}

/// A dataset: its files, the union of their schemas and the column roles.
#[derive(Debug, Clone)]
pub struct Dataset {
    pub root: PathBuf,
    pub files: Vec<DataFile>,
    /// Every column any file holds, in order of first appearance, each with the one type a
    /// [`Scan`](super::Scan) hands it over in (see [`ColumnInfo::converted`]).
    pub schema: SchemaRef,
    pub roles: ColumnRoles,
    /// Per schema column, the largest uncompressed column chunk in any row group: bounds the
    /// page buffers a reader of that column holds.
    pub max_chunk_bytes: Vec<u64>,
    /// Per schema column, uncompressed bytes per row over the files that hold it.
    pub bytes_per_row: Vec<f64>,
    /// Rows of the largest row group: no batch is larger, since batches stay within one.
    pub max_row_group_rows: u64,
    /// Per schema column, how the files store it.
    pub columns: Vec<ColumnInfo>,
    /// The warnings opening the dataset printed (without the `warning: ` prefix).
    pub warnings: Vec<String>,
    /// Schema column index by name.
    index: HashMap<String, usize>,
}

/// How the files of a dataset store one column.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnInfo {
    /// Files that hold the column; in the others it reads as null.
    pub files: usize,
    /// Some file stores the column under another type than the schema's (Float32 where
    /// another has Float64, a dictionary where another is plain, ...): a scan converts that
    /// file's values to the schema's type, which costs one more decoded copy per row.
    pub converted: bool,
    /// Bytes per row of the widest type any file decodes the column to.
    pub decoded_width: u64,
    /// Values per row in the row group that holds the most: 1 for a flat column, the list
    /// items per row for a list column (a sparse `kmers_{k}` column's non-zero counts).
    pub items_per_row: f64,
}

/// A memory-mapped Parquet file and its footer.
pub(crate) struct MappedParquet {
    pub map: Arc<Mmap>,
    pub bytes: Bytes,
    pub meta: ArrowReaderMetadata,
}

struct MapOwner(Arc<Mmap>);

impl AsRef<[u8]> for MapOwner {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl MappedParquet {
    /// Maps `path` and reads its footer. The map is released when the value is dropped.
    pub fn open(path: &Path) -> Result<Self, InputError> {
        let file =
            std::fs::File::open(path).map_err(|e| InputError::new(format!("cannot open: {e}")).file(path))?;
        let len = file.metadata().map(|m| m.len()).unwrap_or(0);
        let not_parquet = |why: String| {
            InputError::new(format!("not a readable Parquet file: {why}"))
                .file(path)
                .hint("the file is truncated, corrupt or not Parquet; rewrite it or move it out of the dataset directory")
        };
        if len < 12 {
            return Err(not_parquet(format!("only {len} bytes long")));
        }
        // SAFETY: the map is read-only and datasets are not modified while a run reads them;
        // this is the usual contract of memory-mapped readers.
        let map = Arc::new(
            unsafe { Mmap::map(&file) }
                .map_err(|e| InputError::new(format!("cannot map: {e}")).file(path))?,
        );
        if &map[..4] != b"PAR1" || &map[map.len() - 4..] != b"PAR1" {
            return Err(not_parquet("no PAR1 magic at its start and end".into()));
        }
        let bytes = Bytes::from_owner(MapOwner(map.clone()));
        let meta = super::read_footer(|| ArrowReaderMetadata::load(&bytes, ArrowReaderOptions::new()))
            .map_err(|e| not_parquet(e.to_string()))?;
        Ok(Self { map, bytes, meta })
    }

    /// Heap of the decoded footer: the metadata's own figure, and per Arrow field its
    /// record, name and the reader's field tree (an estimate: arrow does not tell).
    pub fn footer_bytes(&self) -> u64 {
        let fields: u64 = self
            .meta
            .schema()
            .fields()
            .iter()
            .map(|f| (2 * std::mem::size_of::<arrow::datatypes::Field>() + f.name().len() + 64) as u64)
            .sum();
        self.meta.metadata().memory_size() as u64 + fields
    }

    /// Tells the kernel the bytes of a row group are no longer needed, so a long scan of a
    /// large file keeps only the row group at hand resident.
    pub fn release_row_group(&self, rg: usize) {
        let md = self.meta.metadata().row_group(rg);
        let (mut lo, mut hi) = (u64::MAX, 0u64);
        for c in md.columns() {
            // Not `byte_range()`, which asserts on the negative offsets a corrupt footer holds:
            // such a row group is simply not released.
            let start = c.dictionary_page_offset().unwrap_or(c.data_page_offset());
            let (Ok(start), Ok(len)) = (u64::try_from(start), u64::try_from(c.compressed_size())) else {
                return;
            };
            lo = lo.min(start);
            hi = hi.max(start.saturating_add(len));
        }
        if lo < hi && hi as usize <= self.map.len() {
            // SAFETY: a read-only shared file mapping; dropped pages are read again from the
            // file on the next access, so no one can observe a change.
            let _ = unsafe {
                self.map.unchecked_advise_range(
                    memmap2::UncheckedAdvice::DontNeed,
                    lo as usize,
                    (hi - lo) as usize,
                )
            };
        }
    }
}

/// The type of a dictionary's values (through nested dictionaries); any other type itself.
pub(crate) fn value_type(dt: &DataType) -> &DataType {
    match dt {
        DataType::Dictionary(_, v) => value_type(v),
        other => other,
    }
}

/// Text in any flavour: `Utf8`, `LargeUtf8`, `Utf8View`, or a dictionary of one.
fn is_text(dt: &DataType) -> bool {
    matches!(
        value_type(dt),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
    )
}

/// Integers, floats, decimals and booleans, plain or dictionary-encoded.
fn is_number(dt: &DataType) -> bool {
    let v = value_type(dt);
    v.is_numeric() || *v == DataType::Boolean
}

/// The one type a column stored as `a` in some files and `b` in others is read as: the type
/// itself when they agree (a dictionary stays one); the values' type when only the encoding
/// differs; `Utf8` for text of two flavours; for numbers of two types, `Int64` (`UInt64` when
/// both are unsigned) when both are integers or booleans and `Float64` otherwise. A column
/// that is all null in a file (type `Null`) takes the other's type. `None` when one holds
/// numbers and the other text, or other kinds that do not mix.
fn unify(a: &DataType, b: &DataType) -> Option<DataType> {
    use DataType::*;
    if a == b {
        return Some(a.clone());
    }
    if *a == Null {
        return Some(b.clone());
    }
    if *b == Null {
        return Some(a.clone());
    }
    if is_text(a) && is_text(b) {
        return Some(Utf8);
    }
    if !(is_number(a) && is_number(b)) {
        return None;
    }
    let (va, vb) = (value_type(a), value_type(b));
    if va == vb {
        return Some(va.clone());
    }
    let int_like = |d: &DataType| d.is_integer() || *d == Boolean;
    let unsigned = |d: &DataType| d.is_unsigned_integer() || *d == Boolean;
    Some(if int_like(va) && int_like(vb) {
        if unsigned(va) && unsigned(vb) {
            UInt64
        } else if *va != UInt64 && *vb != UInt64 {
            Int64
        } else {
            Float64
        }
    } else {
        Float64
    })
}

/// Bytes per row a reader decodes `dt` to: the width of fixed-width values; for text and
/// other variable-width types the column's stored bytes per row plus 8 (offsets, views); for
/// a dictionary its key plus, conservatively, one value per row.
pub(crate) fn decoded_width(dt: &DataType, bytes_per_row: f64) -> u64 {
    match dt {
        DataType::Dictionary(k, v) => {
            k.primitive_width().unwrap_or(8) as u64 + decoded_width(v, bytes_per_row)
        }
        dt => dt
            .primitive_width()
            .map_or(bytes_per_row.ceil() as u64 + 8, |w| w as u64),
    }
}

/// As [`decoded_width`], knowing the column's values per row (`items_per_row`, see
/// [`ColumnInfo::items_per_row`]): a list decodes to an offset and a validity bit per row and,
/// per item, its fields' values and validity. The items are taken a quarter higher and one
/// more, since a batch of a row group may be denser than the whole group.
pub(crate) fn column_width(dt: &DataType, bytes_per_row: f64, items_per_row: f64) -> u64 {
    let (offset, item) = match dt {
        DataType::List(item) => (4, item),
        DataType::LargeList(item) => (8, item),
        other => return decoded_width(other, bytes_per_row),
    };
    let width = |d: &DataType| d.primitive_width().unwrap_or(8) as u64 + 1;
    let item_width = match item.data_type() {
        DataType::Struct(fields) => 1 + fields.iter().map(|f| width(f.data_type())).sum::<u64>(),
        other => width(other),
    };
    let items = (items_per_row * 1.25).ceil() as u64 + 1;
    offset + 1 + items * item_width
}

fn feature_type(dt: &DataType) -> Option<FeatureType> {
    match value_type(dt) {
        DataType::Float16
        | DataType::Float32
        | DataType::Float64
        | DataType::Decimal32(..)
        | DataType::Decimal64(..)
        | DataType::Decimal128(..)
        | DataType::Decimal256(..) => Some(FeatureType::Float),
        dt if dt.is_integer() => Some(FeatureType::Int),
        DataType::Boolean => Some(FeatureType::Bool),
        _ => None,
    }
}

/// `Some(k)` for names such as `3mer_ACG`.
fn kmer_k(name: &str) -> Option<usize> {
    kmers::parse_kmer_name(name).map(|(k, _)| k)
}

/// Prints `warning: {line}` on stderr, once per process however often a dataset is opened.
pub(crate) fn warn_once(line: &str) {
    static SEEN: OnceLock<Mutex<HashSet<String>>> = OnceLock::new();
    let fresh = SEEN
        .get_or_init(Default::default)
        .lock()
        .map_or(true, |mut seen| seen.insert(line.to_string()));
    if fresh {
        eprintln!("warning: {line}");
    }
}

/// `` `a`, `b`, `c`, `d` and 60 more ``.
fn name_list<S: AsRef<str>>(names: &[S]) -> String {
    const SHOWN: usize = 4;
    let mut s = names
        .iter()
        .take(SHOWN)
        .map(|n| format!("`{}`", n.as_ref()))
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > SHOWN {
        s += &format!(" and {} more", names.len() - SHOWN);
    }
    s
}

/// Lists the Parquet files of a dataset location: MetaSpliceAI's `master/` subdirectory when
/// there is one, else every `.parquet` file below the directory (following symbolic links),
/// or the files a glob names. A link that leads back into the dataset (a loop, or a second
/// way to a directory or file) is refused: its files would be read more than once.
pub fn discover(path: &Path) -> Result<Vec<PathBuf>, InputError> {
    let hint = "set `dataset.path` to a directory of Parquet files, one file, or a glob";
    if path.as_os_str().is_empty() {
        return Err(InputError::new("no dataset given").hint(hint));
    }
    let text = path.to_string_lossy();
    let mut files = if text.contains(['*', '?', '[']) {
        let paths = glob::glob(&text).map_err(|e| InputError::new(format!("bad glob: {e}")).file(path))?;
        paths.filter_map(Result::ok).filter(|p| p.is_file()).collect()
    } else if path.is_file() {
        vec![path.to_path_buf()]
    } else if path.is_dir() {
        let master = path.join("master");
        let root = if master.is_dir() {
            master
        } else {
            path.to_path_buf()
        };
        let mut found = vec![];
        let mut dirs = HashMap::new();
        dirs.insert(canonical(&root)?, root.clone());
        walk(&root, &mut found, &mut dirs)?;
        found
    } else {
        return Err(InputError::new("no such file or directory").file(path).hint(hint));
    };
    files.sort();
    if files.is_empty() {
        return Err(InputError::new("no Parquet files found").file(path).hint(hint));
    }
    // The same file twice (a second link to it, or a glob through a link loop) would be read
    // twice.
    let mut real: HashMap<PathBuf, &PathBuf> = HashMap::with_capacity(files.len());
    for f in &files {
        if let Some(first) = real.insert(canonical(f)?, f) {
            let (link, other) = if is_link(first) && !is_link(f) {
                (first, f)
            } else {
                (f, first)
            };
            return Err(InputError::new(format!(
                "the same file as {}: its rows would be read twice",
                other.display()
            ))
            .file(link)
            .hint("remove the link, or move one of the two out of the dataset"));
        }
    }
    Ok(files)
}

fn canonical(p: &Path) -> Result<PathBuf, InputError> {
    std::fs::canonicalize(p).map_err(|e| InputError::new(format!("cannot resolve: {e}")).file(p))
}

fn is_link(p: &Path) -> bool {
    std::fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_symlink())
}

/// Adds the `.parquet` files below `dir` to `out`; `dirs` maps every directory visited so far
/// (by canonical path) to the path it was reached by.
fn walk(dir: &Path, out: &mut Vec<PathBuf>, dirs: &mut HashMap<PathBuf, PathBuf>) -> Result<(), InputError> {
    let list_err = |e: std::io::Error| InputError::new(format!("cannot list: {e}")).file(dir);
    let mut entries = std::fs::read_dir(dir)
        .map_err(list_err)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(list_err)?;
    entries.sort();
    for p in entries {
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.starts_with('.') {
            continue;
        }
        if p.is_dir() {
            let real = canonical(&p)?;
            if let Some(first) = dirs.get(&real) {
                let (link, target) = if is_link(&p) { (&p, first) } else { (first, &p) };
                let what = if canonical(dir)?.starts_with(&real) {
                    "a symbolic-link loop"
                } else {
                    "a second way to a directory"
                };
                return Err(InputError::new(format!(
                    "{what}: leads to {}, which the dataset already includes, so its files would be read again and again",
                    target.display()
                ))
                .file(link)
                .hint("remove the link, or point `dataset.path` at a directory without it"));
            }
            dirs.insert(real, p.clone());
            walk(&p, out, dirs)?;
        } else if name.ends_with(".parquet") {
            out.push(p);
        }
    }
    Ok(())
}

/// What the dataset's files say about one column while they are read.
struct ColumnScan {
    name: String,
    /// The type the column is read as so far, and whether any file may hold nulls in it.
    union: DataType,
    nullable: bool,
    metadata: HashMap<String, String>,
    /// Each distinct stored type with the first file that has it.
    types: Vec<(DataType, usize)>,
    files: usize,
    rows: u64,
    last_file: usize,
    /// The first file without the column, and a hash of the set of files without it.
    first_absent: Option<usize>,
    absent_hash: u64,
    max_chunk: u64,
    total_bytes: u64,
    /// The most leaf values per row of any row group (list items for a list column).
    items_per_row: f64,
}

/// A well-mixed 64-bit value per file index (splitmix64): sums of these identify sets of
/// files.
fn file_mark(k: usize) -> u64 {
    let mut z = (k as u64).wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Dataset {
    /// Finds the files, reads every footer, unites their schemas and assigns roles.
    pub fn open(cfg: &DatasetConfig) -> Result<Dataset, InputError> {
        Self::open_with(cfg, true)
    }

    /// As [`Self::open`], for scoring: a dataset without labels or groups is fine (the label
    /// and group roles are then empty strings).
    pub fn open_unlabelled(cfg: &DatasetConfig) -> Result<Dataset, InputError> {
        Self::open_with(cfg, false)
    }

    fn open_with(cfg: &DatasetConfig, labelled: bool) -> Result<Dataset, InputError> {
        let paths = discover(&cfg.path)?;
        let n_files = paths.len();
        let mut files = Vec::with_capacity(n_files);
        let mut cols: Vec<ColumnScan> = vec![];
        let mut index: HashMap<String, usize> = HashMap::new();
        let mut max_rg_rows = 0u64;
        // The hash of files 0..k, for a column first seen in file k.
        let mut before = 0u64;
        for (k, path) in paths.iter().enumerate() {
            let mapped = MappedParquet::open(path)?;
            let this = mapped.meta.schema().clone();
            let md = mapped.meta.metadata();
            let rows = md.file_metadata().num_rows().max(0) as u64;
            let mut names = HashSet::with_capacity(this.fields().len());
            let mut to_union = Vec::with_capacity(this.fields().len());
            for g in this.fields() {
                if !names.insert(g.name().as_str()) {
                    let n = this.fields().iter().filter(|f| f.name() == g.name()).count();
                    let times = if n == 2 {
                        "twice".to_string()
                    } else {
                        format!("{n} times")
                    };
                    return Err(InputError::new(format!("the column appears {times} in this file"))
                        .file(path)
                        .column(g.name())
                        .hint("spliceboost cannot tell which to read; rename or drop the copies and rewrite the file"));
                }
                let i = *index.entry(g.name().clone()).or_insert_with(|| {
                    cols.push(ColumnScan {
                        name: g.name().clone(),
                        union: g.data_type().clone(),
                        nullable: false,
                        metadata: g.metadata().clone(),
                        types: vec![(g.data_type().clone(), k)],
                        files: 0,
                        rows: 0,
                        last_file: k,
                        first_absent: (k > 0).then_some(0),
                        absent_hash: before,
                        max_chunk: 0,
                        total_bytes: 0,
                        items_per_row: 0.0,
                    });
                    cols.len() - 1
                });
                let c = &mut cols[i];
                c.files += 1;
                c.rows += rows;
                c.last_file = k;
                c.nullable |= g.is_nullable();
                if !c.types.iter().any(|(t, _)| t == g.data_type()) {
                    let conflict = c.types.iter().find(|(t, _)| unify(t, g.data_type()).is_none());
                    let union = unify(&c.union, g.data_type());
                    match (conflict, union) {
                        (None, Some(u)) => {
                            c.union = u;
                            c.types.push((g.data_type().clone(), k));
                        }
                        (conflict, _) => {
                            let (t, there) = conflict.unwrap_or(&c.types[0]);
                            return Err(InputError::new(format!(
                                "schema differs from {}: type {} here, {t} there",
                                paths[*there].display(),
                                g.data_type(),
                            ))
                            .file(path)
                            .column(g.name())
                            .hint("a column may change numeric type from file to file, but not hold numbers in one and text in another; rewrite the odd file or move it out"));
                        }
                    }
                }
                to_union.push(i);
            }
            let mark = file_mark(k);
            for c in cols.iter_mut().filter(|c| c.last_file != k) {
                c.absent_hash = c.absent_hash.wrapping_add(mark);
                c.first_absent.get_or_insert(k);
            }
            before = before.wrapping_add(mark);
            let pq_schema = mapped.meta.parquet_schema();
            let mut leaf_values = vec![0i64; to_union.len()];
            for rg in md.row_groups() {
                max_rg_rows = max_rg_rows.max(rg.num_rows().max(0) as u64);
                leaf_values.iter_mut().for_each(|v| *v = 0);
                for (ci, col) in rg.columns().iter().enumerate() {
                    // Leaf columns map to top-level fields one to one for the flat tables
                    // datasets are; a nested leaf is charged to its root.
                    let root = pq_schema.get_column_root_idx(ci);
                    if let Some(&i) = to_union.get(root) {
                        let u = col.uncompressed_size().max(0) as u64;
                        cols[i].max_chunk = cols[i].max_chunk.max(u);
                        cols[i].total_bytes += u;
                        // A list's leaves hold one value per item (and per empty or null
                        // list): what a reader of the row group decodes per row.
                        leaf_values[root] = leaf_values[root].max(col.num_values());
                    }
                }
                let rg_rows = rg.num_rows().max(1) as f64;
                for (root, &i) in to_union.iter().enumerate() {
                    let per_row = leaf_values[root].max(0) as f64 / rg_rows;
                    cols[i].items_per_row = cols[i].items_per_row.max(per_row);
                }
            }
            files.push(DataFile {
                path: path.clone(),
                rows,
                row_groups: md.num_row_groups(),
                bytes: mapped.bytes.len() as u64,
                footer_bytes: mapped.footer_bytes(),
            });
        }
        let schema = Arc::new(Schema::new(
            cols.iter()
                .map(|c| {
                    Field::new(&c.name, c.union.clone(), c.nullable || c.files < n_files)
                        .with_metadata(c.metadata.clone())
                })
                .collect::<Vec<_>>(),
        ));
        // A column most files lack is a stray, not part of the dataset's schema: it is
        // reported once and left out of the features (the label and group columns are still
        // checked below, with a precise error).
        let minority: HashSet<String> = cols
            .iter()
            .filter(|c| 2 * c.files < n_files)
            .map(|c| c.name.clone())
            .collect();
        let (roles, skipped) = assign_roles(&schema, cfg, &paths[0], labelled, &minority)?;
        check_layout_collisions(&roles, &cols, &index, &paths)?;
        if labelled {
            for (name, what) in [(&roles.label, "label"), (&roles.group, "group")] {
                let c = &cols[index[name.as_str()]];
                if let Some(k) = c.first_absent {
                    let others = match n_files - c.files - 1 {
                        0 => String::new(),
                        1 => " (and from 1 other)".to_string(),
                        n => format!(" (and from {n} others)"),
                    };
                    return Err(InputError::new(format!(
                        "the {what} column is missing from this file{others}"
                    ))
                    .file(&paths[k])
                    .column(name.as_str())
                    .hint("every file needs the label and group columns; rebuild the file or move it out of the dataset"));
                }
            }
        }
        let bytes_per_row: Vec<f64> = cols
            .iter()
            .map(|c| c.total_bytes as f64 / c.rows.max(1) as f64)
            .collect();
        let columns = cols
            .iter()
            .zip(&bytes_per_row)
            .map(|(c, &bpr)| ColumnInfo {
                files: c.files,
                converted: c.types.len() > 1,
                decoded_width: c
                    .types
                    .iter()
                    .map(|(t, _)| column_width(t, bpr, c.items_per_row))
                    .max()
                    .unwrap_or(0),
                items_per_row: c.items_per_row,
            })
            .collect();
        let label_or_group = |n: &str| n == roles.label || n == roles.group;
        let mut warnings = absent_warnings(&cols, &paths, |c| {
            !minority.contains(&c.name) || label_or_group(&c.name)
        });
        warnings.extend(minority_warnings(&cols, n_files, |c| {
            minority.contains(&c.name) && !label_or_group(&c.name)
        }));
        warnings.extend(type_warnings(&cols, &index, &paths, &skipped)?);
        for w in &warnings {
            warn_once(w);
        }
        Ok(Dataset {
            root: cfg.path.clone(),
            files,
            schema,
            roles,
            max_chunk_bytes: cols.iter().map(|c| c.max_chunk).collect(),
            bytes_per_row,
            max_row_group_rows: max_rg_rows,
            columns,
            warnings,
            index,
        })
    }

    pub fn rows(&self) -> u64 {
        self.files.iter().map(|f| f.rows).sum()
    }

    pub fn feature_names(&self) -> Vec<String> {
        self.roles.features.iter().map(|f| f.name.clone()).collect()
    }

    /// The index of column `name` in [`Self::schema`].
    pub fn column_index(&self, name: &str) -> Option<usize> {
        self.index.get(name).copied()
    }
}

/// One line per set of columns absent from the same files, among the columns `keep` takes.
fn absent_warnings(
    cols: &[ColumnScan],
    paths: &[PathBuf],
    keep: impl Fn(&ColumnScan) -> bool,
) -> Vec<String> {
    let mut groups: Vec<(usize, usize, Vec<&str>)> = vec![];
    let mut by_set: HashMap<(usize, usize, u64), usize> = HashMap::new();
    for c in cols.iter().filter(|c| keep(c)) {
        let Some(first) = c.first_absent else { continue };
        let key = (c.files, first, c.absent_hash);
        let g = *by_set.entry(key).or_insert_with(|| {
            groups.push((paths.len() - c.files, first, vec![]));
            groups.len() - 1
        });
        groups[g].2.push(&c.name);
    }
    groups
        .into_iter()
        .map(|(absent, first, names)| {
            let (what, verb) = if names.len() == 1 {
                ("column", "is")
            } else {
                ("columns", "are")
            };
            format!(
                "{what} {} {verb} absent from {absent} of {} files (the first: {}): read as missing there",
                name_list(&names),
                paths.len(),
                paths[first].display()
            )
        })
        .collect()
}

/// One line per number of files for the columns `ignored` takes: held by fewer than half of
/// the files, they are strays (a batch written by another version of the pipeline, a column
/// added by hand) rather than part of the dataset.
fn minority_warnings(
    cols: &[ColumnScan],
    n_files: usize,
    ignored: impl Fn(&ColumnScan) -> bool,
) -> Vec<String> {
    let mut by_files: Vec<(usize, Vec<&str>)> = vec![];
    for c in cols.iter().filter(|c| ignored(c)) {
        match by_files.iter_mut().find(|(n, _)| *n == c.files) {
            Some((_, names)) => names.push(&c.name),
            None => by_files.push((c.files, vec![&c.name])),
        }
    }
    by_files
        .into_iter()
        .map(|(n, names)| {
            let (what, verb, them) = if names.len() == 1 {
                ("column", "is", "it")
            } else {
                ("columns", "are", "them")
            };
            format!(
                "{what} {} {verb} held by only {n} of {n_files} files: ignored, not a feature (add {them} to the other files to use {them}, or drop {them} to silence this)",
                name_list(&names)
            )
        })
        .collect()
}

/// Refuses a dataset holding one k-mer both as a dense `{k}mer_{SEQ}` column and in a sparse
/// `kmers_{k}` column: the two would be one feature name with two sources.
fn check_layout_collisions(
    roles: &ColumnRoles,
    cols: &[ColumnScan],
    index: &HashMap<String, usize>,
    paths: &[PathBuf],
) -> Result<(), InputError> {
    let mut seen: HashMap<&str, &Feature> = HashMap::with_capacity(roles.features.len());
    for f in &roles.features {
        let Some(other) = seen.insert(&f.name, f) else {
            continue;
        };
        let (dense, sparse) = if f.sparse_index.is_some() {
            (other, f)
        } else {
            (f, other)
        };
        let c = &cols[index[dense.column.as_str()]];
        let first = c.types.iter().map(|&(_, k)| k).min().unwrap_or(0);
        return Err(InputError::new(format!(
            "k-mer `{}` is stored twice: in this dense column and in the sparse column `{}`",
            f.name, sparse.column
        ))
        .file(&paths[first])
        .column(&dense.column)
        .hint(format!(
            "keep one layout per k: rewrite the files without the dense `{k}mer_*` columns or without `{}`, or list `{}` in `dataset.exclude`",
            sparse.column,
            sparse.column,
            k = f.kmer.unwrap_or(0)
        )));
    }
    Ok(())
}

/// The columns left out of the features for their type, each kind named in one line: text
/// that holds numbers (looked at in the first values of the first file that has it), and
/// types that are neither numbers nor text.
fn type_warnings(
    cols: &[ColumnScan],
    index: &HashMap<String, usize>,
    paths: &[PathBuf],
    skipped: &Skipped,
) -> Result<Vec<String>, InputError> {
    let mut by_file: HashMap<usize, Vec<&str>> = HashMap::new();
    for name in &skipped.text {
        let c = &cols[index[name.as_str()]];
        let first = c.types.iter().map(|&(_, k)| k).min().unwrap_or(0);
        by_file.entry(first).or_default().push(name);
    }
    let mut numeric_text: Vec<&str> = vec![];
    let mut order: Vec<_> = by_file.into_iter().collect();
    order.sort();
    for (k, names) in order {
        for (name, numbers) in names.iter().zip(text_holding_numbers(&paths[k], &names)?) {
            if numbers {
                numeric_text.push(name);
            }
        }
    }
    // Back in schema order.
    numeric_text.sort_by_key(|n| index[*n]);
    let mut out = vec![];
    if !numeric_text.is_empty() {
        let (what, verb, them) = if numeric_text.len() == 1 {
            ("column", "holds", "it")
        } else {
            ("columns", "hold", "them")
        };
        out.push(format!(
            "{what} {} {verb} numbers as text: not used as features (rewrite {them} as a numeric type, or list {them} in `dataset.exclude` to silence this)",
            name_list(&numeric_text)
        ));
    }
    if !skipped.stray_kmers.is_empty() {
        let (what, verb, them) = if skipped.stray_kmers.len() == 1 {
            ("column", "is", "it")
        } else {
            ("columns", "are", "them")
        };
        out.push(format!(
            "{what} {} {verb} named like k-mer counts but over letters other than A, C, G and T: ignored, not a feature (list {them} in `dataset.exclude` to silence this)",
            name_list(&skipped.stray_kmers)
        ));
    }
    if !skipped.other.is_empty() {
        let names: Vec<String> = skipped
            .other
            .iter()
            .map(|n| format!("{n}` ({}", cols[index[n.as_str()]].union))
            .collect();
        let (what, verb) = if names.len() == 1 {
            ("column", "is")
        } else {
            ("columns", "are")
        };
        out.push(format!(
            "{what} {} {verb} neither numbers nor text: not used as features (list {} in `dataset.exclude` to silence this)",
            name_list(&names).replace("`)", ")"),
            if names.len() == 1 { "it" } else { "them" }
        ));
    }
    Ok(out)
}

/// For each of `columns` (text columns of the file at `path`), whether its first values all
/// read as numbers: the first batch of the first row group that holds a value, 256 rows at a
/// time and at most 1,024 rows, one column at a time (a page and a few hundred values).
fn text_holding_numbers(path: &Path, columns: &[&str]) -> Result<Vec<bool>, InputError> {
    let mapped = MappedParquet::open(path)?;
    let schema = mapped.meta.schema().clone();
    let mut out = Vec::with_capacity(columns.len());
    for name in columns {
        let root = match schema.index_of(name) {
            Ok(r) if mapped.meta.metadata().num_row_groups() > 0 => r,
            _ => {
                out.push(false);
                continue;
            }
        };
        let corrupt = |e: String| {
            InputError::new(format!("cannot decode: {e}"))
                .file(path)
                .row_group(0)
                .column(*name)
                .hint("the file is truncated or corrupt; rewrite it")
        };
        let mask = ProjectionMask::roots(mapped.meta.parquet_schema(), [root]);
        let reader = super::batches(
            ParquetRecordBatchReaderBuilder::new_with_metadata(mapped.bytes.clone(), mapped.meta.clone())
                .with_projection(mask)
                .with_row_groups(vec![0])
                .with_batch_size(256)
                .with_limit(1024),
        )
        .map_err(|e| corrupt(e.to_string()))?;
        let (mut seen, mut numbers) = (false, true);
        for batch in reader {
            let batch = batch.map_err(|e| corrupt(e.to_string()))?;
            let text =
                arrow::compute::cast(batch.column(0), &DataType::Utf8).map_err(|e| corrupt(e.to_string()))?;
            for v in arrow::array::AsArray::as_string::<i32>(&text).iter().flatten() {
                let v = v.trim();
                if v.is_empty() {
                    continue;
                }
                seen = true;
                if v.parse::<f64>().is_err() {
                    numbers = false;
                    break;
                }
            }
            if seen {
                break;
            }
        }
        out.push(seen && numbers);
    }
    mapped.release_row_group(0);
    Ok(out)
}

fn matches_any(patterns: &[glob::Pattern], name: &str) -> bool {
    patterns.iter().any(|p| p.matches(name))
}

/// Columns that pass `dataset.include` / `dataset.exclude` but are not features for their type.
#[derive(Debug, Default)]
struct Skipped {
    /// Text columns (they may hold numbers as text).
    text: Vec<String>,
    /// Columns neither numbers nor text (dates, lists, binary, ...); all-null columns aside.
    other: Vec<String>,
    /// Numeric columns named like k-mers over other letters than A, C, G and T.
    stray_kmers: Vec<String>,
}

fn assign_roles(
    schema: &Schema,
    cfg: &DatasetConfig,
    file: &Path,
    labelled: bool,
    minority: &HashSet<String>,
) -> Result<(ColumnRoles, Skipped), InputError> {
    let label = match &cfg.label {
        Some(l) => l.clone(),
        None if schema.field_with_name("splice_type").is_ok() => "splice_type".into(),
        None if schema.field_with_name("label").is_ok() => "label".into(),
        None if !labelled => String::new(),
        None => {
            return Err(
                InputError::new("no label column: neither `splice_type` nor `label` is there")
                    .file(file)
                    .hint("name the label column with `dataset.label`"),
            )
        }
    };
    let label_field = if label.is_empty() {
        None
    } else {
        Some(schema.field_with_name(&label).map_err(|_| {
            InputError::new("the label column is not in the dataset")
                .file(file)
                .column(&label)
                .hint("fix `dataset.label`")
        })?)
    };
    let label_kind = match label_field.map(|f| f.data_type()) {
        None => LabelKind::SpliceType,
        Some(dt) if value_type(dt).is_integer() => LabelKind::Integer,
        Some(dt) if is_text(dt) => LabelKind::SpliceType,
        Some(other) => {
            return Err(
                InputError::new(format!("a label column of type {other} cannot hold classes"))
                    .file(file)
                    .column(&label)
                    .hint("use a string `splice_type` or an integer `label` column"),
            )
        }
    };
    let group = if schema.field_with_name(&cfg.group).is_ok() || labelled {
        cfg.group.clone()
    } else {
        String::new()
    };
    if labelled && schema.field_with_name(&cfg.group).is_err() {
        return Err(InputError::new("no group column: gene-wise splits need one")
            .file(file)
            .column(&cfg.group)
            .hint("add a `gene_id` column or name the group column with `dataset.group`"));
    }
    let compile = |list: &[String], key: &str| -> Result<Vec<glob::Pattern>, InputError> {
        list.iter()
            .map(|p| {
                glob::Pattern::new(p)
                    .map_err(|e| InputError::new(format!("bad pattern {p:?} in `{key}`: {e}")))
            })
            .collect()
    };
    let include = compile(&cfg.include, "dataset.include")?;
    let exclude = compile(&cfg.exclude, "dataset.exclude")?;
    // A sparse column's k-mers are matched by their own names, and all at once by the
    // column's.
    let sparse_names: Vec<(usize, usize, Vec<String>)> = schema
        .fields()
        .iter()
        .enumerate()
        .filter_map(|(i, f)| kmers::sparse_k(f).map(|k| (i, k, kmers::kmer_names(k))))
        .collect();
    for (p, raw) in include.iter().zip(&cfg.include) {
        let in_sparse = || {
            sparse_names
                .iter()
                .any(|(_, _, names)| names.iter().any(|n| p.matches(n)))
        };
        if !schema.fields().iter().any(|f| p.matches(f.name())) && !in_sparse() {
            return Err(InputError::new(format!(
                "`dataset.include` names {raw:?}, which matches no column"
            ))
            .file(file)
            .hint("check the spelling; `spliceboost inspect` lists the features"));
        }
    }
    let mut features = vec![];
    let mut skipped = Skipped::default();
    for (i, f) in schema.fields().iter().enumerate() {
        let name = f.name().as_str();
        if name == label || name == cfg.group || METADATA_COLUMNS.contains(&name) || minority.contains(name) {
            continue;
        }
        if let Some((_, k, names)) = sparse_names.iter().find(|(s, _, _)| *s == i) {
            let whole_in = matches_any(&include, name);
            let whole_out = matches_any(&exclude, name);
            let count_type = match f.data_type() {
                DataType::List(item) | DataType::LargeList(item) => match item.data_type() {
                    DataType::Struct(fields) => fields
                        .iter()
                        .find(|c| c.name() == "count")
                        .map_or(DataType::UInt16, |c| c.data_type().clone()),
                    _ => DataType::UInt16,
                },
                _ => DataType::UInt16,
            };
            for (index, kmer) in names.iter().enumerate() {
                if !include.is_empty() && !whole_in && !matches_any(&include, kmer) {
                    continue;
                }
                if whole_out || matches_any(&exclude, kmer) {
                    continue;
                }
                features.push(Feature {
                    name: kmer.clone(),
                    data_type: count_type.clone(),
                    kind: FeatureType::Int,
                    kmer: Some(*k),
                    column: name.to_string(),
                    sparse_index: Some(index as u32),
                });
            }
            continue;
        }
        if !include.is_empty() && !matches_any(&include, name) {
            continue;
        }
        if matches_any(&exclude, name) {
            continue;
        }
        if kmers::is_stray_kmer_name(name) {
            skipped.stray_kmers.push(name.to_string());
            continue;
        }
        let Some(kind) = feature_type(f.data_type()) else {
            if !include.is_empty() {
                return Err(InputError::new(format!(
                    "included column has type {}, not a number",
                    f.data_type()
                ))
                .file(file)
                .column(name)
                .hint("features must be integer, float or boolean columns; rewrite numbers stored as text as a numeric type"));
            }
            if is_text(f.data_type()) {
                skipped.text.push(name.to_string());
            } else if *f.data_type() != DataType::Null {
                skipped.other.push(name.to_string());
            }
            continue;
        };
        features.push(Feature {
            name: name.to_string(),
            data_type: f.data_type().clone(),
            kind,
            kmer: kmer_k(name),
            column: name.to_string(),
            sparse_index: None,
        });
    }
    if features.is_empty() {
        let hint = if skipped.text.is_empty() {
            "check `dataset.include` and `dataset.exclude`".to_string()
        } else {
            format!(
                "check `dataset.include` and `dataset.exclude`; text columns such as {} are not features: rewrite numbers stored as text as a numeric type",
                name_list(&skipped.text)
            )
        };
        return Err(
            InputError::new("no feature columns: every numeric column is metadata or excluded")
                .file(file)
                .hint(hint),
        );
    }
    Ok((
        ColumnRoles {
            label,
            label_kind,
            group,
            features,
        },
        skipped,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_unite_numbers_with_numbers_and_text_with_text() {
        use DataType::*;
        let dict = |k: DataType, v: DataType| Dictionary(Box::new(k), Box::new(v));
        assert_eq!(unify(&Float32, &Float64), Some(Float64));
        assert_eq!(unify(&Int32, &Int64), Some(Int64));
        assert_eq!(unify(&Int32, &UInt32), Some(Int64));
        assert_eq!(unify(&UInt8, &UInt32), Some(UInt64));
        assert_eq!(unify(&UInt64, &Int8), Some(Float64));
        assert_eq!(unify(&Boolean, &Int64), Some(Int64));
        assert_eq!(unify(&Int64, &Float32), Some(Float64));
        assert_eq!(unify(&Decimal128(10, 2), &Float64), Some(Float64));
        assert_eq!(unify(&dict(Int32, Float64), &Float64), Some(Float64));
        assert_eq!(unify(&dict(Int8, Float32), &dict(Int32, Float32)), Some(Float32));
        assert_eq!(
            unify(&dict(Int32, Float64), &dict(Int32, Float64)),
            Some(dict(Int32, Float64))
        );
        assert_eq!(unify(&Null, &dict(Int32, Utf8)), Some(dict(Int32, Utf8)));
        assert_eq!(unify(&LargeUtf8, &dict(Int32, Utf8)), Some(Utf8));
        assert_eq!(unify(&Utf8, &Float64), None);
        assert_eq!(unify(&dict(Int32, Utf8), &Int64), None);
        assert_eq!(unify(&Date32, &Int32), None);
    }

    #[test]
    fn dictionaries_of_numbers_are_features() {
        let dict = |v: DataType| DataType::Dictionary(Box::new(DataType::UInt16), Box::new(v));
        assert_eq!(feature_type(&dict(DataType::Float32)), Some(FeatureType::Float));
        assert_eq!(feature_type(&dict(DataType::Int8)), Some(FeatureType::Int));
        assert_eq!(
            feature_type(&DataType::Decimal128(10, 2)),
            Some(FeatureType::Float)
        );
        assert_eq!(feature_type(&dict(DataType::Utf8)), None);
        assert_eq!(feature_type(&DataType::Null), None);
    }

    #[test]
    fn decoded_width_counts_dictionary_keys_and_values() {
        let dict = DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Float64));
        assert_eq!(decoded_width(&dict, 0.5), 12);
        assert_eq!(decoded_width(&DataType::Float32, 9.0), 4);
        assert_eq!(decoded_width(&DataType::Utf8, 10.2), 19);
    }

    #[test]
    fn name_lists_are_cut_after_four() {
        assert_eq!(name_list(&["a"]), "`a`");
        assert_eq!(
            name_list(&["a", "b", "c", "d", "e", "f"]),
            "`a`, `b`, `c`, `d` and 2 more"
        );
    }

    #[test]
    fn kmer_names_recognised() {
        assert_eq!(kmer_k("3mer_ACG"), Some(3));
        assert_eq!(kmer_k("6mer_ACGTNA"), None);
        assert_eq!(kmer_k("3mer_AC"), None);
        assert_eq!(kmer_k("donor_score"), None);
    }

    #[test]
    fn list_columns_are_priced_by_their_items() {
        let f = kmers::sparse_field(3);
        // 10 items of 4 + 2 bytes and their validity, plus the offset.
        let w = column_width(f.data_type(), 1.0, 10.0);
        assert!(w >= 4 + 10 * 6, "{w}");
        assert_eq!(column_width(&DataType::Float64, 3.0, 1.0), 8);
    }
}
