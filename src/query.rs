//! `query`: DataFusion SQL over a dataset, under the query stage's budget.
//!
//! The dataset's files (found the same way every other command finds them) are registered as
//! table `dataset`. DataFusion's own fair spill pool enforces the budget and spills sorts and
//! aggregations to the spill directory; every byte it reserves is mirrored in the run's pool,
//! so the run summary reports the query's real peak.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::Context;
use arrow::record_batch::RecordBatch;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl};
use datafusion::execution::disk_manager::{DiskManagerBuilder, DiskManagerMode};
use datafusion::execution::memory_pool::{
    FairSpillPool, MemoryLimit, MemoryPool as DfPool, MemoryReservation as DfReservation,
};
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::prelude::{SessionConfig, SessionContext};
use futures::StreamExt;

use crate::error::InputError;
use crate::memory::MemoryReservation;

/// Where query results go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueryOutput {
    /// A table on standard output, at most this many rows.
    Print { max_rows: usize },
    /// A Parquet file.
    Parquet(PathBuf),
    /// A CSV file with a header.
    Csv(PathBuf),
}

impl QueryOutput {
    /// Chooses by the file's extension (`.parquet` or `.csv`).
    pub fn to_file(path: &Path) -> Result<Self, InputError> {
        match path.extension().and_then(|e| e.to_str()) {
            Some("parquet") => Ok(Self::Parquet(path.to_path_buf())),
            Some("csv") => Ok(Self::Csv(path.to_path_buf())),
            _ => Err(InputError::new("cannot tell the output format")
                .file(path)
                .hint("end the file name in .parquet or .csv")),
        }
    }
}

/// What a query produced.
#[derive(Debug, Clone, Default)]
pub struct QueryResult {
    pub rows: u64,
    pub printed: String,
}

/// DataFusion's fair spill pool, with every grow and shrink mirrored in a spliceboost
/// reservation.
struct MirroredPool {
    inner: FairSpillPool,
    mirror: Mutex<MemoryReservation>,
}

impl fmt::Debug for MirroredPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MirroredPool")
            .field("inner", &self.inner)
            .finish()
    }
}

impl fmt::Display for MirroredPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "spliceboost query pool over {}", self.inner)
    }
}

impl MirroredPool {
    fn mirror(&self) -> std::sync::MutexGuard<'_, MemoryReservation> {
        self.mirror.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl DfPool for MirroredPool {
    fn name(&self) -> &str {
        "spliceboost"
    }
    fn register(&self, consumer: &datafusion::execution::memory_pool::MemoryConsumer) {
        self.inner.register(consumer)
    }
    fn unregister(&self, consumer: &datafusion::execution::memory_pool::MemoryConsumer) {
        self.inner.unregister(consumer)
    }
    fn grow(&self, reservation: &DfReservation, additional: usize) {
        self.inner.grow(reservation, additional);
        // An infallible grow can pass the budget; the mirror records it anyway by growing
        // as far as it can, and the inner pool's accounting stays exact.
        let mut m = self.mirror();
        let room = m.available();
        let _ = m.try_grow((additional as u64).min(room));
    }
    fn shrink(&self, reservation: &DfReservation, shrink: usize) {
        self.inner.shrink(reservation, shrink);
        self.mirror().shrink(shrink as u64);
    }
    fn try_grow(&self, reservation: &DfReservation, additional: usize) -> datafusion::error::Result<()> {
        self.inner.try_grow(reservation, additional)?;
        let mut m = self.mirror();
        let room = m.available();
        let _ = m.try_grow((additional as u64).min(room));
        Ok(())
    }
    fn reserved(&self) -> usize {
        self.inner.reserved()
    }
    fn memory_limit(&self) -> MemoryLimit {
        self.inner.memory_limit()
    }
}

/// Runs `sql` over the dataset at `dataset` with the budget of `res` and writes the result.
pub fn run_query(
    dataset: &Path,
    sql: &str,
    output: &QueryOutput,
    spill_dir: &Path,
    threads: usize,
    res: &MemoryReservation,
) -> anyhow::Result<QueryResult> {
    // The dataset's merged schema (every column of any file, nullable, one type each), so
    // files whose columns differ read as the rest of spliceboost reads them.
    let ds = crate::io::Dataset::open_unlabelled(&crate::io::DatasetConfig {
        path: dataset.to_path_buf(),
        ..Default::default()
    })?;
    let files: Vec<std::path::PathBuf> = ds.files.iter().map(|f| f.path.clone()).collect();
    let merged = Arc::new(arrow::datatypes::Schema::new(
        ds.schema
            .fields()
            .iter()
            .map(|f| f.as_ref().clone().with_nullable(true))
            .collect::<Vec<_>>(),
    ));
    drop(ds);
    let budget = res.available() as usize;
    std::fs::create_dir_all(spill_dir)
        .with_context(|| format!("cannot create spill directory {}", spill_dir.display()))?;
    let pool = Arc::new(MirroredPool {
        inner: FairSpillPool::new(budget),
        mirror: Mutex::new(res.new_empty()),
    });
    let runtime = RuntimeEnvBuilder::new()
        .with_memory_pool(pool)
        .with_disk_manager_builder(
            DiskManagerBuilder::default()
                .with_mode(DiskManagerMode::Directories(vec![spill_dir.to_path_buf()])),
        )
        .build_arc()?;
    let threads = if threads == 0 {
        rayon::current_num_threads()
    } else {
        threads
    };
    let config = SessionConfig::new().with_target_partitions(threads);
    let ctx = SessionContext::new_with_config_rt(config, runtime);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()?;
    let (schema, mut stream) = rt.block_on(async {
        let urls = files
            .iter()
            .map(|p| {
                let abs = std::path::absolute(p)?;
                ListingTableUrl::parse(abs.to_string_lossy()).map_err(anyhow::Error::from)
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let options = ListingOptions::new(Arc::new(ParquetFormat::default())).with_file_extension(".parquet");
        let config = ListingTableConfig::new_with_multi_paths(urls)
            .with_listing_options(options)
            .with_schema(merged);
        ctx.register_table("dataset", Arc::new(ListingTable::try_new(config)?))?;
        let df = ctx
            .sql(sql)
            .await
            .map_err(|e| InputError::new(format!("bad query: {e}")).hint("the table is called `dataset`"))?;
        let schema = Arc::new(df.schema().as_arrow().clone());
        anyhow::Ok((schema, df.execute_stream().await?))
    })?;
    // Batches are pulled one at a time, so the output side holds one batch at most.
    let mut next = move || -> anyhow::Result<Option<RecordBatch>> {
        rt.block_on(stream.next()).transpose().map_err(Into::into)
    };
    let mut result = QueryResult::default();
    match output {
        QueryOutput::Print { max_rows } => {
            let mut shown: Vec<RecordBatch> = vec![];
            let mut kept = 0usize;
            while let Some(batch) = next()? {
                result.rows += batch.num_rows() as u64;
                if kept < *max_rows {
                    let take = batch.num_rows().min(max_rows - kept);
                    kept += take;
                    shown.push(batch.slice(0, take));
                }
            }
            result.printed = if shown.is_empty() {
                let cols: Vec<_> = schema.fields().iter().map(|f| f.name().as_str()).collect();
                format!("(no rows; columns: {})", cols.join(", "))
            } else {
                arrow::util::pretty::pretty_format_batches(&shown)?.to_string()
            };
            if result.rows > kept as u64 {
                result.printed.push_str(&format!(
                    "\n… {} more rows (write them all with --out FILE.parquet or FILE.csv)",
                    result.rows - kept as u64
                ));
            }
        }
        QueryOutput::Parquet(path) => {
            result.rows = crate::io::write_atomic(path, |w| {
                let mut writer = crate::io::parquet_writer(w, schema.clone())?;
                let mut rows = 0u64;
                while let Some(batch) = next()? {
                    rows += batch.num_rows() as u64;
                    writer.write(&batch)?;
                }
                writer.close()?;
                Ok(rows)
            })?;
        }
        QueryOutput::Csv(path) => {
            result.rows = crate::io::write_atomic(path, |w| {
                let mut writer = arrow::csv::WriterBuilder::new().with_header(true).build(w);
                let mut rows = 0u64;
                while let Some(batch) = next()? {
                    rows += batch.num_rows() as u64;
                    writer.write(&batch)?;
                }
                Ok(rows)
            })?;
        }
    }
    Ok(result)
}

/// Evaluates a SQL predicate (a `WHERE` clause without the keyword, such as
/// `gene_type = 'protein_coding'`) on every row of `ds`, in dataset order, streaming the
/// columns it names under `res`. Rows where it is false or null are dropped (`false`).
pub fn row_mask(
    ds: &crate::io::Dataset,
    predicate: &str,
    key: &str,
    res: &MemoryReservation,
) -> anyhow::Result<Vec<bool>> {
    use arrow::array::{Array, BooleanArray};
    use arrow::datatypes::{DataType, Schema};
    use datafusion::common::DFSchema;

    let bad = |m: String| {
        InputError::new(format!("`{key}` = {predicate:?}: {m}"))
            .hint("write a SQL condition over the dataset's columns, e.g. gene_type = 'protein_coding'")
    };
    let ctx = SessionContext::new();
    let full = DFSchema::try_from(ds.schema.as_ref().clone()).map_err(|e| bad(e.to_string()))?;
    let expr = ctx
        .parse_sql_expr(predicate, &full)
        .map_err(|e| bad(e.to_string()))?;
    // Scan only the columns the predicate names (and at least one, to count rows).
    let mut columns: Vec<String> = expr.column_refs().iter().map(|c| c.name.clone()).collect();
    columns.sort();
    columns.dedup();
    if columns.is_empty() {
        columns.push(ds.schema.field(0).name().clone());
    }
    let fields: Vec<_> = columns
        .iter()
        .map(|c| {
            ds.schema
                .field_with_name(c)
                .map(|f| f.clone().with_nullable(true))
        })
        .collect::<Result<_, _>>()
        .map_err(|e| bad(e.to_string()))?;
    let schema = std::sync::Arc::new(Schema::new(fields));
    let projected = DFSchema::try_from(schema.as_ref().clone()).map_err(|e| bad(e.to_string()))?;
    let phys = ctx
        .create_physical_expr(expr, &projected)
        .map_err(|e| bad(e.to_string()))?;
    let mut mask = Vec::with_capacity(ds.rows() as usize);
    for item in ds.scan().with_columns(&columns).build(res)? {
        let b = item?;
        // Files may store a column in another flavour (e.g. string views) than the first.
        let arrays = schema
            .fields()
            .iter()
            .enumerate()
            .map(|(i, f)| arrow::compute::cast(b.batch.column(i), f.data_type()))
            .collect::<Result<Vec<_>, _>>()?;
        let batch = RecordBatch::try_new(schema.clone(), arrays)?;
        let out = phys
            .evaluate(&batch)
            .and_then(|v| v.into_array(batch.num_rows()))
            .map_err(|e| bad(e.to_string()))?;
        if out.data_type() != &DataType::Boolean {
            return Err(bad(format!("it gives {} values, not true or false", out.data_type())).into());
        }
        let out = out
            .as_any()
            .downcast_ref::<BooleanArray>()
            .expect("checked the type");
        mask.extend((0..out.len()).map(|i| out.is_valid(i) && out.value(i)));
    }
    Ok(mask)
}
