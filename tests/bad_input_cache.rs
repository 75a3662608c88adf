//! A damaged binned cache is never used: a page, `labels.bin` or `groups.bin` that does not
//! match its checksum makes the run rebuild the cache (one line on stderr says so) and train
//! the model it would have trained anyway; a class code or gene index out of range that
//! somehow matches its checksum is refused before it reaches the learner.

mod common;

use std::path::{Path, PathBuf};

use common::{redact, run};
use serde_json::Value;
use spliceboost::binning::checksum::xxh64;
use spliceboost::memory::{MemoryConsumer, MemoryPool};
use spliceboost::synth::{write_dataset, SynthOptions};

/// 200 genes × 100 rows: two pages of the cache.
fn synth(dir: &Path) -> PathBuf {
    let out = dir.join("data");
    let opts = SynthOptions {
        genes: 200,
        rows_per_gene: 100,
        kmer: 2,
        genes_per_file: 50,
        seed: 11,
        with_sequence: false,
    };
    let pool = std::sync::Arc::new(MemoryPool::new(1 << 30));
    write_dataset(&out, &opts, &mut MemoryConsumer::new("synth").register(&pool)).unwrap();
    out
}

fn config(dir: &Path, data: &Path) -> PathBuf {
    let path = dir.join("train.toml");
    std::fs::write(
        &path,
        format!(
            "[run]\nout_dir = {:?}\nprogress = false\n\n[dataset]\npath = {:?}\n\n\
             [train]\nn_estimators = 6\nmax_depth = 3\n",
            dir.join("out").display().to_string(),
            data.display().to_string()
        ),
    )
    .unwrap();
    path
}

fn json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// Trains; returns stderr and the stages the run went through.
fn train(cfg: &Path) -> (String, Vec<String>) {
    let (code, out, err) = run(&["train", cfg.to_str().unwrap()]);
    assert_eq!(code, 0, "stdout: {out}\nstderr: {err}");
    assert!(!err.contains("panicked"), "{err}");
    let summary = json(&cfg.parent().unwrap().join("out/run_summary.json"));
    let stages = summary["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_string())
        .collect();
    (err, stages)
}

/// The one cache directory under `out/cache`.
fn cache_dir(dir: &Path) -> PathBuf {
    let dirs: Vec<PathBuf> = std::fs::read_dir(dir.join("out/cache"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    dirs.into_iter().next().unwrap()
}

/// Trains once, lets `damage` change the cache, trains again: the second run must rebuild
/// the cache, say so in one line that names the cache and `what`, and train the same model;
/// a third run reuses the rebuilt cache without a word.
fn damaged_cache_is_rebuilt(damage: impl Fn(&Path, &Value), what: &str) {
    let dir = tempfile::tempdir().unwrap();
    let data = synth(dir.path());
    let cfg = config(dir.path(), &data);
    let (err, stages) = train(&cfg);
    assert!(stages.contains(&"bin".to_string()), "{stages:?}");
    assert!(err.trim().is_empty(), "{err}");
    let model = json(&dir.path().join("out/model.json"))["trees"].clone();
    let cache = cache_dir(dir.path());
    let manifest = json(&cache.join("manifest.json"));
    assert!(manifest["pages"].as_array().unwrap().len() >= 2);

    damage(&cache, &manifest);
    let (err, stages) = train(&cfg);
    let lines: Vec<&str> = err.trim().lines().collect();
    assert_eq!(lines.len(), 1, "one line: {err}");
    assert_eq!(
        redact(lines[0], dir.path()),
        format!(
            "warning: binned cache [dir]/out/cache/{} failed its checksum ({what}): rebuilding",
            cache.file_name().unwrap().to_str().unwrap()
        )
    );
    assert!(stages.contains(&"bin".to_string()), "rebuilt: {stages:?}");
    assert_eq!(
        json(&dir.path().join("out/model.json"))["trees"],
        model,
        "the rebuilt cache trains the same model"
    );

    let (err, stages) = train(&cfg);
    assert!(err.trim().is_empty(), "{err}");
    assert!(!stages.contains(&"bin".to_string()), "reused: {stages:?}");
}

#[test]
fn overwritten_page_fails_its_checksum_and_is_rebuilt() {
    // The reviewer's case: one page replaced by bytes of the same size was reused, and the
    // model trained on it was worse.
    damaged_cache_is_rebuilt(
        |cache, manifest| {
            let page = &manifest["pages"][1];
            let (offset, next) = (page["offset"].as_u64().unwrap() as usize, {
                let p2 = &manifest["pages"][2];
                if p2.is_null() {
                    std::fs::metadata(cache.join("bins.bin")).unwrap().len() as usize
                } else {
                    p2["offset"].as_u64().unwrap() as usize
                }
            });
            let mut bytes = std::fs::read(cache.join("bins.bin")).unwrap();
            let n = bytes.len();
            for (i, b) in bytes[offset..next].iter_mut().enumerate() {
                *b = (i % 3) as u8;
            }
            std::fs::write(cache.join("bins.bin"), &bytes).unwrap();
            assert_eq!(
                std::fs::metadata(cache.join("bins.bin")).unwrap().len() as usize,
                n
            );
        },
        "page 1",
    );
}

#[test]
fn class_code_of_7_fails_its_checksum_and_is_rebuilt() {
    damaged_cache_is_rebuilt(
        |cache, _| {
            let mut labels = std::fs::read(cache.join("labels.bin")).unwrap();
            labels[5] = 7;
            std::fs::write(cache.join("labels.bin"), &labels).unwrap();
        },
        "labels.bin",
    );
}

#[test]
fn huge_gene_index_fails_its_checksum_and_is_rebuilt() {
    damaged_cache_is_rebuilt(
        |cache, _| {
            let mut groups = std::fs::read(cache.join("groups.bin")).unwrap();
            groups[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
            std::fs::write(cache.join("groups.bin"), &groups).unwrap();
        },
        "groups.bin",
    );
}

#[test]
fn truncated_cache_is_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let data = synth(dir.path());
    let cfg = config(dir.path(), &data);
    train(&cfg);
    let cache = cache_dir(dir.path());
    let bins = cache.join("bins.bin");
    let len = std::fs::metadata(&bins).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&bins)
        .unwrap()
        .set_len(len - 8)
        .unwrap();
    let (err, stages) = train(&cfg);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains(&format!(
            "binned cache {} is incomplete (bins.bin has {} bytes, its manifest says {len}): rebuilding",
            cache.display(),
            len - 8
        )),
        "{err}"
    );
    assert!(stages.contains(&"bin".to_string()), "{stages:?}");
}

/// Damages `file` of the cache, then rewrites the manifest's checksum to match, as a
/// damaged cache could in principle; returns the training run's stderr (exit code 2).
fn refused_although_checksum_matches(file: &str, key: &str, damage: impl Fn(&mut Vec<u8>)) -> String {
    let dir = tempfile::tempdir().unwrap();
    let data = synth(dir.path());
    let cfg = config(dir.path(), &data);
    train(&cfg);
    let cache = cache_dir(dir.path());
    let path = cache.join(file);
    let mut bytes = std::fs::read(&path).unwrap();
    damage(&mut bytes);
    std::fs::write(&path, &bytes).unwrap();
    let mut manifest = json(&cache.join("manifest.json"));
    manifest[key] = xxh64(&bytes).into();
    std::fs::write(
        cache.join("manifest.json"),
        serde_json::to_vec(&manifest).unwrap(),
    )
    .unwrap();

    let (code, out, err) = run(&["train", cfg.to_str().unwrap()]);
    assert_eq!(code, 2, "stdout: {out}\nstderr: {err}");
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    redact(&err, dir.path()).replace(cache.file_name().unwrap().to_str().unwrap(), "[key]")
}

#[test]
fn class_code_out_of_range_never_reaches_the_learner() {
    let err = refused_although_checksum_matches("labels.bin", "labels_checksum", |b| b[5] = 7);
    insta::assert_snapshot!(err);
}

#[test]
fn gene_index_out_of_range_never_reaches_the_learner() {
    let err = refused_although_checksum_matches("groups.bin", "groups_checksum", |b| {
        b[4..8].copy_from_slice(&u32::MAX.to_le_bytes())
    });
    insta::assert_snapshot!(err);
}
