//! spliceboost: splice-site meta-models trained out of core, every stage within a memory
//! budget set in a config file.
//!
//! The pipeline: a Parquet dataset is scanned from memory maps ([`io`]) under the scan
//! budget, summarised ([`inspect`]) or queried with SQL ([`query`]); every stage reserves
//! from the run's [`memory::MemoryPool`] before it allocates, and the run reports measured
//! peaks per stage ([`report`]). [`synth`] writes datasets in MetaSpliceAI's layout at any
//! size.

pub mod binning;
pub mod boost;
pub mod calibrate;
pub mod cli;
pub mod config;
pub mod cv;
pub mod error;
pub mod eval;
pub mod features;
pub mod hist;
pub mod inspect;
pub mod io;
pub mod memory;
pub mod plan;
#[cfg(feature = "sql")]
pub mod query;
pub mod report;
pub mod run;
pub mod synth;
pub mod train;
pub mod tree;

#[cfg(feature = "count-alloc")]
#[global_allocator]
static ALLOCATOR: memory::CountingAllocator = memory::CountingAllocator;
