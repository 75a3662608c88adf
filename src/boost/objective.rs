//! What a model minimises, and how its margins become predictions.
//!
//! Objectives give a row's gradient and loss; the boosting loop writes them into per-row
//! arrays it allocates once, in the passes it makes over the rows anyway.

use serde::{Deserialize, Serialize};

use super::EvalMetric;

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
    /// A row's gradient and hessian at margin `m` for target `y`, unweighted. Per row, so
    /// that the boosting loop computes them in the same pass as the row's weight.
    /// `p` is the prediction, `transform(m)`, which the caller often has already.
    #[inline]
    pub fn grad_hess(&self, m: f32, p: f32, y: f32) -> (f32, f32) {
        match self {
            Objective::Logistic => (p - y, (p * (1.0 - p)).max(1e-16)),
            Objective::SquaredError => (m - y, 1.0),
        }
    }

    /// The metric the log reports as the training loss: log loss, or RMSE for squared
    /// error (a mean of [`EvalMetric::row_term`]s of the predictions).
    pub fn loss_metric(&self) -> EvalMetric {
        match self {
            Objective::Logistic => EvalMetric::Logloss,
            Objective::SquaredError => EvalMetric::Rmse,
        }
    }

    /// The margin's meaning as a prediction.
    #[inline]
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
