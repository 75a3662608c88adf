//! A trained model: versioned JSON on disk, XGBoost's JSON format for export, importance.

use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::tree::Tree;
use super::{Objective, TrainParams};
use crate::binning::json_float;
use crate::error::InputError;

const FORMAT: &str = "spliceboost-model";
/// Bumped whenever a saved model would be read differently.
pub const MODEL_VERSION: u32 = 1;

/// One boosting round's figures. A metric can be NaN (an AUC on a validation split of one
/// class) or infinite; it is written as `"NaN"` or `"Infinity"` ([`json_float`]), so that the
/// model still reads back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IterLog {
    pub iteration: usize,
    #[serde(with = "json_float::one_f64")]
    pub train_loss: f64,
    #[serde(with = "json_float::opt_f64")]
    pub valid_score: Option<f64>,
    #[serde(with = "json_float::one_f64")]
    pub seconds: f64,
}

/// A feature's importance, summed over splits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Importance {
    pub feature: String,
    /// Total loss reduction of the splits on it.
    pub gain: f64,
    /// Total hessian of the rows its splits saw.
    pub cover: f64,
    /// Number of splits.
    pub weight: u64,
}

/// A boosted ensemble for one binary target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Model {
    pub format: String,
    pub version: u32,
    pub objective: Objective,
    pub class: String,
    #[serde(with = "json_float::one_f32")]
    pub base_margin: f32,
    pub features: Vec<String>,
    pub params: TrainParams,
    pub best_iteration: Option<usize>,
    #[serde(with = "json_float::opt_f64")]
    pub best_score: Option<f64>,
    pub log: Vec<IterLog>,
    pub trees: Vec<Tree>,
}

impl Model {
    /// Heap bytes a trained model holds at most: its trees (each shrunk to its nodes), its
    /// log, its copy of the feature names and its parameters. Priced by the trainer while it
    /// grows the model and by cross-validation for the models it keeps.
    pub fn max_bytes(params: &TrainParams, feature_names_bytes: u64) -> u64 {
        let n = params.n_estimators as u64;
        n * (super::tree::Tree::max_bytes(params.max_depth) + std::mem::size_of::<IterLog>() as u64)
            + feature_names_bytes
            + params.class.len() as u64
            + params
                .cache_dir
                .as_ref()
                .map_or(0, |d| d.as_os_str().len() as u64)
    }

    pub(super) fn new(
        params: &TrainParams,
        base_margin: f32,
        features: Vec<String>,
        trees: Vec<Tree>,
        best: Option<(usize, f64)>,
        log: Vec<IterLog>,
    ) -> Self {
        Self {
            format: FORMAT.into(),
            version: MODEL_VERSION,
            objective: params.objective,
            class: params.class.clone(),
            base_margin,
            features,
            params: params.clone(),
            best_iteration: best.map(|b| b.0),
            best_score: best.map(|b| b.1),
            log,
            trees,
        }
    }

    /// The raw margin for one row of feature values (in [`Self::features`] order; NaN missing).
    pub fn predict_margin(&self, x: &[f32]) -> f32 {
        self.trees.iter().fold(self.base_margin, |m, t| m + t.predict(x))
    }

    /// The prediction (a probability for the logistic objective).
    pub fn predict(&self, x: &[f32]) -> f32 {
        self.objective.transform(self.predict_margin(x))
    }

    /// Writes the model as JSON, atomically. A model that [`Self::load`] would refuse is not
    /// written: that is an internal failure.
    pub fn save(&self, path: &Path) -> anyhow::Result<()> {
        self.check().map_err(|e| {
            anyhow::anyhow!(
                "internal: the trained model is malformed ({e}); not writing {}",
                path.display()
            )
        })?;
        crate::io::write_atomic(path, |w| Ok(serde_json::to_writer(w, self)?))
    }

    /// Reads a model saved by [`Self::save`], refusing other formats and versions.
    pub fn load(path: &Path) -> anyhow::Result<Model> {
        Self::from_json(read_json(path)?, path)
    }

    /// A model from the parsed JSON of `path` (named in errors).
    pub fn from_json(v: Value, path: &Path) -> anyhow::Result<Model> {
        if v.get("format").and_then(Value::as_str) != Some(FORMAT) {
            return Err(InputError::new("not a spliceboost model")
                .file(path)
                .hint("pass a model written by `spliceboost train`; XGBoost exports are one-way")
                .into());
        }
        let m: Model = versioned(
            v,
            path,
            MODEL_VERSION,
            "model",
            "retrain with this version of spliceboost",
        )?;
        m.check()
            .map_err(|e| InputError::new(format!("malformed model: {e}")).file(path))?;
        Ok(m)
    }

    /// Checks the model completely, so that prediction can neither panic nor loop and every
    /// number it writes (here and in XGBoost's format) is finite: the parameters valid, the
    /// objective and class those of the parameters, the base margin finite, feature names
    /// unique; in every tree, arrays of one length, at least one node, every inner node's
    /// children after it (so no path can come back) and inside the tree, each node but the
    /// root the child of exactly one node (its `parent`), leaves marked on both sides, split
    /// features inside the model's features, thresholds, values, gains and covers finite.
    pub fn check(&self) -> Result<(), String> {
        self.params
            .validate()
            .map_err(|(key, m)| format!("parameter `{key}`: {m}"))?;
        if self.objective != self.params.objective || self.class != self.params.class {
            return Err("its objective or class differs from its parameters'".into());
        }
        if !self.base_margin.is_finite() {
            return Err(format!("base margin {}", self.base_margin));
        }
        let mut names: Vec<&str> = self.features.iter().map(String::as_str).collect();
        names.sort_unstable();
        if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
            return Err(format!("feature `{}` is listed twice", w[0]));
        }
        for (i, t) in self.trees.iter().enumerate() {
            t.check(self.features.len())
                .map_err(|e| format!("tree {i}: {e}"))?;
        }
        Ok(())
    }

    /// Gain, cover and split count per feature, largest gain first.
    pub fn importance(&self) -> Vec<Importance> {
        let mut imp: Vec<Importance> = self
            .features
            .iter()
            .map(|f| Importance {
                feature: f.clone(),
                gain: 0.0,
                cover: 0.0,
                weight: 0,
            })
            .collect();
        for t in &self.trees {
            for n in 0..t.len() {
                if !t.is_leaf(n) {
                    let e = &mut imp[t.feature[n] as usize];
                    e.gain += t.loss_change[n] as f64;
                    e.cover += t.sum_hess[n] as f64;
                    e.weight += 1;
                }
            }
        }
        imp.sort_by(|a, b| b.gain.total_cmp(&a.gain).then(a.feature.cmp(&b.feature)));
        imp
    }

    /// The model in XGBoost's JSON format (as XGBoost 3.x writes it): `Booster.load_model`
    /// reads it and predicts the same values.
    pub fn to_xgboost_json(&self) -> Value {
        let nf = self.features.len();
        let trees: Vec<Value> = self
            .trees
            .iter()
            .enumerate()
            .map(|(id, t)| {
                let leaf = |n: usize| t.is_leaf(n);
                json!({
                    "base_weights": t.value,
                    "categories": [], "categories_nodes": [], "categories_segments": [], "categories_sizes": [],
                    "default_left": t.default_left.iter().map(|&d| u8::from(d)).collect::<Vec<_>>(),
                    "id": id,
                    "left_children": t.left,
                    "loss_changes": t.loss_change,
                    "parents": t.parent,
                    "right_children": t.right,
                    "split_conditions": (0..t.len()).map(|n| if leaf(n) { t.value[n] } else { t.threshold[n] }).collect::<Vec<f32>>(),
                    "split_indices": (0..t.len()).map(|n| if leaf(n) { 0 } else { t.feature[n] }).collect::<Vec<u32>>(),
                    "split_type": vec![0; t.len()],
                    "sum_hessian": t.sum_hess,
                    "tree_param": {
                        "num_deleted": "0",
                        "num_feature": nf.to_string(),
                        "num_nodes": t.len().to_string(),
                        "size_leaf_vector": "1"
                    }
                })
            })
            .collect();
        let n = self.trees.len();
        let (objective, base_score) = match self.objective {
            Objective::Logistic => (
                json!({"name": "binary:logistic", "reg_loss_param": {"scale_pos_weight": self.params.scale_pos_weight.to_string()}}),
                self.objective.transform(self.base_margin),
            ),
            Objective::SquaredError => (
                json!({"name": "reg:squarederror", "reg_loss_param": {}}),
                self.base_margin,
            ),
        };
        json!({
            "learner": {
                "attributes": {},
                "feature_names": self.features,
                "feature_types": vec!["float"; nf],
                "gradient_booster": {
                    "model": {
                        "cats": {"enc": [], "feature_segments": [], "sorted_idx": []},
                        "gbtree_model_param": {"num_parallel_tree": "1", "num_trees": n.to_string()},
                        "iteration_indptr": (0..=n).collect::<Vec<_>>(),
                        "tree_info": vec![0; n],
                        "trees": trees
                    },
                    "name": "gbtree"
                },
                "learner_model_param": {
                    "base_score": format!("[{base_score:E}]"),
                    "boost_from_average": "1",
                    "num_class": "0",
                    "num_feature": nf.to_string(),
                    "num_target": "1"
                },
                "objective": objective
            },
            "version": [3, 0, 0]
        })
    }
}

/// Reads and parses a saved model or bundle.
pub(crate) fn read_json(path: &Path) -> anyhow::Result<Value> {
    let bad = |m: String| InputError::new(m).file(path);
    let text = std::fs::read(path).map_err(|e| bad(format!("cannot read the model: {e}")))?;
    Ok(serde_json::from_slice(&text).map_err(|e| {
        bad(format!("not a readable model (truncated or not JSON): {e}"))
            .hint("train it again or restore the file")
    })?)
}

/// Deserialises a saved `what` (a model or a bundle) after checking its format version.
pub(crate) fn versioned<T: serde::de::DeserializeOwned>(
    v: Value,
    path: &Path,
    expected: u32,
    what: &str,
    hint: &str,
) -> anyhow::Result<T> {
    let bad = |m: String| InputError::new(m).file(path);
    let version = v.get("version").and_then(Value::as_u64).unwrap_or(0);
    if version != expected as u64 {
        return Err(bad(format!(
            "{what} format version {version}; this spliceboost reads version {expected}"
        ))
        .hint(hint)
        .into());
    }
    // The error names the field, e.g. `trees[3].threshold[5]: invalid type: null`.
    Ok(serde_path_to_error::deserialize(v).map_err(|e| bad(format!("malformed {what}: {e}")))?)
}
