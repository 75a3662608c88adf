//! `inspect --leakage`: single-feature ROC-AUC per class from the binned cache, and its flags.
//!
//! `fixtures/leakage/cases.json` is written by `fixtures/leakage/make_expected.py` (its
//! expected values are scikit-learn's `roc_auc_score`); rerun it after changing the inputs.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::ArrayRef;
use common::{bools, floats, run, strings, write_parquet};
use serde_json::Value;
use spliceboost::io::{Dataset, DatasetConfig};
use spliceboost::leakage::{leakage, LeakageOptions, LeakageReport};
use spliceboost::memory::{MemoryConsumer, MemoryPool, MemoryReservation};

fn reservation(bytes: u64) -> MemoryReservation {
    let pool = Arc::new(MemoryPool::new(1 << 30));
    MemoryConsumer::new("eval")
        .with_budget(bytes, "memory.eval")
        .register(&pool)
}

/// Writes `dir/data/batch_00000.parquet` with a gene column, the labels (0 neither, 1 donor,
/// 2 acceptor) and `features`, and opens it.
fn dataset(dir: &Path, labels: &[u8], features: Vec<(&str, ArrayRef)>) -> Dataset {
    let names = ["neither", "donor", "acceptor"];
    let genes: Vec<String> = (0..labels.len()).map(|i| format!("g{}", i % 10)).collect();
    let mut cols: Vec<(&str, ArrayRef)> = vec![
        (
            "gene_id",
            strings(&genes.iter().map(|g| Some(g.as_str())).collect::<Vec<_>>()),
        ),
        (
            "splice_type",
            strings(
                &labels
                    .iter()
                    .map(|&c| Some(names[c as usize]))
                    .collect::<Vec<_>>(),
            ),
        ),
    ];
    cols.extend(features);
    let path = dir.join("data");
    write_parquet(&path.join("batch_00000.parquet"), cols);
    Dataset::open(&DatasetConfig {
        path,
        ..Default::default()
    })
    .unwrap()
}

fn measure(dir: &Path, ds: &Dataset, threshold: f64) -> LeakageReport {
    let mut opts = LeakageOptions::new(dir.join("cache"));
    opts.threshold = threshold;
    leakage(ds, &opts, &mut reservation(256 << 20)).unwrap()
}

/// A small deterministic generator, so that the tests need no seeded crate.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// 600 rows, 60 % neither, 20 % donor, 20 % acceptor, in a shuffled order.
fn labels(rng: &mut Lcg) -> Vec<u8> {
    (0..600)
        .map(|_| match rng.next() {
            x if x < 0.6 => 0,
            x if x < 0.8 => 1,
            _ => 2,
        })
        .collect()
}

#[test]
fn auc_matches_scikit_learn_with_ties_missing_values_and_sparse_columns() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/leakage/cases.json");
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let labels: Vec<u8> = doc["labels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| match v.as_str().unwrap() {
            "neither" => 0,
            "donor" => 1,
            _ => 2,
        })
        .collect();
    let columns = doc["columns"].as_object().unwrap();
    let is_bool = |n: &str| doc["bool_columns"].as_array().unwrap().iter().any(|b| b == n);
    let mut features: Vec<(&str, ArrayRef)> = vec![];
    for (name, values) in columns {
        let v: Vec<Option<f64>> = values.as_array().unwrap().iter().map(Value::as_f64).collect();
        let array = if is_bool(name) {
            bools(&v.iter().map(|x| x == &Some(1.0)).collect::<Vec<_>>())
        } else {
            floats(&v)
        };
        features.push((name.as_str(), array));
    }
    let dir = tempfile::tempdir().unwrap();
    let ds = dataset(dir.path(), &labels, features);
    let report = measure(dir.path(), &ds, 0.95);

    // The fixture must reach the sparse pages and the missing bin, or it proves less.
    let cache = only_cache(&dir.path().join("cache"));
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(cache.join("manifest.json")).unwrap()).unwrap();
    let feats = manifest["cuts"]["features"].as_array().unwrap();
    let sparse: Vec<&str> = manifest["sparse"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| feats[j.as_u64().unwrap() as usize]["name"].as_str().unwrap())
        .collect();
    assert!(
        sparse.contains(&"3mer_ACG") && sparse.contains(&"sparse_missing"),
        "stored sparse: {sparse:?}"
    );

    for (name, expected) in doc["expected_auc"].as_object().unwrap() {
        let got = report
            .feature(name)
            .unwrap_or_else(|| panic!("{name} not in the report"))
            .auc;
        for c in 0..3 {
            let want = expected[c].as_f64().unwrap();
            assert!(
                (got[c] - want).abs() < 1e-12,
                "{name}, class {c}: spliceboost {} vs scikit-learn {want}",
                got[c]
            );
        }
    }
}

fn only_cache(root: &Path) -> PathBuf {
    let dirs: Vec<PathBuf> = std::fs::read_dir(root)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    dirs[0].clone()
}

#[test]
fn planted_leaky_column_is_flagged_and_noise_is_not() {
    let mut rng = Lcg(7);
    let y = labels(&mut rng);
    let splice: Vec<Option<f64>> = y.iter().map(|&c| Some(f64::from(c > 0))).collect();
    let noise: Vec<Option<f64>> = y.iter().map(|_| Some(rng.next())).collect();
    let dir = tempfile::tempdir().unwrap();
    let ds = dataset(
        dir.path(),
        &y,
        vec![("planted", floats(&splice)), ("noise", floats(&noise))],
    );
    let report = measure(dir.path(), &ds, 0.95);
    let planted = report.feature("planted").unwrap();
    assert_eq!(
        planted.auc[0], 0.0,
        "1 on every splice row: neither ranked below all"
    );
    assert!(planted.flagged_by_auc && planted.flagged_by_name.is_none());
    let noise = report.feature("noise").unwrap();
    assert!(!noise.flagged(), "{noise:?}");
    assert_eq!(report.features[0].name, "planted", "flagged features come first");
    assert_eq!(report.flagged(), 1);
}

#[test]
fn known_structure_column_without_signal_is_flagged_by_name() {
    let mut rng = Lcg(11);
    let y = labels(&mut rng);
    let noise: Vec<Option<f64>> = y.iter().map(|_| Some((rng.next() * 5000.0).floor())).collect();
    let dir = tempfile::tempdir().unwrap();
    let ds = dataset(dir.path(), &y, vec![("distance_to_start", floats(&noise))]);
    let report = measure(dir.path(), &ds, 0.95);
    let f = report.feature("distance_to_start").unwrap();
    assert!(f.max_separation() < 0.6, "no signal: {f:?}");
    assert!(!f.flagged_by_auc);
    assert!(f.flagged_by_name.is_some_and(|why| why.contains("transcript")));
    assert!(
        report.summary_line().starts_with("1 feature flagged"),
        "{}",
        report.summary_line()
    );
}

#[test]
fn threshold_decides_what_is_flagged_by_auc() {
    let mut rng = Lcg(5);
    let y = labels(&mut rng);
    // The splice indicator with 5 % of rows flipped: a separation near 0.95, never 1.
    let strong: Vec<Option<f64>> = y
        .iter()
        .map(|&c| Some(f64::from((c > 0) != (rng.next() < 0.05))))
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let ds = dataset(dir.path(), &y, vec![("strong", floats(&strong))]);
    let sep = measure(dir.path(), &ds, 0.95)
        .feature("strong")
        .unwrap()
        .separation()[0];
    assert!(sep > 0.9 && sep < 0.99, "{sep}");
    assert!(
        measure(dir.path(), &ds, sep - 0.01)
            .feature("strong")
            .unwrap()
            .flagged_by_auc
    );
    assert!(
        !measure(dir.path(), &ds, sep + 0.01)
            .feature("strong")
            .unwrap()
            .flagged_by_auc
    );
    assert!(
        !measure(dir.path(), &ds, sep)
            .feature("strong")
            .unwrap()
            .flagged_by_auc,
        "above, not at"
    );
}

#[test]
fn counts_are_reserved_before_the_pass() {
    use spliceboost::binning::cache::{find, PageCache};
    let mut rng = Lcg(3);
    let y = labels(&mut rng);
    // 40 features of 600 distinct values each: 40 × 256 bins × 3 classes of u64 counts,
    // far more than the pass's small fixed part.
    let names: Vec<String> = (0..40).map(|i| format!("x{i}")).collect();
    let features = names
        .iter()
        .map(|n| {
            let x: Vec<Option<f64>> = y.iter().map(|_| Some(rng.next())).collect();
            (n.as_str(), floats(&x))
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let ds = dataset(dir.path(), &y, features);
    measure(dir.path(), &ds, 0.95);
    let cache = only_cache(&dir.path().join("cache"));
    let fp = cache.file_name().unwrap().to_str().unwrap();
    let pages = PageCache::open(&cache, find(&cache, fp).unwrap()).unwrap();
    let auc = spliceboost::leakage::single_feature_auc;
    let mut big = reservation(64 << 20);
    auc(&pages, &mut big).unwrap();
    let peak = big.peak();
    let counts = spliceboost::leakage::count_bytes(&pages.manifest.cuts);
    assert_eq!(counts, 40 * 256 * 24);
    assert!(
        peak >= counts + 600,
        "peak {peak}: the counts and 600 labels are reserved"
    );
    // The budget binds at what the pass reserves, and is refused before any counting.
    let err = auc(&pages, &mut reservation(peak - 1)).unwrap_err();
    let text = format!("{err:#}");
    assert!(text.contains("memory.eval") && text.contains("counts"), "{text}");
    assert!(auc(&pages, &mut reservation(peak)).is_ok());
}

/// A config for `inspect` over a dataset with a planted column and a known structure column.
fn cli_case(dir: &Path) -> PathBuf {
    let mut rng = Lcg(13);
    let y = labels(&mut rng);
    let splice: Vec<Option<f64>> = y.iter().map(|&c| Some(f64::from(c > 0))).collect();
    let noise: Vec<Option<f64>> = y.iter().map(|_| Some(rng.next())).collect();
    dataset(
        dir,
        &y,
        vec![
            ("planted", floats(&splice)),
            ("num_exons", floats(&noise)),
            ("noise", floats(&noise)),
        ],
    );
    let config = dir.join("c.toml");
    std::fs::write(
        &config,
        format!(
            "[run]\nout_dir = {:?}\nprogress = false\n\n[dataset]\npath = {:?}\n",
            dir.join("out").display().to_string(),
            dir.join("data").display().to_string()
        ),
    )
    .unwrap();
    config
}

#[test]
fn inspect_leakage_exits_zero_prints_the_count_and_writes_leakage_tsv() {
    let dir = tempfile::tempdir().unwrap();
    let config = cli_case(dir.path());
    let (code, out, err) = run(&["inspect", config.to_str().unwrap(), "--leakage"]);
    assert_eq!(code, 0, "flags are a report, not a failure: {err}");
    assert_eq!(
        out.lines().last(),
        Some("2 features flagged (1 with a separation above 0.95, 1 more by name)"),
        "{out}"
    );
    let tsv = std::fs::read_to_string(dir.path().join("out/leakage.tsv")).unwrap();
    let rows: Vec<Vec<&str>> = tsv.lines().map(|l| l.split('\t').collect()).collect();
    assert_eq!(rows[0][0], "feature");
    assert_eq!(rows[0].len(), 9);
    assert_eq!(
        rows[1..].iter().map(|r| r[0]).collect::<Vec<_>>(),
        ["planted", "num_exons", "noise"],
        "flagged first"
    );
    assert_eq!((rows[1][1], rows[1][7]), ("0.000000", "true"));
    assert!(rows[2][8].contains("transcript"), "{tsv}");

    let (code, out, _) = run(&["inspect", config.to_str().unwrap(), "--leakage", "--json"]);
    assert_eq!(code, 0);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["leakage"]["features"][0]["name"], "planted");
    assert_eq!(v["leakage"]["features"][0]["separation"][0], 1.0);
    assert_eq!(v["rows"], 600, "the inspect report is still there");
}

#[test]
fn leakage_threshold_outside_half_to_one_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let config = cli_case(dir.path());
    let (code, _, err) = run(&[
        "inspect",
        config.to_str().unwrap(),
        "--leakage",
        "--leakage-threshold",
        "0.3",
    ]);
    assert_ne!(code, 0);
    assert!(err.contains("0.5 to 1"), "{err}");
    assert!(!dir.path().join("out/leakage.tsv").exists());
}
