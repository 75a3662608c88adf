//! The `[train]` section: boosting parameters, their defaults and their checks.

use serde::{Deserialize, Serialize};

use super::tree::SplitParams;
use super::Objective;

/// The validation metric early stopping watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EvalMetric {
    #[default]
    Logloss,
    Auc,
    Rmse,
}

impl EvalMetric {
    pub(crate) fn higher_is_better(self) -> bool {
        matches!(self, EvalMetric::Auc)
    }

    /// The metric of predictions `p` against 0/1 targets `y`; `keys` is the AUC's sort buffer.
    pub(crate) fn compute(self, p: &[f32], y: &[f32], keys: &mut Vec<u64>) -> f64 {
        match self {
            EvalMetric::Auc => crate::eval::roc_auc(p, y, keys),
            _ => {
                let s: f64 = p.iter().zip(y).map(|(&a, &b)| self.row_term(a, b)).sum();
                self.of_sum(s, p.len() as u64)
            }
        }
    }

    /// Whether the metric is a mean of row terms ([`Self::row_term`]), which a pass over the
    /// rows can sum as it goes; the AUC ranks every row instead.
    pub(crate) fn is_mean(self) -> bool {
        !matches!(self, EvalMetric::Auc)
    }

    /// A row's term of a mean metric: its log loss, or its squared error.
    #[inline]
    pub(crate) fn row_term(self, p: f32, y: f32) -> f64 {
        match self {
            EvalMetric::Rmse => ((p - y) as f64).powi(2),
            _ => crate::eval::logloss_term(p, y),
        }
    }

    /// A mean metric from the sum of `n` rows' terms (NaN without rows, as the log loss of
    /// no predictions).
    pub(crate) fn of_sum(self, sum: f64, n: u64) -> f64 {
        match self {
            EvalMetric::Rmse => (sum / n.max(1) as f64).sqrt(),
            _ if n == 0 => f64::NAN,
            _ => sum / n as f64,
        }
    }
}

/// How a tree's training rows are drawn (LightGBM's `data_sample_strategy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Sampling {
    /// Each row with probability `subsample`.
    #[default]
    Uniform,
    /// Gradient-based one-side sampling: the `top_rate` share of rows with the largest
    /// gradients, and `other_rate` of the rest at random, weighted up.
    Goss,
}

impl Sampling {
    fn is_uniform(&self) -> bool {
        *self == Sampling::Uniform
    }
}

/// Training parameters: the `[train]` section. Names and defaults follow XGBoost.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainParams {
    /// The one-vs-rest class: `neither`, `donor` or `acceptor`.
    #[serde(default = "d_class")]
    pub class: String,
    #[serde(default)]
    pub objective: Objective,
    #[serde(default = "d_trees")]
    pub n_estimators: usize,
    #[serde(default = "d_eta")]
    pub learning_rate: f64,
    #[serde(default = "d_depth")]
    pub max_depth: usize,
    #[serde(default = "d_one")]
    pub min_child_weight: f64,
    #[serde(default = "d_one")]
    pub lambda: f64,
    #[serde(default)]
    pub alpha: f64,
    #[serde(default)]
    pub gamma: f64,
    #[serde(default = "d_one")]
    pub subsample: f64,
    #[serde(default = "d_one")]
    pub colsample_bytree: f64,
    /// `uniform` (`subsample`) or `goss`; written into a model only when not uniform.
    #[serde(default, skip_serializing_if = "Sampling::is_uniform")]
    pub sampling: Sampling,
    /// GOSS: the share of training rows with the largest |gradient × hessian| each tree keeps.
    #[serde(default = "d_top", skip_serializing_if = "is_d_top")]
    pub top_rate: f64,
    /// GOSS: the share of training rows drawn from the rest.
    #[serde(default = "d_other", skip_serializing_if = "is_d_other")]
    pub other_rate: f64,
    #[serde(default = "d_one")]
    pub scale_pos_weight: f64,
    #[serde(default = "d_bins")]
    pub max_bin: usize,
    /// The quantile sketch's parameter `k`: larger is more exact and takes more of the
    /// sketch budget (about 8·k bytes a feature per level).
    #[serde(default = "d_sketch")]
    pub sketch_size: usize,
    /// Stop after this many rounds without a better validation score (0: never).
    #[serde(default)]
    pub early_stopping_rounds: usize,
    #[serde(default)]
    pub eval_metric: EvalMetric,
    /// Share of genes held out for validation (0 for none).
    #[serde(default = "d_valid")]
    pub valid_fraction: f64,
    /// Write the training's state every this many trees (0: never), so that a killed
    /// training resumes there; the checkpoints live in the binned cache's directory. It does
    /// not change the model, so a model does not record it.
    #[serde(default, skip_serializing)]
    pub checkpoint_every: usize,
    /// Where binned page caches live; default `<run.out_dir>/cache`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_dir: Option<std::path::PathBuf>,
}

fn d_class() -> String {
    "donor".into()
}
fn d_trees() -> usize {
    100
}
fn d_eta() -> f64 {
    0.3
}
fn d_depth() -> usize {
    6
}
fn d_one() -> f64 {
    1.0
}
fn d_top() -> f64 {
    0.2
}
fn is_d_top(v: &f64) -> bool {
    *v == d_top()
}
fn d_other() -> f64 {
    0.1
}
fn is_d_other(v: &f64) -> bool {
    *v == d_other()
}
fn d_bins() -> usize {
    256
}
fn d_sketch() -> usize {
    crate::binning::DEFAULT_SKETCH_SIZE
}
fn d_valid() -> f64 {
    0.2
}

impl Default for TrainParams {
    fn default() -> Self {
        toml::from_str("").expect("every field has a default")
    }
}

impl TrainParams {
    /// The class code of `class`.
    pub fn class_code(&self) -> Result<u8, String> {
        crate::io::CLASS_NAMES
            .iter()
            .position(|c| *c == self.class)
            .map(|c| c as u8)
            .ok_or_else(|| format!("`{}` is not a class; use neither, donor or acceptor", self.class))
    }

    /// Checks ranges; the error names the key.
    pub fn validate(&self) -> Result<(), (String, String)> {
        let bad = |k: &str, m: &str| Err((format!("train.{k}"), m.to_string()));
        if let Err(m) = self.class_code() {
            return Err(("train.class".into(), m));
        }
        if self.n_estimators == 0 {
            return bad("n_estimators", "must be at least 1");
        }
        if !(self.learning_rate > 0.0 && self.learning_rate <= 1.0) {
            return bad("learning_rate", "must be in (0, 1]");
        }
        if self.max_depth == 0 || self.max_depth > 16 {
            return bad("max_depth", "must be from 1 to 16");
        }
        if !(self.subsample > 0.0 && self.subsample <= 1.0) {
            return bad("subsample", "must be in (0, 1]");
        }
        if !(self.colsample_bytree > 0.0 && self.colsample_bytree <= 1.0) {
            return bad("colsample_bytree", "must be in (0, 1]");
        }
        if self.sampling == Sampling::Goss {
            if self.subsample != 1.0 {
                return bad(
                    "subsample",
                    "must be 1 with train.sampling = \"goss\", which draws the rows itself",
                );
            }
            if !(self.top_rate > 0.0 && self.other_rate > 0.0 && self.top_rate + self.other_rate <= 1.0) {
                return bad(
                    "top_rate",
                    "and train.other_rate must be > 0 with a sum of at most 1",
                );
            }
        }
        if !(2..=256).contains(&self.max_bin) {
            return bad("max_bin", "must be from 2 to 256");
        }
        if !(64..=1 << 20).contains(&self.sketch_size) {
            return bad("sketch_size", "must be from 64 to 1048576");
        }
        if !(0.0..1.0).contains(&self.valid_fraction) {
            return bad("valid_fraction", "must be in [0, 1)");
        }
        for (k, v) in [
            ("lambda", self.lambda),
            ("alpha", self.alpha),
            ("gamma", self.gamma),
            ("min_child_weight", self.min_child_weight),
        ] {
            if !(v >= 0.0 && v.is_finite()) {
                return bad(k, "must be a finite number ≥ 0");
            }
        }
        if !(self.scale_pos_weight > 0.0 && self.scale_pos_weight.is_finite()) {
            return bad("scale_pos_weight", "must be a finite number > 0");
        }
        Ok(())
    }

    pub(crate) fn split_params(&self) -> SplitParams {
        SplitParams {
            lambda: self.lambda,
            alpha: self.alpha,
            gamma: self.gamma,
            min_child_weight: self.min_child_weight,
        }
    }
}

/// A row's part in training.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Train,
    Valid,
    /// Neither (rows of genes left out).
    Skip,
}
