//! The `[score]` config section: which base model scores the genes (SpliceAI's networks, or a
//! file of scores made elsewhere), with what flanks and shifts, and where the scores go.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::import::ScoreFileConfig;
use super::shifts::Shifts;

/// `[score]`: the base-model pass over the selected genes of `[genome]`.
///
/// ```toml
/// [score]
/// models = [1, 2, 3, 4, 5]   # SpliceAI 1.3.1's networks to average (a subset is faster)
/// flank = "genomic"          # or "n": N padding, as the Python original does
/// genes_per_batch = 100      # genes per Parquet file (the unit of resumption)
///
/// [score.shifts]             # per (type, strand) offsets; see `spliceboost score --fit-shifts`
/// donor_plus = 0
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScoreConfig {
    /// The directory of score batches and their manifest; by default `<run.out_dir>/scores`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub out: Option<PathBuf>,
    /// SpliceAI networks (1..=5) whose outputs are averaged.
    #[serde(default = "all_models")]
    pub models: Vec<u8>,
    /// What surrounds a gene's sequence as context.
    #[serde(default)]
    pub flank: Flank,
    /// Where the weights are cached; by default `$XDG_CACHE_HOME/spliceboost/spliceai/1.3.1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weights_dir: Option<PathBuf>,
    /// Genes per output file: a finished file is never scored again after a crash.
    #[serde(default = "default_genes_per_batch")]
    pub genes_per_batch: usize,
    /// Outputs per chunk of the network at most; the `memory.score` budget may choose fewer.
    #[serde(default = "default_max_chunk")]
    pub max_chunk: usize,
    /// Offsets applied to the scores before they are written.
    #[serde(default, skip_serializing_if = "Shifts::is_zero")]
    pub shifts: Shifts,
    /// Scores read from this file instead of computed by the network.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<ScoreFileConfig>,
}

/// The context around a gene.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Flank {
    /// The genome's own bases, as SpliceAI was trained (`N` beyond a chromosome's ends).
    #[default]
    Genomic,
    /// `N` on both sides, as the Python original pads genes.
    N,
}

impl Flank {
    pub fn as_str(self) -> &'static str {
        match self {
            Flank::Genomic => "genomic",
            Flank::N => "n",
        }
    }
}

fn all_models() -> Vec<u8> {
    vec![1, 2, 3, 4, 5]
}

fn default_genes_per_batch() -> usize {
    100
}

fn default_max_chunk() -> usize {
    super::DEFAULT_CHUNK
}

impl Default for ScoreConfig {
    fn default() -> Self {
        Self {
            out: None,
            models: all_models(),
            flank: Flank::default(),
            weights_dir: None,
            genes_per_batch: default_genes_per_batch(),
            max_chunk: default_max_chunk(),
            shifts: Shifts::default(),
            file: None,
        }
    }
}

impl ScoreConfig {
    /// The output directory: `out` if set, else `<out_dir>/scores`.
    pub fn out_or(&self, out_dir: &Path) -> PathBuf {
        self.out.clone().unwrap_or_else(|| out_dir.join("scores"))
    }

    /// The weights' directory: `weights_dir` if set, else the cache.
    pub fn weights_dir(&self) -> PathBuf {
        self.weights_dir
            .clone()
            .unwrap_or_else(super::weights::default_dir)
    }

    /// Checks what can be checked without reading files; the error names the dotted key.
    pub fn validate(&self) -> Result<(), (String, String)> {
        let err = |k: &str, m: &str| Err((format!("score.{k}"), m.to_string()));
        if self.models.is_empty() {
            return err("models", "choose at least one of SpliceAI's models 1..5");
        }
        if let Some(m) = self.models.iter().find(|m| !(1..=5).contains(*m)) {
            return err("models", &format!("SpliceAI 1.3.1 has models 1 to 5, not {m}"));
        }
        let mut sorted = self.models.clone();
        sorted.sort_unstable();
        sorted.dedup();
        if sorted.len() != self.models.len() {
            return err("models", "names a model twice");
        }
        if self.genes_per_batch == 0 {
            return err("genes_per_batch", "must be at least 1");
        }
        if self.max_chunk < super::MIN_CHUNK {
            return err(
                "max_chunk",
                &format!(
                    "must be at least {} (shorter chunks spend more on context than on outputs)",
                    super::MIN_CHUNK
                ),
            );
        }
        if self.out.as_ref().is_some_and(|p| p.as_os_str().is_empty()) {
            return err(
                "out",
                "must name a directory (or be left out for <run.out_dir>/scores)",
            );
        }
        self.shifts.validate()?;
        if let Some(f) = &self.file {
            f.validate()?;
        }
        Ok(())
    }
}
