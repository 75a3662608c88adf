//! Training sets from a genome: the annotation's sites and the base model's scores become
//! one labelled row per candidate position, with score, sequence, k-mer and gene-structure
//! features, written as a MetaSpliceAI-layout dataset in resumable batches.
//!
//! - [`candidates`] decides which positions of a gene are rows and labels them (TP / FN / FP
//!   per site type with the consensus window, seeded TN sampling and down-sampling, all within
//!   the gene).
//! - [`rows`] turns a gene's candidates into the dataset's columns, none of which reads the
//!   label or the exon boundaries near the position.
//! - [`stage`] streams genes and scores batch by batch under `memory.build`, in parallel within
//!   a batch, and writes `master/batch_NNNNN.parquet`, `master/manifest.json` and
//!   `master/gene_manifest.csv`.
//!
//! docs/builder.md lists every way this differs from the Python original, and why.

pub mod candidates;
mod config;
pub mod rows;
mod stage;

pub use config::{BuildConfig, Downsample, KmerLayout, TnMode, MAX_K};
pub use stage::{build_job, settings, BuildJob, BuildSummary, DATASET, GENE_MANIFEST};
