//! Gene-wise cross-validation end to end on small data: folds, outputs, the bundle, leakage
//! and bad input.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use arrow::array::{Array, AsArray};
use arrow::datatypes::{Float32Type, UInt8Type};
use common::{floats, run, strings, write_parquet};
use spliceboost::memory::{MemoryConsumer, MemoryPool};
use spliceboost::synth::{write_dataset, SynthOptions};

fn synth(dir: &Path, genes: usize) -> PathBuf {
    let out = dir.join("data");
    let opts = SynthOptions {
        genes,
        rows_per_gene: 60,
        kmer: 2,
        genes_per_file: 10,
        seed: 3,
        with_sequence: false,
    };
    let pool = std::sync::Arc::new(MemoryPool::new(1 << 30));
    write_dataset(&out, &opts, &mut MemoryConsumer::new("synth").register(&pool)).unwrap();
    out
}

/// A config for a quick three-fold run on `data`, results in `dir/out`.
fn config(dir: &Path, data: &Path, extra: &str) -> PathBuf {
    let path = dir.join("cv.toml");
    std::fs::write(
        &path,
        format!(
            "[run]\nout_dir = {:?}\nprogress = false\n\n[dataset]\npath = {:?}\n\n[memory]\ntotal = \"1GiB\"\n\n\
             [train]\nn_estimators = 8\nmax_depth = 3\nlearning_rate = 0.3\nearly_stopping_rounds = 3\n\n\
             [cv]\nn_folds = 3\n{extra}\n",
            dir.join("out").display().to_string(),
            data.display().to_string()
        ),
    )
    .unwrap();
    path
}

fn read_parquet(path: &Path) -> Vec<arrow::record_batch::RecordBatch> {
    let f = std::fs::File::open(path).unwrap();
    parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(f)
        .unwrap()
        .build()
        .unwrap()
        .map(|b| b.unwrap())
        .collect()
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

#[test]
fn cv_run_writes_every_output_with_each_gene_in_one_fold() {
    let dir = tempfile::tempdir().unwrap();
    let data = synth(dir.path(), 24);
    let cfg = config(dir.path(), &data, "");
    let (code, _, err) = run(&["run", cfg.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let out = dir.path().join("out");
    for f in spliceboost::cv::OUTPUTS.iter().chain(&[
        "metrics_fold0.json",
        "metrics_fold2.json",
        "run_summary.json",
    ]) {
        assert!(out.join(f).exists(), "{f} missing");
    }
    let mut fold_of: HashMap<String, u8> = HashMap::new();
    let mut rows = 0;
    for b in read_parquet(&out.join("oof_predictions.parquet")) {
        let genes = b.column_by_name("gene_id").unwrap().as_string::<i32>().clone();
        let folds = b
            .column_by_name("fold")
            .unwrap()
            .as_primitive::<UInt8Type>()
            .clone();
        let p: Vec<_> = ["p_neither", "p_donor", "p_acceptor"]
            .iter()
            .map(|c| b.column_by_name(c).unwrap().as_primitive::<Float32Type>().clone())
            .collect();
        for i in 0..b.num_rows() {
            let f = *fold_of
                .entry(genes.value(i).to_string())
                .or_insert(folds.value(i));
            assert_eq!(f, folds.value(i), "gene {} in two folds", genes.value(i));
            assert!(p.iter().all(|a| (0.0..=1.0).contains(&a.value(i))));
        }
        rows += b.num_rows();
    }
    assert_eq!(rows, 24 * 60);
    assert_eq!(fold_of.len(), 24);
    // Balanced: 24 equal genes over 3 folds.
    for f in 0..3u8 {
        assert_eq!(fold_of.values().filter(|&&x| x == f).count(), 8);
    }
    let agg = json(&out.join("metrics_aggregate.json"));
    assert_eq!(agg["folds"], 3);
    // Better than always calling `neither`, and than the base model's own scores.
    let pooled = &agg["pooled"];
    let confusion = pooled["meta"]["metrics"]["confusion"].as_array().unwrap();
    let row_sum = |r: &serde_json::Value| {
        r.as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap())
            .sum::<u64>()
    };
    let majority = row_sum(&confusion[0]) as f64 / confusion.iter().map(row_sum).sum::<u64>() as f64;
    let acc = pooled["meta"]["metrics"]["accuracy"].as_f64().unwrap();
    let base_acc = pooled["base"]["metrics"]["accuracy"].as_f64().unwrap();
    assert!(
        acc > majority + 0.05,
        "meta accuracy {acc}, majority class {majority}"
    );
    assert!(acc > base_acc, "meta accuracy {acc}, base model {base_acc}");
    let splice = pooled["base_vs_meta"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["class"] == "splice")
        .expect("a splice-vs-neither comparison");
    assert_eq!(
        splice["fp_reduction"].as_i64().unwrap(),
        splice["base"]["fp"].as_i64().unwrap() - splice["meta"]["fp"].as_i64().unwrap()
    );
    let tsv = std::fs::read_to_string(out.join("metrics_folds.tsv")).unwrap();
    assert_eq!(tsv.lines().count(), 1 + 3 + 1, "{tsv}");
    let genes_tsv = std::fs::read_to_string(out.join("gene_metrics.tsv")).unwrap();
    assert_eq!(genes_tsv.lines().count(), 1 + 24);
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(
        html.matches("<svg").count() >= 9,
        "ROC, PR and reliability per class"
    );
    let summary = json(&out.join("run_summary.json"));
    let stages: Vec<&str> = summary["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    for s in ["cv", "sketch", "bin", "train", "eval"] {
        assert!(stages.contains(&s), "{stages:?}");
    }
}

#[test]
fn bundle_scores_a_new_dataset_as_class_probabilities() {
    let dir = tempfile::tempdir().unwrap();
    let data = synth(dir.path(), 15);
    let cfg = config(
        dir.path(),
        &data,
        "calibration = \"platt\"\ncalibration_mode = \"splice\"\nensemble_size = 2",
    );
    let (code, _, err) = run(&["run", cfg.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let bundle_path = dir.path().join("out/model_bundle.json");
    let bundle = match spliceboost::predict::Predictor::load(&bundle_path).unwrap() {
        spliceboost::predict::Predictor::Bundle(b) => b,
        _ => panic!("not read as a bundle"),
    };
    assert_eq!(
        bundle.models.iter().map(Vec::len).collect::<Vec<_>>(),
        vec![2, 2, 2]
    );
    assert!(bundle.calibration.is_some());
    assert!(bundle.config_toml.contains("ensemble_size = 2"));
    // Round trip through the file format.
    let copy = dir.path().join("copy.json");
    bundle.save(&copy).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&copy).unwrap()).unwrap();
    let back = spliceboost::cv::Bundle::from_json(v, &copy).unwrap();
    assert_eq!(back.features, bundle.features);
    for (a, b) in back.models.iter().flatten().zip(bundle.models.iter().flatten()) {
        assert_eq!(a.trees, b.trees);
        assert_eq!(a.base_margin, b.base_margin);
    }
    let x: Vec<f32> = (0..bundle.features.len())
        .map(|j| (j % 7) as f32 * 0.13)
        .collect();
    let (p, q) = (bundle.predict(&x).1, back.predict(&x).1);
    for c in 0..3 {
        assert!((p[c] - q[c]).abs() < 1e-6, "{p:?} {q:?}");
    }

    let scores = dir.path().join("scores.parquet");
    let (code, _, err) = run(&[
        "predict",
        "--model",
        bundle_path.to_str().unwrap(),
        "--dataset",
        data.to_str().unwrap(),
        "--out",
        scores.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let mut n = 0;
    for b in read_parquet(&scores) {
        let p: Vec<_> = ["p_neither", "p_donor", "p_acceptor"]
            .iter()
            .map(|c| b.column_by_name(c).unwrap().as_primitive::<Float32Type>().clone())
            .collect();
        let called = b
            .column_by_name("predicted_type")
            .unwrap()
            .as_string::<i32>()
            .clone();
        for i in 0..b.num_rows() {
            let s: f32 = p.iter().map(|a| a.value(i)).sum();
            assert!((s - 1.0).abs() < 1e-4, "calibrated probabilities sum to {s}");
            let best = (0..3).max_by(|&a, &c| p[a].value(i).total_cmp(&p[c].value(i)).then(c.cmp(&a)));
            assert_eq!(called.value(i), ["neither", "donor", "acceptor"][best.unwrap()]);
        }
        n += b.num_rows();
    }
    assert_eq!(n, 15 * 60);
}

/// Each gene's rows share one label rate and a feature that names the gene: row-wise folds
/// would learn the gene from it, gene-wise folds cannot.
#[test]
fn gene_identity_leak_cannot_lift_test_auc() {
    let dir = tempfile::tempdir().unwrap();
    let (mut gene, mut label, mut code, mut noise, mut d, mut a, mut ne) =
        (vec![], vec![], vec![], vec![], vec![], vec![], vec![]);
    let mut state = 12345u64;
    let mut rnd = || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    for g in 0..60 {
        let rate = if g % 2 == 0 { 0.7 } else { 0.05 };
        for _ in 0..40 {
            gene.push(Some(format!("G{g:03}")));
            let u = rnd();
            label.push(if u < rate {
                Some("donor")
            } else if u < rate + 0.1 {
                Some("acceptor")
            } else {
                None
            });
            code.push(Some(g as f64 * 7.0 % 61.0));
            noise.push(Some(rnd()));
            d.push(Some(rnd()));
            a.push(Some(rnd()));
            ne.push(Some(rnd()));
        }
    }
    let gene_refs: Vec<Option<&str>> = gene.iter().map(|g| g.as_deref()).collect();
    write_parquet(
        &dir.path().join("data/leak.parquet"),
        vec![
            ("gene_id", strings(&gene_refs)),
            ("splice_type", strings(&label)),
            ("gene_code", floats(&code)),
            ("noise", floats(&noise)),
            ("donor_score", floats(&d)),
            ("acceptor_score", floats(&a)),
            ("neither_score", floats(&ne)),
        ],
    );
    let cfg = config(dir.path(), &dir.path().join("data"), "calibration = \"none\"");
    std::fs::write(
        &cfg,
        std::fs::read_to_string(&cfg)
            .unwrap()
            .replace("n_estimators = 8", "n_estimators = 30")
            .replace("early_stopping_rounds = 3", "early_stopping_rounds = 0"),
    )
    .unwrap();
    let (code, _, err) = run(&["run", cfg.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let agg = json(&dir.path().join("out/metrics_aggregate.json"));
    let auc = agg["pooled"]["meta"]["metrics"]["classes"][1]["roc_auc"]
        .as_f64()
        .unwrap();
    // The gene's rate is the only signal, and the test genes' codes were never seen.
    assert!(
        auc < 0.62,
        "donor AUC {auc} on unseen genes: a gene leaked across folds"
    );
}

#[test]
fn previous_run_is_kept_unless_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let data = synth(dir.path(), 9);
    let cfg = config(dir.path(), &data, "");
    assert_eq!(run(&["run", cfg.to_str().unwrap()]).0, 0);
    let report = dir.path().join("out/metrics_aggregate.json");
    let before = std::fs::read(&report).unwrap();
    let (code, _, err) = run(&["run", cfg.to_str().unwrap(), "--set", "train.n_estimators=3"]);
    assert_eq!(code, 2);
    insta::assert_snapshot!(common::redact(&err, dir.path()));
    assert_eq!(
        std::fs::read(&report).unwrap(),
        before,
        "the previous run was touched"
    );
    let (code, _, err) = run(&["cv", cfg.to_str().unwrap(), "--overwrite"]);
    assert_eq!(code, 0, "{err}");
}

#[test]
fn fewer_genes_than_folds_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = synth(dir.path(), 2);
    let cfg = config(dir.path(), &data, "");
    let (code, _, err) = run(&["run", cfg.to_str().unwrap()]);
    assert_eq!(code, 2);
    insta::assert_snapshot!(common::redact(&err, dir.path()));
    assert!(!dir.path().join("out/metrics_aggregate.json").exists());
}

#[test]
fn class_absent_from_a_fold_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    // Donors in two genes and acceptors in one: some fold tests none of them.
    let genes: Vec<Option<&str>> = (0..30)
        .map(|i| Some(["G0", "G1", "G2", "G3", "G4", "G5"][i % 6]))
        .collect();
    let labels: Vec<Option<&str>> = (0..30)
        .map(|i| match i % 6 {
            0 if i < 12 => Some("acceptor"),
            1 | 2 if i % 4 == 1 => Some("donor"),
            _ => None,
        })
        .collect();
    let x: Vec<Option<f64>> = (0..30).map(|i| Some(i as f64)).collect();
    write_parquet(
        &dir.path().join("data/a.parquet"),
        vec![
            ("gene_id", strings(&genes)),
            ("splice_type", strings(&labels)),
            ("x", floats(&x)),
        ],
    );
    let cfg = config(dir.path(), &dir.path().join("data"), "");
    let (code, _, err) = run(&["run", cfg.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    insta::assert_snapshot!(common::redact(&err, dir.path()));
}

#[test]
fn dataset_without_base_scores_skips_the_comparison() {
    let dir = tempfile::tempdir().unwrap();
    let data = synth(dir.path(), 9);
    let cfg = config(dir.path(), &data, "");
    let (code, _, err) = run(&[
        "run",
        cfg.to_str().unwrap(),
        "--set",
        "dataset.exclude=[\"neither_score\"]",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("no base-model score column neither_score"), "{err}");
    let agg = json(&dir.path().join("out/metrics_aggregate.json"));
    assert!(agg["pooled"].get("base_vs_meta").is_none());
    let html = std::fs::read_to_string(dir.path().join("out/report.html")).unwrap();
    assert!(html.contains("skipped"));
}

#[cfg(feature = "sql")]
#[test]
fn filter_keeps_only_matching_rows() {
    let dir = tempfile::tempdir().unwrap();
    let data = synth(dir.path(), 30);
    let cfg = config(dir.path(), &data, "filter = \"gene_type = 'protein_coding'\"");
    let (code, _, err) = run(&["run", cfg.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let manifest = std::fs::read_to_string(data.join("master/gene_manifest.csv")).unwrap();
    let coding: std::collections::HashSet<String> = manifest
        .lines()
        .skip(1)
        .filter(|l| l.split(',').nth(2) == Some("protein_coding"))
        .map(|l| l.split(',').next().unwrap().to_string())
        .collect();
    assert!(!coding.is_empty() && coding.len() < 30);
    let mut seen = std::collections::HashSet::new();
    for b in read_parquet(&dir.path().join("out/oof_predictions.parquet")) {
        let genes = b.column_by_name("gene_id").unwrap().as_string::<i32>().clone();
        for i in 0..genes.len() {
            seen.insert(genes.value(i).to_string());
        }
    }
    assert_eq!(seen, coding);
}

#[test]
fn sampled_genes_are_the_only_ones_evaluated() {
    let dir = tempfile::tempdir().unwrap();
    let data = synth(dir.path(), 20);
    let cfg = config(dir.path(), &data, "sample_genes = 9");
    let (code, _, err) = run(&["run", cfg.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let genes_tsv = std::fs::read_to_string(dir.path().join("out/gene_metrics.tsv")).unwrap();
    assert_eq!(genes_tsv.lines().count(), 1 + 9);
}

#[test]
fn cv_budget_too_small_is_refused_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    let data = synth(dir.path(), 9);
    let cfg = config(dir.path(), &data, "");
    let (code, _, err) = run(&["run", cfg.to_str().unwrap(), "--set", "memory.cv=16KiB"]);
    assert_eq!(code, 2);
    insta::assert_snapshot!(common::redact(&err, dir.path()));
    assert!(
        !dir.path().join("out/cache").exists(),
        "work began before the refusal"
    );
}

/// The trees of each final model in `out`'s bundle, and the mean the folds kept per class.
fn refit_and_fold_trees(out: &Path, folds: usize) -> ([usize; 3], [f64; 3]) {
    let bundle = json(&out.join("model_bundle.json"));
    let refit: [usize; 3] =
        std::array::from_fn(|c| bundle["models"][c][0]["trees"].as_array().unwrap().len());
    let mut mean = [0.0; 3];
    for f in 0..folds {
        let m = json(&out.join(format!("metrics_fold{f}.json")));
        for (c, t) in m["training"]["trees"].as_array().unwrap().iter().enumerate() {
            mean[c] += t.as_u64().unwrap() as f64 / folds as f64;
        }
    }
    (refit, mean)
}

#[test]
fn refit_without_early_stopping_keeps_every_tree() {
    let dir = tempfile::tempdir().unwrap();
    let data = synth(dir.path(), 24);
    let cfg = config(dir.path(), &data, "");
    let (code, _, err) = run(&[
        "run",
        cfg.to_str().unwrap(),
        "--set",
        "train.early_stopping_rounds=0",
    ]);
    assert_eq!(code, 0, "{err}");
    let (refit, mean) = refit_and_fold_trees(&dir.path().join("out"), 3);
    assert_eq!(mean, [8.0; 3], "every fold model keeps all 8 trees");
    assert_eq!(
        refit, [8; 3],
        "the final models are the size of the evaluated ones"
    );
}

#[test]
fn refit_with_early_stopping_takes_the_folds_mean_tree_count() {
    let dir = tempfile::tempdir().unwrap();
    let data = synth(dir.path(), 24);
    let cfg = config(dir.path(), &data, "");
    // Learning rate 1 and depth 1 overfit within a few rounds, so the folds stop early.
    let (code, _, err) = run(&[
        "run",
        cfg.to_str().unwrap(),
        "--set",
        "train.n_estimators=60",
        "--set",
        "train.learning_rate=1.0",
        "--set",
        "train.early_stopping_rounds=2",
    ]);
    assert_eq!(code, 0, "{err}");
    let (refit, mean) = refit_and_fold_trees(&dir.path().join("out"), 3);
    assert!(mean.iter().any(|&m| m < 60.0), "no fold stopped early: {mean:?}");
    for c in 0..3 {
        assert_eq!(
            refit[c],
            mean[c].round() as usize,
            "class {c}: {refit:?} vs {mean:?}"
        );
    }
}

#[test]
fn without_refit_the_run_writes_no_model_and_the_same_out_of_fold_predictions() {
    let dir = tempfile::tempdir().unwrap();
    let data = synth(dir.path(), 24);
    let cfg = config(dir.path(), &data, "");
    assert_eq!(run(&["run", cfg.to_str().unwrap()]).0, 0);
    let out = dir.path().join("out");
    assert!(out.join("model_bundle.json").exists());
    let oof = std::fs::read(out.join("oof_predictions.parquet")).unwrap();
    let metrics = std::fs::read(out.join("metrics_aggregate.json")).unwrap();
    let (code, _, err) = run(&[
        "run",
        cfg.to_str().unwrap(),
        "--overwrite",
        "--set",
        "cv.refit=false",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        !out.join("model_bundle.json").exists(),
        "the previous run's model was left beside results it did not make"
    );
    let report = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(
        report.contains("none (cv.refit = false)"),
        "the report does not say so"
    );
    assert_eq!(std::fs::read(out.join("oof_predictions.parquet")).unwrap(), oof);
    assert_eq!(
        std::fs::read(out.join("metrics_aggregate.json")).unwrap(),
        metrics
    );
}

#[test]
fn cv_without_a_train_section_uses_the_meta_model_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.toml");
    std::fs::write(&cfg, "[cv]\n[train]\nmax_depth = 4\n").unwrap();
    let (code, out, err) = run(&["check-config", cfg.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let shown: toml::Table = toml::from_str(
        &out.lines()
            .filter(|l| !l.starts_with('#'))
            .collect::<Vec<_>>()
            .join("\n"),
    )
    .unwrap();
    let t = &shown["train"];
    // The Python original's trainer: 800 trees, lr 0.1, subsample and colsample 0.8.
    assert_eq!(t["n_estimators"].as_integer(), Some(800));
    assert_eq!(t["learning_rate"].as_float(), Some(0.1));
    assert_eq!(t["subsample"].as_float(), Some(0.8));
    assert_eq!(t["colsample_bytree"].as_float(), Some(0.8));
    assert_eq!(t["max_bin"].as_integer(), Some(256));
    assert_eq!(t["early_stopping_rounds"].as_integer(), Some(50));
    assert_eq!(
        t["max_depth"].as_integer(),
        Some(4),
        "a key the config sets is kept"
    );
}
