//! The `[build]` config section: how base scores and the annotation become training rows —
//! which positions are candidates, how true negatives are sampled and thinned, which k-mers
//! are counted and how the dataset is laid out on disk.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// `[build]`: the dataset builder.
///
/// ```toml
/// [build]
/// threshold = 0.5          # a base score at or above this is a predicted site
/// consensus_window = 2     # a prediction within ±2 nt of a true site matches it
/// tn_mode = "random"       # or "proximity", "window"
/// tn_sample_factor = 1.2   # true negatives sampled per non-TN row of the gene
/// kmers = [3]              # any of 1..8; [] for none
/// kmer_layout = "sparse"   # or "dense": the Python's {k}mer_XXX columns
/// batch_genes = 100        # genes per Parquet file: the unit a crashed build resumes from
///
/// [build.downsample]       # within each gene; `enabled = false` keeps every sampled TN
/// hard_prob = 0.15
/// window = 75
/// easy_ratio = 0.5
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuildConfig {
    /// The dataset directory (batches go to `<out>/master`); by default `dataset.path`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub out: Option<PathBuf>,
    /// The base scores (a `spliceboost score` directory); by default the score stage's output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scores: Option<PathBuf>,
    #[serde(default = "default_threshold")]
    pub threshold: f32,
    #[serde(default = "default_consensus_window")]
    pub consensus_window: u32,
    #[serde(default)]
    pub tn_mode: TnMode,
    #[serde(default = "default_tn_sample_factor")]
    pub tn_sample_factor: f64,
    /// `tn_mode = "window"`: true negatives within this many nt of a prediction come first.
    #[serde(default = "default_tn_window")]
    pub tn_window: u32,
    #[serde(default)]
    pub downsample: Downsample,
    /// Bases of sequence around each position for k-mers and sequence features, in
    /// transcript orientation: `[p - window/2, p + window/2)`.
    #[serde(default = "default_window")]
    pub window: u32,
    #[serde(default = "default_kmers")]
    pub kmers: Vec<usize>,
    #[serde(default)]
    pub kmer_layout: KmerLayout,
    #[serde(default = "default_batch_genes")]
    pub batch_genes: usize,
    /// Rows per Parquet row group.
    #[serde(default = "default_batch_rows")]
    pub batch_rows: usize,
    /// Seeds TN sampling and down-sampling (per gene); by default `run.seed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
}

/// How true negatives are drawn from a gene's positions that are neither sites nor predictions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TnMode {
    /// Uniformly, seeded.
    #[default]
    Random,
    /// Closest to a predicted site first.
    Proximity,
    /// Within `tn_window` nt of a predicted site first, then uniformly.
    Window,
}

/// How k-mer counts are stored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KmerLayout {
    /// One `kmers_{k}` list column per k (docs/dataset.md).
    #[default]
    Sparse,
    /// The Python's `{k}mer_XXX` Float64 columns, 4^k of them per k.
    Dense,
}

/// `[build.downsample]`: true negatives thinned within each gene.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Downsample {
    #[serde(default = "yes")]
    pub enabled: bool,
    /// TNs whose donor or acceptor score reaches this are kept (hard negatives).
    #[serde(default = "default_hard_prob")]
    pub hard_prob: f32,
    /// TNs within this many nt of a non-TN row of the same gene are kept.
    #[serde(default = "default_ds_window")]
    pub window: u32,
    /// Of the remaining (easy) TNs, this many per non-TN row are kept, drawn seeded.
    #[serde(default = "default_easy_ratio")]
    pub easy_ratio: f64,
}

fn yes() -> bool {
    true
}
fn default_threshold() -> f32 {
    0.5
}
fn default_consensus_window() -> u32 {
    2
}
fn default_tn_sample_factor() -> f64 {
    1.2
}
fn default_tn_window() -> u32 {
    50
}
fn default_hard_prob() -> f32 {
    0.15
}
fn default_ds_window() -> u32 {
    75
}
fn default_easy_ratio() -> f64 {
    0.5
}
fn default_window() -> u32 {
    500
}
fn default_kmers() -> Vec<usize> {
    vec![3]
}
fn default_batch_genes() -> usize {
    100
}
fn default_batch_rows() -> usize {
    crate::io::OUTPUT_ROW_GROUP_ROWS
}

impl Default for Downsample {
    fn default() -> Self {
        Self {
            enabled: true,
            hard_prob: default_hard_prob(),
            window: default_ds_window(),
            easy_ratio: default_easy_ratio(),
        }
    }
}

impl Default for BuildConfig {
    fn default() -> Self {
        Self {
            out: None,
            scores: None,
            threshold: default_threshold(),
            consensus_window: default_consensus_window(),
            tn_mode: TnMode::default(),
            tn_sample_factor: default_tn_sample_factor(),
            tn_window: default_tn_window(),
            downsample: Downsample::default(),
            window: default_window(),
            kmers: default_kmers(),
            kmer_layout: KmerLayout::default(),
            batch_genes: default_batch_genes(),
            batch_rows: default_batch_rows(),
            seed: None,
        }
    }
}

/// The largest k counted: 4^8 = 65,536 columns is as wide as a dense layout can sensibly go.
pub const MAX_K: usize = 8;

impl BuildConfig {
    /// The dataset directory: `out` if set, else `dataset_path`.
    pub fn out_or(&self, dataset_path: &Path) -> PathBuf {
        self.out.clone().unwrap_or_else(|| dataset_path.to_path_buf())
    }

    /// Checks what can be checked without reading files; the error names the dotted key.
    pub fn validate(&self) -> Result<(), (String, String)> {
        let err = |k: &str, m: &str| Err((format!("build.{k}"), m.to_string()));
        if !(self.threshold > 0.0 && self.threshold <= 1.0) {
            return err("threshold", "must be in (0, 1]");
        }
        if !(self.tn_sample_factor.is_finite() && self.tn_sample_factor >= 0.0) {
            return err("tn_sample_factor", "must be a number >= 0");
        }
        if let Some(k) = self.kmers.iter().find(|k| !(1..=MAX_K).contains(*k)) {
            return err("kmers", &format!("k must be 1 to {MAX_K}, not {k}"));
        }
        let mut ks = self.kmers.clone();
        ks.sort_unstable();
        ks.dedup();
        if ks.len() != self.kmers.len() {
            return err("kmers", "names a k twice");
        }
        if self.window < 2 || self.window > 100_000 || self.window % 2 == 1 {
            return err(
                "window",
                "must be an even number of nt from 2 to 100000 (half on each side)",
            );
        }
        if self.consensus_window > 1000 {
            return err("consensus_window", "must be at most 1000 nt");
        }
        if self.batch_genes == 0 {
            return err("batch_genes", "must be at least 1");
        }
        if self.batch_rows < 1024 {
            return err("batch_rows", "must be at least 1024");
        }
        let d = &self.downsample;
        if !(0.0..=1.0).contains(&d.hard_prob) {
            return err("downsample.hard_prob", "must be in [0, 1]");
        }
        if !(d.easy_ratio.is_finite() && d.easy_ratio >= 0.0) {
            return err("downsample.easy_ratio", "must be a number >= 0");
        }
        for (k, p) in [("out", &self.out), ("scores", &self.scores)] {
            if p.as_ref().is_some_and(|p| p.as_os_str().is_empty()) {
                return err(k, "must name a directory (or be left out for the default)");
            }
        }
        Ok(())
    }
}
