//! Small datasets written on the spot for tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

use arrow::array::{ArrayRef, BooleanArray, Float64Array, Int32Array, Int64Array, StringArray};
use arrow::datatypes::{Field, Schema};
use arrow::record_batch::RecordBatch;
use parquet::arrow::ArrowWriter;

/// Writes one Parquet file from named columns.
pub fn write_parquet(path: &Path, columns: Vec<(&str, ArrayRef)>) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let fields: Vec<Field> = columns
        .iter()
        .map(|(n, a)| Field::new(*n, a.data_type().clone(), true))
        .collect();
    let schema = Arc::new(Schema::new(fields));
    let batch = RecordBatch::try_new(schema.clone(), columns.into_iter().map(|(_, a)| a).collect()).unwrap();
    let mut w = ArrowWriter::try_new(std::fs::File::create(path).unwrap(), schema, None).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
}

pub fn strings(v: &[Option<&str>]) -> ArrayRef {
    Arc::new(StringArray::from(v.to_vec()))
}
pub fn floats(v: &[Option<f64>]) -> ArrayRef {
    Arc::new(Float64Array::from(v.to_vec()))
}
pub fn ints(v: &[i64]) -> ArrayRef {
    Arc::new(Int64Array::from(v.to_vec()))
}
pub fn ints32(v: &[i32]) -> ArrayRef {
    Arc::new(Int32Array::from(v.to_vec()))
}
pub fn bools(v: &[bool]) -> ArrayRef {
    Arc::new(BooleanArray::from(v.to_vec()))
}

/// A four-row MetaSpliceAI-style batch: labels, genes, metadata and features of every type,
/// with a null and a NaN.
pub fn tiny_batch(path: &Path) {
    write_parquet(
        path,
        vec![
            (
                "gene_id",
                strings(&[Some("g1"), Some("g1"), Some("g2"), Some("g2")]),
            ),
            (
                "splice_type",
                strings(&[Some("donor"), None, Some("acceptor"), Some("")]),
            ),
            (
                "pred_type",
                strings(&[Some("TP"), Some("TN"), Some("FN"), Some("TN")]),
            ),
            ("position", ints(&[10, 20, 30, 40])),
            (
                "donor_score",
                floats(&[Some(0.9), Some(0.1), None, Some(f64::NAN)]),
            ),
            (
                "acceptor_score",
                floats(&[Some(0.0), Some(0.1), Some(0.3), Some(0.0)]),
            ),
            ("num_exons", ints32(&[3, 3, 5, 5])),
            ("has_tx_info", bools(&[true, true, false, false])),
            ("3mer_AAA", ints(&[0, 1, 0, 2])),
        ],
    );
}

pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_spliceboost"))
}

/// Runs the binary; returns (exit code, stdout, stderr).
pub fn run(args: &[&str]) -> (i32, String, String) {
    let Output {
        status,
        stdout,
        stderr,
    } = Command::new(bin()).args(args).arg("--quiet").output().unwrap();
    (
        status.code().unwrap_or(-1),
        String::from_utf8_lossy(&stdout).into_owned(),
        String::from_utf8_lossy(&stderr).into_owned(),
    )
}

/// The error line with the temporary directory replaced, for snapshots.
pub fn redact(stderr: &str, dir: &Path) -> String {
    stderr.trim().replace(&dir.display().to_string(), "[dir]")
}
