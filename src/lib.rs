//! spliceboost: splice-site meta-models trained out of core, every stage within a memory
//! budget set in a config file.
//!
//! The rooms, each importing only those listed before it: [`error`] and [`memory`] (the
//! pool, budgets, measured stages); [`io`] (memory-mapped Parquet scans, atomic writes);
//! [`genome`] (streamed GFF3/GTF annotation, FASTA by region);
//! [`score`] (the SpliceAI base model, from its Keras weights);
//! [`features`] (score features); [`eval`] (metrics and calibration);
//! [`query`] (SQL over a dataset); [`build`] (training sets from a genome and its scores);
//! [`binning`] (quantile sketch and binned page cache);
//! [`boost`] (histogram boosting); [`cv`] (gene-wise cross-validation and the bundle);
//! [`predict`]; [`inspect`]; [`leakage`] (single-feature AUC per class); [`synth`]
//! (synthetic datasets); [`report`] (summaries and report.html); and [`run`] on top
//! (config, command line, jobs).

pub mod error;
pub mod memory;

pub mod io;

pub mod genome;

pub mod score;

pub mod eval;
pub mod features;
#[cfg(feature = "sql")]
pub mod query;

pub mod build;

pub mod binning;
pub mod boost;
pub mod cv;
pub mod predict;

pub mod inspect;
pub mod leakage;
pub mod report;
pub mod synth;

pub mod run;

#[cfg(feature = "count-alloc")]
#[global_allocator]
static ALLOCATOR: memory::CountingAllocator = memory::CountingAllocator;
