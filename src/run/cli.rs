//! The command line: parsed by clap, turned into a typed config, then handed to [`crate::run`].

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Out-of-core splice-site meta-models under a memory budget.
#[derive(Debug, Parser)]
#[command(name = "spliceboost", version, about, propagate_version = true)]
pub struct Cli {
    /// No progress bars and no stage table on standard error.
    #[arg(long, short, global = true)]
    pub quiet: bool,
    #[command(subcommand)]
    pub command: Command,
}

/// Config overrides shared by every command.
#[derive(Debug, Clone, Default, Args)]
pub struct Overrides {
    /// Set any config key, e.g. `--set memory.scan=64MiB` (repeatable).
    #[arg(long = "set", value_name = "SECTION.KEY=VALUE", global = true)]
    pub set: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the job a config file describes.
    Run {
        config: PathBuf,
        /// Replace the results of a previous run in `run.out_dir`.
        #[arg(long)]
        overwrite: bool,
        #[command(flatten)]
        overrides: Overrides,
    },
    /// Cross-validate the three-class meta-model gene-wise (the `[cv]` section, or its
    /// defaults), then refit it on every gene.
    Cv {
        config: PathBuf,
        /// Replace the results of a previous run in `run.out_dir`.
        #[arg(long)]
        overwrite: bool,
        #[command(flatten)]
        overrides: Overrides,
    },
    /// Score every position of every selected gene of `[genome]` with SpliceAI (or read
    /// the scores of `[score.file]`), in resumable batches under `memory.score`.
    Score {
        config: PathBuf,
        /// Then find the per (type, strand) shifts (-5..5) that maximise F1 at 0.5 against
        /// the annotation, print them with the base model's quality before and after.
        #[arg(long)]
        fit_shifts: bool,
        /// Replace scores made with other settings in the score directory.
        #[arg(long)]
        overwrite: bool,
        #[command(flatten)]
        overrides: Overrides,
    },
    /// Build the training set of `[build]` (or its defaults) from `[genome]` and its base
    /// scores — scoring first when `[score]` is present — in resumable batches under
    /// `memory.build`.
    Build {
        config: PathBuf,
        /// Build every batch again, replacing what is there (without it, a dataset built with
        /// these settings is resumed and one built with others refused).
        #[arg(long)]
        overwrite: bool,
        #[command(flatten)]
        overrides: Overrides,
    },
    /// Train the one-vs-rest model of a config's `[train]` section (sketch, bin, train).
    Train {
        config: PathBuf,
        #[command(flatten)]
        overrides: Overrides,
    },
    /// Score a dataset with a trained model, writing Parquet.
    Predict {
        /// A model written by `train` (model.json).
        #[arg(long)]
        model: PathBuf,
        /// Directory, Parquet file or glob (default: `dataset.path` of --config).
        #[arg(long)]
        dataset: Option<PathBuf>,
        /// The Parquet file to write.
        #[arg(long)]
        out: PathBuf,
        #[arg(long)]
        config: Option<PathBuf>,
        #[arg(long, value_name = "FILE")]
        summary: Option<PathBuf>,
        #[command(flatten)]
        overrides: Overrides,
    },
    /// Check a config file and print it with every default and budget filled in.
    CheckConfig {
        config: PathBuf,
        #[command(flatten)]
        overrides: Overrides,
    },
    /// Summarise a dataset in one streaming pass under the scan budget.
    Inspect {
        /// Directory, Parquet file or glob (default: `dataset.path` of --config); a config
        /// file (`.toml`) here stands for --config.
        dataset: Option<PathBuf>,
        #[arg(long)]
        config: Option<PathBuf>,
        /// Print one JSON object instead of the table.
        #[arg(long)]
        json: bool,
        /// Also measure how well each feature alone separates each class (ROC-AUC from the
        /// binned cache) and write leakage.tsv to `run.out_dir`; flags leaky columns.
        #[arg(long)]
        leakage: bool,
        /// Flag a feature when any class's separation max(AUC, 1 - AUC) is above this.
        #[arg(
            long,
            value_name = "SEPARATION",
            default_value_t = crate::leakage::DEFAULT_THRESHOLD,
            value_parser = crate::leakage::parse_threshold,
            requires = "leakage"
        )]
        leakage_threshold: f64,
        /// Also write run_summary.json here.
        #[arg(long, value_name = "FILE")]
        summary: Option<PathBuf>,
        #[command(flatten)]
        overrides: Overrides,
    },
    /// Write a synthetic dataset in MetaSpliceAI's layout, or with --genome a synthetic
    /// genome (FASTA, GFF3 annotation and a noisy base model's scores) for `build`.
    Synth {
        /// The directory to create (must not exist).
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value_t = 1000)]
        genes: usize,
        #[arg(long, default_value_t = crate::synth::default_rows_per_gene(), conflicts_with = "genome")]
        rows_per_gene: usize,
        /// k-mer length of the count columns (0 for none).
        #[arg(long, default_value_t = crate::synth::default_k(), conflicts_with = "genome")]
        kmer: usize,
        #[arg(long, default_value_t = crate::synth::default_genes_per_file(), conflicts_with = "genome")]
        genes_per_file: usize,
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Also write the 501-nt `sequence` column.
        #[arg(long, conflicts_with = "genome")]
        with_sequence: bool,
        /// Write genome.fa(.fai), annotation.gff3, scores.parquet and synth_genome.json
        /// instead of a dataset.
        #[arg(long)]
        genome: bool,
        /// Chromosomes of the genome (default: one per 2,000 genes).
        #[arg(long, requires = "genome")]
        chromosomes: Option<usize>,
        #[arg(long)]
        config: Option<PathBuf>,
        #[arg(long, value_name = "FILE")]
        summary: Option<PathBuf>,
        #[command(flatten)]
        overrides: Overrides,
    },
    /// Run the configured job once per memory budget, each in its own process; write
    /// sweep.tsv, sweep.json and sweep.html (time and peak memory per stage against budget)
    /// to `run.out_dir/sweep`.
    Sweep {
        config: PathBuf,
        /// Budgets for `memory.total`, comma-separated (default: `[sweep] budgets`); stage
        /// budgets the config sets are scaled in proportion.
        #[arg(long, value_name = "SIZES")]
        budgets: Option<String>,
        /// Replace a previous sweep's results.
        #[arg(long)]
        overwrite: bool,
        #[command(flatten)]
        overrides: Overrides,
    },
    /// Run SQL over a dataset (registered as table `dataset`).
    Query {
        sql: String,
        /// Directory, Parquet file or glob (default: `dataset.path` of --config).
        #[arg(long)]
        dataset: Option<PathBuf>,
        #[arg(long)]
        config: Option<PathBuf>,
        /// Write the result to FILE.parquet or FILE.csv instead of printing it.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// Rows to print at most.
        #[arg(long, default_value_t = 1000)]
        max_rows: usize,
        #[arg(long, value_name = "FILE")]
        summary: Option<PathBuf>,
        #[command(flatten)]
        overrides: Overrides,
    },
}
