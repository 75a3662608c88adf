//! Every stage's measured heap stays within its reservation: each job runs in its own
//! process (the allocator counters are process-wide) and its run_summary.json is read back.

mod common;

use common::*;
use serde_json::Value;

/// The stages of `summary` whose peak heap is above their peak reservation.
fn over_reservation(summary: &Value) -> Vec<String> {
    summary["stages"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| {
            let heap = s["peak_heap_bytes"].as_u64().expect("counting allocator on");
            let reserved = s["peak_reserved_bytes"].as_u64().unwrap();
            (heap > reserved).then(|| format!("{}: heap {heap} > reserved {reserved}", s["name"]))
        })
        .collect()
}

fn stages(summary: &Value) -> Vec<String> {
    summary["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_string())
        .collect()
}

fn read(path: &std::path::Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// A cross-validation run on a small synthetic set, with a small sketch so that compaction
/// recurses through several levels.
fn cv_run(dir: &std::path::Path) -> std::path::PathBuf {
    cv_run_of(dir, 200, 12)
}

/// [`cv_run`] with `rows_per_gene` rows for each of its 60 genes and `trees` trees a model.
fn cv_run_of(dir: &std::path::Path, rows_per_gene: usize, trees: usize) -> std::path::PathBuf {
    let cfg = dir.join("c.toml");
    std::fs::write(
        &cfg,
        format!(
            "[run]\nout_dir = \"{0}/out\"\nprogress = false\n[dataset]\npath = \"{0}/data\"\n\
             [memory]\ntotal = \"512MiB\"\nsynth = \"128MiB\"\n[synth]\ngenes = 60\nrows_per_gene = {1}\ngenes_per_file = 20\n\
             [train]\nn_estimators = {2}\nsketch_size = 64\nearly_stopping_rounds = 3\neval_metric = \"auc\"\n\
             [cv]\nn_folds = 3\n",
            dir.display(),
            rows_per_gene,
            trees
        ),
    )
    .unwrap();
    let (code, _, err) = run(&["run", cfg.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    dir.join("out")
}

#[test]
fn every_stage_of_a_cross_validation_stays_within_its_reservation() {
    let dir = tempfile::tempdir().unwrap();
    let out = cv_run(dir.path());
    let summary = read(&out.join("run_summary.json"));
    let names = stages(&summary);
    for s in ["synth", "sketch", "bin", "train", "cv", "eval", "scan"] {
        assert!(names.iter().any(|n| n == s), "stage {s} did not run: {names:?}");
    }
    assert_eq!(over_reservation(&summary), Vec::<String>::new());
}

/// Without a filter the pooled part holds every row, and the eval stage scores it where the
/// cross-validation keeps it: its peak heap stays below one copy of those rows' indices,
/// labels, genes and probabilities (21 bytes a row), which it took before.
#[test]
fn the_pooled_scores_read_the_row_state_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let out = cv_run_of(dir.path(), 1000, 3);
    let rows = read(&out.join("metrics_aggregate.json"))["pooled"]["rows"]
        .as_u64()
        .unwrap();
    assert_eq!(rows, 60_000);
    let summary = read(&out.join("run_summary.json"));
    let eval = summary["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "eval")
        .expect("an eval stage");
    let heap = eval["peak_heap_bytes"].as_u64().unwrap();
    assert!(
        heap < rows * 21,
        "eval's peak heap {heap} B ≥ a copy of {rows} rows"
    );
}

#[test]
fn predict_and_inspect_stay_within_their_reservations() {
    let dir = tempfile::tempdir().unwrap();
    let out = cv_run(dir.path());
    let data = dir.path().join("data");
    let sum = dir.path().join("predict.json");
    let (code, _, err) = run(&[
        "predict",
        "--model",
        out.join("model_bundle.json").to_str().unwrap(),
        "--dataset",
        data.to_str().unwrap(),
        "--out",
        dir.path().join("p.parquet").to_str().unwrap(),
        "--summary",
        sum.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let summary = read(&sum);
    assert_eq!(stages(&summary), ["predict"]);
    assert_eq!(over_reservation(&summary), Vec::<String>::new());

    let sum = dir.path().join("inspect.json");
    let (code, _, err) = run(&[
        "inspect",
        data.to_str().unwrap(),
        "--summary",
        sum.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let summary = read(&sum);
    assert_eq!(stages(&summary), ["scan"]);
    assert_eq!(over_reservation(&summary), Vec::<String>::new());
}

/// The score and build stages on two fly genes, the longer 52 kb (its buffers are the
/// stages' largest), the build with sparse 3- and 6-mers, one gene a batch.
#[test]
fn the_score_and_build_stages_stay_within_their_reservations() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let w = spliceboost::score::weights::default_dir();
    spliceboost::score::weights::ensure(&w, &[1]).unwrap();
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/genome");
    std::fs::write(d.join("genes.txt"), "Dmel_CG32019\nDmel_CR43958\n").unwrap();
    let cfg = d.join("s.toml");
    std::fs::write(
        &cfg,
        format!(
            "[run]\nout_dir = \"{0}/out\"\nprogress = false\n[memory]\ntotal = \"1GiB\"\nscore = \"64MiB\"\n\
             [genome]\nfasta = \"{1}/dmel_chr4.fna.gz\"\nannotation = \"{1}/dmel_chr4.gff3.gz\"\ncache_dir = \"{0}/cache\"\n\
             [genome.select]\nids = \"{0}/genes.txt\"\n[score]\nmodels = [1]\nweights_dir = \"{2}\"\n\
             [dataset]\npath = \"{0}/data\"\n[build]\nkmers = [3, 6]\nbatch_genes = 1\n",
            d.display(),
            fixtures.display(),
            w.display()
        ),
    )
    .unwrap();
    let (code, _, err) = run(&["run", cfg.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let summary = read(&d.join("out/run_summary.json"));
    assert_eq!(stages(&summary), ["score", "build"]);
    assert_eq!(over_reservation(&summary), Vec::<String>::new());
}

/// A sketch under a budget too small to sketch every feature at once (it reads them in
/// groups), then training under one too small for the binned cache (each pass reads the
/// pages into two buffers): three pages of uneven size, so a buffer sized by its first page
/// would have to grow.
#[test]
fn a_grouped_sketch_and_streamed_training_stay_within_their_reservations() {
    use spliceboost::boost::{sizing, TrainParams};
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // 700 genes × 60 rows: 42,000 rows, three pages.
    let data = synth_small(d, 700);
    let ds = spliceboost::io::Dataset::open(&spliceboost::run::config::DatasetConfig {
        path: data.clone(),
        ..Default::default()
    })
    .unwrap();
    let one_pass = spliceboost::binning::sketch_bytes(2048, ds.rows(), 256, ds.roles.features.len());
    let cfg = d.join("t.toml");
    std::fs::write(
        &cfg,
        format!(
            "[run]\nout_dir = \"{0}/out\"\nprogress = false\n[dataset]\npath = \"{1}\"\n\
             [memory]\ntotal = \"1GiB\"\n[train]\nclass = \"donor\"\nn_estimators = 3\nmax_depth = 3\n",
            d.display(),
            data.display()
        ),
    )
    .unwrap();
    let sketch = format!("memory.sketch={}", one_pass / 2);
    let (code, _, err) = run(&["train", cfg.to_str().unwrap(), "--set", &sketch]);
    assert_eq!(code, 0, "{err}");
    let summary = read(&d.join("out/run_summary.json"));
    assert_eq!(stages(&summary), ["sketch", "bin", "train"]);
    assert_eq!(over_reservation(&summary), Vec::<String>::new());

    let cache = std::fs::read_dir(d.join("out/cache"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let m: spliceboost::binning::cache::CacheManifest =
        serde_json::from_slice(&std::fs::read(cache.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(m.pages.len(), 3);
    let (state, hists) = sizing::train_bytes(
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
    let model = sizing::model_bytes(
        &TrainParams {
            max_depth: 3,
            n_estimators: 3,
            ..Default::default()
        },
        spliceboost::memory::names_bytes(&names),
    );
    let streaming = state + hists + model + m.streamed_bytes(2) + 4096;
    assert!(
        streaming < state + hists + m.bins_bytes(),
        "the cache must not fit"
    );
    let train = format!("memory.train={streaming}");
    let (code, _, err) = run(&[
        "train",
        cfg.to_str().unwrap(),
        "--set",
        &train,
        "--set",
        "run.threads=2",
    ]);
    assert_eq!(code, 0, "{err}");
    let summary = read(&d.join("out/run_summary.json"));
    assert_eq!(stages(&summary), ["train"], "the cache is reused");
    assert_eq!(over_reservation(&summary), Vec::<String>::new());
    // The two streamed pages are the map's, not the heap's: the heap alone stays within the
    // rest, so a per-row state priced too low shows here.
    let train = &summary["stages"][0];
    let heap = train["peak_heap_bytes"].as_u64().unwrap();
    let reserved = train["peak_reserved_bytes"].as_u64().unwrap();
    assert!(
        heap <= reserved - m.streamed_bytes(2),
        "heap {heap} > reserved {reserved} less two pages {}",
        m.streamed_bytes(2)
    );
}

/// A cross-validation of few rows and many features (4,160: dense 6-mers): what the stages
/// hold per feature (the cuts, the importance sums) and per report (the curves) does not
/// hide behind a large per-row reservation.
#[test]
fn a_cross_validation_of_wide_data_stays_within_its_reservations() {
    use spliceboost::memory::{MemoryConsumer, MemoryPool};
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let opts = spliceboost::synth::SynthOptions {
        genes: 30,
        rows_per_gene: 60,
        kmer: 6,
        genes_per_file: 10,
        seed: 5,
        with_sequence: false,
    };
    let pool = std::sync::Arc::new(MemoryPool::new(2 << 30));
    spliceboost::synth::write_dataset(&data, &opts, &mut MemoryConsumer::new("synth").register(&pool))
        .unwrap();
    let cfg = cv_config(dir.path(), &data, "");
    let (code, _, err) = run(&["run", cfg.to_str().unwrap(), "--set", "memory.total=\"4GiB\""]);
    assert_eq!(code, 0, "{err}");
    let summary = read(&dir.path().join("out/run_summary.json"));
    assert_eq!(over_reservation(&summary), Vec::<String>::new());
}
