//! Reading datasets and writing outputs without ever holding more than a budget allows.
//!
//! - [`Dataset`] finds a dataset's Parquet files, checks that they agree on their schema and
//!   decides each column's role (label, group, feature, metadata).
//! - [`Scan`] streams projected columns out of memory-mapped files, one row group at a time,
//!   in batches sized from a [`MemoryReservation`](crate::memory::MemoryReservation).
//! - [`write_atomic`] writes every output under a temporary name and renames it into place,
//!   so a failed run never leaves a half-written file behind.
//! - [`FeatureReader`] hands every consumer a feature's values as `f32`, whether a plain
//!   column or a k-mer of a sparse `kmers_{k}` column holds them.
//! - [`kmers`] counts, names and stores sparse k-mer counts (`kmers_{k}` columns).

pub(crate) mod dataset;
pub mod kmers;
mod reader;
mod scan;
mod values;

pub use dataset::{
    ColumnInfo, ColumnRoles, DataFile, Dataset, DatasetConfig, Feature, FeatureType, LabelKind,
    METADATA_COLUMNS,
};
pub use reader::{FeatureBatch, FeatureReader};
pub use scan::{plan_batch_rows, Scan, ScanBatch, ScanBuilder, ScanPlan, MIN_BATCH_ROWS};
pub use values::{decode_labels, to_f32, try_to_f32, GeneIndex, CLASS_NAMES};

use std::io::Write;
use std::path::Path;

use crate::error::{io_error, Watched};

/// Writes `path` through a temporary file in the same directory, renamed into place only
/// when `fill` succeeds.
///
/// The temporary file is `.spliceboost-<pid>-XXXXXX.tmp`, so that a later run can tell one
/// left by a killed process from one a live process is writing. An I/O failure (a full disk,
/// a file-size limit, a missing permission) is reported as an [`InputError`] naming `path`,
/// even when the format library writing through `fill` turned it into text.
///
/// [`InputError`]: crate::error::InputError
pub fn write_atomic<T>(
    path: &Path,
    fill: impl FnOnce(&mut std::io::BufWriter<Watched<&mut std::fs::File>>) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| io_error(dir, "cannot create the directory", &e))?;
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".spliceboost-{}-", std::process::id()))
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(|e| io_error(dir, "cannot create a temporary file in the directory", &e))?;
    let written = {
        let mut w = std::io::BufWriter::new(Watched::new(tmp.as_file_mut()));
        let out = fill(&mut w).and_then(|out| {
            w.flush()?;
            Ok(out)
        });
        match out {
            Ok(out) => Ok(out),
            // The first I/O failure, wherever the writer's library reported it, is the cause.
            Err(e) => match w.get_mut().take_error() {
                Some(io) => Err(io_error(path, "cannot write", &io).into()),
                None => Err(e),
            },
        }
    };
    // The BufWriter is gone: nothing of a failed write reaches the temporary file, which is
    // removed when `tmp` drops.
    let out = written?;
    // A full disk may show only now (delayed allocation, network file systems); file
    // systems that cannot sync say so with these kinds, which are not failures of the file.
    if let Err(e) = tmp.as_file().sync_all() {
        if !matches!(
            e.kind(),
            std::io::ErrorKind::Unsupported | std::io::ErrorKind::InvalidInput
        ) {
            return Err(io_error(path, "cannot write", &e).into());
        }
    }
    // Temporary files are private; the finished output is an ordinary file.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o644))
            .ok();
    }
    if let Some(name) = path.file_name() {
        crate::memory::pause_point(&format!("write {}", name.to_string_lossy()));
    }
    tmp.persist(path)
        .map_err(|e| io_error(path, "cannot move the finished file into place", &e.error))?;
    Ok(out)
}

/// Runs `read`, a decoding of a Parquet footer, with the panics of the crates below turned
/// into an error: arrow-ipc has about thirty `panic!`s for malformed field types in an
/// embedded Arrow schema (the `ARROW:schema` key), and building a reader sums the footer's
/// row counts unchecked. Every reader of a footer goes through it.
pub fn read_footer<T>(read: impl FnOnce() -> parquet::errors::Result<T>) -> parquet::errors::Result<T> {
    crate::error::catch_decoder_panic(read).unwrap_or_else(|| {
        Err(parquet::errors::ParquetError::General(
            "its footer is corrupt (the Parquet decoder failed on it)".into(),
        ))
    })
}

/// A Parquet record-batch reader that reports a data page the parquet crate cannot decode
/// (it asserts on some corrupt run-length encodings) as an error instead of a panic. Every
/// reader of Parquet rows is one, built by [`batches`].
pub struct Batches(parquet::arrow::arrow_reader::ParquetRecordBatchReader);

impl Batches {
    pub fn schema(&self) -> arrow::datatypes::SchemaRef {
        arrow::array::RecordBatchReader::schema(&self.0)
    }
}

impl Iterator for Batches {
    type Item = Result<arrow::array::RecordBatch, arrow::error::ArrowError>;

    fn next(&mut self) -> Option<Self::Item> {
        crate::error::catch_decoder_panic(|| self.0.next()).unwrap_or_else(|| {
            Some(Err(arrow::error::ArrowError::ParquetError(
                "a data page is corrupt (the Parquet decoder failed on it)".into(),
            )))
        })
    }
}

/// Builds `builder`'s reader (through [`read_footer`]) as [`Batches`].
pub fn batches<T: parquet::file::reader::ChunkReader + 'static>(
    builder: parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder<T>,
) -> parquet::errors::Result<Batches> {
    read_footer(|| builder.build()).map(Batches)
}

/// Writes a delimited table (`b'\t'` for TSV, `b','` for CSV) through [`write_atomic`] with
/// the csv crate, so that a field holding the delimiter, a quote or a line break is quoted
/// instead of breaking its row.
pub fn write_table<R, F>(
    path: &Path,
    delimiter: u8,
    header: &[&str],
    rows: impl IntoIterator<Item = R>,
) -> anyhow::Result<()>
where
    R: IntoIterator<Item = F>,
    F: AsRef<[u8]>,
{
    write_atomic(path, |w| {
        let mut t = csv::WriterBuilder::new().delimiter(delimiter).from_writer(w);
        t.write_record(header)?;
        for r in rows {
            t.write_record(r)?;
        }
        t.flush()?;
        Ok(())
    })
}

/// [`write_atomic`] for bytes already in memory.
pub fn write_bytes_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    write_atomic(path, |w| Ok(w.write_all(bytes)?))
}

/// Rows per row group of the Parquet files spliceboost writes (scores, out-of-fold
/// predictions, query results): the writer holds a row group's columns until it flushes, so
/// this bounds its memory whatever the output's length.
pub const OUTPUT_ROW_GROUP_ROWS: usize = 65_536;

/// A zstd-compressed Parquet writer that flushes every [`OUTPUT_ROW_GROUP_ROWS`] rows.
pub fn parquet_writer<W: Write + Send>(
    w: W,
    schema: arrow::datatypes::SchemaRef,
) -> anyhow::Result<parquet::arrow::ArrowWriter<W>> {
    parquet_writer_rows(w, schema, OUTPUT_ROW_GROUP_ROWS)
}

/// [`parquet_writer`] with row groups of `rows` rows.
pub fn parquet_writer_rows<W: Write + Send>(
    w: W,
    schema: arrow::datatypes::SchemaRef,
    rows: usize,
) -> anyhow::Result<parquet::arrow::ArrowWriter<W>> {
    use parquet::basic::{Compression, ZstdLevel};
    let props = parquet::file::properties::WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(1)?))
        .set_max_row_group_row_count(Some(rows))
        .build();
    Ok(parquet::arrow::ArrowWriter::try_new(w, schema, Some(props))?)
}

/// Bytes a [`parquet_writer`] for `schema` may hold: a row group of values (strings counted
/// at 32 bytes) and as much again while it encodes them.
pub fn parquet_writer_bytes(schema: &arrow::datatypes::Schema) -> u64 {
    parquet_row_group_bytes(schema, OUTPUT_ROW_GROUP_ROWS, 0)
}

/// Bytes a Parquet writer holds for a row group of `rows` rows of `schema`, each row also
/// holding `extra_row_bytes` that the schema's widths do not show (list items): the values
/// (strings at 32 bytes) and as much again while it encodes them.
pub fn parquet_row_group_bytes(schema: &arrow::datatypes::Schema, rows: usize, extra_row_bytes: u64) -> u64 {
    let row: u64 = schema
        .fields()
        .iter()
        .map(|f| f.data_type().primitive_width().unwrap_or(32) as u64 + 1)
        .sum::<u64>()
        + extra_row_bytes;
    2 * rows as u64 * row
}

/// Writes `lines` to `path`, one a line, atomically.
pub fn write_lines<'a>(path: &Path, lines: impl Iterator<Item = &'a str>) -> anyhow::Result<()> {
    write_atomic(path, |w| {
        for l in lines {
            writeln!(w, "{l}")?;
        }
        Ok(())
    })
}
