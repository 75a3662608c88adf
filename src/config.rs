//! The typed run configuration: TOML in, validated structs out.
//!
//! One place turns a config file plus `--set section.key=value` overrides into a [`Config`],
//! so that every command sees the same defaults and every mistake is reported the same way:
//! the file, the line and column, the key, and what to write instead.

use std::fmt;
use std::path::{Path, PathBuf};

use bytesize::ByteSize;
use serde::{Deserialize, Serialize};

use crate::memory::fmt_bytes;

/// The stages that hold a memory budget, in pipeline order. `memory.<stage>` sets each one.
pub const STAGES: [&str; 9] = [
    "synth", "scan", "sketch", "bin", "train", "cv", "eval", "predict", "query",
];

/// A config mistake, located in the file (or in a `--set` override).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The config file, or `--set KEY=VALUE` for an override.
    pub source: String,
    /// 1-based line and column, where known.
    pub line: Option<(usize, usize)>,
    /// The dotted key, where known.
    pub key: Option<String>,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.source)?;
        if let Some((line, col)) = self.line {
            write!(f, ":{line}:{col}")?;
        }
        if let Some(key) = &self.key {
            write!(f, ": key `{key}`")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ConfigError {}

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

/// The dataset and the roles of its columns.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetConfig {
    /// A directory (MetaSpliceAI's `master/batch_NNNNN.parquet` layout or any tree of
    /// Parquet files), one file, or a glob.
    #[serde(default)]
    pub path: PathBuf,
    /// The label column; by default `splice_type` if present, else `label`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// The grouping column for gene-wise splits.
    #[serde(default = "default_group")]
    pub group: String,
    /// When not empty, only these features (names or glob patterns such as `3mer_*`).
    #[serde(default)]
    pub include: Vec<String>,
    /// Features to leave out (names or glob patterns).
    #[serde(default)]
    pub exclude: Vec<String>,
}

impl Default for DatasetConfig {
    fn default() -> Self {
        Self {
            path: PathBuf::new(),
            label: None,
            group: default_group(),
            include: vec![],
            exclude: vec![],
        }
    }
}

/// Memory budgets: a total for the run and, optionally, one per stage.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemoryConfig {
    /// The run's total; stage budgets together may not exceed it.
    #[serde(default = "default_total")]
    pub total: Budget,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub synth: Option<Budget>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scan: Option<Budget>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sketch: Option<Budget>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bin: Option<Budget>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train: Option<Budget>,
    /// Cross-validation's own state: fold assignments and out-of-fold predictions, held
    /// while each fold trains.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cv: Option<Budget>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eval: Option<Budget>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub predict: Option<Budget>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<Budget>,
    /// Where the query stage spills; by default `<run.out_dir>/spill`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spill_dir: Option<PathBuf>,
}

impl Default for MemoryConfig {
    fn default() -> Self {
        Self {
            total: default_total(),
            synth: None,
            scan: None,
            sketch: None,
            bin: None,
            train: None,
            cv: None,
            eval: None,
            predict: None,
            query: None,
            spill_dir: None,
        }
    }
}

impl MemoryConfig {
    fn explicit(&self, stage: &str) -> Option<Budget> {
        match stage {
            "synth" => self.synth,
            "scan" => self.scan,
            "sketch" => self.sketch,
            "bin" => self.bin,
            "train" => self.train,
            "cv" => self.cv,
            "eval" => self.eval,
            "predict" => self.predict,
            "query" => self.query,
            _ => None,
        }
    }

    /// The budget of `stage` in bytes: the configured one, or an equal share of what the
    /// configured stages leave of the total.
    pub fn budget(&self, stage: &str) -> u64 {
        if let Some(b) = self.explicit(stage) {
            return b.as_u64();
        }
        let set: u64 = STAGES
            .iter()
            .filter_map(|s| self.explicit(s))
            .map(|b| b.as_u64())
            .sum();
        let unset = STAGES.iter().filter(|s| self.explicit(s).is_none()).count() as u64;
        self.total.as_u64().saturating_sub(set) / unset.max(1)
    }
}

/// Settings for `run` to write a synthetic dataset where `dataset.path` has none.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SynthConfig {
    pub genes: usize,
    #[serde(default = "default_rows_per_gene")]
    pub rows_per_gene: usize,
    /// k-mer length of the count columns (0 for none).
    #[serde(default = "default_k")]
    pub kmer: usize,
    #[serde(default = "default_genes_per_file")]
    pub genes_per_file: usize,
    /// Defaults to `run.seed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
}

/// A memory size, written as a string with a unit ("512MiB", "2GiB", "64MB") or a plain
/// number of bytes; a mistake says how to write one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Budget(pub ByteSize);

impl Budget {
    pub fn as_u64(self) -> u64 {
        self.0.as_u64()
    }
}

impl<'de> Deserialize<'de> for Budget {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Int(u64),
            Text(String),
        }
        match Raw::deserialize(d).map_err(|_| D::Error::custom("expected a size such as \"512MiB\""))? {
            Raw::Int(n) => Ok(Budget(ByteSize::b(n))),
            Raw::Text(t) => t.trim().parse::<ByteSize>().map(Budget).map_err(|_| {
                D::Error::custom(format!(
                    "{t:?} is not a size; write a number and a unit such as \"512MiB\", \"2GiB\" or \"64MB\""
                ))
            }),
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
fn default_group() -> String {
    "gene_id".into()
}
fn default_total() -> Budget {
    Budget(ByteSize::gib(2))
}
pub(crate) fn default_rows_per_gene() -> usize {
    250
}
pub(crate) fn default_k() -> usize {
    3
}
pub(crate) fn default_genes_per_file() -> usize {
    100
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
        let m = &self.memory;
        if m.total.as_u64() == 0 {
            return Err((
                "memory.total".into(),
                "the total budget must be above zero".into(),
            ));
        }
        let mut set = 0u64;
        let mut last = None;
        for stage in STAGES {
            if let Some(b) = m.explicit(stage) {
                if b.as_u64() == 0 {
                    return Err((
                        format!("memory.{stage}"),
                        "a stage budget must be above zero".into(),
                    ));
                }
                set += b.as_u64();
                last = Some(stage);
            }
        }
        if set > m.total.as_u64() {
            let listed: Vec<String> = STAGES
                .iter()
                .filter_map(|s| m.explicit(s).map(|b| format!("{s} {}", fmt_bytes(b.as_u64()))))
                .collect();
            return Err((
                format!("memory.{}", last.unwrap_or("total")),
                format!(
                    "the stage budgets add up to {} ({}), more than memory.total = {}; \
                     lower them or raise memory.total",
                    fmt_bytes(set),
                    listed.join(", "),
                    fmt_bytes(m.total.as_u64())
                ),
            ));
        }
        if let Some(t) = &self.train {
            t.validate()?;
        }
        if let Some(c) = &self.cv {
            c.validate()?;
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

    /// The directory the query stage spills to.
    pub fn spill_dir(&self) -> PathBuf {
        self.memory
            .spill_dir
            .clone()
            .unwrap_or_else(|| self.run.out_dir.join("spill"))
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
    fn stage_budgets_over_total_rejected() {
        let text = "[memory]\ntotal = \"100MiB\"\nscan = \"64MiB\"\ntrain = \"64MiB\"\n";
        let err = Config::from_toml(text, "c.toml", &[]).unwrap_err();
        assert!(err.message.contains("add up to 128.0 MiB"), "{err}");
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
        assert_eq!(c.memory.budget("scan"), (700 << 20) / 8);
    }
}
