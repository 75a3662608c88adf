//! Models and bundles: infinite feature values train into models that every reader loads
//! (spliceboost's model and bundle, the XGBoost export), and a model or bundle that is not
//! whole is refused at load with one line naming the file and what is wrong, before
//! `predict` writes anything.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use arrow::array::AsArray;
use arrow::datatypes::Float32Type;
use common::{floats, redact, run, strings, write_parquet};
use serde_json::Value;
use spliceboost::boost::Model;
use spliceboost::predict::Predictor;

const GENES: usize = 30;
const ROWS_PER_GENE: usize = 40;

/// A small three-class dataset whose features hold +inf, -inf, NaN and nulls: `flag` (few
/// distinct values, +inf mostly on donor rows), `depth` (many distinct values, -inf mostly
/// on acceptor rows) and `noise`. Returns the dataset and its feature rows in dataset order.
fn infinite_dataset(dir: &Path) -> (PathBuf, Vec<[Option<f64>; 3]>) {
    let data = dir.join("data");
    let mut rows = vec![];
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut rand = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        (x >> 11) as f64 / (1u64 << 53) as f64
    };
    for file in 0..2 {
        let (mut genes, mut labels) = (vec![], vec![]);
        let (mut flag, mut depth, mut noise) = (vec![], vec![], vec![]);
        for g in file * GENES / 2..(file + 1) * GENES / 2 {
            for r in 0..ROWS_PER_GENE {
                let label = [0, 0, 1, 2][r % 4];
                genes.push(Some(format!("g{g:02}")));
                labels.push(Some(["", "donor", "acceptor"][label]));
                let u = rand();
                flag.push(Some(match (label, u) {
                    (1, u) if u < 0.7 => f64::INFINITY,
                    (_, u) if u < 0.05 => f64::INFINITY,
                    (_, u) if u < 0.5 => 1.0,
                    _ => 0.0,
                }));
                let v = rand();
                depth.push(match (label, v) {
                    (2, v) if v < 0.7 => Some(f64::NEG_INFINITY),
                    (_, v) if v < 0.05 => Some(f64::NEG_INFINITY),
                    (_, v) if v < 0.1 => None,
                    (_, v) if v < 0.15 => Some(f64::NAN),
                    _ => Some(rand() * 100.0),
                });
                let w = rand();
                noise.push(Some(if w < 0.02 { f64::INFINITY } else { w }));
                rows.push([
                    *flag.last().unwrap(),
                    *depth.last().unwrap(),
                    *noise.last().unwrap(),
                ]);
            }
        }
        let genes: Vec<Option<&str>> = genes.iter().map(|g| g.as_deref()).collect();
        write_parquet(
            &data.join(format!("master/batch_{:05}.parquet", file + 1)),
            vec![
                ("gene_id", strings(&genes)),
                ("splice_type", strings(&labels)),
                ("flag", floats(&flag)),
                ("depth", floats(&depth)),
                ("noise", floats(&noise)),
            ],
        );
    }
    (data, rows)
}

fn f32_row(r: &[Option<f64>; 3]) -> Vec<f32> {
    r.iter().map(|v| v.map_or(f32::NAN, |v| v as f32)).collect()
}

fn config(dir: &Path, name: &str, data: &Path, cv: bool) -> PathBuf {
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(
        &path,
        format!(
            "[run]\nout_dir = {:?}\nprogress = false\n\n[dataset]\npath = {:?}\n\n\
             [train]\nn_estimators = 10\nmax_depth = 3\nlearning_rate = 0.5\nvalid_fraction = 0.2\n{}",
            dir.join(name).display().to_string(),
            data.display().to_string(),
            if cv { "\n[cv]\nn_folds = 3\n" } else { "" }
        ),
    )
    .unwrap();
    path
}

fn json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn stages(out: &Path) -> Vec<String> {
    json(&out.join("run_summary.json"))["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_string())
        .collect()
}

fn nulls(v: &Value, at: &str, found: &mut Vec<String>) {
    match v {
        Value::Null => found.push(at.to_string()),
        Value::Array(a) => a
            .iter()
            .enumerate()
            .for_each(|(i, x)| nulls(x, &format!("{at}[{i}]"), found)),
        Value::Object(o) => o.iter().for_each(|(k, x)| nulls(x, &format!("{at}.{k}"), found)),
        _ => {}
    }
}

/// The margin XGBoost computes from its JSON model, walked here as XGBoost walks it: missing
/// goes the default way, else `x < split_condition` goes left; a leaf's value is its
/// split_condition. Starts from `base`, adding trees in order in f32, as spliceboost does.
fn xgb_margin(xgb: &Value, base: f32, x: &[f32]) -> f32 {
    let ints = |t: &Value, k: &str| -> Vec<i64> {
        t[k].as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_i64().unwrap())
            .collect()
    };
    let mut m = base;
    for t in xgb["learner"]["gradient_booster"]["model"]["trees"]
        .as_array()
        .unwrap()
    {
        let (left, right) = (ints(t, "left_children"), ints(t, "right_children"));
        let (feat, dleft) = (ints(t, "split_indices"), ints(t, "default_left"));
        let cond: Vec<f32> = t["split_conditions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap() as f32)
            .collect();
        let mut n = 0;
        while left[n] != -1 {
            let v = x[feat[n] as usize];
            let go_left = if v.is_nan() { dleft[n] == 1 } else { v < cond[n] };
            n = (if go_left { left[n] } else { right[n] }) as usize;
        }
        m += cond[n];
    }
    m
}

fn read_scores(path: &Path, columns: &[&str]) -> Vec<Vec<f32>> {
    let f = std::fs::File::open(path).unwrap();
    let mut out = vec![vec![]; columns.len()];
    for b in parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(f)
        .unwrap()
        .build()
        .unwrap()
    {
        let b = b.unwrap();
        for (c, name) in columns.iter().enumerate() {
            let a = b
                .column_by_name(name)
                .unwrap()
                .as_primitive::<Float32Type>()
                .clone();
            out[c].extend((0..a.len()).map(|i| a.value(i)));
        }
    }
    out
}

fn predict(model: &Path, data: &Path, out: &Path) {
    let (code, _, err) = run(&[
        "predict",
        "--model",
        model.to_str().unwrap(),
        "--dataset",
        data.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
}

#[test]
fn infinite_feature_values_train_into_models_every_reader_loads() {
    let dir = tempfile::tempdir().unwrap();
    let (data, rows) = infinite_dataset(dir.path());
    let cfg = config(dir.path(), "train", &data, false);
    let out = dir.path().join("train");
    for round in 0..2 {
        let (code, _, err) = run(&["train", cfg.to_str().unwrap()]);
        assert_eq!(code, 0, "{err}");
        assert!(err.trim().is_empty(), "{err}");
        // The manifest reads back, so the second run reuses the cache.
        assert_eq!(
            stages(&out).contains(&"bin".to_string()),
            round == 0,
            "{:?}",
            stages(&out)
        );
    }
    let model = Model::load(&out.join("model.json")).unwrap();
    let thresholds: Vec<f32> = model
        .trees
        .iter()
        .flat_map(|t| (0..t.len()).filter(|&n| !t.is_leaf(n)).map(|n| t.threshold[n]))
        .collect();
    assert!(thresholds.iter().all(|t| t.is_finite()), "{thresholds:?}");
    assert!(
        thresholds.contains(&f32::MAX),
        "some split separates +inf from the finite values: {thresholds:?}"
    );

    // The XGBoost export: no null anywhere, and the same margins.
    let xgb = json(&out.join("model.xgb.json"));
    let mut found = vec![];
    nulls(&xgb, "", &mut found);
    assert!(found.is_empty(), "nulls in model.xgb.json at {found:?}");
    let scores = dir.path().join("scores.parquet");
    predict(&out.join("model.json"), &data, &scores);
    let got = read_scores(&scores, &["score", "margin"]);
    assert_eq!(got[0].len(), rows.len());
    for (i, r) in rows.iter().enumerate() {
        let x = f32_row(r);
        let m = model.predict_margin(&x);
        assert_eq!(xgb_margin(&xgb, model.base_margin, &x), m, "row {i} {x:?}");
        assert_eq!((got[1][i], got[0][i]), (m, model.predict(&x)), "row {i} {x:?}");
    }

    // The bundle of a cross-validation on the same data.
    let cfg = config(dir.path(), "cv", &data, true);
    let (code, _, err) = run(&["run", cfg.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let bundle_path = dir.path().join("cv/model_bundle.json");
    let Predictor::Bundle(bundle) = Predictor::load(&bundle_path).unwrap() else {
        panic!("not a bundle")
    };
    predict(&bundle_path, &data, &scores);
    let got = read_scores(&scores, &["p_neither", "p_donor", "p_acceptor"]);
    for (i, r) in rows.iter().enumerate() {
        let p = bundle.predict(&f32_row(r)).1;
        assert!(p.iter().all(|v| v.is_finite()), "row {i}: {p:?}");
        assert_eq!([got[0][i], got[1][i], got[2][i]], p, "row {i}");
    }
}

/// A model trained on small data, as JSON, and the dataset.
fn trained(dir: &Path) -> (Value, PathBuf) {
    let (data, _) = infinite_dataset(dir);
    let cfg = config(dir, "train", &data, false);
    let (code, _, err) = run(&["train", cfg.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    (json(&dir.join("train/model.json")), data)
}

/// Runs `predict` on the model or bundle `v` written to `bad.json`: it must exit 2 within
/// seconds, print one line (returned, redacted) and leave nothing at `--out` nor any
/// temporary file beside it.
fn refused(dir: &Path, data: &Path, v: &Value) -> String {
    refused_bytes(dir, data, &serde_json::to_vec(v).unwrap())
}

/// [`refused`] on the bytes of a model file.
fn refused_bytes(dir: &Path, data: &Path, bytes: &[u8]) -> String {
    let bad = dir.join("bad.json");
    std::fs::write(&bad, bytes).unwrap();
    let out_dir = dir.join("scores");
    std::fs::create_dir_all(&out_dir).unwrap();
    let out = out_dir.join("s.parquet");
    let start = Instant::now();
    let (code, stdout, err) = run(&[
        "predict",
        "--model",
        bad.to_str().unwrap(),
        "--dataset",
        data.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(
        start.elapsed() < Duration::from_secs(30),
        "took {:?}",
        start.elapsed()
    );
    assert_eq!(code, 2, "stdout: {stdout}\nstderr: {err}");
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    let left: Vec<_> = std::fs::read_dir(&out_dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(left.is_empty(), "predict left {left:?}");
    redact(&err, dir)
}

#[test]
fn a_truncated_model_file_is_refused_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let (_, data) = trained(dir.path());
    let bytes = std::fs::read(dir.path().join("train/model.json")).unwrap();
    let err = refused_bytes(dir.path(), &data, &bytes[..bytes.len() / 2]);
    assert!(
        err.contains("bad.json") && err.contains("EOF while parsing"),
        "{err}"
    );
}

#[test]
fn predict_refuses_a_looping_tree_at_once_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (mut v, data) = trained(dir.path());
    assert!(
        v["trees"][0]["left"][0].as_i64().unwrap() > 0,
        "tree 0 has a split"
    );
    // predict used to loop forever on this, leaving a 0-byte temporary file.
    v["trees"][0]["left"][0] = 0.into();
    insta::assert_snapshot!(refused(dir.path(), &data, &v));
}

#[test]
fn model_check_refuses_what_prediction_or_export_cannot_use() {
    let dir = tempfile::tempdir().unwrap();
    let (v, _) = trained(dir.path());
    type Break = fn(&mut Value);
    let cases: [(&str, Break, &str); 8] = [
        (
            "an infinite leaf value",
            |v| {
                let t = &mut v["trees"][0];
                let leaf = t["left"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .position(|c| c == -1)
                    .unwrap();
                t["value"][leaf] = "Infinity".into();
            },
            "tree 0: node",
        ),
        (
            "a -inf threshold",
            |v| v["trees"][0]["threshold"][0] = "-Infinity".into(),
            "tree 0: node 0 has a non-finite threshold (-inf)",
        ),
        (
            "a null threshold, as older versions wrote +inf",
            |v| v["trees"][0]["threshold"][0] = Value::Null,
            "trees[0].threshold[0]: invalid type: null",
        ),
        (
            "a child shared by two nodes",
            |v| {
                let t = &mut v["trees"][0];
                let l = t["left"][0].clone();
                t["right"][0] = l;
            },
            "is the child of two nodes",
        ),
        (
            "a parent that is not the node's parent",
            |v| v["trees"][0]["parent"][1] = 5.into(),
            "tree 0: node 1 is a child of node 0 but names parent 5",
        ),
        (
            "a split on a feature the model lacks",
            |v| v["trees"][0]["feature"][0] = 3.into(),
            "tree 0: node 0 splits on feature 3 of 3",
        ),
        (
            "a NaN base margin",
            |v| v["base_margin"] = "NaN".into(),
            "base margin NaN",
        ),
        (
            "a duplicated feature",
            |v| v["features"][2] = v["features"][0].clone(),
            "is listed twice",
        ),
    ];
    for (what, break_it, expect) in cases {
        let mut bad = v.clone();
        break_it(&mut bad);
        let path = dir.path().join("bad.json");
        std::fs::write(&path, serde_json::to_vec(&bad).unwrap()).unwrap();
        let err = Model::load(&path).expect_err(what).to_string();
        assert!(
            err.starts_with(&format!("{}: malformed model: ", path.display())) && err.contains(expect),
            "{what}: {err}"
        );
    }
}

/// Each broken bundle is refused by `predict` with one line naming the file and the fault.
#[test]
fn bundle_with_missing_or_malformed_calibration_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (data, _) = infinite_dataset(dir.path());
    let cfg = config(dir.path(), "cv", &data, true);
    let (code, _, err) = run(&["run", cfg.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let v = json(&dir.path().join("cv/model_bundle.json"));
    assert_eq!(v["calibration"]["mode"], "per_class");
    let xs = v["calibration"]["calibrators"][1]["x"].as_array().unwrap().len();
    assert!(xs >= 3, "an isotonic map of {xs} points");
    type Break = fn(&mut Value);
    let cases: [(&str, Break); 7] = [
        ("calibration_missing", |v| v["calibration"] = Value::Null),
        ("isotonic_lengths_differ", |v| {
            v["calibration"]["calibrators"][1]["y"]
                .as_array_mut()
                .unwrap()
                .pop();
        }),
        ("isotonic_x_not_sorted", |v| {
            let x = v["calibration"]["calibrators"][1]["x"].as_array_mut().unwrap();
            x.swap(0, 1);
        }),
        ("isotonic_y_nan", |v| {
            v["calibration"]["calibrators"][1]["y"][0] = "NaN".into()
        }),
        ("isotonic_y_above_one", |v| {
            v["calibration"]["calibrators"][2]["y"][0] = 1.5.into()
        }),
        (
            "calibration_mode_differs_from_config",
            |v| {
                v["calibration"] =
                    serde_json::json!({"mode": "splice", "calibrators": [{"kind": "identity"}]})
            },
        ),
        ("platt_in_an_isotonic_bundle", |v| {
            v["calibration"]["calibrators"][0] = serde_json::json!({"kind": "platt", "a": 1.0, "b": 0.0})
        }),
    ];
    // The untouched bundle goes through the same path.
    let scores = dir.path().join("ok.parquet");
    predict(&dir.path().join("cv/model_bundle.json"), &data, &scores);
    for (name, break_it) in cases {
        let mut bad = v.clone();
        break_it(&mut bad);
        insta::assert_snapshot!(name, refused(dir.path(), &data, &bad));
    }
}
