//! Datasets spliceboost refuses rather than misread: each gives exit code 2, no panic and one
//! line naming the file (and column) and the fix.

mod common;

use common::*;

fn inspect_err(dir: &std::path::Path, dataset: &std::path::Path) -> String {
    let (code, out, err) = run(&["inspect", dataset.to_str().unwrap()]);
    assert_eq!(code, 2, "stdout: {out}\nstderr: {err}");
    assert!(out.is_empty(), "nothing on stdout: {out}");
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    assert!(!err.contains("panicked"), "{err}");
    redact(&err, dir)
}

#[test]
fn symlink_loop_is_refused_naming_the_link() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d");
    tiny_batch(&data.join("batch_00001.parquet"));
    std::os::unix::fs::symlink(&data, data.join("again")).unwrap();
    let err = inspect_err(dir.path(), &data);
    assert!(err.contains("[dir]/d/again"), "{err}");
    insta::assert_snapshot!(err);
}

#[test]
fn second_link_to_the_same_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d");
    tiny_batch(&data.join("batch_00001.parquet"));
    std::os::unix::fs::symlink(data.join("batch_00001.parquet"), data.join("batch_00002.parquet")).unwrap();
    insta::assert_snapshot!(inspect_err(dir.path(), &data));
}

#[test]
fn duplicate_column_names_are_refused_naming_file_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let mut cols = tiny_columns();
    cols.push(("donor_score", floats(&[Some(0.5); 4])));
    write_parquet(&dir.path().join("batch_00001.parquet"), cols);
    insta::assert_snapshot!(inspect_err(dir.path(), dir.path()));
}

#[test]
fn label_column_missing_from_one_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    tiny_batch(&dir.path().join("batch_00001.parquet"));
    let mut cols = tiny_columns();
    drop_column(&mut cols, "splice_type");
    write_parquet(&dir.path().join("batch_00002.parquet"), cols);
    insta::assert_snapshot!(inspect_err(dir.path(), dir.path()));
}

#[test]
fn group_column_missing_from_one_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut cols = tiny_columns();
    drop_column(&mut cols, "gene_id");
    write_parquet(&dir.path().join("batch_00001.parquet"), cols);
    tiny_batch(&dir.path().join("batch_00002.parquet"));
    insta::assert_snapshot!(inspect_err(dir.path(), dir.path()));
}

#[test]
fn links_to_directories_elsewhere_are_followed_once() {
    // Not bad input: a dataset assembled from links to batches kept elsewhere reads each
    // file once.
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d");
    tiny_batch(&dir.path().join("store/one/batch_00001.parquet"));
    tiny_batch(&dir.path().join("store/two/batch_00002.parquet"));
    std::fs::create_dir_all(&data).unwrap();
    std::os::unix::fs::symlink(dir.path().join("store/one"), data.join("one")).unwrap();
    std::os::unix::fs::symlink(
        dir.path().join("store/two/batch_00002.parquet"),
        data.join("batch_00002.parquet"),
    )
    .unwrap();
    let (code, out, err) = run(&["inspect", data.to_str().unwrap(), "--json"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!((v["files"].as_u64(), v["rows"].as_u64()), (Some(2), Some(8)));
}
