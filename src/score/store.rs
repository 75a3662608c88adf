//! Where base scores live on disk: gene batches of zstd Parquet and the manifest that makes
//! them resumable and tells a finished file from a half-written one.
//!
//! A score directory holds `scores-00000.parquet`, `scores-00001.parquet`, ... (each
//! `score.genes_per_batch` genes, every position of each gene in genomic order) and
//! `manifest.json`: the settings that made them, and per finished batch its genes, rows,
//! size and SHA-256. A batch is written under a temporary name and renamed, then the
//! manifest is rewritten the same way, so a killed run leaves only whole batches listed.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{Array, AsArray, Float32Array, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use serde::{Deserialize, Serialize};

use crate::error::InputError;
use crate::genome::Strand;
use crate::memory::MemoryReservation;

/// The manifest's file name.
pub const MANIFEST: &str = "manifest.json";
/// What `score --fit-shifts` writes beside the batches.
pub const QUALITY: &str = "quality.json";
/// The manifest's `format`.
pub const FORMAT: &str = "spliceboost-scores";
/// The manifest's `version`.
pub const VERSION: u32 = 1;

/// The score files' columns, in order.
pub fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("gene_id", DataType::Utf8, false),
        Field::new("chrom", DataType::Utf8, false),
        Field::new("strand", DataType::Utf8, false),
        Field::new("position", DataType::Int64, false),
        Field::new("donor", DataType::Float32, false),
        Field::new("acceptor", DataType::Float32, false),
        Field::new("neither", DataType::Float32, false),
    ]))
}

/// The name of batch `i`.
pub fn batch_name(i: usize) -> String {
    SCORES.batch_name(i)
}

/// What `manifest.json` says.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub format: String,
    pub version: u32,
    /// Everything that decides the scores: a directory is resumed only under equal settings.
    pub settings: serde_json::Value,
    pub batches: Vec<BatchEntry>,
    /// Every selected gene is in a batch.
    pub complete: bool,
}

/// A kind of resumable batch directory: the score store, or a dataset the builder writes.
#[derive(Debug, Clone, Copy)]
pub struct BatchKind {
    /// The manifest's `format` and `version`.
    pub format: &'static str,
    pub version: u32,
    /// In error messages: "score", "dataset".
    pub what: &'static str,
    /// Batch files are `{prefix}NNNNN.parquet`.
    pub prefix: &'static str,
    /// Files beside the batches that describe them, removed when the batches change.
    pub derived: &'static [&'static str],
    /// How to start again, for errors.
    pub redo: &'static str,
    /// How to replace outputs made with other settings, for errors.
    pub replace: &'static str,
}

/// The score store.
pub const SCORES: BatchKind = BatchKind {
    format: FORMAT,
    version: VERSION,
    what: "score",
    prefix: "scores-",
    derived: &[QUALITY],
    redo: "delete the score directory (or run with --overwrite) to score again",
    replace:
        "run `spliceboost score` with --overwrite to replace them, or set `score.out` to another directory",
};

impl BatchKind {
    /// The name of batch `i`.
    pub fn batch_name(&self, i: usize) -> String {
        format!("{}{i:05}.parquet", self.prefix)
    }

    /// The manifest of `dir` to continue from: an earlier run's when its settings are
    /// `settings` (cut after its last whole batch), else a new one — when `overwrite`, or
    /// when there is none; otherwise an error naming the keys that differ. Batch files the
    /// manifest does not list, and the derived files, are removed unless it is complete.
    pub fn resume(
        &self,
        dir: &Path,
        settings: &serde_json::Value,
        overwrite: bool,
    ) -> anyhow::Result<Manifest> {
        std::fs::create_dir_all(dir)
            .map_err(|e| crate::error::io_error(dir, "cannot create the directory", &e))?;
        let mut manifest = match Manifest::read_of(self, dir) {
            Ok(Some(m)) if &m.settings == settings => m,
            Ok(Some(m)) if !overwrite => {
                let keys = differing_keys(&m.settings, settings);
                return Err(InputError::new(format!(
                    "holds {} outputs made with other settings (they differ in {})",
                    self.what,
                    keys.join(", ")
                ))
                .file(dir.join(MANIFEST))
                .hint(self.replace)
                .into());
            }
            Err(e) if !overwrite => return Err(e.into()),
            _ => Manifest::of(self, settings.clone()),
        };
        if manifest.batches.is_empty() {
            manifest = Manifest::of(self, settings.clone());
        }
        let whole = manifest
            .batches
            .iter()
            .take_while(|b| batch_is_whole(dir, b))
            .count();
        if whole < manifest.batches.len() {
            manifest.batches.truncate(whole);
            manifest.complete = false;
        }
        // Batch files the manifest does not list (from a killed run, or from outputs being
        // replaced) and files derived from batches no longer there would be read as current.
        if !manifest.complete {
            let listed: std::collections::HashSet<&str> =
                manifest.batches.iter().map(|b| b.file.as_str()).collect();
            let entries =
                std::fs::read_dir(dir).map_err(|e| crate::error::io_error(dir, "cannot list", &e))?;
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                let batch = name.starts_with(self.prefix) && name.ends_with(".parquet");
                if (batch && !listed.contains(name.as_str())) || self.derived.contains(&name.as_str()) {
                    std::fs::remove_file(e.path()).map_err(|err| {
                        crate::error::io_error(&e.path(), "cannot remove an outdated file", &err)
                    })?;
                }
            }
        }
        Ok(manifest)
    }
}

impl BatchEntry {
    /// The entry of the batch just written to `dir/file`: its size and SHA-256 read back.
    pub fn written(dir: &Path, file: String, genes: Vec<String>, rows: u64) -> anyhow::Result<Self> {
        let path = dir.join(&file);
        let bytes = std::fs::metadata(&path)
            .map_err(|e| crate::error::io_error(&path, "cannot read back", &e))?
            .len();
        let sha256 = super::weights::sha256_file(&path)
            .map_err(|e| crate::error::io_error(&path, "cannot read back", &e))?;
        Ok(Self {
            file,
            genes,
            rows,
            bytes,
            sha256,
        })
    }
}

/// One finished batch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchEntry {
    pub file: String,
    pub genes: Vec<String>,
    pub rows: u64,
    pub bytes: u64,
    pub sha256: String,
}

impl Manifest {
    /// Lists the batch just written to `dir/file` and writes the manifest: from here on a
    /// rerun keeps the batch.
    pub fn add_batch(
        &mut self,
        dir: &Path,
        file: String,
        genes: Vec<String>,
        rows: u64,
    ) -> anyhow::Result<()> {
        self.batches.push(BatchEntry::written(dir, file, genes, rows)?);
        self.write(dir)?;
        crate::memory::pause_point("batch");
        Ok(())
    }

    /// An empty score manifest for `settings`.
    pub fn new(settings: serde_json::Value) -> Self {
        Self::of(&SCORES, settings)
    }

    /// An empty manifest of `kind` for `settings`.
    pub fn of(kind: &BatchKind, settings: serde_json::Value) -> Self {
        Self {
            format: kind.format.into(),
            version: kind.version,
            settings,
            batches: vec![],
            complete: false,
        }
    }

    /// Reads a score directory's `manifest.json`; `None` when there is none.
    pub fn read(dir: &Path) -> Result<Option<Self>, InputError> {
        Self::read_of(&SCORES, dir)
    }

    /// Reads `dir/manifest.json` of `kind`; `None` when there is none.
    pub fn read_of(kind: &BatchKind, dir: &Path) -> Result<Option<Self>, InputError> {
        let path = dir.join(MANIFEST);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(crate::error::io_error(&path, "cannot read", &e)),
        };
        let m: Manifest = serde_json::from_str(&text).map_err(|e| {
            InputError::new(format!("not a {} manifest: {e}", kind.what))
                .file(&path)
                .hint(kind.redo)
        })?;
        if m.format != kind.format || m.version != kind.version {
            return Err(InputError::new(format!(
                "a manifest of format {} version {}, this build reads {} version {}",
                m.format, m.version, kind.format, kind.version
            ))
            .file(&path)
            .hint(kind.redo));
        }
        Ok(Some(m))
    }

    /// Writes `dir/manifest.json` atomically.
    pub fn write(&self, dir: &Path) -> anyhow::Result<()> {
        crate::io::write_bytes_atomic(
            &dir.join(MANIFEST),
            serde_json::to_string_pretty(self)?.as_bytes(),
        )
    }

    /// Genes in finished batches.
    pub fn genes(&self) -> usize {
        self.batches.iter().map(|b| b.genes.len()).sum()
    }

    /// Rows in finished batches.
    pub fn rows(&self) -> u64 {
        self.batches.iter().map(|b| b.rows).sum()
    }
}

/// The first top-level settings keys whose values differ, for an error that says what changed.
pub fn differing_keys(a: &serde_json::Value, b: &serde_json::Value) -> Vec<String> {
    fn walk(a: &serde_json::Value, b: &serde_json::Value, at: String, out: &mut Vec<String>) {
        match (a, b) {
            (serde_json::Value::Object(x), serde_json::Value::Object(y)) => {
                let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
                keys.sort();
                keys.dedup();
                for k in keys {
                    let null = serde_json::Value::Null;
                    let name = if at.is_empty() {
                        k.clone()
                    } else {
                        format!("{at}.{k}")
                    };
                    walk(x.get(k).unwrap_or(&null), y.get(k).unwrap_or(&null), name, out);
                }
            }
            _ if a != b => out.push(at),
            _ => {}
        }
    }
    let mut out = vec![];
    walk(a, b, String::new(), &mut out);
    out
}

/// Whether batch `b` of `dir` is on disk as the manifest says: its size, then its SHA-256.
pub fn batch_is_whole(dir: &Path, b: &BatchEntry) -> bool {
    let path = dir.join(&b.file);
    match std::fs::metadata(&path) {
        Ok(m) if m.len() == b.bytes => super::weights::sha256_file(&path).is_ok_and(|s| s == b.sha256),
        _ => false,
    }
}

/// Bytes [`GeneWriter::write_gene`] holds for a piece of `rows` rows of a gene with ids of
/// `name_bytes` (gene id plus chromosome): the Arrow arrays before the Parquet writer takes
/// them.
pub fn piece_bytes(rows: usize, name_bytes: usize) -> u64 {
    // Per row: two string values with their offsets, the strand, position and three scores.
    (rows * (name_bytes + 2 * 4 + 1 + 4 + 8 + 12)) as u64
}

/// Writes genes' scores into one Parquet batch file.
pub struct GeneWriter<W: std::io::Write + Send> {
    writer: parquet::arrow::ArrowWriter<W>,
    schema: SchemaRef,
    rows: u64,
}

impl<W: std::io::Write + Send> GeneWriter<W> {
    pub fn new(w: W) -> anyhow::Result<Self> {
        let schema = schema();
        Ok(Self {
            writer: crate::io::parquet_writer(w, schema.clone())?,
            schema,
            rows: 0,
        })
    }

    /// Bytes the writer itself may hold (a row group being encoded).
    pub fn bytes() -> u64 {
        crate::io::parquet_writer_bytes(&schema())
    }

    /// Appends every position of one gene: `scores[i]` is position `start + i`, as
    /// `[neither, acceptor, donor]`. Pieces of at most `crate::io::OUTPUT_ROW_GROUP_ROWS` rows.
    pub fn write_gene(
        &mut self,
        gene_id: &str,
        chrom: &str,
        strand: Strand,
        start: u64,
        scores: &[[f32; 3]],
    ) -> anyhow::Result<()> {
        let strand = if strand == Strand::Plus { "+" } else { "-" };
        let piece = crate::io::OUTPUT_ROW_GROUP_ROWS;
        for (p, part) in scores.chunks(piece).enumerate() {
            let n = part.len();
            let first = start as i64 + (p * piece) as i64;
            let columns: Vec<Arc<dyn Array>> = vec![
                Arc::new(StringArray::from_iter_values(std::iter::repeat_n(gene_id, n))),
                Arc::new(StringArray::from_iter_values(std::iter::repeat_n(chrom, n))),
                Arc::new(StringArray::from_iter_values(std::iter::repeat_n(strand, n))),
                Arc::new(Int64Array::from_iter_values(first..first + n as i64)),
                Arc::new(Float32Array::from_iter_values(part.iter().map(|s| s[2]))),
                Arc::new(Float32Array::from_iter_values(part.iter().map(|s| s[1]))),
                Arc::new(Float32Array::from_iter_values(part.iter().map(|s| s[0]))),
            ];
            self.writer
                .write(&RecordBatch::try_new(self.schema.clone(), columns)?)?;
            self.rows += n as u64;
        }
        Ok(())
    }

    /// Rows written so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Finishes the file.
    pub fn finish(self) -> anyhow::Result<u64> {
        self.writer.close()?;
        Ok(self.rows)
    }
}

/// One gene's scores read back.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredGene {
    pub gene_id: String,
    pub chrom: String,
    pub strand: Strand,
    /// The genomic position of `scores[0]`.
    pub start: u64,
    /// `[neither, acceptor, donor]` per position, genomic order.
    pub scores: Vec<[f32; 3]>,
}

/// Reads a score directory back gene by gene, in the order the genes were written, holding
/// one gene and one record batch at a time (both reserved).
pub struct ScoreReader {
    dir: PathBuf,
    files: std::vec::IntoIter<BatchEntry>,
    batches: Option<(PathBuf, crate::io::Batches)>,
    pending: Option<(RecordBatch, usize)>,
    reservation: MemoryReservation,
    /// Bytes reserved for the gene last handed over, held until the next call.
    held: u64,
}

/// Rows per record batch while reading scores back.
const READ_ROWS: usize = 16_384;

impl ScoreReader {
    /// Opens the finished batches of `dir`'s manifest (which must say `complete`).
    pub fn open(dir: &Path, parent: &MemoryReservation) -> anyhow::Result<(Manifest, Self)> {
        let manifest = Manifest::read(dir)?.ok_or_else(|| {
            InputError::new("no score manifest here")
                .file(dir.join(MANIFEST))
                .hint("run `spliceboost score CONFIG` first")
        })?;
        if !manifest.complete {
            return Err(InputError::new("the scores are not finished")
                .file(dir.join(MANIFEST))
                .hint("run `spliceboost score CONFIG` again to finish them")
                .into());
        }
        let mut reservation = parent.new_empty();
        // A record batch as Arrow holds it (names at 32 bytes) and its decoded pages again.
        let batch_bytes = 2 * piece_bytes(READ_ROWS, 32);
        reservation.try_grow(batch_bytes)?;
        Ok((
            manifest.clone(),
            Self {
                dir: dir.to_path_buf(),
                files: manifest.batches.into_iter(),
                batches: None,
                pending: None,
                reservation,
                held: 0,
            },
        ))
    }

    fn next_batch(&mut self) -> anyhow::Result<Option<RecordBatch>> {
        loop {
            if let Some((path, reader)) = &mut self.batches {
                match reader.next() {
                    Some(b) => {
                        return Ok(Some(b.map_err(|e| {
                            InputError::new(format!("cannot read the scores: {e}")).file(&*path)
                        })?))
                    }
                    None => self.batches = None,
                }
            }
            let Some(entry) = self.files.next() else {
                return Ok(None);
            };
            let path = self.dir.join(&entry.file);
            let file =
                std::fs::File::open(&path).map_err(|e| crate::error::io_error(&path, "cannot open", &e))?;
            let reader = crate::io::read_footer(|| {
                parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
            })
            .and_then(|b| crate::io::batches(b.with_batch_size(READ_ROWS)))
            .map_err(|e| {
                InputError::new(format!("not a readable score file: {e}"))
                    .file(&path)
                    .hint("delete the score directory (or run with --overwrite) to score again")
            })?;
            // The columns are read by position and type below: another layout is an error.
            let (want, got) = (schema(), reader.schema());
            let same = |a: &Field, b: &Field| a.name() == b.name() && a.data_type() == b.data_type();
            if want.fields().len() != got.fields().len()
                || !want.fields().iter().zip(got.fields()).all(|(a, b)| same(a, b))
            {
                let cols = |s: &Schema| {
                    let c: Vec<String> = s
                        .fields()
                        .iter()
                        .map(|f| format!("{} {}", f.name(), f.data_type()))
                        .collect();
                    c.join(", ")
                };
                return Err(InputError::new(format!(
                    "not a score file: its columns are ({}), not ({})",
                    cols(&got),
                    cols(&want)
                ))
                .file(&path)
                .hint("delete the score directory (or run with --overwrite) to score again")
                .into());
            }
            self.batches = Some((path, reader));
        }
    }

    /// The next gene, or `None` after the last. The gene's bytes stay reserved until the
    /// next call.
    pub fn next_gene(&mut self) -> anyhow::Result<Option<StoredGene>> {
        self.reservation.shrink(self.held);
        self.held = 0;
        let mut gene: Option<StoredGene> = None;
        loop {
            let (batch, at) = match self.pending.take() {
                Some(p) => p,
                None => match self.next_batch()? {
                    Some(b) => (b, 0),
                    None => break,
                },
            };
            let col = |i: usize| batch.column(i);
            let ids = col(0).as_string::<i32>();
            let mut end = at;
            let id = gene
                .as_ref()
                .map(|g| g.gene_id.clone())
                .unwrap_or_else(|| ids.value(at).to_string());
            while end < batch.num_rows() && ids.value(end) == id {
                end += 1;
            }
            let g = gene.get_or_insert_with(|| StoredGene {
                gene_id: id.clone(),
                chrom: col(1).as_string::<i32>().value(at).to_string(),
                strand: if col(2).as_string::<i32>().value(at) == "-" {
                    Strand::Minus
                } else {
                    Strand::Plus
                },
                start: col(3).as_primitive::<arrow::datatypes::Int64Type>().value(at) as u64,
                scores: vec![],
            });
            let (len, cap) = (g.scores.len(), g.scores.capacity());
            if len + end - at > cap {
                // Doubling keeps a long gene's copies linear; while the vector moves, the old
                // and the new buffer are both alive, so both are reserved until it has.
                let want = (len + end - at).max(2 * cap);
                let moving = ((want + cap) * 12) as u64;
                if moving > self.held {
                    self.reservation.try_grow(moving - self.held)?;
                    self.held = moving;
                }
                g.scores.reserve_exact(want - len);
                let after = (want * 12) as u64;
                self.reservation.shrink(self.held - after);
                self.held = after;
            }
            let (d, a, n) = (
                col(4).as_primitive::<arrow::datatypes::Float32Type>(),
                col(5).as_primitive::<arrow::datatypes::Float32Type>(),
                col(6).as_primitive::<arrow::datatypes::Float32Type>(),
            );
            g.scores
                .extend((at..end).map(|i| [n.value(i), a.value(i), d.value(i)]));
            if end < batch.num_rows() {
                self.pending = Some((batch, end));
                break;
            }
        }
        Ok(gene)
    }
}
