//! Budgeted, memory-mapped scans of a dataset.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use arrow::array::{new_null_array, ArrayRef};
use arrow::compute::{cast_with_options, CastOptions};
use arrow::datatypes::{DataType, Schema, SchemaRef};
use arrow::error::ArrowError;
use arrow::record_batch::{RecordBatch, RecordBatchOptions};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ProjectionMask;
use rayon::prelude::*;

use super::dataset::{column_width, Dataset, MappedParquet};
use super::reader::FeatureReader;
use crate::error::InputError;
use crate::memory::{MemoryError, MemoryReservation};

/// The smallest batch a scan will plan before it declares the budget too small.
pub const MIN_BATCH_ROWS: usize = 1024;
/// Larger batches stop paying for themselves; the rest of a budget is better left free.
pub const DEFAULT_MAX_BATCH_ROWS: usize = 64 * 1024;
/// What one column's reader holds besides the batch: a decompressed page, its levels and
/// dictionary. Writers cut pages at about 1 MiB, and never beyond a column chunk.
const PAGE_ALLOWANCE: u64 = 1 << 20;
/// Per column: the decoder's state, and the scan's own bookkeeping (the column's entry in
/// the name lookup, its field, and per file its projection index: well under 1 KiB).
const COLUMN_OVERHEAD: u64 = 16 << 10;

/// How a scan uses its budget: fixed reader buffers plus `row_bytes` per row of a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScanPlan {
    pub batch_rows: usize,
    pub fixed_bytes: u64,
    pub row_bytes: u64,
}

impl ScanPlan {
    /// Bytes the plan reserves.
    pub fn bytes(&self) -> u64 {
        self.fixed_bytes + self.row_bytes * self.batch_rows as u64
    }
}

/// The largest batch (up to `max_rows`) whose rows and fixed buffers fit in `available`, or
/// `None` when not even `min(MIN_BATCH_ROWS, max_rows)` rows fit.
pub fn plan_batch_rows(available: u64, fixed_bytes: u64, row_bytes: u64, max_rows: usize) -> Option<usize> {
    let max_rows = max_rows.max(1);
    let min_rows = MIN_BATCH_ROWS.min(max_rows);
    let row_bytes = row_bytes.max(1);
    let room = available.checked_sub(fixed_bytes)?;
    let rows = (room / row_bytes).min(max_rows as u64) as usize;
    (rows >= min_rows).then_some(rows)
}

/// One batch of a scan, with where it came from.
#[derive(Debug, Clone)]
pub struct ScanBatch {
    /// Index into [`Dataset::files`].
    pub file: usize,
    pub row_group: usize,
    /// Row number, within its file, of the batch's first row.
    pub first_row: u64,
    /// The projected columns, in the order they were asked for.
    pub batch: RecordBatch,
}

/// Sets up a [`Scan`]: which columns and files, and how much memory beyond the decoded
/// columns the caller needs per row.
#[derive(Debug, Clone)]
pub struct ScanBuilder<'a> {
    dataset: &'a Dataset,
    columns: Vec<String>,
    /// `with_columns` was called: `with_features` appends to those columns rather than
    /// replacing the default of every column.
    columns_set: bool,
    files: Vec<usize>,
    extra_row_bytes: u64,
    /// What a [`FeatureReader`] holds besides the batch: per row, and once.
    feature_row_bytes: u64,
    feature_fixed_bytes: u64,
    max_batch_rows: usize,
    max_bytes: u64,
}

impl Dataset {
    /// Starts a scan of all files and (until [`ScanBuilder::with_columns`]) all columns.
    pub fn scan(&self) -> ScanBuilder<'_> {
        ScanBuilder {
            dataset: self,
            columns: self.schema.fields().iter().map(|f| f.name().clone()).collect(),
            columns_set: false,
            files: (0..self.files.len()).collect(),
            extra_row_bytes: 0,
            feature_row_bytes: 0,
            feature_fixed_bytes: 0,
            max_batch_rows: DEFAULT_MAX_BATCH_ROWS.min(self.max_row_group_rows.max(1) as usize),
            max_bytes: u64::MAX,
        }
    }
}

impl<'a> ScanBuilder<'a> {
    /// Reads only these columns, returned in this order.
    pub fn with_columns<S: AsRef<str>>(mut self, columns: &[S]) -> Self {
        self.columns = columns.iter().map(|c| c.as_ref().to_string()).collect();
        self.columns_set = true;
        self
    }

    /// Appends the columns `reader` reads (after those of [`Self::with_columns`], or alone)
    /// and prices what it holds while it decodes a batch: the batches then suit
    /// [`FeatureReader::read`]. Call it once, after `with_columns`.
    pub fn with_features(mut self, reader: &FeatureReader) -> Self {
        if !self.columns_set {
            self.columns.clear();
            self.columns_set = true;
        }
        self.columns.extend(reader.columns().iter().cloned());
        self.feature_row_bytes = reader.row_bytes();
        self.feature_fixed_bytes = reader.fixed_bytes();
        self
    }

    /// Reads only these files (indices into [`Dataset::files`]), in this order.
    pub fn with_files(mut self, files: Vec<usize>) -> Self {
        self.files = files;
        self
    }

    /// Bytes per row the caller allocates while it holds a batch (its own decoded copies).
    pub fn with_extra_row_bytes(mut self, bytes: u64) -> Self {
        self.extra_row_bytes = bytes;
        self
    }

    /// An upper bound on batch rows (never above the largest row group).
    pub fn with_max_batch_rows(mut self, rows: usize) -> Self {
        self.max_batch_rows = rows.clamp(1, self.dataset.max_row_group_rows.max(1) as usize);
        self
    }

    /// Uses at most `bytes` of the stage's budget: for scans that run side by side.
    pub fn with_max_bytes(mut self, bytes: u64) -> Self {
        self.max_bytes = bytes;
        self
    }

    /// The plan this scan would use with `available` bytes, without reserving them.
    pub fn plan(&self, available: u64) -> Result<ScanPlan, (u64, ScanPlan)> {
        let ds = self.dataset;
        // One file is open at a time, its footer decoded.
        let footer = ds.files.iter().map(|f| f.footer_bytes).max().unwrap_or(0);
        let mut fixed = self.feature_fixed_bytes + footer;
        let mut row = self.extra_row_bytes + self.feature_row_bytes;
        for name in &self.columns {
            let Some(i) = ds.column_index(name) else { continue };
            fixed += ds.max_chunk_bytes[i].min(PAGE_ALLOWANCE) + COLUMN_OVERHEAD;
            let info = &ds.columns[i];
            // The widest type any file decodes the column to, plus a validity bit rounded
            // up to a byte, doubled for the builder the reader fills before it hands the
            // array over. (A file without the column gets a null array of the schema's type
            // instead, no wider.)
            row += 2 * (info.decoded_width + 1);
            if info.converted {
                // A file storing another type: its array is converted to the schema's type
                // while the reader's array is still alive.
                let dt = ds.schema.field(i).data_type();
                row += column_width(dt, ds.bytes_per_row[i], info.items_per_row) + 1;
            }
        }
        let min_rows = MIN_BATCH_ROWS.min(self.max_batch_rows);
        match plan_batch_rows(available, fixed, row, self.max_batch_rows) {
            Some(batch_rows) => Ok(ScanPlan {
                batch_rows,
                fixed_bytes: fixed,
                row_bytes: row,
            }),
            None => {
                let smallest = ScanPlan {
                    batch_rows: min_rows,
                    fixed_bytes: fixed,
                    row_bytes: row,
                };
                Err((smallest.bytes(), smallest))
            }
        }
    }

    /// The smallest reservation this scan can work with, and what it is for.
    pub fn min_bytes(&self) -> (u64, String) {
        let smallest = match self.plan(0) {
            Ok(p) => p,
            Err((_, p)) => p,
        };
        (
            smallest.bytes(),
            format!(
                "page buffers for {} columns and {}-row batches",
                self.columns.len(),
                smallest.batch_rows
            ),
        )
    }

    /// Plans the batch size from what `parent`'s stage has left, reserves it on a sibling
    /// reservation held by the scan, and checks the columns exist.
    pub fn build(self, parent: &MemoryReservation) -> Result<Scan<'a>, anyhow::Error> {
        let mut wanted: HashMap<String, Vec<usize>> = HashMap::with_capacity(self.columns.len());
        let mut fields = Vec::with_capacity(self.columns.len());
        for (j, name) in self.columns.iter().enumerate() {
            let Some(i) = self.dataset.column_index(name) else {
                return Err(InputError::new("no such column in the dataset")
                    .column(name)
                    .hint("`spliceboost inspect` lists the columns")
                    .into());
            };
            wanted.entry(name.clone()).or_default().push(j);
            fields.push(self.dataset.schema.field(i).clone());
        }
        let plan = match self.plan(parent.available().min(self.max_bytes)) {
            Ok(plan) => plan,
            Err((needed, smallest)) => {
                return Err(MemoryError::TooSmall {
                    stage: parent.stage().to_string(),
                    key: parent.key().to_string(),
                    needed: needed + (parent.budget() - parent.available()),
                    budget: parent.budget(),
                    what: format!(
                        "page buffers for {} columns and {}-row batches",
                        self.columns.len(),
                        smallest.batch_rows
                    ),
                }
                .into())
            }
        };
        let mut reservation = parent.new_empty();
        reservation.try_grow(plan.bytes())?;
        Ok(Scan {
            builder: self,
            plan,
            _reservation: reservation,
            wanted,
            schema: Arc::new(Schema::new(fields)),
            next_file: 0,
            current: None,
        })
    }
}

/// Where the rows of the row group at hand come from.
enum Source {
    /// Readers of the file's projected columns, one a run of them, each in file order: the
    /// threads decode their runs side by side, where one reader left the other threads idle
    /// while it decoded every column (a third of the sketch and bin stages' time on two
    /// threads).
    Readers(Vec<super::Batches>),
    /// The file holds none of the columns asked for: this many null rows are left.
    Nulls(u64),
}

struct OpenFile {
    index: usize,
    mapped: MappedParquet,
    /// One a reader: runs of the file's projected columns in file order; empty when the file
    /// holds none of the columns asked for.
    masks: Vec<ProjectionMask>,
    /// Per column asked for, its position among the columns the reader returns, or `None`
    /// when the file lacks it (it reads as nulls).
    order: Vec<Option<usize>>,
    row_group: usize,
    first_row: u64,
    source: Option<Source>,
}

/// An iterator of [`ScanBatch`]es holding its reservation until dropped. One file is mapped
/// at a time; each row group's pages are handed back to the kernel once read.
pub struct Scan<'a> {
    builder: ScanBuilder<'a>,
    plan: ScanPlan,
    _reservation: MemoryReservation,
    /// Positions, among the columns asked for, of each name (a name may be asked for twice).
    wanted: HashMap<String, Vec<usize>>,
    /// The columns asked for, with the dataset's types.
    schema: SchemaRef,
    next_file: usize,
    current: Option<OpenFile>,
}

impl Scan<'_> {
    pub fn plan(&self) -> ScanPlan {
        self.plan
    }

    fn open_next(&mut self) -> Result<bool, InputError> {
        let Some(&index) = self.builder.files.get(self.next_file) else {
            return Ok(false);
        };
        self.next_file += 1;
        let path = &self.builder.dataset.files[index].path;
        let mapped = MappedParquet::open(path)?;
        // The file's root column of each column asked for: one pass over the file's fields,
        // looking names up in `wanted`, so wide files cost no quadratic search.
        let mut roots: Vec<Option<usize>> = vec![None; self.builder.columns.len()];
        for (r, f) in mapped.meta.schema().fields().iter().enumerate() {
            if let Some(js) = self.wanted.get(f.name()) {
                for &j in js {
                    roots[j].get_or_insert(r);
                }
            }
        }
        let mut sorted: Vec<usize> = roots.iter().flatten().copied().collect();
        sorted.sort_unstable();
        sorted.dedup();
        // The reader returns columns in file order; `order` puts them back in asked order.
        let order = roots
            .iter()
            .map(|r| r.and_then(|r| sorted.binary_search(&r).ok()))
            .collect();
        let readers = rayon::current_num_threads().min(sorted.len()).max(1);
        let masks = sorted
            .chunks(sorted.len().div_ceil(readers).max(1))
            .map(|run| ProjectionMask::roots(mapped.meta.parquet_schema(), run.iter().copied()))
            .collect();
        self.current = Some(OpenFile {
            index,
            mapped,
            masks,
            order,
            row_group: 0,
            first_row: 0,
            source: None,
        });
        Ok(true)
    }

    fn step(&mut self) -> Result<Option<ScanBatch>, InputError> {
        loop {
            if self.current.is_none() && !self.open_next()? {
                return Ok(None);
            }
            let f = self.current.as_mut().expect("opened above");
            let path = &self.builder.dataset.files[f.index].path;
            let n_rg = f.mapped.meta.metadata().num_row_groups();
            if f.source.is_none() {
                if f.row_group >= n_rg {
                    self.current = None;
                    continue;
                }
                f.source = Some(if f.masks.is_empty() {
                    Source::Nulls(f.mapped.meta.metadata().row_group(f.row_group).num_rows().max(0) as u64)
                } else {
                    let reader = |mask: &ProjectionMask| {
                        super::batches(
                            ParquetRecordBatchReaderBuilder::new_with_metadata(
                                f.mapped.bytes.clone(),
                                f.mapped.meta.clone(),
                            )
                            .with_projection(mask.clone())
                            .with_row_groups(vec![f.row_group])
                            .with_batch_size(self.plan.batch_rows),
                        )
                        .map_err(|e| corrupt(path, f.row_group, e.to_string()))
                    };
                    Source::Readers(f.masks.iter().map(reader).collect::<Result<_, _>>()?)
                });
            }
            let read = match f.source.as_mut().expect("set above") {
                Source::Readers(readers) => read_side_by_side(readers),
                Source::Nulls(0) => None,
                Source::Nulls(left) => {
                    let n = (*left).min(self.plan.batch_rows as u64);
                    *left -= n;
                    Some(Ok(Rows::Nulls(n as usize)))
                }
            };
            match read {
                Some(Ok(rows)) => {
                    let batch = assemble(&self.schema, &f.order, rows, path, f.row_group)?;
                    let out = ScanBatch {
                        file: f.index,
                        row_group: f.row_group,
                        first_row: f.first_row,
                        batch,
                    };
                    f.first_row += out.batch.num_rows() as u64;
                    return Ok(Some(out));
                }
                Some(Err(e)) => return Err(corrupt(path, f.row_group, e.to_string())),
                None => {
                    f.source = None;
                    f.mapped.release_row_group(f.row_group);
                    f.row_group += 1;
                }
            }
        }
    }
}

/// The next batch of every reader, their columns in order, or `None` when all are done.
fn read_side_by_side(readers: &mut [super::Batches]) -> Option<Result<Rows, arrow::error::ArrowError>> {
    let parts: Vec<_> = match readers {
        [one] => vec![one.next()],
        _ => readers.par_iter_mut().map(Iterator::next).collect(),
    };
    if parts.iter().all(Option::is_none) {
        return None;
    }
    let mut columns = vec![];
    let mut rows = None;
    for part in parts {
        let b = match part {
            Some(Ok(b)) => b,
            Some(Err(e)) => return Some(Err(e)),
            None => return Some(Err(ArrowError::ParquetError("a column chunk ends early".into()))),
        };
        if *rows.get_or_insert(b.num_rows()) != b.num_rows() {
            return Some(Err(ArrowError::ParquetError(
                "column chunks differ in length".into(),
            )));
        }
        columns.extend(b.columns().iter().cloned());
    }
    Some(Ok(Rows::Read {
        columns,
        rows: rows.unwrap_or(0),
    }))
}

/// Rows of one row group, as read.
enum Rows {
    /// The file's projected columns, in file order.
    Read { columns: Vec<ArrayRef>, rows: usize },
    /// A count of rows from a file that holds none of the columns asked for.
    Nulls(usize),
}

/// The batch a scan hands over: every column asked for, in order, in the dataset's type for
/// it. A column the file lacks is all null; one the file stores under another type (Float32
/// for Float64, a dictionary for plain values, ...) is converted, and a value that does not
/// convert is an error rather than a null.
fn assemble(
    schema: &SchemaRef,
    order: &[Option<usize>],
    rows: Rows,
    path: &Path,
    rg: usize,
) -> Result<RecordBatch, InputError> {
    let (batch, n) = match rows {
        Rows::Read { columns, rows } => (Some(columns), rows),
        Rows::Nulls(n) => (None, n),
    };
    let strict = CastOptions {
        safe: false,
        ..CastOptions::default()
    };
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(order.len());
    for (field, pos) in schema.fields().iter().zip(order) {
        let want = field.data_type();
        let column = match (pos, &batch) {
            (Some(p), Some(b)) => {
                let a = &b[*p];
                if a.data_type() == want {
                    a.clone()
                } else if *a.data_type() == DataType::Null {
                    new_null_array(want, n)
                } else {
                    cast_with_options(a, want, &strict).map_err(|e| {
                        InputError::new(format!("cannot read type {} as {want}: {e}", a.data_type()))
                            .file(path)
                            .row_group(rg)
                            .column(field.name())
                            .hint("rewrite the column with one type in every file")
                    })?
                }
            }
            _ => new_null_array(want, n),
        };
        columns.push(column);
    }
    RecordBatch::try_new_with_options(
        schema.clone(),
        columns,
        &RecordBatchOptions::new().with_row_count(Some(n)),
    )
    .map_err(|e| corrupt(path, rg, e.to_string()))
}

fn corrupt(path: &Path, rg: usize, why: String) -> InputError {
    InputError::new(format!("cannot decode: {why}"))
        .file(path)
        .row_group(rg)
        .hint("the file is truncated or corrupt; rewrite it")
}

impl Iterator for Scan<'_> {
    type Item = Result<ScanBatch, InputError>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.step() {
            Ok(Some(b)) => Some(Ok(b)),
            Ok(None) => None,
            Err(e) => {
                // Stop after an error rather than skip to the next file.
                self.next_file = usize::MAX;
                self.current = None;
                Some(Err(e))
            }
        }
    }
}
