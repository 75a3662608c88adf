//! Finding a dataset's files, checking their schemas agree, and assigning column roles.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::datatypes::{DataType, Schema, SchemaRef};
use bytes::Bytes;
use memmap2::Mmap;
use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ArrowReaderOptions};
use serde::{Deserialize, Serialize};

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
}

/// How a feature's values are stored in the files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FeatureType {
    Float,
    Int,
    Bool,
}

/// A feature column.
#[derive(Debug, Clone)]
pub struct Feature {
    pub name: String,
    pub data_type: DataType,
    pub kind: FeatureType,
    /// `Some(k)` for a k-mer count column (`{k}mer_ACG…`).
    pub kmer: Option<usize>,
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

/// A dataset: its files, their common schema and the column roles.
#[derive(Debug, Clone)]
pub struct Dataset {
    pub root: PathBuf,
    pub files: Vec<DataFile>,
    pub schema: SchemaRef,
    pub roles: ColumnRoles,
    /// Per schema column, the largest uncompressed column chunk in any row group: bounds the
    /// page buffers a reader of that column holds.
    pub max_chunk_bytes: Vec<u64>,
    /// Per schema column, uncompressed bytes per row over the whole dataset.
    pub bytes_per_row: Vec<f64>,
    /// Rows of the largest row group: no batch is larger, since batches stay within one.
    pub max_row_group_rows: u64,
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
        let meta = ArrowReaderMetadata::load(&bytes, ArrowReaderOptions::new())
            .map_err(|e| not_parquet(e.to_string()))?;
        Ok(Self { map, bytes, meta })
    }

    /// Tells the kernel the bytes of a row group are no longer needed, so a long scan of a
    /// large file keeps only the row group at hand resident.
    pub fn release_row_group(&self, rg: usize) {
        let md = self.meta.metadata().row_group(rg);
        let (mut lo, mut hi) = (u64::MAX, 0u64);
        for c in md.columns() {
            let (start, len) = c.byte_range();
            lo = lo.min(start);
            hi = hi.max(start + len);
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

fn same_type(a: &DataType, b: &DataType) -> bool {
    fn norm(d: &DataType) -> &DataType {
        match d {
            DataType::LargeUtf8 | DataType::Utf8View => &DataType::Utf8,
            DataType::Dictionary(_, v) => norm(v),
            other => other,
        }
    }
    norm(a) == norm(b)
}

fn feature_type(dt: &DataType) -> Option<FeatureType> {
    match dt {
        DataType::Float16 | DataType::Float32 | DataType::Float64 => Some(FeatureType::Float),
        dt if dt.is_integer() => Some(FeatureType::Int),
        DataType::Boolean => Some(FeatureType::Bool),
        _ => None,
    }
}

/// `Some(k)` for names such as `3mer_ACG`.
fn kmer_k(name: &str) -> Option<usize> {
    let (k, rest) = name.split_once("mer_")?;
    let k: usize = k.parse().ok()?;
    (rest.len() == k && rest.bytes().all(|b| b"ACGTN".contains(&b))).then_some(k)
}

/// Lists the Parquet files of a dataset location: MetaSpliceAI's `master/` subdirectory when
/// there is one, else every `.parquet` file below the directory, or the files a glob names.
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
        walk(&root, &mut found).map_err(|e| InputError::new(format!("cannot list: {e}")).file(&root))?;
        found
    } else {
        return Err(InputError::new("no such file or directory").file(path).hint(hint));
    };
    files.sort();
    if files.is_empty() {
        return Err(InputError::new("no Parquet files found").file(path).hint(hint));
    }
    Ok(files)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let p = entry?.path();
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.starts_with('.') {
            continue;
        }
        if p.is_dir() {
            walk(&p, out)?;
        } else if name.ends_with(".parquet") {
            out.push(p);
        }
    }
    Ok(())
}

impl Dataset {
    /// Finds the files, reads every footer, checks the schemas agree and assigns roles.
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
        let mut files = Vec::with_capacity(paths.len());
        let mut schema: Option<SchemaRef> = None;
        let mut max_chunk: Vec<u64> = vec![];
        let mut total_bytes: Vec<u64> = vec![];
        let mut total_rows = 0u64;
        let mut max_rg_rows = 0u64;
        for path in &paths {
            let mapped = MappedParquet::open(path)?;
            let this = mapped.meta.schema().clone();
            match &schema {
                None => {
                    max_chunk = vec![0; this.fields().len()];
                    total_bytes = vec![0; this.fields().len()];
                    schema = Some(this.clone());
                }
                Some(first) => check_same_schema(first, &this, &paths[0], path)?,
            }
            let md = mapped.meta.metadata();
            let pq_schema = mapped.meta.parquet_schema();
            let reference = schema.as_ref().expect("set above");
            for rg in md.row_groups() {
                max_rg_rows = max_rg_rows.max(rg.num_rows().max(0) as u64);
                for (ci, col) in rg.columns().iter().enumerate() {
                    // Leaf columns map to top-level fields one to one for the flat tables
                    // datasets are; a nested leaf is charged to its root.
                    let root = pq_schema.get_column_root_idx(ci);
                    let name = this.field(root).name();
                    if let Ok(i) = reference.index_of(name) {
                        let u = col.uncompressed_size().max(0) as u64;
                        max_chunk[i] = max_chunk[i].max(u);
                        total_bytes[i] += u;
                    }
                }
            }
            let rows = md.file_metadata().num_rows().max(0) as u64;
            total_rows += rows;
            files.push(DataFile {
                path: path.clone(),
                rows,
                row_groups: md.num_row_groups(),
                bytes: mapped.bytes.len() as u64,
            });
        }
        let schema = schema.expect("discover returns at least one file");
        let roles = assign_roles(&schema, cfg, &paths[0], labelled)?;
        let bytes_per_row = total_bytes
            .iter()
            .map(|&b| b as f64 / total_rows.max(1) as f64)
            .collect();
        Ok(Dataset {
            root: cfg.path.clone(),
            files,
            schema,
            roles,
            max_chunk_bytes: max_chunk,
            bytes_per_row,
            max_row_group_rows: max_rg_rows,
        })
    }

    pub fn rows(&self) -> u64 {
        self.files.iter().map(|f| f.rows).sum()
    }

    pub fn feature_names(&self) -> Vec<String> {
        self.roles.features.iter().map(|f| f.name.clone()).collect()
    }
}

fn check_same_schema(
    first: &Schema,
    this: &Schema,
    first_path: &Path,
    path: &Path,
) -> Result<(), InputError> {
    let hint =
        "every file of a dataset must have the same columns and types; rebuild the odd file or move it out";
    for f in first.fields() {
        match this.field_with_name(f.name()) {
            Err(_) => {
                return Err(InputError::new(format!(
                    "schema differs from {}: the column is missing here",
                    first_path.display()
                ))
                .file(path)
                .column(f.name())
                .hint(hint))
            }
            Ok(g) if !same_type(f.data_type(), g.data_type()) => {
                return Err(InputError::new(format!(
                    "schema differs from {}: type {} here, {} there",
                    first_path.display(),
                    g.data_type(),
                    f.data_type()
                ))
                .file(path)
                .column(f.name())
                .hint(hint))
            }
            Ok(_) => {}
        }
    }
    if let Some(extra) = this
        .fields()
        .iter()
        .find(|g| first.field_with_name(g.name()).is_err())
    {
        return Err(InputError::new(format!(
            "schema differs from {}: the column is not there",
            first_path.display()
        ))
        .file(path)
        .column(extra.name())
        .hint(hint));
    }
    Ok(())
}

fn matches_any(patterns: &[glob::Pattern], name: &str) -> bool {
    patterns.iter().any(|p| p.matches(name))
}

fn assign_roles(
    schema: &Schema,
    cfg: &DatasetConfig,
    file: &Path,
    labelled: bool,
) -> Result<ColumnRoles, InputError> {
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
        Some(dt) if dt.is_integer() => LabelKind::Integer,
        Some(dt) if same_type(dt, &DataType::Utf8) => LabelKind::SpliceType,
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
    for (p, raw) in include.iter().zip(&cfg.include) {
        if !schema.fields().iter().any(|f| p.matches(f.name())) {
            return Err(InputError::new(format!(
                "`dataset.include` names {raw:?}, which matches no column"
            ))
            .file(file)
            .hint("check the spelling; `spliceboost inspect` lists the features"));
        }
    }
    let mut features = vec![];
    for f in schema.fields() {
        let name = f.name().as_str();
        if name == label || name == cfg.group || METADATA_COLUMNS.contains(&name) {
            continue;
        }
        if !include.is_empty() && !matches_any(&include, name) {
            continue;
        }
        if matches_any(&exclude, name) {
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
                .hint("features must be integer, float or boolean columns"));
            }
            continue;
        };
        features.push(Feature {
            name: name.to_string(),
            data_type: f.data_type().clone(),
            kind,
            kmer: kmer_k(name),
        });
    }
    if features.is_empty() {
        return Err(
            InputError::new("no feature columns: every numeric column is metadata or excluded")
                .file(file)
                .hint("check `dataset.include` and `dataset.exclude`"),
        );
    }
    Ok(ColumnRoles {
        label,
        label_kind,
        group,
        features,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kmer_names_recognised() {
        assert_eq!(kmer_k("3mer_ACG"), Some(3));
        assert_eq!(kmer_k("6mer_ACGTNA"), Some(6));
        assert_eq!(kmer_k("3mer_AC"), None);
        assert_eq!(kmer_k("donor_score"), None);
    }
}
