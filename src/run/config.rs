//! The typed run configuration: TOML in, validated structs out.
//!
//! One place turns a config file plus `--set section.key=value` overrides into a [`Config`],
//! so that every command sees the same defaults and every mistake is reported the same way:
//! the file, the line and column, the key, and what to write instead.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use crate::error::ConfigError;
pub use crate::genome::GenomeConfig;
pub use crate::io::DatasetConfig;
pub use crate::memory::{Budget, MemoryConfig, STAGES};
pub use crate::score::ScoreConfig;
pub use crate::synth::SynthConfig;

/// Everything a run needs to know.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub run: RunConfig,
    #[serde(default)]
    pub dataset: DatasetConfig,
    #[serde(default)]
    pub memory: MemoryConfig,
    /// When present, `run` writes a synthetic dataset to `dataset.path` if none is there yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub synth: Option<SynthConfig>,
    /// When present, `run` (and `train`) trains a one-vs-rest boosted model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train: Option<crate::boost::TrainParams>,
    /// When present, `run` cross-validates the three-class meta-model gene-wise, with the
    /// boosting parameters of `[train]` (or their defaults).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cv: Option<crate::cv::CvParams>,
    /// The genome, its annotation and which genes to take (read by the base-model and
    /// builder stages).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub genome: Option<GenomeConfig>,
    /// When present, `run` scores every selected gene of `[genome]` with the base model
    /// first (`spliceboost score` runs it with or without the section).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<ScoreConfig>,
    /// When present, `run` builds the dataset at `dataset.path` (or `build.out`) from the
    /// genome and its base scores before training (`spliceboost build` runs it alone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build: Option<crate::build::BuildConfig>,
    /// The budgets `spliceboost sweep` runs the job under (its `--budgets` wins).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sweep: Option<SweepConfig>,
}

/// `[sweep]`: the memory budgets to run the configured job under.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepConfig {
    pub budgets: Vec<crate::memory::Budget>,
}

/// Where results go and how the run behaves.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    /// Directory for run_summary.json and every other output.
    #[serde(default = "default_out_dir")]
    pub out_dir: PathBuf,
    /// Worker threads; 0 means one per core.
    #[serde(default)]
    pub threads: usize,
    /// Seed for every random choice of the run.
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// Progress bars on standard error.
    #[serde(default = "yes")]
    pub progress: bool,
}

impl Default for RunConfig {
    fn default() -> Self {
        Self {
            out_dir: default_out_dir(),
            threads: 0,
            seed: default_seed(),
            progress: true,
        }
    }
}

fn default_out_dir() -> PathBuf {
    PathBuf::from("out")
}
fn default_seed() -> u64 {
    42
}
fn yes() -> bool {
    true
}

impl Config {
    /// Reads `path`, applies `overrides` (`section.key=value`, the value in TOML syntax or a
    /// bare string) and validates the result.
    pub fn load(path: &Path, overrides: &[String]) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            source: path.display().to_string(),
            line: None,
            key: None,
            message: format!("cannot read the config file: {e}"),
        })?;
        Self::from_toml(&text, &path.display().to_string(), overrides)
    }

    /// The defaults, with `overrides` applied: for commands run without a config file.
    pub fn from_overrides(overrides: &[String]) -> Result<Config, ConfigError> {
        Self::from_toml("", "(defaults)", overrides)
    }

    /// Parses config text; `source` names it in errors.
    pub fn from_toml(text: &str, source: &str, overrides: &[String]) -> Result<Config, ConfigError> {
        let at = |key: Option<String>, message: String| {
            let line = key.as_deref().and_then(|k| locate(text, k));
            ConfigError {
                source: source.to_string(),
                line,
                key,
                message,
            }
        };
        let mut table: toml::Table = toml::from_str(text).map_err(|e| ConfigError {
            source: source.to_string(),
            line: e.span().map(|s| line_col(text, s.start)),
            key: None,
            message: e.message().trim().to_string(),
        })?;
        for ov in overrides {
            apply_override(&mut table, ov)?;
        }
        if table.contains_key("cv") {
            fill_meta_model_defaults(&mut table);
        }
        let config: Config = serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|e| {
            let key = e.path().to_string();
            let message = e.inner().message().trim().to_string();
            let message = message.replace("an integer or string", "a size such as \"512MiB\"");
            match overrides
                .iter()
                .find(|o| o.split('=').next() == Some(key.as_str()))
            {
                Some(ov) => ConfigError {
                    source: format!("--set {ov}"),
                    line: None,
                    key: Some(key),
                    message,
                },
                None => at(Some(key).filter(|k| k != "."), message),
            }
        })?;
        config.validate().map_err(|(key, message)| {
            match overrides
                .iter()
                .find(|o| o.split('=').next() == Some(key.as_str()))
            {
                Some(ov) => ConfigError {
                    source: format!("--set {ov}"),
                    line: None,
                    key: Some(key),
                    message,
                },
                None => at(Some(key), message),
            }
        })?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), (String, String)> {
        if self.run.out_dir.as_os_str().is_empty() {
            return Err((
                "run.out_dir".into(),
                "is empty, which would write the results into the current directory; name a \
                 directory such as \"out\" (or \".\" to mean the current one)"
                    .into(),
            ));
        }
        self.memory.validate()?;
        if let Some(t) = &self.train {
            t.validate()?;
        }
        if let Some(c) = &self.cv {
            c.validate()?;
        }
        if let Some(g) = &self.genome {
            g.validate()?;
        }
        if let Some(s) = &self.score {
            s.validate()?;
            if self.genome.is_none() {
                return Err((
                    "score".into(),
                    "scores the genes of a genome: add a [genome] section with `fasta` and `annotation`"
                        .into(),
                ));
            }
        }
        if let Some(b) = &self.build {
            b.validate()?;
            if self.genome.is_none() {
                return Err((
                    "build".into(),
                    "builds training rows from a genome: add a [genome] section with `fasta` and `annotation`"
                        .into(),
                ));
            }
            if self.score.is_none() && b.scores.is_none() {
                return Err((
                    "build.scores".into(),
                    "no base scores: add a [score] section (or set `build.scores` to a `spliceboost score` directory)"
                        .into(),
                ));
            }
            if self.synth.is_some() {
                return Err((
                    "synth".into(),
                    "a config either builds its dataset from a genome ([build]) or writes a synthetic one ([synth]), not both"
                        .into(),
                ));
            }
        }
        if let Some(s) = &self.synth {
            if s.genes == 0 {
                return Err(("synth.genes".into(), "must be at least 1".into()));
            }
            if s.rows_per_gene < 4 {
                return Err(("synth.rows_per_gene".into(), "must be at least 4".into()));
            }
            if s.kmer > 8 {
                return Err(("synth.kmer".into(), "k-mers go up to k = 8".into()));
            }
            if s.genes_per_file == 0 {
                return Err(("synth.genes_per_file".into(), "must be at least 1".into()));
            }
        }
        Ok(())
    }

    /// Where binned page caches live.
    pub fn cache_dir(&self) -> PathBuf {
        self.train
            .as_ref()
            .and_then(|t| t.cache_dir.clone())
            .unwrap_or_else(|| self.run.out_dir.join("cache"))
    }

    /// Where the base scores go.
    pub fn score_dir(&self) -> PathBuf {
        self.score.as_ref().map_or_else(
            || self.run.out_dir.join("scores"),
            |s| s.out_or(&self.run.out_dir),
        )
    }

    /// Where the builder writes the dataset.
    pub fn build_dir(&self) -> PathBuf {
        self.build
            .as_ref()
            .map_or_else(|| self.dataset.path.clone(), |b| b.out_or(&self.dataset.path))
    }

    /// Where the builder reads base scores.
    pub fn build_scores(&self) -> PathBuf {
        self.build
            .as_ref()
            .and_then(|b| b.scores.clone())
            .unwrap_or_else(|| self.score_dir())
    }

    /// The directory the query stage spills to.
    pub fn spill_dir(&self) -> PathBuf {
        self.memory
            .spill_dir
            .clone()
            .unwrap_or_else(|| self.run.out_dir.join("spill"))
    }
}

/// A cross-validation trains the meta-model: the `[train]` keys its config leaves out take
/// [`crate::cv::META_MODEL_DEFAULTS`] rather than the generic boosting defaults.
fn fill_meta_model_defaults(table: &mut toml::Table) {
    let defaults: toml::Table =
        toml::from_str(crate::cv::META_MODEL_DEFAULTS).expect("the meta-model defaults parse");
    if let toml::Value::Table(train) = table
        .entry("train")
        .or_insert_with(|| toml::Value::Table(toml::Table::new()))
    {
        for (k, v) in defaults {
            train.entry(k).or_insert(v);
        }
    }
}

fn apply_override(table: &mut toml::Table, ov: &str) -> Result<(), ConfigError> {
    let err = |message: String| ConfigError {
        source: format!("--set {ov}"),
        line: None,
        key: None,
        message,
    };
    let (key, raw) = ov
        .split_once('=')
        .ok_or_else(|| err("expected section.key=value".into()))?;
    let parts: Vec<&str> = key.trim().split('.').collect();
    if parts.iter().any(|p| p.is_empty()) {
        return Err(err(format!("`{key}` is not a dotted key such as memory.scan")));
    }
    let value = toml::from_str::<toml::Table>(&format!("v = {raw}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_string()));
    let mut cur = table;
    for part in &parts[..parts.len() - 1] {
        let entry = cur
            .entry(part.to_string())
            .or_insert_with(|| toml::Value::Table(Default::default()));
        cur = entry
            .as_table_mut()
            .ok_or_else(|| err(format!("`{part}` is a value, not a section")))?;
    }
    cur.insert(parts[parts.len() - 1].to_string(), value);
    Ok(())
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

/// Line and column of a dotted key in TOML text, where it is written there.
pub fn locate(text: &str, dotted: &str) -> Option<(usize, usize)> {
    use toml::de::{DeTable, DeValue};
    let doc = DeTable::parse(text).ok()?;
    let mut table = doc.get_ref();
    let mut span = None;
    let parts: Vec<&str> = dotted.split('.').collect();
    for (i, part) in parts.iter().enumerate() {
        let (k, v) = table.iter().find(|(k, _)| k.get_ref().as_ref() == *part)?;
        span = Some(k.span());
        if i + 1 < parts.len() {
            match v.get_ref() {
                DeValue::Table(t) => table = t,
                _ => break,
            }
        }
    }
    span.map(|s| line_col(text, s.start))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_key_is_located() {
        let text = "[memory]\ntotal = \"1GiB\"\nscna = \"64MiB\"\n";
        let err = Config::from_toml(text, "c.toml", &[]).unwrap_err();
        assert_eq!(err.line, Some((3, 1)));
        assert_eq!(err.key.as_deref(), Some("memory.scna"));
        assert!(err.message.contains("unknown field `scna`"), "{err}");
    }

    #[test]
    fn bad_unit_is_located() {
        let text = "[memory]\nscan = \"64 parsecs\"\n";
        let err = Config::from_toml(text, "c.toml", &[]).unwrap_err();
        assert_eq!(err.line, Some((2, 1)));
        assert_eq!(err.key.as_deref(), Some("memory.scan"));
    }

    #[test]
    fn wrong_type_is_located() {
        let text = "[run]\nthreads = \"two\"\n";
        let err = Config::from_toml(text, "c.toml", &[]).unwrap_err();
        assert_eq!(err.key.as_deref(), Some("run.threads"));
        assert_eq!(err.line, Some((2, 1)));
    }

    #[test]
    fn a_stage_budget_over_the_total_is_rejected() {
        let text = "[memory]\ntotal = \"100MiB\"\nscan = \"64MiB\"\ntrain = \"128MiB\"\n";
        let err = Config::from_toml(text, "c.toml", &[]).unwrap_err();
        assert!(
            err.message
                .contains("the stage budget (128.0 MiB) is more than memory.total = 100.0 MiB"),
            "{err}"
        );
        assert_eq!(err.line, Some((4, 1)));
    }

    #[test]
    fn stages_that_run_one_after_another_may_each_take_most_of_the_total() {
        // scan, sketch and train never hold memory at once: 64 + 64 + 90 MiB of 100 is fine.
        let text = "[memory]\ntotal = \"100MiB\"\nscan = \"64MiB\"\nsketch = \"64MiB\"\ntrain = \"90MiB\"\ncv = \"10MiB\"\n";
        let c = Config::from_toml(text, "c.toml", &[]).unwrap();
        assert_eq!(c.memory.budget("train"), 90 << 20);
    }

    #[test]
    fn a_stage_inside_cv_must_fit_beside_it() {
        // cv holds its 20 MiB while train runs inside it: 20 + 90 > 100.
        let text = "[memory]\ntotal = \"100MiB\"\ncv = \"20MiB\"\ntrain = \"90MiB\"\n";
        let err = Config::from_toml(text, "c.toml", &[]).unwrap_err();
        assert!(
            err.message
                .contains("together 110.0 MiB, more than memory.total = 100.0 MiB"),
            "{err}"
        );
        assert_eq!(err.key.as_deref(), Some("memory.train"));
        assert_eq!(err.line, Some((4, 1)));
    }

    #[test]
    fn override_sets_nested_key() {
        let c = Config::from_toml(
            "",
            "c.toml",
            &["memory.scan=32MiB".into(), "run.threads=2".into()],
        )
        .unwrap();
        assert_eq!(c.memory.budget("scan"), 32 << 20);
        assert_eq!(c.run.threads, 2);
    }

    #[test]
    fn override_error_names_the_flag() {
        let err = Config::from_toml("", "c.toml", &["memory.scan=lots".into()]).unwrap_err();
        assert_eq!(err.source, "--set memory.scan=lots");
    }

    #[test]
    fn unset_stages_share_the_rest() {
        let c = Config::from_toml("[memory]\ntotal = \"800MiB\"\ntrain = \"100MiB\"\n", "c", &[]).unwrap();
        assert_eq!(c.memory.budget("train"), 100 << 20);
        // Ten stages besides train: score, build, synth, scan, sketch, bin, cv, eval, predict,
        // query.
        assert_eq!(c.memory.budget("scan"), (700 << 20) / 10);
    }
}
