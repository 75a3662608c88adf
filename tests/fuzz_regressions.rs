//! Replays every input saved in `fixtures/fuzz/<target>/` through the same code as the fuzz
//! target of that name (`fuzz/src/lib.rs`, shared with the cargo-fuzz binaries), asserting
//! that none panics. The inputs are the crashes the fuzzers found (each fixed) and a few
//! small malformed inputs per target; docs/fuzzing.md says how a new crash is added.

use std::path::Path;

#[path = "../fuzz/src/lib.rs"]
mod fuzz_targets;

/// Runs `target` on each file of `fixtures/fuzz/<name>/`; fails naming every file that panics.
fn replay(name: &str, target: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/fuzz")
        .join(name);
    let files = fuzz_targets::inputs(&dir);
    assert!(!files.is_empty(), "no inputs in {}", dir.display());
    let mut panicked = vec![];
    for file in &files {
        let data = std::fs::read(file).unwrap();
        if std::panic::catch_unwind(|| target(&data)).is_err() {
            panicked.push(file.display().to_string());
        }
    }
    assert!(panicked.is_empty(), "panicked on {panicked:?}");
}

#[test]
fn malformed_annotations_never_panic() {
    replay("annotation", fuzz_targets::annotation);
}

#[test]
fn malformed_fasta_and_fai_never_panic() {
    replay("fasta", fuzz_targets::fasta);
}

#[test]
fn malformed_score_manifests_and_batches_never_panic() {
    replay("score_file", fuzz_targets::score_file);
}

#[test]
fn malformed_configs_never_panic() {
    replay("config", fuzz_targets::config);
}

#[test]
fn malformed_models_and_bundles_never_panic() {
    replay("model", fuzz_targets::model);
}

#[test]
fn malformed_parquet_datasets_never_panic() {
    replay("parquet_scan", fuzz_targets::parquet_scan);
}

/// Found by fuzzing: a Parquet file whose embedded Arrow schema (the `ARROW:schema` footer
/// key) declares an integer of an unsupported bit width made arrow-ipc panic while the footer
/// was read. It is now a one-line error naming the file ("its footer is corrupt"), exit
/// code 2.
#[test]
fn a_corrupt_embedded_arrow_schema_is_a_one_line_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("batch_00000.parquet");
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures/fuzz/parquet_scan/embedded_arrow_schema_int_bit_width.parquet"),
        &file,
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_spliceboost"))
        .arg("inspect")
        .arg(dir.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("footer is corrupt"), "{err}");
    assert!(err.contains(&file.display().to_string()), "{err}");
}
