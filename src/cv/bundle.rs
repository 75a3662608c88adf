//! The final meta-model as one file: a model per class (or an ensemble of them), the
//! calibration fitted on the out-of-fold predictions, the feature manifest and the config
//! that produced it, so that `predict` needs nothing else to score a new dataset.

use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::boost::Model;
use crate::error::InputError;
use crate::eval::calibrate::{ClassCalibration, Method, Mode};
use crate::io::CLASS_NAMES;

use super::CvParams;

pub const FORMAT: &str = "spliceboost-bundle";
pub const VERSION: u32 = 1;

/// Three one-vs-rest classifiers and their calibration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bundle {
    pub format: String,
    pub version: u32,
    /// Class names by code: neither, donor, acceptor.
    pub classes: Vec<String>,
    /// The features every model reads, in this order.
    pub features: Vec<String>,
    /// Per class (by code), the members whose probabilities are averaged: one model, or
    /// `cv.ensemble_size` models trained on disjoint gene subsets.
    pub models: Vec<Vec<Model>>,
    /// Applied to the averaged probabilities; `None` when `cv.calibration = "none"`.
    pub calibration: Option<ClassCalibration>,
    /// The run's config, as TOML, with every default filled in.
    pub config_toml: String,
}

impl Bundle {
    pub fn new(
        models: Vec<Vec<Model>>,
        calibration: Option<ClassCalibration>,
        config_toml: String,
    ) -> Result<Self, String> {
        let features = models
            .first()
            .and_then(|m| m.first())
            .map(|m| m.features.clone())
            .ok_or("a bundle needs a model per class")?;
        let b = Self {
            format: FORMAT.into(),
            version: VERSION,
            classes: CLASS_NAMES.iter().map(|c| c.to_string()).collect(),
            features,
            models,
            calibration,
            config_toml,
        };
        b.check()?;
        Ok(b)
    }

    /// Everything `predict` relies on: three classes by code, a model per class (each
    /// complete, [`Model::check`]) reading the bundle's features, and the calibration the
    /// config asked for: none when `cv.calibration = "none"`, else calibrators of that method
    /// in `cv.calibration_mode`, each complete ([`ClassCalibration::check`]).
    fn check(&self) -> Result<(), String> {
        if self.classes != CLASS_NAMES {
            return Err(format!("classes {:?}, not {CLASS_NAMES:?}", self.classes));
        }
        if self.models.len() != 3 || self.models.iter().any(Vec::is_empty) {
            return Err("a bundle needs at least one model for each of the three classes".into());
        }
        for (c, members) in self.models.iter().enumerate() {
            for m in members {
                if m.features != self.features {
                    return Err(format!(
                        "a `{}` model reads other features than the bundle",
                        CLASS_NAMES[c]
                    ));
                }
                if m.class != CLASS_NAMES[c] {
                    return Err(format!("slot `{}` holds a `{}` model", CLASS_NAMES[c], m.class));
                }
                m.check()
                    .map_err(|e| format!("a `{}` model: {e}", CLASS_NAMES[c]))?;
            }
        }
        let cv = self.cv_params()?;
        match (&self.calibration, cv.calibration) {
            (None, Method::None) => {}
            (None, m) => {
                return Err(format!(
                    "no calibration, but its config says `cv.calibration = \"{}\"`",
                    format!("{m:?}").to_lowercase()
                ))
            }
            (Some(_), Method::None) => {
                return Err("a calibration, but its config says `cv.calibration = \"none\"`".into())
            }
            (Some(cal), m) => {
                if cal.mode() != cv.calibration_mode {
                    let name = |m: Mode| match m {
                        Mode::PerClass => "per_class",
                        Mode::Splice => "splice",
                    };
                    return Err(format!(
                        "calibration mode `{}`, but its config says `cv.calibration_mode = \"{}\"`",
                        name(cal.mode()),
                        name(cv.calibration_mode)
                    ));
                }
                cal.check(m).map_err(|e| format!("calibration: {e}"))?;
            }
        }
        Ok(())
    }

    /// The `[cv]` section of the bundle's config (its defaults when there is none).
    fn cv_params(&self) -> Result<CvParams, String> {
        let bad = |e: String| format!("its config is not a valid spliceboost config: {e}");
        let table: toml::Table =
            toml::from_str(&self.config_toml).map_err(|e| bad(e.message().to_string()))?;
        match table.get("cv") {
            Some(cv) => cv
                .clone()
                .try_into()
                .map_err(|e: toml::de::Error| bad(format!("[cv]: {}", e.message()))),
            None => Ok(CvParams::default()),
        }
    }

    /// Class probabilities of one row (features in [`Self::features`] order, NaN missing):
    /// each class's members averaged, then calibrated. Also returns the uncalibrated ones.
    pub fn predict(&self, x: &[f32]) -> ([f32; 3], [f32; 3]) {
        let mut raw = [0f32; 3];
        for (c, members) in self.models.iter().enumerate() {
            raw[c] = members.iter().map(|m| m.predict(x)).sum::<f32>() / members.len() as f32;
        }
        let cal = match &self.calibration {
            Some(cal) => cal.apply(raw),
            None => raw,
        };
        (raw, cal)
    }

    /// Writes the bundle as JSON, atomically.
    pub fn save(&self, path: &Path) -> anyhow::Result<()> {
        crate::io::write_atomic(path, |w| Ok(serde_json::to_writer(w, self)?))
    }

    /// Reads a bundle written by [`Self::save`] from parsed JSON, refusing other versions.
    pub fn from_json(v: Value, path: &Path) -> anyhow::Result<Self> {
        let b: Bundle = crate::boost::versioned(
            v,
            path,
            VERSION,
            "model bundle",
            "run the cross-validation again with this version of spliceboost",
        )?;
        b.check()
            .map_err(|e| InputError::new(format!("malformed model bundle: {e}")).file(path))?;
        Ok(b)
    }
}
