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

/// An open finding (docs/fuzzing.md): a Parquet file whose embedded Arrow schema (the
/// `ARROW:schema` footer key) declares an integer of an unsupported bit width makes arrow-ipc
/// panic while `Dataset::open` reads the footer. Ignored until fixed.
#[test]
#[ignore = "open finding: arrow-ipc panics on a corrupt embedded Arrow schema (docs/fuzzing.md)"]
fn corrupt_embedded_arrow_schema_is_an_error() {
    replay("open/parquet_scan", fuzz_targets::parquet_scan);
}
