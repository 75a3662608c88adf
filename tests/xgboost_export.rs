//! The XGBoost export against XGBoost itself.
//!
//! `fixtures/xgboost/model.json` is a hand-written spliceboost model (five trees of depth 0 to
//! 3, missing values defaulting both ways); `model.xgb.json` is spliceboost's export of it,
//! written by `write_xgboost_fixture` below; `data.json` (float32 rows with NaN, some exactly
//! on split thresholds) and `expected.json` (what `xgboost.Booster.load_model` on that export
//! predicts for them) are written by `fixtures/xgboost/make_expected.py`. Regenerate with:
//!
//! ```text
//! SPLICEBOOST_WRITE_FIXTURES=1 cargo test --test xgboost_export -- --ignored
//! benches/.venv/bin/python fixtures/xgboost/make_expected.py
//! ```

use std::path::{Path, PathBuf};

use serde_json::Value;
use spliceboost::boost::Model;

/// Agreement required between spliceboost's and XGBoost's f32 margins and probabilities.
/// Both sum the same f32 leaf values in the same order (base margin, then tree by tree), so
/// they differ only where XGBoost recomputes the base margin from the exported base_score
/// (logit of the f32 probability, a few ulp) and in its f32 sigmoid; margins here are under 2
/// in magnitude, where an f32 ulp is 1.2e-7.
const TOL: f32 = 1e-6;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/xgboost")
        .join(name)
}

fn read_json(name: &str) -> Value {
    let path = fixture(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

fn model() -> Model {
    Model::load(&fixture("model.json")).unwrap()
}

/// The export as the committed file is written: pretty JSON text.
fn export_text(m: &Model) -> String {
    serde_json::to_string_pretty(&m.to_xgboost_json()).unwrap() + "\n"
}

/// Rows of `data.json`; null is a missing value. Each number is an f32's exact f64 value, so
/// the cast is exact.
fn rows() -> Vec<Vec<f32>> {
    let data = read_json("data.json");
    assert_eq!(data["features"], serde_json::to_value(&model().features).unwrap());
    data["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            r.as_array()
                .unwrap()
                .iter()
                .map(|v| {
                    if v.is_null() {
                        f32::NAN
                    } else {
                        v.as_f64().unwrap() as f32
                    }
                })
                .collect()
        })
        .collect()
}

fn f32s(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

#[test]
fn export_equals_committed_model_xgb_json() {
    // Both sides go through the same text-to-Value parse (serde_json without
    // `float_roundtrip` may read a float 1 ulp off, but reads the same text the same way).
    let got: Value = serde_json::from_str(&export_text(&model())).unwrap();
    let want = read_json("model.xgb.json");
    assert!(
        got == want,
        "Model::to_xgboost_json() no longer writes fixtures/xgboost/model.xgb.json; if the change \
         is intended, regenerate the fixtures (see fixtures/README.md) so that XGBoost checks it"
    );
}

#[test]
fn xgboost_predicts_what_spliceboost_predicts() {
    let m = model();
    let rows = rows();
    let expected = read_json("expected.json");
    let (margin, prob) = (f32s(&expected["margin"]), f32s(&expected["prob"]));
    assert_eq!((margin.len(), prob.len()), (rows.len(), rows.len()));
    for (i, x) in rows.iter().enumerate() {
        assert_eq!(x.len(), m.features.len(), "row {i}");
        let (got_m, got_p) = (m.predict_margin(x), m.predict(x));
        assert!(
            (got_m - margin[i]).abs() <= TOL,
            "row {i} {x:?}: margin {got_m}, xgboost {}",
            margin[i]
        );
        assert!(
            (got_p - prob[i]).abs() <= TOL,
            "row {i} {x:?}: probability {got_p}, xgboost {}",
            prob[i]
        );
    }
}

#[test]
fn fixture_rows_cover_thresholds_and_default_directions() {
    // Without this, the comparison above could pass on data that never takes a default
    // direction or never sits on a threshold: every inner node must see a row exactly on its
    // threshold, one just below it, and a missing value.
    let m = model();
    let rows = rows();
    for (t, tree) in m.trees.iter().enumerate() {
        let mut seen = vec![[false; 3]; tree.len()];
        for x in &rows {
            let mut n = 0;
            while !tree.is_leaf(n) {
                let v = x[tree.feature[n] as usize];
                let thr = tree.threshold[n];
                if v.is_nan() {
                    seen[n][2] = true;
                } else if v == thr {
                    seen[n][0] = true;
                } else if v == thr.next_down() {
                    seen[n][1] = true;
                }
                let left = if v.is_nan() { tree.default_left[n] } else { v < thr };
                n = (if left { tree.left[n] } else { tree.right[n] }) as usize;
            }
        }
        for n in (0..tree.len()).filter(|&n| !tree.is_leaf(n)) {
            assert_eq!(seen[n], [true; 3], "tree {t} node {n}: on, below, missing");
        }
    }
    let defaults: Vec<bool> = m
        .trees
        .iter()
        .flat_map(|t| (0..t.len()).filter(|&n| !t.is_leaf(n)).map(|n| t.default_left[n]))
        .collect();
    assert!(defaults.contains(&true) && defaults.contains(&false));
    assert!(m.trees.iter().any(|t| t.len() == 1), "a single-leaf tree");
}

/// Writes `fixtures/xgboost/model.xgb.json` from `model.json` with spliceboost's exporter.
/// Run `make_expected.py` afterwards so that XGBoost's predictions follow.
#[test]
#[ignore = "writes fixtures; run with SPLICEBOOST_WRITE_FIXTURES=1 and --ignored"]
fn write_xgboost_fixture() {
    if std::env::var_os("SPLICEBOOST_WRITE_FIXTURES").is_none() {
        eprintln!("SPLICEBOOST_WRITE_FIXTURES is not set: nothing written");
        return;
    }
    std::fs::write(fixture("model.xgb.json"), export_text(&model())).unwrap();
}
