//! The command line end to end: config errors, budgets, roles, and the outputs of a run.

mod common;

use common::*;
use serde_json::Value;

fn write(dir: &std::path::Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

#[test]
fn config_unknown_key_is_located() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write(
        dir.path(),
        "c.toml",
        "[memory]\ntotal = \"1GiB\"\nscna = \"64MiB\"\n",
    );
    let (code, _, err) = run(&["check-config", &cfg]);
    assert_eq!(code, 2);
    insta::assert_snapshot!(redact(&err, dir.path()));
}

#[test]
fn goss_with_row_subsampling_is_refused_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write(
        dir.path(),
        "c.toml",
        "[train]\nsampling = \"goss\"\nsubsample = 0.8\n",
    );
    let (code, _, err) = run(&["check-config", &cfg]);
    assert_eq!(code, 2);
    assert!(err.contains("train.subsample") && err.contains("goss"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}

#[test]
fn config_bad_unit_is_located() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write(dir.path(), "c.toml", "[memory]\nscan = \"64 parsecs\"\n");
    let (code, _, err) = run(&["check-config", &cfg]);
    assert_eq!(code, 2);
    insta::assert_snapshot!(redact(&err, dir.path()));
}

#[test]
fn config_stage_inside_cv_over_total() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write(
        dir.path(),
        "c.toml",
        "[memory]\ntotal = \"256MiB\"\ncv = \"200MiB\"\ntrain = \"100MiB\"\n",
    );
    let (code, _, err) = run(&["check-config", &cfg]);
    assert_eq!(code, 2);
    insta::assert_snapshot!(redact(&err, dir.path()));
}

#[test]
fn set_override_wins_over_file() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write(dir.path(), "c.toml", "[memory]\nscan = \"64MiB\"\n");
    let (code, out, err) = run(&["check-config", &cfg, "--set", "memory.scan=32MiB"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("memory.scan     32.0 MiB"), "{out}");
}

#[test]
fn usage_error_exits_2() {
    let (code, _, _) = run(&["inspect", "--no-such-flag"]);
    assert_eq!(code, 2);
}

#[test]
fn scan_budget_too_small_fails_before_work() {
    let dir = tempfile::tempdir().unwrap();
    tiny_batch(&dir.path().join("a.parquet"));
    let (code, out, err) = run(&[
        "inspect",
        dir.path().to_str().unwrap(),
        "--set",
        "memory.scan=1KiB",
    ]);
    assert_eq!(code, 2);
    assert!(out.is_empty());
    insta::assert_snapshot!(redact(&err, dir.path()));
}

#[test]
fn inspect_json_reports_labels_genes_and_missing_values() {
    let dir = tempfile::tempdir().unwrap();
    tiny_batch(&dir.path().join("a.parquet"));
    let (code, out, err) = run(&["inspect", dir.path().to_str().unwrap(), "--json"]);
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["rows"], 4);
    assert_eq!(v["genes"], 2);
    assert_eq!(v["files"], 1);
    assert_eq!(v["class_counts"]["neither"], 2);
    assert_eq!(v["class_counts"]["donor"], 1);
    assert_eq!(v["class_counts"]["acceptor"], 1);
    let names: Vec<&str> = v["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    // pred_type (leakage), position (metadata), gene_id and the label are not features.
    assert_eq!(
        names,
        [
            "donor_score",
            "acceptor_score",
            "num_exons",
            "has_tx_info",
            "3mer_AAA"
        ]
    );
    let donor = &v["features"][0];
    assert_eq!(donor["null_count"], 2, "a null and a NaN are both missing");
    assert_eq!(donor["nan_count"], 1);
    assert_eq!(v["features"][2]["type"], "int");
    assert_eq!(v["features"][3]["type"], "bool");
}

#[test]
fn include_and_exclude_select_features() {
    let dir = tempfile::tempdir().unwrap();
    tiny_batch(&dir.path().join("a.parquet"));
    let d = dir.path().to_str().unwrap();
    let features = |args: &[&str]| -> Vec<String> {
        let mut all = vec!["inspect", d, "--json"];
        all.extend_from_slice(args);
        let (code, out, err) = run(&all);
        assert_eq!(code, 0, "{err}");
        let v: Value = serde_json::from_str(&out).unwrap();
        v["features"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["name"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        features(&["--set", "dataset.exclude=['*mer_*', 'num_exons']"]),
        ["donor_score", "acceptor_score", "has_tx_info"]
    );
    assert_eq!(
        features(&["--set", "dataset.include=['*_score']"]),
        ["donor_score", "acceptor_score"]
    );
    let (code, _, err) = run(&["inspect", d, "--set", "dataset.include=['no_such_*']"]);
    assert_eq!(code, 2);
    assert!(err.contains("matches no column"), "{err}");
}

#[test]
fn integer_label_column_accepted() {
    let dir = tempfile::tempdir().unwrap();
    write_parquet(
        &dir.path().join("a.parquet"),
        vec![
            ("gene_id", strings(&[Some("g1"), Some("g2"), Some("g2")])),
            ("label", ints(&[0, 1, 2])),
            ("x", floats(&[Some(1.0), Some(2.0), Some(3.0)])),
        ],
    );
    let (code, out, err) = run(&["inspect", dir.path().to_str().unwrap(), "--json"]);
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["class_counts"]["donor"], 1);
    assert_eq!(v["label_column"], "label");
}

#[test]
fn run_writes_summary_with_every_stage() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let data = dir.path().join("data");
    let cfg = write(
        dir.path(),
        "c.toml",
        &format!(
            "[run]\nout_dir = {:?}\n[dataset]\npath = {:?}\n[memory]\ntotal = \"512MiB\"\nsynth = \"256MiB\"\nscan = \"32MiB\"\n[synth]\ngenes = 6\nrows_per_gene = 50\ngenes_per_file = 3\n",
            out.display().to_string(),
            data.display().to_string()
        ),
    );
    let (code, _, err) = run(&["run", &cfg]);
    assert_eq!(code, 0, "{err}");
    let s: Value = serde_json::from_slice(&std::fs::read(out.join("run_summary.json")).unwrap()).unwrap();
    let stages: Vec<&str> = s["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["name"].as_str().unwrap())
        .collect();
    assert_eq!(stages, ["synth", "scan"]);
    for st in s["stages"].as_array().unwrap() {
        let heap = st["peak_heap_bytes"].as_u64().expect("heap measured");
        assert!(heap > 0 && heap <= st["budget_bytes"].as_u64().unwrap(), "{st}");
        assert!(st["peak_reserved_bytes"].as_u64().unwrap() <= st["budget_bytes"].as_u64().unwrap());
    }
    assert!(s["peak_rss_bytes"].as_u64().unwrap() > 0);
    let i: Value = serde_json::from_slice(&std::fs::read(out.join("inspect.json")).unwrap()).unwrap();
    assert_eq!(i["rows"], 300);
    assert_eq!(i["genes"], 6);
    // A second run reuses the dataset instead of writing it again.
    let (code, _, err) = run(&["run", &cfg]);
    assert_eq!(code, 0, "{err}");
    let s: Value = serde_json::from_slice(&std::fs::read(out.join("run_summary.json")).unwrap()).unwrap();
    assert_eq!(s["stages"].as_array().unwrap().len(), 1);
}

#[test]
fn synth_is_deterministic_and_never_overwrites() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a");
    let b = dir.path().join("b");
    for p in [&a, &b] {
        let (code, _, err) = run(&[
            "synth",
            "--out",
            p.to_str().unwrap(),
            "--genes",
            "4",
            "--rows-per-gene",
            "30",
            "--genes-per-file",
            "2",
        ]);
        assert_eq!(code, 0, "{err}");
    }
    for f in ["batch_00001.parquet", "batch_00002.parquet", "gene_manifest.csv"] {
        assert_eq!(
            std::fs::read(a.join("master").join(f)).unwrap(),
            std::fs::read(b.join("master").join(f)).unwrap(),
            "{f}"
        );
    }
    let (code, _, err) = run(&["synth", "--out", a.to_str().unwrap(), "--genes", "4"]);
    assert_eq!(code, 2);
    assert!(err.contains("already exists"), "{err}");
}

#[cfg(feature = "sql")]
#[test]
fn query_groups_and_writes_csv() {
    let dir = tempfile::tempdir().unwrap();
    tiny_batch(&dir.path().join("a.parquet"));
    let out = dir.path().join("q.csv");
    let (code, stdout, err) = run(&[
        "query",
        "--dataset",
        dir.path().to_str().unwrap(),
        "SELECT gene_id, count(*) AS n FROM dataset GROUP BY gene_id ORDER BY gene_id",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(stdout.contains("wrote 2 rows"), "{stdout}");
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "gene_id,n\ng1,2\ng2,2\n");
    let (code, _, err) = run(&[
        "query",
        "--dataset",
        dir.path().to_str().unwrap(),
        "SELECT nope FROM dataset",
    ]);
    assert_eq!(code, 2, "{err}");
}
