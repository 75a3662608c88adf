//! The SpliceAI network in Rust against TensorFlow/Keras running the original `.h5` files.
//!
//! `fixtures/spliceai/expected.json` holds six sequences (random, gene-like on both strands,
//! N runs, both chromosome ends, soft-masked bases) with 5,000 nt of context each side, and
//! what tf_keras computed for them with model 1 and with the five models averaged
//! (`fixtures/spliceai/make_expected.py`). Every output must agree within [`TOLERANCE`].
//!
//! The weights are never committed. The parity test fetches them from PyPI through
//! [`weights::ensure`] when they are not cached (`$SPLICEBOOST_DATA` or
//! `~/.cache/spliceboost`), so that it always runs; the other tests that need them skip with
//! a note when they are absent.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

use spliceboost::error::InputError;
use spliceboost::score::{weights, SpliceAi};

/// Largest difference allowed between Rust and TensorFlow on any output.
const TOLERANCE: f64 = 1e-4;

/// The tests of this file run one at a time: one of them measures the process's heap.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner())
}

#[derive(serde::Deserialize)]
struct Fixture {
    context: usize,
    sequences: Vec<Case>,
}

#[derive(serde::Deserialize)]
struct Case {
    name: String,
    input: String,
    model1: Vec<[f64; 3]>,
    models1_5: Vec<[f64; 3]>,
}

fn fixture() -> Fixture {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/spliceai/expected.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The cached weights, or `None` with a note: only the parity test downloads.
fn cached_weights(test: &str) -> Option<PathBuf> {
    let dir = weights::default_dir();
    if weights::cached(&dir, &[1, 2, 3, 4, 5]) {
        Some(dir)
    } else {
        println!(
            "{test}: skipped, no SpliceAI weights in {} (the parity test downloads them)",
            dir.display()
        );
        None
    }
}

/// The largest difference over every output of every sequence, with where it is.
fn max_diff(model: &SpliceAi, fixture: &Fixture, expected: impl Fn(&Case) -> &[[f64; 3]]) -> (f64, String) {
    let mut worst = (0.0, String::new());
    for case in &fixture.sequences {
        let want = expected(case);
        assert_eq!(
            case.input.len(),
            want.len() + 2 * fixture.context,
            "{}",
            case.name
        );
        let mut got = vec![[0f32; 3]; want.len()];
        model.predict(case.input.as_bytes(), &mut got);
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            for k in 0..3 {
                let d = (g[k] as f64 - w[k]).abs();
                if d > worst.0 || worst.1.is_empty() {
                    worst = (
                        d,
                        format!(
                            "{} position {i} channel {k}: rust {} keras {}",
                            case.name, g[k], w[k]
                        ),
                    );
                }
            }
        }
    }
    worst
}

#[test]
fn matches_keras_on_every_output() {
    let _serial = one_at_a_time();
    let dir = weights::default_dir();
    weights::ensure(&dir, &[1, 2, 3, 4, 5]).unwrap_or_else(|e| panic!("the SpliceAI weights: {e}"));
    let fixture = fixture();
    assert_eq!(fixture.sequences.len(), 6);
    let positions: usize = fixture.sequences.iter().map(|c| c.model1.len()).sum();

    let one = SpliceAi::load(&[1], &dir).unwrap();
    assert_eq!(one.context(), fixture.context);
    let (d1, at1) = max_diff(&one, &fixture, |c| &c.model1);
    // Chunks of 64 outputs: each sequence in several chunks whose contexts overlap.
    let (d1c, at1c) = max_diff(&one.with_chunk(64), &fixture, |c| &c.model1);
    let five = SpliceAi::load(&[1, 2, 3, 4, 5], &dir).unwrap();
    let (d5, at5) = max_diff(&five, &fixture, |c| &c.models1_5);
    println!("model 1, {positions} positions x 3: max abs diff {d1:.2e} ({at1})");
    println!("model 1 in chunks of 64: max abs diff {d1c:.2e} ({at1c})");
    println!("models 1..5 averaged: max abs diff {d5:.2e} ({at5})");
    assert!(d1 <= TOLERANCE, "model 1 differs from Keras by {d1}: {at1}");
    assert!(
        d1c <= TOLERANCE,
        "model 1 in chunks differs from Keras by {d1c}: {at1c}"
    );
    assert!(d5 <= TOLERANCE, "models 1..5 differ from Keras by {d5}: {at5}");
}

#[test]
fn the_architecture_is_read_from_the_file() {
    let _serial = one_at_a_time();
    let Some(dir) = cached_weights("the_architecture_is_read_from_the_file") else {
        return;
    };
    let model = SpliceAi::load(&[1], &dir).unwrap();
    let text = model.describe();
    println!("{text}");
    for line in [
        "spliceai1.h5: input one-hot (A, C, G, T) -> conv1d_1 (1x1, 4->32)",
        "units 1..4: 4 x residual unit (BN, ReLU, conv k=11 d=1, BN, ReLU, conv k=11 d=1, add), batch_normalization_1 .. add_4",
        "units 5..8: 4 x residual unit (BN, ReLU, conv k=11 d=4, BN, ReLU, conv k=11 d=4, add)",
        "units 9..12: 4 x residual unit (BN, ReLU, conv k=21 d=10, BN, ReLU, conv k=21 d=10, add)",
        "units 13..16: 4 x residual unit (BN, ReLU, conv k=41 d=25, BN, ReLU, conv k=41 d=25, add), batch_normalization_25 .. add_19",
        "skip taps (1x1 convs, summed): conv1d_2 after unit 0, conv1d_11 after unit 4, conv1d_20 after unit 8, conv1d_29 after unit 12, conv1d_38 after unit 16",
        "cropping1d_1 (5000, 5000) -> conv1d_39 (1x1, 32->3, softmax: neither, acceptor, donor)",
        "receptive field 5000 + 1 + 5000 nt",
    ] {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }
    assert_eq!(model.reach(), (5000, 5000));
}

fn one_line_input_error(err: &InputError, names: &Path, says: &str) {
    let text = err.to_string();
    assert!(!text.contains('\n'), "one line: {text}");
    assert!(
        text.contains(&names.display().to_string()),
        "names {}: {text}",
        names.display()
    );
    assert!(text.contains(says), "says {says:?}: {text}");
    assert_eq!(spliceboost::error::exit_code(&anyhow::Error::new(err.clone())), 2);
}

#[test]
fn a_damaged_weight_file_is_a_clear_error() {
    let _serial = one_at_a_time();
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("spliceai1.h5");
    std::fs::write(&path, b"\x89HDF\r\n\x1a\n not really").unwrap();
    let err = SpliceAi::load(&[1], tmp.path()).unwrap_err();
    one_line_input_error(&err, &path, "SHA-256 mismatch");
    let err = SpliceAi::load_files(std::slice::from_ref(&path)).unwrap_err();
    one_line_input_error(&err, &path, "not a readable Keras HDF5 file");
    let err = SpliceAi::load(&[2], tmp.path()).unwrap_err();
    one_line_input_error(&err, &tmp.path().join("spliceai2.h5"), "cannot read");
    let err = SpliceAi::load(&[6], tmp.path()).unwrap_err();
    assert!(err.to_string().contains("models 1 to 5, not 6"), "{err}");

    let Some(dir) = cached_weights("a_damaged_weight_file_is_a_clear_error (real files)") else {
        return;
    };
    let bytes = std::fs::read(dir.join("spliceai1.h5")).unwrap();
    // Cut anywhere, or one flipped byte: the checksum refuses it; without the checksum the
    // reader refuses what it cannot read, and never panics.
    for cut in [100, 2048, bytes.len() / 2, bytes.len() - 1] {
        std::fs::write(&path, &bytes[..cut]).unwrap();
        let err = SpliceAi::load(&[1], tmp.path()).unwrap_err();
        one_line_input_error(&err, &path, "SHA-256 mismatch");
        let err = SpliceAi::load_files(std::slice::from_ref(&path)).unwrap_err();
        println!("cut at {cut}: {err}");
        one_line_input_error(&err, &path, "");
    }
    let mut flipped = bytes.clone();
    flipped[bytes.len() / 3] ^= 0x40;
    std::fs::write(&path, &flipped).unwrap();
    let err = SpliceAi::load(&[1], tmp.path()).unwrap_err();
    one_line_input_error(&err, &path, "SHA-256 mismatch");
}

#[test]
fn memory_stays_within_its_price() {
    let _serial = one_at_a_time();
    let Some(dir) = cached_weights("memory_stays_within_its_price") else {
        return;
    };
    if !spliceboost::memory::is_counting() {
        println!("memory_stays_within_its_price: skipped, no counting allocator");
        return;
    }
    for models in [&[1u8][..], &[1, 2, 3, 4, 5]] {
        let base = spliceboost::memory::heap_reset_peak();
        let model = SpliceAi::load(models, &dir).unwrap();
        let load = spliceboost::memory::heap_peak() - base;
        let priced = SpliceAi::load_bytes(models.len());
        println!(
            "load {} model(s): peak heap {load} bytes, priced {priced}, weights {}",
            models.len(),
            model.weight_bytes()
        );
        assert!(
            load as u64 <= priced,
            "loading {} models took {load} > {priced}",
            models.len()
        );

        let chunk = 7_000;
        let seq = vec![b'A'; 3 * chunk + 2 * model.context()];
        let mut out = vec![[0f32; 3]; 3 * chunk];
        let base = spliceboost::memory::heap_reset_peak();
        let mut ws = model.workspace(chunk);
        model.predict_with(&mut ws, &seq, &mut out);
        let used = spliceboost::memory::heap_peak() - base;
        let priced = model.working_bytes(chunk);
        println!("predict in chunks of {chunk}: peak heap {used} bytes, priced {priced}");
        assert!(
            used as u64 <= priced + (64 << 10),
            "predicting took {used} > {priced}"
        );
    }
}

/// A deterministic random sequence, the same as benches/spliceai_keras.py makes.
pub fn bench_sequence(len: usize) -> Vec<u8> {
    let mut x: u32 = 12345;
    (0..len)
        .map(|_| {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            b"ACGT"[((x >> 16) & 3) as usize]
        })
        .collect()
}

/// Throughput on `SPLICEAI_BENCH_LEN` (100,000) positions plus context:
/// `cargo test --release --test spliceai throughput -- --ignored --nocapture`, models from
/// `SPLICEAI_BENCH_MODELS` (`1` or `1,2,3,4,5`).
#[test]
#[ignore]
fn throughput() {
    let dir = cached_weights("throughput").expect("weights");
    let env = |k: &str, d: &str| std::env::var(k).unwrap_or_else(|_| d.to_string());
    let len: usize = env("SPLICEAI_BENCH_LEN", "100000").parse().unwrap();
    let models: Vec<u8> = env("SPLICEAI_BENCH_MODELS", "1")
        .split(',')
        .map(|m| m.parse().unwrap())
        .collect();
    let chunk: usize = env(
        "SPLICEAI_BENCH_CHUNK",
        &spliceboost::score::DEFAULT_CHUNK.to_string(),
    )
    .parse()
    .unwrap();
    let model = SpliceAi::load(&models, &dir).unwrap().with_chunk(chunk);
    let seq = bench_sequence(len + 2 * model.context());
    let mut out = vec![[0f32; 3]; len];
    let t = Instant::now();
    model.predict(&seq, &mut out);
    let s = t.elapsed().as_secs_f64();
    let donor: f32 = out.iter().map(|o| o[2]).sum();
    println!(
        "rust: {} model(s), {len} positions, chunk {chunk}, {} threads, simd {}: {s:.2} s, {:.0} positions/s \
         (checksum: mean donor {:.6}, first row {:?})",
        models.len(),
        rayon::current_num_threads(),
        spliceboost::score::simd(),
        len as f64 / s,
        donor / len as f32,
        out[0]
    );
}
