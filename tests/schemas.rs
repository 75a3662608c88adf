//! Datasets whose batch files differ, as the Python original writes them: columns missing
//! from some files, numbers stored under different Arrow types or dictionary-encoded from one
//! file to the next, and numbers stored as text. Each is read as it is, with no panic and no
//! column dropped without a word.

mod common;

use std::sync::Arc;

use arrow::array::Array;
use arrow::datatypes::DataType;
use common::*;
use serde_json::Value;
use spliceboost::io::{to_f32, Dataset, DatasetConfig};
use spliceboost::memory::{MemoryConsumer, MemoryPool};

/// `inspect --json` of `dir`: the report and stderr (redacted).
fn inspect_ok(dir: &std::path::Path, extra: &[&str]) -> (Value, String) {
    let mut args = vec!["inspect", dir.to_str().unwrap(), "--json"];
    args.extend_from_slice(extra);
    let (code, out, err) = run(&args);
    assert_eq!(code, 0, "stdout: {out}\nstderr: {err}");
    (serde_json::from_str(&out).unwrap(), redact(&err, dir))
}

fn feature<'a>(v: &'a Value, name: &str) -> &'a Value {
    v["features"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == name)
        .unwrap_or_else(|| panic!("no feature {name} in {}", v["features"]))
}

fn feature_names(v: &Value) -> Vec<String> {
    v["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap().to_string())
        .collect()
}

/// Every scanned value of `column` as f32, in file order.
fn scan_f32(ds: &Dataset, column: &str) -> Vec<f32> {
    let pool = Arc::new(MemoryPool::new(1 << 30));
    let res = MemoryConsumer::new("scan").register(&pool);
    let mut all = vec![];
    let mut buf = vec![];
    for b in ds.scan().with_columns(&[column]).build(&res).unwrap() {
        let b = b.unwrap();
        to_f32(b.batch.column(0).as_ref(), &mut buf);
        all.extend_from_slice(&buf);
    }
    all
}

fn open(dir: &std::path::Path) -> Dataset {
    Dataset::open(&DatasetConfig {
        path: dir.to_path_buf(),
        ..DatasetConfig::default()
    })
    .unwrap()
}

#[test]
fn columns_absent_from_some_files_read_as_missing_there() {
    let dir = tempfile::tempdir().unwrap();
    // Each column is held by at least half of the files, so it is part of the dataset (a
    // column fewer files hold is ignored: tests/sparse_kmers.rs).
    write_parquet(&dir.path().join("batch_00001.parquet"), tiny_columns());
    for name in ["batch_00002.parquet", "batch_00003.parquet"] {
        let mut cols = tiny_columns();
        if name == "batch_00003.parquet" {
            drop_column(&mut cols, "num_exons");
        }
        set_column(&mut cols, "3mer_AAC", ints(&[1, 2, 3, 4]));
        write_parquet(&dir.path().join(name), cols);
    }
    let (v, err) = inspect_ok(dir.path(), &[]);
    assert_eq!(v["rows"], 12);
    assert_eq!(
        feature_names(&v),
        [
            "donor_score",
            "acceptor_score",
            "num_exons",
            "has_tx_info",
            "3mer_AAA",
            "3mer_AAC"
        ]
    );
    let exons = feature(&v, "num_exons");
    assert_eq!(
        exons["null_count"], 4,
        "missing in the 4 rows of the file without it"
    );
    assert_eq!(
        (exons["min"].as_f64(), exons["max"].as_f64()),
        (Some(3.0), Some(5.0))
    );
    let aac = feature(&v, "3mer_AAC");
    assert_eq!(aac["null_count"], 4);
    assert_eq!((aac["min"].as_f64(), aac["max"].as_f64()), (Some(1.0), Some(4.0)));
    insta::assert_snapshot!(err);

    // Row by row: NaN exactly in the rows of the files that lack the column.
    let ds = open(dir.path());
    let exons = scan_f32(&ds, "num_exons");
    assert_eq!(&exons[..8], &[3.0, 3.0, 5.0, 5.0, 3.0, 3.0, 5.0, 5.0]);
    assert!(exons[8..].iter().all(|v| v.is_nan()), "{exons:?}");
    let aac = scan_f32(&ds, "3mer_AAC");
    assert!(aac[..4].iter().all(|v| v.is_nan()), "{aac:?}");
    assert_eq!(&aac[4..], &[1.0, 2.0, 3.0, 4.0, 1.0, 2.0, 3.0, 4.0]);
}

#[test]
fn dictionary_encoded_float_in_one_file_and_plain_in_another_reads_as_numbers() {
    let dir = tempfile::tempdir().unwrap();
    write_parquet(&dir.path().join("batch_00001.parquet"), tiny_columns());
    let mut cols = tiny_columns();
    set_column(
        &mut cols,
        "donor_score",
        dictionary(
            floats(&[Some(0.25), None, Some(0.25), Some(0.75)]),
            DataType::Int32,
        ),
    );
    write_parquet(&dir.path().join("batch_00002.parquet"), cols);
    let (v, err) = inspect_ok(dir.path(), &[]);
    assert_eq!(err, "");
    let donor = feature(&v, "donor_score");
    assert_eq!(donor["type"], "float");
    assert_eq!(
        donor["null_count"], 3,
        "a null and a NaN in file 1, a null in file 2"
    );
    assert_eq!(donor["min"].as_f64(), Some(0.1f32 as f64));
    assert_eq!(donor["max"].as_f64(), Some(0.9f32 as f64));
    let values = scan_f32(&open(dir.path()), "donor_score");
    assert_eq!(values[4], 0.25);
    assert!(values[5].is_nan());
    assert_eq!(&values[6..], &[0.25, 0.75]);
}

#[test]
fn numbers_of_different_types_in_different_files_read_as_numbers() {
    let dir = tempfile::tempdir().unwrap();
    write_parquet(&dir.path().join("batch_00001.parquet"), tiny_columns());
    let mut cols = tiny_columns();
    // Float32 where file 1 has Float64, Int64 where it has Int32, integers where it has
    // booleans, and a dictionary of Float32 with Int8 keys where it has plain Float64.
    set_column(
        &mut cols,
        "donor_score",
        floats32(&[Some(0.5), Some(0.25), Some(1.0), None]),
    );
    set_column(&mut cols, "num_exons", ints(&[7, 7, 9, 9]));
    set_column(&mut cols, "has_tx_info", ints(&[1, 0, 1, 0]));
    set_column(
        &mut cols,
        "acceptor_score",
        dictionary(
            floats32(&[Some(0.5), Some(0.5), Some(0.125), None]),
            DataType::Int8,
        ),
    );
    set_column(&mut cols, "position", ints32(&[1, 2, 3, 4]));
    write_parquet(&dir.path().join("batch_00002.parquet"), cols);
    let (v, err) = inspect_ok(dir.path(), &[]);
    assert_eq!(err, "");
    assert_eq!(v["rows"], 8);
    let donor = feature(&v, "donor_score");
    assert_eq!(
        (donor["type"].as_str(), donor["physical_type"].as_str()),
        (Some("float"), Some("Float64"))
    );
    assert_eq!(donor["null_count"], 3);
    assert_eq!(donor["max"].as_f64(), Some(1.0));
    let exons = feature(&v, "num_exons");
    assert_eq!(
        (exons["type"].as_str(), exons["physical_type"].as_str()),
        (Some("int"), Some("Int64"))
    );
    assert_eq!(
        (exons["min"].as_f64(), exons["max"].as_f64()),
        (Some(3.0), Some(9.0))
    );
    let tx = feature(&v, "has_tx_info");
    assert_eq!(tx["type"], "int");
    assert_eq!(
        (tx["min"].as_f64(), tx["max"].as_f64(), tx["zero_count"].as_u64()),
        (Some(0.0), Some(1.0), Some(4))
    );
    let acc = feature(&v, "acceptor_score");
    assert_eq!(acc["null_count"], 1);
    assert_eq!((acc["min"].as_f64(), acc["max"].as_f64()), (Some(0.0), Some(0.5)));

    // Every batch of a scan holds each column in the dataset's one type for it, whatever the
    // file stores, so that readers can rely on `Dataset::schema`.
    let ds = open(dir.path());
    let pool = Arc::new(MemoryPool::new(1 << 30));
    let res = MemoryConsumer::new("scan").register(&pool);
    for b in ds.scan().build(&res).unwrap() {
        let b = b.unwrap();
        for (f, col) in ds.schema.fields().iter().zip(b.batch.columns()) {
            assert_eq!(
                col.data_type(),
                f.data_type(),
                "column {} of file {}",
                f.name(),
                b.file
            );
        }
    }
}

#[test]
fn a_column_converted_between_files_is_priced_in_the_scan_plan() {
    let same = tempfile::tempdir().unwrap();
    let mixed = tempfile::tempdir().unwrap();
    for d in [same.path(), mixed.path()] {
        write_parquet(&d.join("batch_00001.parquet"), tiny_columns());
    }
    write_parquet(&same.path().join("batch_00002.parquet"), tiny_columns());
    let mut cols = tiny_columns();
    set_column(
        &mut cols,
        "acceptor_score",
        floats32(&[Some(0.0), Some(0.1), Some(0.3), Some(0.0)]),
    );
    write_parquet(&mixed.path().join("batch_00002.parquet"), cols);
    let row_bytes = |d: &std::path::Path| {
        let ds = open(d);
        ds.scan()
            .with_columns(&["acceptor_score"])
            .plan(u64::MAX)
            .unwrap()
            .row_bytes
    };
    // The reader's builder and array (2 × 9 bytes), plus the Float64 copy the conversion of
    // file 2's Float32 makes while the reader's array is alive (9 bytes).
    assert_eq!(row_bytes(same.path()), 18);
    assert_eq!(row_bytes(mixed.path()), 27);
}

#[test]
fn dictionary_encoded_numbers_are_features() {
    let dir = tempfile::tempdir().unwrap();
    let mut cols = tiny_columns();
    set_column(
        &mut cols,
        "donor_score",
        dictionary(floats(&[Some(0.9), Some(0.1), None, Some(0.1)]), DataType::Int32),
    );
    set_column(
        &mut cols,
        "3mer_AAA",
        dictionary(ints(&[0, 1, 0, 2]), DataType::UInt16),
    );
    write_parquet(&dir.path().join("batch_00001.parquet"), cols);
    let (v, err) = inspect_ok(dir.path(), &[]);
    assert_eq!(err, "");
    assert_eq!(
        feature_names(&v),
        [
            "donor_score",
            "acceptor_score",
            "num_exons",
            "has_tx_info",
            "3mer_AAA"
        ]
    );
    let donor = feature(&v, "donor_score");
    assert_eq!(donor["type"], "float");
    assert_eq!(donor["null_count"], 1);
    assert_eq!(donor["max"].as_f64(), Some(0.9f32 as f64));
    let kmer = feature(&v, "3mer_AAA");
    assert_eq!(kmer["type"], "int");
    assert_eq!(
        (kmer["max"].as_f64(), kmer["zero_count"].as_u64()),
        (Some(2.0), Some(2))
    );
    assert_eq!(v["kmer_features"], 1);
}

#[test]
fn numbers_stored_as_text_are_named_in_one_warning() {
    let dir = tempfile::tempdir().unwrap();
    for (i, name) in ["batch_00001.parquet", "batch_00002.parquet"].iter().enumerate() {
        let mut cols = tiny_columns();
        set_column(
            &mut cols,
            "donor_score",
            strings(&[None, Some("0.9"), Some(" 1e-3"), Some("NaN")]),
        );
        set_column(&mut cols, "acceptor_score", strings(&[Some("0.5"); 4]));
        // Text that is not numbers is not a feature either, and not worth a warning.
        set_column(
            &mut cols,
            "note",
            strings(&[Some("a"), Some("1"), None, Some("b")]),
        );
        if i == 1 {
            cols[4].1 = dictionary(cols[4].1.clone(), DataType::Int32);
        }
        write_parquet(&dir.path().join(name), cols);
    }
    let (v, err) = inspect_ok(dir.path(), &[]);
    assert_eq!(feature_names(&v), ["num_exons", "has_tx_info", "3mer_AAA"]);
    assert_eq!(err.lines().count(), 1, "{err}");
    insta::assert_snapshot!(err);
    // Listing them in `dataset.exclude` silences the warning.
    let (_, err) = inspect_ok(
        dir.path(),
        &["--set", "dataset.exclude=['donor_score', 'acceptor_score']"],
    );
    assert_eq!(err, "");
}
