//! Memory budgets as the config states them: a total for the run and one per stage.
//!
//! Budgets belong to the memory room so that every stage, whatever room it lives in, asks the
//! same place what it may reserve; the run's config only embeds this section.

use std::path::PathBuf;

use bytesize::ByteSize;
use serde::{Deserialize, Serialize};

use super::fmt_bytes;

/// The stages that hold a memory budget, in pipeline order. `memory.<stage>` sets each one.
pub const STAGES: [&str; 11] = [
    "score", "build", "synth", "scan", "sketch", "bin", "train", "cv", "eval", "predict", "query",
];

/// Stages that run inside another, which holds its reservation meanwhile: the
/// cross-validation keeps its per-row state while the cache is sketched and binned, each
/// fold trains, the folds are evaluated and the out-of-fold predictions are written. Every
/// other stage runs alone, so only these pairs must fit in the total together.
pub const NESTED: [(&str, &[&str]); 1] = [("cv", &["sketch", "bin", "train", "eval", "scan"])];

/// The stages that hold memory at the same time as `stage`: its enclosing stage, or the
/// stages it encloses.
fn partners(stage: &str) -> impl Iterator<Item = &'static str> + '_ {
    NESTED.iter().flat_map(move |&(outer, inner)| {
        let encloses = (outer == stage).then_some(inner).into_iter().flatten().copied();
        let within = inner.contains(&stage).then_some(outer);
        encloses.chain(within)
    })
}

/// Memory budgets: a total for the run and, optionally, one per stage.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemoryConfig {
    /// The run's total. Each stage budget is at most this; stages run one after another and
    /// share it, and a stage with one inside it ([`NESTED`]) must fit beside that one.
    #[serde(default = "default_total")]
    pub total: Budget,
    /// The base model over the genome: its networks, chunk buffers and the longest gene.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<Budget>,
    /// The dataset builder: a batch of genes with their scores, sequence and rows, and the
    /// Parquet writer's row group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build: Option<Budget>,
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
            score: None,
            build: None,
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
    /// The budget set for `stage` in the config, if any.
    pub fn explicit(&self, stage: &str) -> Option<Budget> {
        match stage {
            "score" => self.score,
            "build" => self.build,
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
            .fold(0, u64::saturating_add);
        let unset = STAGES.iter().filter(|s| self.explicit(s).is_none()).count() as u64;
        self.total.as_u64().saturating_sub(set) / unset.max(1)
    }

    /// When `err` suggests a stage budget that this config's `memory.total` could not hold
    /// (beside the stages that hold memory at the same time), the total to suggest as well.
    /// `None` when raising the stage alone is valid.
    pub fn total_needed_for(&self, err: &super::MemoryError) -> Option<u64> {
        let (key, suggested) = err.suggestion();
        let stage = key.strip_prefix("memory.").filter(|s| STAGES.contains(s))?;
        let beside = partners(stage).map(|s| self.budget(s)).max().unwrap_or(0);
        let needed = suggested.saturating_add(beside);
        (needed > self.total.as_u64()).then_some(needed)
    }

    /// Checks that every budget is above zero, that no stage budget passes the total, and
    /// that each stage fits beside the one it runs inside ([`NESTED`]); the error names the
    /// key.
    pub fn validate(&self) -> Result<(), (String, String)> {
        let m = self;
        let total = m.total.as_u64();
        if total == 0 {
            return Err((
                "memory.total".into(),
                "the total budget must be above zero".into(),
            ));
        }
        for stage in STAGES {
            let Some(b) = m.explicit(stage).map(Budget::as_u64) else {
                continue;
            };
            if b == 0 {
                return Err((
                    format!("memory.{stage}"),
                    "a stage budget must be above zero".into(),
                ));
            }
            if b > total {
                return Err((
                    format!("memory.{stage}"),
                    format!(
                        "the stage budget ({}) is more than memory.total = {}; lower it or raise memory.total",
                        fmt_bytes(b),
                        fmt_bytes(total)
                    ),
                ));
            }
        }
        for (outer, inner) in NESTED {
            for stage in inner {
                let (a, b) = (m.budget(outer), m.budget(stage));
                if a.saturating_add(b) > total {
                    // Only two set budgets can pass the total together (an unset one's share
                    // is what the set ones leave); the inner one is named.
                    return Err((
                        format!("memory.{stage}"),
                        format!(
                            "memory.{outer} ({}) stays reserved while memory.{stage} ({}) runs \
                             inside it: together {}, more than memory.total = {}; lower them or \
                             raise memory.total",
                            fmt_bytes(a),
                            fmt_bytes(b),
                            fmt_bytes(a.saturating_add(b)),
                            fmt_bytes(total)
                        ),
                    ));
                }
            }
        }
        Ok(())
    }
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
            Raw::Text(t) => parse_size(&t).map(Budget).map_err(D::Error::custom),
        }
    }
}

/// Parses a size such as "512MiB", refusing one larger than 16 EiB (the most a 64-bit count
/// of bytes holds) rather than letting it saturate there.
fn parse_size(text: &str) -> Result<ByteSize, String> {
    let t = text.trim();
    let not_a_size = || {
        format!("{text:?} is not a size; write a number and a unit such as \"512MiB\", \"2GiB\" or \"64MB\"")
    };
    let size = t.parse::<ByteSize>().map_err(|_| not_a_size())?;
    // The number and the unit apart, to see whether their product fits.
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '_'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let number: f64 = number.replace('_', "").parse().map_err(|_| not_a_size())?;
    let unit = unit.trim();
    let factor = if unit.is_empty() {
        1.0
    } else {
        format!("1{unit}")
            .parse::<ByteSize>()
            .map_err(|_| not_a_size())?
            .as_u64() as f64
    };
    // 2^64 is exactly representable; anything at or above it overflows.
    if !(number * factor).is_finite() || number * factor >= 18_446_744_073_709_551_616.0 {
        return Err(format!(
            "{text:?} is more than 16 EiB, the largest size a budget can hold; write a smaller size such as \"2GiB\""
        ));
    }
    Ok(size)
}

fn default_total() -> Budget {
    Budget(ByteSize::gib(2))
}
