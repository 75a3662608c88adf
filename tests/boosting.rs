//! The learner end to end on small synthetic data: determinism, budget invariance, the page
//! cache round trip, histograms, missing values, model files and bad input.

mod common;

use std::path::{Path, PathBuf};

use proptest::prelude::*;
use spliceboost::binning::cache::{self, PageCache};
use spliceboost::binning::{sketch_dataset, Cuts, QuantileSketch};
use spliceboost::boost::hist::{page_features, Histogram, Packed};
use spliceboost::boost::{EvalMetric, Model, Role, TrainParams};
use spliceboost::io::{to_f32, Dataset};
use spliceboost::memory::{MemoryConsumer, MemoryPool};
use spliceboost::run::config::Config;
use spliceboost::run::RunContext;
use spliceboost::synth::{write_dataset, SynthOptions};

fn synth(dir: &Path, name: &str, genes: usize, genes_per_file: usize) -> PathBuf {
    let out = dir.join(name);
    let opts = SynthOptions {
        genes,
        rows_per_gene: 100,
        kmer: 2,
        genes_per_file,
        seed: 7,
        with_sequence: false,
    };
    let pool = std::sync::Arc::new(MemoryPool::new(1 << 30));
    write_dataset(&out, &opts, &mut MemoryConsumer::new("synth").register(&pool)).unwrap();
    out
}

/// Trains with the library API; `extra` are `--set` overrides.
fn train(data: &Path, out: &Path, extra: &[&str]) -> anyhow::Result<Model> {
    let mut sets: Vec<String> = vec![
        format!("run.out_dir={:?}", out.display().to_string()),
        format!("dataset.path={:?}", data.display().to_string()),
        "train.n_estimators=12".into(),
        "train.max_depth=3".into(),
        "train.learning_rate=0.3".into(),
        "train.subsample=0.8".into(),
        "train.colsample_bytree=0.8".into(),
        "run.progress=false".into(),
    ];
    sets.extend(extra.iter().map(|s| s.to_string()));
    let cfg = Config::from_overrides(&sets)?;
    let params = cfg.train.clone().unwrap_or_default();
    let ctx = RunContext::new(cfg, "test");
    std::fs::create_dir_all(out)?;
    Ok(spliceboost::run::train_job(&ctx, &params, out, true)?.model)
}

fn same_trees(a: &Model, b: &Model) {
    assert_eq!(a.trees.len(), b.trees.len());
    assert_eq!(a.base_margin, b.base_margin);
    for (x, y) in a.trees.iter().zip(&b.trees) {
        assert_eq!(x, y);
    }
}

#[test]
fn same_seed_same_model() {
    let dir = tempfile::tempdir().unwrap();
    let data = synth(dir.path(), "d", 24, 8);
    let a = train(&data, &dir.path().join("a"), &[]).unwrap();
    let b = train(&data, &dir.path().join("b"), &[]).unwrap();
    same_trees(&a, &b);
    let c = train(&data, &dir.path().join("c"), &["run.seed=8"]).unwrap();
    assert_ne!(a.trees, c.trees, "another seed samples other rows and columns");
}

#[test]
fn budget_and_file_layout_do_not_change_the_model() {
    let dir = tempfile::tempdir().unwrap();
    // 600 genes × 100 rows: four pages of the cache, enough for two threads to take whole
    // pages, and more than the two a pass that splits pages holds. Two threads wherever the
    // test runs, so that the budgets below choose the ways of passing they name.
    let many = synth(dir.path(), "many", 600, 50);
    let one = synth(dir.path(), "one", 600, 600);
    let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
    let train = |data: &Path, name: &str, extra: &[&str]| {
        pool.install(|| train(data, &dir.path().join(name), extra).unwrap())
    };
    // Resident: whole pages to each thread.
    let big = train(&many, "big", &["memory.total=\"2GiB\"", "memory.train=\"1GiB\""]);
    let small = train(&many, "small", &["memory.train=\"16MiB\""]);
    same_trees(&big, &small);
    let cache_dir = std::fs::read_dir(dir.path().join("big/cache"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let m: cache::CacheManifest =
        serde_json::from_slice(&std::fs::read(cache_dir.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(m.pages.len(), 4);
    let (state, hists) = spliceboost::boost::sizing::train_bytes(
        m.rows,
        // At most every row validates (the others spare 12 bytes each, far less than a page).
        m.rows,
        *m.cuts.slot_offsets().last().unwrap(),
        &TrainParams {
            max_depth: 3,
            ..Default::default()
        },
        2,
    );
    let names: Vec<&str> = m.cuts.features.iter().map(|f| f.name.as_str()).collect();
    let model = spliceboost::boost::sizing::model_bytes(
        &TrainParams {
            max_depth: 3,
            n_estimators: 12,
            ..Default::default()
        },
        spliceboost::memory::names_bytes(&names),
    );
    // Budgets that hold the state, the histograms and some pages but not the whole cache:
    // three pages (one per thread and the next), then only two (each page split among the
    // threads).
    for (pages, name) in [(3, "whole_pages"), (2, "split_pages")] {
        let streaming = state + hists + model + m.streamed_bytes(pages) + 1024;
        assert!(streaming < state + hists + m.bins_bytes());
        let streamed = train(&many, name, &[&format!("memory.train={streaming}")]);
        same_trees(&big, &streamed);
    }
    // A budget that also holds one page and a huge page of slack keeps that page mapped.
    let one_kept = state + hists + model + m.streamed_bytes(3) + m.max_page_len() + cache::HUGE_PAGE + 1024;
    same_trees(
        &big,
        &train(&many, "one_kept", &[&format!("memory.train={one_kept}")]),
    );
    let single = train(&one, "single", &["memory.train=\"16MiB\""]);
    same_trees(&big, &single);
}

#[test]
fn sketch_budget_does_not_change_the_cuts() {
    let dir = tempfile::tempdir().unwrap();
    // 20,000 rows: enough for the sketches to compact.
    let data = synth(dir.path(), "s", 200, 25);
    let ds = Dataset::open(&spliceboost::run::config::DatasetConfig {
        path: data,
        ..Default::default()
    })
    .unwrap();
    let names: Vec<String> = ds.feature_names();
    let (min_scan, _) = ds
        .scan()
        .with_columns(&names)
        .with_extra_row_bytes(4 * rayon::current_num_threads() as u64)
        .min_bytes();
    let tight = min_scan + spliceboost::binning::sketch_bytes(2048, ds.rows(), 256, names.len()) + 4096;
    let cuts_at = |budget: u64| {
        let pool = std::sync::Arc::new(MemoryPool::new(budget));
        let mut res = MemoryConsumer::new("sketch")
            .with_budget(budget, "memory.sketch")
            .register(&pool);
        sketch_dataset(&ds, 256, 2048, &mut res).unwrap()
    };
    let whole = cuts_at(1 << 30);
    assert_eq!(cuts_at(tight), whole);
    // Below that the features are read in groups, several scans, each settling few-valued
    // features exactly before the others are sketched: the same cuts.
    let groups = min_scan + 3 * spliceboost::binning::QuantileSketch::max_bytes(2048, ds.rows());
    assert!(groups + 4096 < tight, "the budget must not hold every sketch");
    assert_eq!(cuts_at(groups), whole);
    // A budget that cannot hold one feature's sketch beside its scan is refused.
    let pool = std::sync::Arc::new(MemoryPool::new(1 << 30));
    let one = spliceboost::binning::QuantileSketch::max_bytes(2048, ds.rows());
    let mut res = MemoryConsumer::new("sketch")
        .with_budget(one, "memory.sketch")
        .register(&pool);
    let Err(err) = sketch_dataset(&ds, 256, 2048, &mut res) else {
        panic!("a budget of one sketch and no scan was accepted");
    };
    let err = err.to_string();
    assert!(err.contains("train.sketch_size"), "{err}");
}

#[test]
fn cache_round_trips_every_value() {
    let dir = tempfile::tempdir().unwrap();
    let (ds, cuts, pc) = small_cache(dir.path(), 6, 64);
    assert!(
        cuts.features.iter().any(|f| f.sparse),
        "the CSR path is exercised"
    );
    let fp = cache::fingerprint(&ds, 64, 2048);
    assert_eq!(
        cache::find(&dir.path().join("c"), &fp).as_ref(),
        Some(&pc.manifest),
        "a finished cache is found again"
    );
    let pool = std::sync::Arc::new(MemoryPool::new(1 << 30));
    let res = MemoryConsumer::new("scan").register(&pool);
    let names: Vec<String> = ds.feature_names();
    let mut row = 0usize;
    let mut buf = vec![];
    let mut slot = pc.page_slot();
    let page = pc.page(0, &mut slot).unwrap();
    for item in ds.scan().with_columns(&names).build(&res).unwrap() {
        let b = item.unwrap();
        for r in 0..b.batch.num_rows() {
            for (j, name) in names.iter().enumerate() {
                to_f32(b.batch.column(j).as_ref(), &mut buf);
                assert_eq!(
                    page.code(row + r, &pc.layout, j),
                    cuts.features[j].bin(buf[r]),
                    "row {} feature {name}",
                    row + r
                );
            }
        }
        row += b.batch.num_rows();
    }
    assert_eq!(row as u64, pc.manifest.rows);
}

#[test]
fn missing_values_follow_the_learned_direction() {
    let dir = tempfile::tempdir().unwrap();
    // x is missing exactly on the positive rows: the only signal.
    let n = 400;
    let genes: Vec<String> = (0..n).map(|i| format!("g{}", i / 10)).collect();
    let labels: Vec<Option<&str>> = (0..n)
        .map(|i| if i % 3 == 0 { Some("donor") } else { None })
        .collect();
    let x: Vec<Option<f64>> = (0..n)
        .map(|i| if i % 3 == 0 { None } else { Some((i % 7) as f64) })
        .collect();
    common::write_parquet(
        &dir.path().join("d/a.parquet"),
        vec![
            (
                "gene_id",
                common::strings(&genes.iter().map(|g| Some(g.as_str())).collect::<Vec<_>>()),
            ),
            ("splice_type", common::strings(&labels)),
            ("x", common::floats(&x)),
        ],
    );
    let m = train(
        &dir.path().join("d"),
        &dir.path().join("o"),
        &[
            "train.subsample=1.0",
            "train.colsample_bytree=1.0",
            "train.valid_fraction=0.0",
        ],
    )
    .unwrap();
    assert!(m.predict(&[f32::NAN]) > 0.9, "missing → donor");
    assert!(m.predict(&[3.0]) < 0.1, "present → not donor");
}

#[test]
fn model_file_round_trip_and_refusals() {
    let dir = tempfile::tempdir().unwrap();
    let data = synth(dir.path(), "d", 12, 6);
    let out = dir.path().join("o");
    let m = train(&data, &out, &[]).unwrap();
    let path = out.join("model.json");
    let back = Model::load(&path).unwrap();
    assert_eq!(back, m);
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(dir.path().join("cut.json"), &text[..text.len() / 2]).unwrap();
    let err = Model::load(&dir.path().join("cut.json")).unwrap_err().to_string();
    assert!(err.contains("truncated"), "{err}");
    std::fs::write(
        dir.path().join("v9.json"),
        text.replacen("\"version\":1", "\"version\":9", 1),
    )
    .unwrap();
    let err = Model::load(&dir.path().join("v9.json")).unwrap_err().to_string();
    assert!(err.contains("version 9"), "{err}");
    // The XGBoost export carries every tree and node.
    let x = m.to_xgboost_json();
    let trees = x["learner"]["gradient_booster"]["model"]["trees"]
        .as_array()
        .unwrap();
    assert_eq!(trees.len(), m.trees.len());
    assert_eq!(
        trees[0]["left_children"].as_array().unwrap().len(),
        m.trees[0].len()
    );
}

#[test]
fn malformed_models_are_refused_at_load() {
    let dir = tempfile::tempdir().unwrap();
    let data = synth(dir.path(), "d", 12, 6);
    let out = dir.path().join("o");
    train(&data, &out, &[]).unwrap();
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("model.json")).unwrap()).unwrap();
    type Break = fn(&mut serde_json::Value);
    let cases: [(&str, Break); 5] = [
        // The root pointing at itself would loop forever in predict.
        ("root's left child 0", |v| v["trees"][0]["left"][0] = 0.into()),
        ("a negative child", |v| v["trees"][0]["right"][0] = (-5).into()),
        ("a child past the end", |v| {
            v["trees"][0]["left"][0] = 10_000.into()
        }),
        ("an empty tree", |v| {
            let t = &mut v["trees"][0];
            for k in t.as_object().unwrap().keys().cloned().collect::<Vec<_>>() {
                t[&k] = serde_json::json!([]);
            }
        }),
        ("a short default_left", |v| {
            v["trees"][0]["default_left"].as_array_mut().unwrap().pop();
        }),
    ];
    for (what, break_it) in cases {
        let mut bad = v.clone();
        assert!(
            bad["trees"][0]["left"][0].as_i64().unwrap() > 0,
            "tree 0 has a split"
        );
        break_it(&mut bad);
        let path = dir.path().join("bad.json");
        std::fs::write(&path, serde_json::to_vec(&bad).unwrap()).unwrap();
        let err = Model::load(&path).expect_err(what).to_string();
        assert!(
            err.contains("malformed model") && err.contains("tree 0"),
            "{what}: {err}"
        );
    }
}

#[test]
fn early_stopping_keeps_the_best_iteration() {
    let dir = tempfile::tempdir().unwrap();
    let data = synth(dir.path(), "d", 24, 8);
    // Learning rate 1 overfits quickly, so validation log loss turns within 60 rounds.
    let m = train(
        &data,
        &dir.path().join("o"),
        &[
            "train.n_estimators=60",
            "train.learning_rate=1.0",
            "train.early_stopping_rounds=3",
            "train.valid_fraction=0.25",
        ],
    )
    .unwrap();
    let best = m.best_iteration.expect("a validation split");
    let scores: Vec<f64> = m.log.iter().map(|it| it.valid_score.unwrap()).collect();
    assert!(m.log.len() < 60, "stopped early: {} rounds", m.log.len());
    assert_eq!(m.log.len(), best + 1 + 3, "stopped 3 rounds after the best");
    assert_eq!(m.trees.len(), best + 1, "kept the trees up to the best round");
    let min = scores.iter().copied().fold(f64::INFINITY, f64::min);
    assert_eq!(scores[best], min);
    assert_eq!(m.best_score, Some(min));
}

/// Every fifth row validates and every fifth is left out (as a test fold's are); the rest
/// train.
fn mixed_roles(n: usize) -> Vec<Role> {
    (0..n)
        .map(|i| match i % 5 {
            0 => Role::Valid,
            1 => Role::Skip,
            _ => Role::Train,
        })
        .collect()
}

#[test]
fn training_margins_equal_predict_on_raw_features() {
    let dir = tempfile::tempdir().unwrap();
    let (ds, _, pc) = small_cache(dir.path(), 12, 64);
    let labels = pc.labels().unwrap();
    let roles = mixed_roles(labels.len());
    let params = TrainParams {
        n_estimators: 10,
        max_depth: 4,
        subsample: 0.8,
        ..Default::default()
    };
    let pool = std::sync::Arc::new(MemoryPool::new(1 << 30));
    let mut res = MemoryConsumer::new("train").register(&pool);
    let fitted = spliceboost::boost::fit(&pc, &labels, &roles, &params, 5, &mut res, |_| {}).unwrap();
    let rows = for_each_raw_row(&ds, &pool, |row, x| {
        assert_eq!(
            fitted.model.predict_margin(x),
            fitted.margin[row],
            "row {row} ({:?})",
            roles[row]
        );
    });
    assert_eq!(rows, labels.len());
}

#[test]
fn the_logged_losses_are_those_of_the_returned_margins() {
    let dir = tempfile::tempdir().unwrap();
    let (_, _, pc) = small_cache(dir.path(), 12, 64);
    let labels = pc.labels().unwrap();
    let roles = mixed_roles(labels.len());
    let pool = std::sync::Arc::new(MemoryPool::new(1 << 30));
    for metric in [EvalMetric::Logloss, EvalMetric::Rmse] {
        let params = TrainParams {
            n_estimators: 6,
            max_depth: 4,
            subsample: 0.8,
            eval_metric: metric,
            early_stopping_rounds: 0,
            ..Default::default()
        };
        let mut res = MemoryConsumer::new("train").register(&pool);
        let fitted = spliceboost::boost::fit(&pc, &labels, &roles, &params, 5, &mut res, |_| {}).unwrap();
        // The oracle: the last round's losses worked out here, in f64 and row order, from
        // the margins the fit returns (which `training_margins_equal_predict_on_raw_features`
        // checks against the model).
        let class = params.class_code().unwrap();
        let mean_over = |role: Role, term: &dyn Fn(f64, f64) -> f64| {
            let (mut s, mut n) = (0.0, 0);
            for (i, &m) in fitted.margin.iter().enumerate() {
                if roles[i] == role {
                    let y = f64::from(u8::from(labels[i] == class));
                    s += term(1.0 / (1.0 + (-(m as f64)).exp()), y);
                    n += 1;
                }
            }
            s / n as f64
        };
        let logloss = |p: f64, y: f64| -(y * p.ln() + (1.0 - y) * (1.0 - p).ln());
        let last = fitted.model.log.last().unwrap();
        let close = |a: f64, b: f64| (a - b).abs() <= 1e-6 * b.abs();
        let train = mean_over(Role::Train, &logloss);
        assert!(
            close(last.train_loss, train),
            "{metric:?}: train {} against {train}",
            last.train_loss
        );
        let valid = match metric {
            EvalMetric::Rmse => mean_over(Role::Valid, &|p, y| (p - y).powi(2)).sqrt(),
            _ => mean_over(Role::Valid, &logloss),
        };
        let logged = last.valid_score.unwrap();
        assert!(close(logged, valid), "{metric:?}: valid {logged} against {valid}");
    }
}

/// Calls `f` with each dataset row's raw feature values, in cache order; returns the rows.
fn for_each_raw_row(
    ds: &Dataset,
    pool: &std::sync::Arc<MemoryPool>,
    mut f: impl FnMut(usize, &[f32]),
) -> usize {
    let names = ds.feature_names();
    let res = MemoryConsumer::new("scan").register(pool);
    let (mut row, mut col) = (0usize, Vec::new());
    let mut x = vec![0f32; names.len()];
    for b in ds.scan().with_columns(&names).build(&res).unwrap() {
        let b = b.unwrap();
        let cols: Vec<Vec<f32>> = (0..names.len())
            .map(|j| {
                to_f32(b.batch.column(j).as_ref(), &mut col);
                col.clone()
            })
            .collect();
        for r in 0..b.batch.num_rows() {
            for (j, c) in cols.iter().enumerate() {
                x[j] = c[r];
            }
            f(row, &x);
            row += 1;
        }
    }
    row
}

#[test]
fn class_without_positives_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    common::write_parquet(
        &dir.path().join("d/a.parquet"),
        vec![
            ("gene_id", common::strings(&[Some("g1"), Some("g2"), Some("g3")])),
            ("splice_type", common::strings(&[Some("donor"), None, None])),
            ("x", common::floats(&[Some(1.0), Some(2.0), Some(3.0)])),
        ],
    );
    let err = train(
        &dir.path().join("d"),
        &dir.path().join("o"),
        &["train.class=\"acceptor\"", "train.valid_fraction=0.0"],
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("class `acceptor` has 0 of 3 training rows"), "{err}");
}

#[test]
fn train_budget_too_small_is_refused_before_any_pass() {
    let dir = tempfile::tempdir().unwrap();
    let data = synth(dir.path(), "d", 12, 6);
    let out = dir.path().join("o");
    let err = train(&data, &out, &["memory.train=\"64KiB\""])
        .unwrap_err()
        .to_string();
    assert!(err.contains("stage `train` needs at least"), "{err}");
    assert!(err.contains("memory.train="), "{err}");
    assert!(!out.join("cache").exists(), "no sketch or bin pass ran");
}

#[test]
fn predict_refuses_a_dataset_without_the_model_features() {
    let dir = tempfile::tempdir().unwrap();
    let data = synth(dir.path(), "d", 12, 6);
    let out = dir.path().join("o");
    train(&data, &out, &[]).unwrap();
    common::tiny_batch(&dir.path().join("other/a.parquet"));
    let (code, _, err) = common::run(&[
        "predict",
        "--model",
        out.join("model.json").to_str().unwrap(),
        "--dataset",
        dir.path().join("other").to_str().unwrap(),
        "--out",
        dir.path().join("s.parquet").to_str().unwrap(),
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("the model needs this feature"), "{err}");
    assert!(!dir.path().join("s.parquet").exists());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn sketch_rank_error_within_bound(
        a in prop::collection::vec(-1000.0f32..1000.0, 0..3000),
        b in prop::collection::vec(-1000.0f32..1000.0, 0..3000),
        k in 8usize..64,
    ) {
        let mut sa = QuantileSketch::new(k);
        let mut sb = QuantileSketch::new(k);
        a.iter().for_each(|&v| sa.insert(v));
        b.iter().for_each(|&v| sb.insert(v));
        sa.merge(&sb);
        let all: Vec<f32> = a.iter().chain(&b).copied().collect();
        prop_assert_eq!(sa.count(), all.len() as u64);
        for q in all.iter().step_by(97).chain([f32::MIN, 0.0, f32::MAX].iter()) {
            let truth = all.iter().filter(|&&v| v < *q).count() as i64;
            let est = sa.rank(*q) as i64;
            prop_assert!((est - truth).unsigned_abs() <= sa.rank_error_bound(),
                "rank of {} off by {} (bound {})", q, est - truth, sa.rank_error_bound());
        }
    }
}

/// A binned cache of a small synthetic dataset in `dir/c`.
#[test]
fn a_page_changed_on_disk_after_the_cache_was_opened_is_refused_when_first_streamed() {
    let dir = tempfile::tempdir().unwrap();
    let (_, _, pc) = small_cache(dir.path(), 6, 64);
    pc.set_resident(false);
    let mut buf = pc.page_slot();
    let bins = dir.path().join("c/bins.bin");
    let mut bytes = std::fs::read(&bins).unwrap();
    bytes[0] ^= 0xFF;
    std::fs::write(&bins, &bytes).unwrap();
    let err = format!("{:#}", pc.read_into(0, &mut buf).unwrap_err());
    assert!(
        err.contains("page 0") && err.contains("checksum") && err.contains("bins.bin"),
        "{err}"
    );
}

/// Resident bytes of the process's map of `file`, from /proc/self/smaps.
fn mapped_rss(file: &Path) -> u64 {
    let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
    let name = file.to_str().unwrap();
    let mut inside = false;
    let mut kib = 0;
    for line in smaps.lines() {
        // A mapping's header (`start-end perms offset dev inode [path]`) or one of its
        // `Key: value` lines.
        match line.split_whitespace().next() {
            Some(first) if !first.ends_with(':') => inside = line.ends_with(name),
            Some("Rss:") if inside => {
                kib += line.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap();
            }
            _ => {}
        }
    }
    kib * 1024
}

#[test]
fn a_streamed_pass_keeps_at_most_two_pages_mapped_and_hands_them_back() {
    let dir = tempfile::tempdir().unwrap();
    // 60,000 rows: four pages.
    let (_, _, pc) = small_cache(dir.path(), 600, 64);
    assert_eq!(pc.manifest.pages.len(), 4);
    let bins = dir.path().join("c/bins.bin").canonicalize().unwrap();
    pc.set_resident(false);
    // What the trainer prices for a streamed pass.
    let bound = pc.manifest.streamed_bytes(2);
    let mut most = 0;
    let mut rows = 0;
    for dense in [None, Some(&[0usize, 2, 3][..])] {
        pc.for_each_page(dense, |page| {
            // Touch every byte the pass may read, as a level pass does.
            let sum: u64 = page.dense.iter().map(|&b| b as u64).sum();
            assert!(sum < u64::MAX);
            rows += page.rows;
            most = most.max(mapped_rss(&bins));
            Ok(())
        })
        .unwrap();
        let left = mapped_rss(&bins);
        assert!(
            left <= pc.manifest.streamed_bytes(0),
            "{left} bytes left mapped after the pass"
        );
    }
    assert_eq!(rows as u64, 2 * pc.manifest.rows);
    assert!(most > 0 && most <= bound, "{most} bytes mapped, bound {bound}");
}

#[test]
fn a_whole_page_pass_keeps_a_page_per_worker_and_one_more_mapped_and_hands_them_back() {
    let dir = tempfile::tempdir().unwrap();
    // 60,000 rows: four pages.
    let (_, _, pc) = small_cache(dir.path(), 600, 64);
    let bins = dir.path().join("c/bins.bin").canonicalize().unwrap();
    pc.set_resident(false);
    let workers = 2;
    let bound = pc.manifest.streamed_bytes(workers as u64 + 1);
    let most = std::sync::atomic::AtomicU64::new(0);
    // Each worker counts its pages' rows; each row's item says which page gave it.
    let mut states = vec![0usize; workers];
    let mut seen = vec![u32::MAX; pc.manifest.rows as usize];
    pc.par_pages(None, &mut states, &mut seen, |rows, page, items| {
        let sum: u64 = page.dense.iter().map(|&b| b as u64).sum();
        assert!(sum < u64::MAX);
        *rows += page.rows;
        items.fill((page.first_row / cache::PAGE_ROWS as u64) as u32);
        most.fetch_max(mapped_rss(&bins), std::sync::atomic::Ordering::Relaxed);
        Ok(())
    })
    .unwrap();
    assert_eq!(states.iter().sum::<usize>() as u64, pc.manifest.rows);
    for (r, &p) in seen.iter().enumerate() {
        assert_eq!(p as usize, r / cache::PAGE_ROWS, "row {r}");
    }
    let left = mapped_rss(&bins);
    assert!(
        left <= pc.manifest.streamed_bytes(0),
        "{left} bytes left mapped after the pass"
    );
    let most = most.into_inner();
    assert!(most > 0 && most <= bound, "{most} bytes mapped, bound {bound}");
}

#[test]
fn kept_pages_stay_mapped_between_passes_and_go_back_when_let_go() {
    let dir = tempfile::tempdir().unwrap();
    // 60,000 rows: four pages; the first two kept.
    let (_, _, pc) = small_cache(dir.path(), 600, 64);
    let bins = dir.path().join("c/bins.bin").canonicalize().unwrap();
    let m = &pc.manifest;
    pc.set_kept_pages(2);
    for _ in 0..2 {
        pc.for_each_page(None, |page| {
            let sum: u64 = page.dense.iter().map(|&b| b as u64).sum();
            assert!(sum < u64::MAX);
            Ok(())
        })
        .unwrap();
        // Pages 0 and 1 (whole memory pages) stay; of the streamed ones, at most the memory
        // pages they share with a neighbour, and what a huge page reaches past the last kept.
        let kept = (m.pages[2].offset / 4096) * 4096;
        let left = mapped_rss(&bins);
        assert!(left >= kept, "{left} bytes mapped after the pass, {kept} kept");
        assert!(
            left <= kept + cache::HUGE_PAGE + m.streamed_bytes(0),
            "{left} bytes mapped after the pass, {kept} kept"
        );
    }
    pc.set_kept_pages(0);
    let left = mapped_rss(&bins);
    assert!(
        left <= m.streamed_bytes(0),
        "{left} bytes left mapped once let go"
    );
}

fn small_cache(dir: &Path, genes: usize, max_bin: usize) -> (Dataset, Cuts, PageCache) {
    let data = synth(dir, "h", genes, genes.div_ceil(2));
    let cfg = spliceboost::run::config::DatasetConfig {
        path: data,
        ..Default::default()
    };
    let ds = Dataset::open(&cfg).unwrap();
    let pool = std::sync::Arc::new(MemoryPool::new(1 << 30));
    let mut res = MemoryConsumer::new("bin").register(&pool);
    let cuts = sketch_dataset(&ds, max_bin, 2048, &mut res).unwrap();
    let fp = cache::fingerprint(&ds, max_bin, 2048);
    let m = cache::build(&ds, &cuts, &dir.join("c"), &fp, &mut res).unwrap();
    let pc = PageCache::open(&dir.join("c"), m).unwrap();
    (ds, cuts, pc)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]

    #[test]
    fn node_histogram_equals_sum_over_its_rows(
        seed in any::<u64>(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        // 1,600 rows: half of them are more than the kernel's scratch path takes (512).
        let (_, _, pc) = small_cache(dir.path(), 16, 32);
        let pf = page_features(&pc.layout, &pc.manifest.cuts);
        let nf = pc.manifest.cuts.features.len();
        let slots = *pf.offsets.last().unwrap();
        let mut buf = pc.page_slot();
        let page = pc.page(0, &mut buf).unwrap();
        let mut state = seed | 1;
        let mut next = || { state ^= state << 13; state ^= state >> 7; state ^= state << 17; (state % 2001) as f64 / 1000.0 - 1.0 };
        // A node of about half the rows or of a few (fewer than the kernel's scratch path
        // takes), with quantised gradients of either sign; each path is taken.
        let cut = if seed & 2 == 0 { 0.0 } else { 0.95 };
        let mut rows: Vec<(usize, i32, u32)> = vec![];
        for r in 0..page.rows {
            if next() > cut {
                let (g, h) = ((next() * 8192.0) as i32, (next().abs() * 16384.0) as u32);
                rows.push((r, g, h));
            }
        }
        let mut h = Histogram::zeros(slots);
        let idx: Vec<u32> = rows.iter().map(|&(r, _, _)| r as u32).collect();
        let gh: Vec<Packed> = rows.iter().map(|&(_, g, hh)| Packed::new(g, hh)).collect();
        h.add_rows(&page, &pf, &pf.all_columns(), &idx, &gh);
        let total = gh.iter().fold(Packed::ZERO, |a, &b| a.plus(b));
        h.fill_sparse_zeros(&pc.manifest.cuts, &pf, total);
        for f in 0..nf {
            // The oracle: plain integer sums per code, read with `Page::code`.
            let mut expect = vec![(0i64, 0u64); pc.manifest.cuts.features[f].n_slots()];
            for &(r, g, hh) in &rows {
                let c = page.code(r, &pc.layout, f) as usize;
                expect[c].0 += g as i64;
                expect[c].1 += hh as u64;
            }
            let got: Vec<(i64, u64)> = h.feature(f, &pf.offsets).iter().map(|p| (p.g(), p.h() as u64)).collect();
            prop_assert_eq!(got, expect, "feature {} ({} rows)", f, rows.len());
        }
        prop_assert!((rows.len() >= 512) == (cut == 0.0), "{} rows", rows.len());
    }

    #[test]
    fn sampled_columns_are_built_and_the_others_left_alone(seed in any::<u64>()) {
        let dir = tempfile::tempdir().unwrap();
        let (_, _, pc) = small_cache(dir.path(), 4, 32);
        let pf = page_features(&pc.layout, &pc.manifest.cuts);
        let nf = pc.manifest.cuts.features.len();
        let mut buf = pc.page_slot();
        let page = pc.page(0, &mut buf).unwrap();
        let features: Vec<usize> = (0..nf).filter(|f| (seed >> (f % 64)) & 1 == 1).collect();
        let rows: Vec<u32> = (0..page.rows as u32).collect();
        let gh = vec![Packed::new(-3, 5); rows.len()];
        let slots = *pf.offsets.last().unwrap();
        let (mut all, mut some) = (Histogram::zeros(slots), Histogram::zeros(slots));
        all.add_rows(&page, &pf, &pf.all_columns(), &rows, &gh);
        some.add_rows(&page, &pf, &pf.columns(&features), &rows, &gh);
        for f in 0..nf {
            if features.contains(&f) {
                prop_assert_eq!(some.feature(f, &pf.offsets), all.feature(f, &pf.offsets));
            } else {
                prop_assert!(some.feature(f, &pf.offsets).iter().all(|&p| p == Packed::ZERO));
            }
        }
    }
}

#[test]
fn subtraction_gives_the_sibling_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let (_, _, pc) = small_cache(dir.path(), 4, 32);
    let pf = page_features(&pc.layout, &pc.manifest.cuts);
    let slots = *pf.offsets.last().unwrap();
    let mut buf = pc.page_slot();
    let page = pc.page(0, &mut buf).unwrap();
    let (mut parent, mut left, mut right) = (
        Histogram::zeros(slots),
        Histogram::zeros(slots),
        Histogram::zeros(slots),
    );
    let cols = pf.all_columns();
    for r in 0..page.rows {
        let gh = [Packed::new((r % 7) as i32 - 3, (r % 5) as u32 + 1)];
        let row = [r as u32];
        parent.add_rows(&page, &pf, &cols, &row, &gh);
        if r % 3 == 0 { &mut left } else { &mut right }.add_rows(&page, &pf, &cols, &row, &gh);
    }
    left.subtract_from(&parent);
    assert_eq!(left, right);
}

#[test]
fn thread_count_does_not_change_the_model() {
    let dir = tempfile::tempdir().unwrap();
    let data = synth(dir.path(), "d", 24, 8);
    let with = |threads: usize, name: &str| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| train(&data, &dir.path().join(name), &[]).unwrap())
    };
    same_trees(&with(1, "one"), &with(3, "three"));
}

#[test]
fn leaf_values_are_refit_from_the_true_gradients() {
    // One tree from the base margin: each leaf's value must be XGBoost's -G / (H + lambda)
    // times the learning rate, with G and H the exact logistic gradients of the leaf's rows
    // (worked out here from the raw features), not their quantised sums.
    let dir = tempfile::tempdir().unwrap();
    let (ds, _, pc) = small_cache(dir.path(), 12, 64);
    let labels = pc.labels().unwrap();
    let roles = vec![Role::Train; labels.len()];
    let params = TrainParams {
        n_estimators: 1,
        max_depth: 3,
        learning_rate: 0.5,
        lambda: 2.0,
        ..Default::default()
    };
    let class = params.class_code().unwrap();
    let pool = std::sync::Arc::new(MemoryPool::new(1 << 30));
    let mut res = MemoryConsumer::new("train").register(&pool);
    let m = spliceboost::boost::train(&pc, &labels, &roles, &params, 5, &mut res, |_| {}).unwrap();
    let tree = &m.trees[0];
    let p = 1.0 / (1.0 + (-(m.base_margin as f64)).exp());
    let mut sums = vec![[0.0f64; 2]; tree.len()];
    for_each_raw_row(&ds, &pool, |row, x| {
        let y = f64::from(u8::from(labels[row] == class));
        let s = &mut sums[tree.leaf(x)];
        s[0] += p - y;
        s[1] += p * (1.0 - p);
    });
    let leaves: Vec<usize> = (0..tree.len()).filter(|&n| tree.is_leaf(n)).collect();
    assert!(leaves.len() > 2, "the tree split");
    for n in leaves {
        let want = -sums[n][0] / (sums[n][1] + 2.0) * 0.5;
        let got = tree.value[n] as f64;
        assert!(
            (got - want).abs() <= 1e-5 * want.abs().max(1e-3),
            "leaf {n}: {got} vs {want}"
        );
    }
}
