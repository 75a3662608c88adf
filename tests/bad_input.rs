//! Bad datasets: each gives one clear line naming the file, exit code 2, and writes nothing.

mod common;

use common::*;

fn inspect_err(dir: &std::path::Path, dataset: &std::path::Path) -> String {
    let (code, out, err) = run(&["inspect", dataset.to_str().unwrap()]);
    assert_eq!(code, 2, "stdout: {out}\nstderr: {err}");
    assert!(out.is_empty(), "nothing on stdout: {out}");
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    redact(&err, dir)
}

#[test]
fn missing_dataset_directory() {
    let dir = tempfile::tempdir().unwrap();
    insta::assert_snapshot!(inspect_err(dir.path(), &dir.path().join("nope")));
}

#[test]
fn empty_dataset_directory() {
    let dir = tempfile::tempdir().unwrap();
    insta::assert_snapshot!(inspect_err(dir.path(), dir.path()));
}

#[test]
fn non_parquet_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("batch_00001.parquet"),
        "gene_id,splice_type\ng1,donor\n",
    )
    .unwrap();
    insta::assert_snapshot!(inspect_err(dir.path(), dir.path()));
}

#[test]
fn truncated_parquet_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("batch_00001.parquet");
    tiny_batch(&path);
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    insta::assert_snapshot!(inspect_err(dir.path(), dir.path()));
}

#[test]
fn no_gene_id_column() {
    let dir = tempfile::tempdir().unwrap();
    write_parquet(
        &dir.path().join("a.parquet"),
        vec![
            ("splice_type", strings(&[Some("donor")])),
            ("donor_score", floats(&[Some(0.5)])),
        ],
    );
    insta::assert_snapshot!(inspect_err(dir.path(), dir.path()));
}

#[test]
fn no_label_column() {
    let dir = tempfile::tempdir().unwrap();
    write_parquet(
        &dir.path().join("a.parquet"),
        vec![
            ("gene_id", strings(&[Some("g1")])),
            ("donor_score", floats(&[Some(0.5)])),
        ],
    );
    insta::assert_snapshot!(inspect_err(dir.path(), dir.path()));
}

#[test]
fn unknown_label_value() {
    let dir = tempfile::tempdir().unwrap();
    write_parquet(
        &dir.path().join("a.parquet"),
        vec![
            ("gene_id", strings(&[Some("g1"), Some("g1"), Some("g1")])),
            (
                "splice_type",
                strings(&[Some("donor"), None, Some("branchpoint")]),
            ),
            ("donor_score", floats(&[Some(0.5), Some(0.1), Some(0.2)])),
        ],
    );
    insta::assert_snapshot!(inspect_err(dir.path(), dir.path()));
}

#[test]
fn schema_drift_names_both_files_and_the_column() {
    let dir = tempfile::tempdir().unwrap();
    tiny_batch(&dir.path().join("batch_00001.parquet"));
    write_parquet(
        &dir.path().join("batch_00002.parquet"),
        vec![
            ("gene_id", strings(&[Some("g3")])),
            ("splice_type", strings(&[Some("donor")])),
            ("pred_type", strings(&[Some("TP")])),
            ("position", ints(&[10])),
            ("donor_score", strings(&[Some("0.9")])),
            ("acceptor_score", floats(&[Some(0.0)])),
            ("num_exons", ints32(&[3])),
            ("has_tx_info", bools(&[true])),
            ("3mer_AAA", ints(&[0])),
        ],
    );
    insta::assert_snapshot!(inspect_err(dir.path(), dir.path()));
}

#[test]
fn failed_run_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let cfg = dir.path().join("c.toml");
    std::fs::write(
        &cfg,
        format!(
            "[run]\nout_dir = {:?}\n[dataset]\npath = {:?}\n",
            out.display().to_string(),
            dir.path().join("missing").display().to_string()
        ),
    )
    .unwrap();
    let (code, _, err) = run(&["run", cfg.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    let left: Vec<_> = std::fs::read_dir(&out)
        .map(|d| d.flatten().collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "no output after a failed run: {left:?}");
}
