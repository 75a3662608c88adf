//! What a model minimises, and how its margins become predictions.
//!
//! Objectives write gradients into the caller's buffers, as LightGBM's do, so the boosting
//! loop allocates its per-row arrays once.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::binning::cache::PAGE_ROWS;

/// The loss a model minimises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Objective {
    /// Log loss of a sigmoid of the margin.
    #[default]
    #[serde(rename = "binary:logistic")]
    Logistic,
    /// Half squared error of the margin (for tests and regression targets).
    #[serde(rename = "reg:squarederror")]
    SquaredError,
}

impl Objective {
    /// Writes every row's gradient and hessian into the caller's buffers; rows with a zero
    /// `weight` get zeros (they take no part in the tree).
    pub fn gradients(
        &self,
        margin: &[f32],
        target: &[f32],
        weight: &[f32],
        grad: &mut [f32],
        hess: &mut [f32],
    ) {
        let chunk = PAGE_ROWS;
        (grad.par_chunks_mut(chunk), hess.par_chunks_mut(chunk))
            .into_par_iter()
            .enumerate()
            .for_each(|(c, (g, h))| {
                let off = c * chunk;
                for i in 0..g.len() {
                    let (m, y, w) = (margin[off + i], target[off + i], weight[off + i]);
                    let (gi, hi) = match self {
                        Objective::Logistic => {
                            let p = sigmoid(m);
                            (p - y, (p * (1.0 - p)).max(1e-16))
                        }
                        Objective::SquaredError => (m - y, 1.0),
                    };
                    g[i] = gi * w;
                    h[i] = hi * w;
                }
            });
    }

    /// The margin's meaning as a prediction.
    pub fn transform(&self, margin: f32) -> f32 {
        match self {
            Objective::Logistic => sigmoid(margin),
            Objective::SquaredError => margin,
        }
    }

    /// The constant margin that best fits a target with weighted mean `mean`.
    pub fn base_margin(&self, mean: f64) -> f32 {
        match self {
            Objective::Logistic => {
                let p = mean.clamp(1e-6, 1.0 - 1e-6);
                (p / (1.0 - p)).ln() as f32
            }
            Objective::SquaredError => mean as f32,
        }
    }
}

fn sigmoid(m: f32) -> f32 {
    1.0 / (1.0 + (-m).exp())
}
