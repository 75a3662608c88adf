//! Sparse `kmers_{k}` columns read as the same features as MetaSpliceAI's dense `{k}mer_*`
//! columns: the same data in either layout trains the same model, predicts the same scores
//! and inspects the same; and batch files whose schemas drift are read as the Python
//! pipeline's datasets need.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Float64Array, Int64Array, ListArray, StringArray};
use arrow::buffer::NullBuffer;
use arrow::datatypes::{Field, Schema};
use arrow::record_batch::RecordBatch;
use common::*;
use parquet::arrow::ArrowWriter;
use parquet::file::properties::WriterProperties;
use serde_json::Value;
use spliceboost::io::kmers::{kmer_names, sparse_column, sparse_field, KmerBatch};
use spliceboost::io::{Dataset, DatasetConfig, FeatureReader};
use spliceboost::memory::{MemoryConsumer, MemoryPool};

const KS: [usize; 2] = [2, 3];

/// A small deterministic generator: the tests need no statistical quality.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    fn unit(&mut self) -> f64 {
        self.next() as f64 / (1u64 << 31) as f64
    }
}

/// Rows of a splice-site dataset whose k-mers carry the signal: donor windows hold `GTAAGT`,
/// acceptor windows `TTTCAG`, and the base scores are only weakly informative.
struct Rows {
    genes: Vec<String>,
    labels: Vec<Option<&'static str>>,
    positions: Vec<i64>,
    scores: [Vec<f64>; 3],
    windows: Vec<Vec<u8>>,
    /// Rows whose k-mer counts are missing (null).
    null_kmers: Vec<bool>,
}

fn rows(genes: usize, per_gene: usize, seed: u64) -> Rows {
    rows_of(genes, per_gene, seed, 40)
}

/// As [`rows`], with windows of `len` nt before the motif.
fn rows_of(genes: usize, per_gene: usize, seed: u64, len: usize) -> Rows {
    let mut rng = Lcg(seed);
    let mut r = Rows {
        genes: vec![],
        labels: vec![],
        positions: vec![],
        scores: [vec![], vec![], vec![]],
        windows: vec![],
        null_kmers: vec![],
    };
    for g in 0..genes {
        for i in 0..per_gene {
            let class = (rng.next() % 3) as usize;
            let mut w: Vec<u8> = (0..len)
                .map(|_| b"ACGTACGTACGTACGTN"[(rng.next() % 17) as usize])
                .collect();
            if rng.unit() < 0.8 {
                let motif: &[u8] = [&b""[..], b"GTAAGT", b"TTTCAG"][class];
                w.splice(17..17 + motif.len(), motif.iter().copied());
            }
            // Lower case, as soft-masked genomes give it.
            if i % 7 == 0 {
                w.make_ascii_lowercase();
            }
            r.genes.push(format!("gene{g:03}"));
            r.labels.push([None, Some("donor"), Some("acceptor")][class]);
            r.positions.push((g * 1000 + i) as i64);
            for (c, s) in r.scores.iter_mut().enumerate() {
                s.push(if c == class { 0.3 } else { 0.0 } + 0.7 * rng.unit());
            }
            r.windows.push(w);
            r.null_kmers.push((g * per_gene + i) % 97 == 5);
        }
    }
    r
}

#[derive(Clone, Copy, PartialEq)]
enum Layout {
    Dense,
    Sparse,
}

/// The columns of rows `lo..hi` in `layout`: identifiers, label, scores, then the k-mers
/// of every k in [`KS`].
fn columns(r: &Rows, lo: usize, hi: usize, layout: Layout) -> Vec<(String, ArrayRef, bool)> {
    columns_of(r, lo, hi, layout, &KS)
}

/// As [`columns`], with the k-mers of every k in `ks`.
fn columns_of(r: &Rows, lo: usize, hi: usize, layout: Layout, ks: &[usize]) -> Vec<(String, ArrayRef, bool)> {
    let mut cols: Vec<(String, ArrayRef, bool)> = vec![
        (
            "gene_id".into(),
            Arc::new(StringArray::from_iter_values(&r.genes[lo..hi])),
            true,
        ),
        (
            "splice_type".into(),
            Arc::new(StringArray::from(r.labels[lo..hi].to_vec())),
            true,
        ),
        (
            "position".into(),
            Arc::new(Int64Array::from(r.positions[lo..hi].to_vec())),
            true,
        ),
    ];
    for (name, s) in ["donor_score", "acceptor_score", "neither_score"]
        .iter()
        .zip(&r.scores)
    {
        cols.push((
            name.to_string(),
            Arc::new(Float64Array::from(s[lo..hi].to_vec())),
            true,
        ));
    }
    let nulls = &r.null_kmers[lo..hi];
    for &k in ks {
        let mut b = KmerBatch::new(k);
        for (w, &null) in r.windows[lo..hi].iter().zip(nulls) {
            b.push_window(if null { b"" } else { w });
        }
        match layout {
            Layout::Dense => {
                for (name, a) in b.dense_arrays() {
                    let v = a.as_primitive::<arrow::datatypes::Float64Type>();
                    let with_nulls: Float64Array = v
                        .values()
                        .iter()
                        .zip(nulls)
                        .map(|(&x, &n)| (!n).then_some(x))
                        .collect();
                    cols.push((name, Arc::new(with_nulls), true));
                }
            }
            Layout::Sparse => {
                let a = b.sparse_array();
                let l = a.as_list::<i32>();
                let (field, offsets, values, _) = l.clone().into_parts();
                let valid: Vec<bool> = nulls.iter().map(|n| !n).collect();
                let with_nulls = ListArray::new(field, offsets, values, Some(NullBuffer::from(valid)));
                cols.push((sparse_column(k), Arc::new(with_nulls), true));
            }
        }
    }
    cols
}

/// Writes `cols` as one Parquet file in row groups of 300 rows (several batches per file).
fn write(path: &Path, cols: Vec<(String, ArrayRef, bool)>) {
    write_grouped(path, cols, 300)
}

fn write_grouped(path: &Path, cols: Vec<(String, ArrayRef, bool)>, group_rows: usize) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let fields: Vec<Field> = cols
        .iter()
        .map(|(n, a, nullable)| Field::new(n, a.data_type().clone(), *nullable))
        .collect();
    let schema = Arc::new(Schema::new(fields));
    let batch = RecordBatch::try_new(schema.clone(), cols.into_iter().map(|(_, a, _)| a).collect()).unwrap();
    let props = WriterProperties::builder()
        .set_max_row_group_row_count(Some(group_rows))
        .build();
    let mut w = ArrowWriter::try_new(std::fs::File::create(path).unwrap(), schema, Some(props)).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
}

/// 40 genes × 50 rows in two batch files under `dir/name/master`.
fn dataset(dir: &Path, name: &str, layout: Layout) -> PathBuf {
    let r = rows(40, 50, 11);
    let root = dir.join(name);
    let half = r.genes.len() / 2;
    write(
        &root.join("master/batch_00001.parquet"),
        columns(&r, 0, half, layout),
    );
    write(
        &root.join("master/batch_00002.parquet"),
        columns(&r, half, r.genes.len(), layout),
    );
    root
}

fn open(path: &Path) -> Dataset {
    Dataset::open(&DatasetConfig {
        path: path.to_path_buf(),
        ..DatasetConfig::default()
    })
    .unwrap()
}

fn json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// Trains through the binary; returns the output directory.
fn train(dir: &Path, data: &Path, name: &str) -> PathBuf {
    let out = dir.join(name);
    let cfg = dir.join(format!("{name}.toml"));
    std::fs::write(
        &cfg,
        format!(
            "[run]\nout_dir = {:?}\nprogress = false\n\n[dataset]\npath = {:?}\n\n\
             [memory]\ntotal = \"256MiB\"\n\n\
             [train]\nn_estimators = 15\nmax_depth = 4\nlearning_rate = 0.3\nsubsample = 0.8\ncolsample_bytree = 0.8\n",
            out.display().to_string(),
            data.display().to_string()
        ),
    )
    .unwrap();
    let (code, stdout, err) = run(&["train", cfg.to_str().unwrap()]);
    assert_eq!(code, 0, "stdout: {stdout}\nstderr: {err}");
    out
}

/// model.json without its timings.
fn model_without_timings(path: &Path) -> String {
    let mut m = json(path);
    for it in m["log"].as_array_mut().unwrap() {
        it["seconds"] = Value::from(0);
    }
    m.to_string()
}

fn predict(model: &Path, data: &Path, out: &Path) -> RecordBatch {
    let (code, stdout, err) = run(&[
        "predict",
        "--model",
        model.to_str().unwrap(),
        "--dataset",
        data.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "stdout: {stdout}\nstderr: {err}");
    let f = std::fs::File::open(out).unwrap();
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(f)
        .unwrap()
        .build()
        .unwrap();
    let batches: Vec<RecordBatch> = reader.map(Result::unwrap).collect();
    arrow::compute::concat_batches(&batches[0].schema(), &batches).unwrap()
}

/// The bits of every value of a Float32 column.
fn bits(b: &RecordBatch, name: &str) -> Vec<u32> {
    b.column_by_name(name)
        .unwrap()
        .as_primitive::<arrow::datatypes::Float32Type>()
        .values()
        .iter()
        .map(|v| v.to_bits())
        .collect()
}

#[test]
fn dense_and_sparse_layouts_train_the_same_model_and_predict_the_same_scores() {
    let dir = tempfile::tempdir().unwrap();
    let dense = dataset(dir.path(), "dense", Layout::Dense);
    let sparse = dataset(dir.path(), "sparse", Layout::Sparse);
    let (d, s) = (open(&dense), open(&sparse));
    assert_eq!(d.feature_names(), s.feature_names());
    assert_eq!(d.feature_names().len(), 3 + 16 + 64);

    let out_d = train(dir.path(), &dense, "out_dense");
    let out_s = train(dir.path(), &sparse, "out_sparse");
    let importance = std::fs::read_to_string(out_d.join("feature_importance.tsv")).unwrap();
    assert!(
        importance
            .lines()
            .any(|l| l.contains("mer_") && !l.ends_with("\t0")),
        "the k-mers carry signal, so some split uses one:\n{importance}"
    );
    assert_eq!(
        model_without_timings(&out_d.join("model.json")),
        model_without_timings(&out_s.join("model.json"))
    );
    assert_eq!(
        std::fs::read(out_d.join("model.xgb.json")).unwrap(),
        std::fs::read(out_s.join("model.xgb.json")).unwrap()
    );

    // One model scores both layouts: the same bits, row for row.
    let m = out_d.join("model.json");
    let pd = predict(&m, &dense, &dir.path().join("pd.parquet"));
    let ps = predict(&m, &sparse, &dir.path().join("ps.parquet"));
    assert_eq!(pd.num_rows(), 2000);
    for c in ["score", "margin"] {
        assert_eq!(bits(&pd, c), bits(&ps, c), "column {c}");
    }
    assert_eq!(pd.column_by_name("position"), ps.column_by_name("position"));
}

/// `inspect --json` of `data`.
fn inspect(data: &Path) -> Value {
    let (code, out, err) = run(&["inspect", data.to_str().unwrap(), "--json"]);
    assert_eq!(code, 0, "stdout: {out}\nstderr: {err}");
    serde_json::from_str(&out).unwrap()
}

#[test]
fn inspect_reports_the_same_feature_summary_for_both_layouts() {
    let dir = tempfile::tempdir().unwrap();
    let d = inspect(&dataset(dir.path(), "dense", Layout::Dense));
    let s = inspect(&dataset(dir.path(), "sparse", Layout::Sparse));
    for key in ["rows", "genes", "class_counts", "kmer_features"] {
        assert_eq!(d[key], s[key], "{key}");
    }
    assert_eq!(s["kmer_features"], 16 + 64);
    // What the values are, feature by feature; the stored type (Float64 columns against
    // UInt16 counts) is the one thing that differs.
    let summary = |v: &Value| -> Vec<Value> {
        v["features"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                serde_json::json!([
                    f["name"],
                    f["null_count"],
                    f["nan_count"],
                    f["zero_count"],
                    f["min"],
                    f["max"]
                ])
            })
            .collect()
    };
    let (sd, ss) = (summary(&d), summary(&s));
    assert_eq!(sd.len(), 83);
    assert_eq!(sd, ss);
    // The null rows count as missing in both.
    let aa = ss.iter().find(|f| f[0] == "2mer_AA").unwrap();
    assert_eq!(aa[1], 21, "rows 5, 102, ... of 2,000 have no k-mer counts");
}

/// The stages of a run summary, and those whose measured heap went above their reservation.
fn over_reservation(summary: &Path) -> (Vec<String>, Vec<String>) {
    let summary = json(summary);
    let (mut names, mut over) = (vec![], vec![]);
    for st in summary["stages"].as_array().unwrap() {
        let heap = st["peak_heap_bytes"].as_u64().expect("counting allocator on");
        let reserved = st["peak_reserved_bytes"].as_u64().unwrap();
        names.push(st["name"].as_str().unwrap().to_string());
        if heap > reserved {
            over.push(format!("{}: heap {heap} > reserved {reserved}", st["name"]));
        }
    }
    (names, over)
}

#[test]
fn sparse_stages_stay_within_their_reservations() {
    // Dense enough lists (about 250 of 1,024 5-mers a row) in a row group large enough that
    // the budgets, not the row groups, decide the batches.
    let dir = tempfile::tempdir().unwrap();
    let r = rows_of(40, 200, 21, 300);
    let data = dir.path().join("data");
    write_grouped(
        &data.join("batch_00001.parquet"),
        columns_of(&r, 0, 8000, Layout::Sparse, &[5]),
        8000,
    );
    let out = dir.path().join("out");
    let cfg = dir.path().join("c.toml");
    std::fs::write(
        &cfg,
        format!(
            "[run]\nout_dir = {:?}\nprogress = false\n\n[dataset]\npath = {:?}\n\n\
             [memory]\ntotal = \"512MiB\"\nsketch = \"24MiB\"\nbin = \"64MiB\"\n\n\
             [train]\nn_estimators = 3\nmax_depth = 3\nsketch_size = 64\n",
            out.display().to_string(),
            data.display().to_string()
        ),
    )
    .unwrap();
    let (code, stdout, err) = run(&["train", cfg.to_str().unwrap()]);
    assert_eq!(code, 0, "stdout: {stdout}\nstderr: {err}");
    let (names, over) = over_reservation(&out.join("run_summary.json"));
    for s in ["sketch", "bin"] {
        assert!(names.iter().any(|n| n == s), "stage {s} did not run: {names:?}");
    }
    assert_eq!(over, Vec::<String>::new());

    let sum = dir.path().join("predict.json");
    let (code, _, err) = run(&[
        "predict",
        "--model",
        out.join("model.json").to_str().unwrap(),
        "--dataset",
        data.to_str().unwrap(),
        "--out",
        dir.path().join("p.parquet").to_str().unwrap(),
        "--summary",
        sum.to_str().unwrap(),
        "--set",
        "memory.predict=48MiB",
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(over_reservation(&sum).1, Vec::<String>::new());

    let sum = dir.path().join("inspect.json");
    let (code, _, err) = run(&[
        "inspect",
        data.to_str().unwrap(),
        "--summary",
        sum.to_str().unwrap(),
        "--set",
        "memory.scan=48MiB",
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(over_reservation(&sum).1, Vec::<String>::new());
}

#[test]
fn include_and_exclude_globs_select_sparse_kmers_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let sparse = dataset(dir.path(), "sparse", Layout::Sparse);
    let ds = Dataset::open(&DatasetConfig {
        path: sparse.clone(),
        include: vec!["3mer_A*".into(), "donor_score".into()],
        ..DatasetConfig::default()
    })
    .unwrap();
    let mut want = vec!["donor_score".to_string()];
    want.extend(kmer_names(3).into_iter().filter(|n| n.starts_with("3mer_A")));
    assert_eq!(ds.feature_names(), want);
    let ds = Dataset::open(&DatasetConfig {
        path: sparse,
        exclude: vec!["kmers_3".into(), "2mer_T?".into()],
        ..DatasetConfig::default()
    })
    .unwrap();
    let names = ds.feature_names();
    assert_eq!(names.len(), 3 + 12);
    assert!(names
        .iter()
        .all(|n| !n.starts_with("3mer_") && !n.starts_with("2mer_T")));
    let f = ds.roles.features.iter().find(|f| f.name == "2mer_GC").unwrap();
    assert_eq!(
        (f.column.as_str(), f.sparse_index, f.kmer),
        ("kmers_2", Some(9), Some(2))
    );
}

#[test]
fn a_dataset_holding_one_k_in_both_layouts_is_refused_naming_file_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let r = rows(4, 10, 3);
    let mut cols = columns(&r, 0, 40, Layout::Sparse);
    let dense = columns(&r, 0, 40, Layout::Dense);
    cols.push(dense.into_iter().find(|(n, _, _)| n == "3mer_ACG").unwrap());
    let file = dir.path().join("batch_00001.parquet");
    write(&file, cols);
    let err = Dataset::open(&DatasetConfig {
        path: dir.path().to_path_buf(),
        ..DatasetConfig::default()
    })
    .unwrap_err();
    assert_eq!(err.file.as_deref(), Some(file.as_path()));
    assert_eq!(err.column.as_deref(), Some("3mer_ACG"));
    assert!(err.message.contains("kmers_3"), "{err}");
}

#[test]
fn a_sparse_index_beyond_four_to_the_k_is_refused_naming_file_row_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let r = rows(2, 10, 5);
    let mut cols = columns(&r, 0, 20, Layout::Sparse);
    // Row 3's items, as a writer with an off-by-one base code would give them.
    let (_, a, _) = cols.iter().find(|(n, _, _)| n == "kmers_2").unwrap().clone();
    let l = a.as_list::<i32>();
    let (field, offsets, values, nulls) = l.clone().into_parts();
    let items = values.as_struct();
    let index = items.column(0).as_primitive::<arrow::datatypes::UInt32Type>();
    let mut idx: Vec<u32> = index.values().to_vec();
    let at = offsets[3] as usize + 1;
    idx[at] = 16;
    let bad = arrow::array::StructArray::new(
        items.fields().clone(),
        vec![
            Arc::new(arrow::array::UInt32Array::from(idx)),
            items.column(1).clone(),
        ],
        None,
    );
    let bad = ListArray::new(field, offsets, Arc::new(bad), nulls);
    cols.retain(|(n, _, _)| n != "kmers_2");
    cols.push(("kmers_2".into(), Arc::new(bad), true));
    let file = dir.path().join("batch_00001.parquet");
    write(&file, cols);
    let ds = open(dir.path());
    let pool = Arc::new(MemoryPool::new(1 << 30));
    let res = MemoryConsumer::new("scan").register(&pool);
    let reader = FeatureReader::all(&ds);
    let mut errors = vec![];
    for b in ds.scan().with_features(&reader).build(&res).unwrap() {
        if let Err(e) = reader.read(&b.unwrap()) {
            errors.push(e);
        }
    }
    assert_eq!(errors.len(), 1);
    let e = &errors[0];
    assert_eq!(
        (e.file.as_deref(), e.row, e.column.as_deref()),
        (Some(file.as_path()), Some(3), Some("kmers_2"))
    );
    assert!(e.message.contains("16"), "{e}");
}

#[test]
fn the_cache_fingerprint_changes_when_the_sparse_counts_change() {
    let dir = tempfile::tempdir().unwrap();
    let sparse = dataset(dir.path(), "sparse", Layout::Sparse);
    let before = spliceboost::binning::cache::fingerprint(&open(&sparse), 256, 2048);
    // The same shape of data with other windows.
    let r = rows(40, 50, 12);
    write(
        &sparse.join("master/batch_00002.parquet"),
        columns(&r, 1000, 2000, Layout::Sparse),
    );
    let after = spliceboost::binning::cache::fingerprint(&open(&sparse), 256, 2048);
    assert_ne!(before, after);
}

/// Three batch files whose schemas drift: the second lacks `acceptor_score` and `kmers_2`,
/// the third holds an extra column, and every one a `3mer_NNN` column.
fn drifting(dir: &Path) -> Dataset {
    let mut r = rows(6, 10, 9);
    r.null_kmers = vec![false; 60];
    for (f, (lo, hi)) in [(0, 20), (20, 40), (40, 60)].into_iter().enumerate() {
        let mut cols = columns(&r, lo, hi, Layout::Sparse);
        cols.push((
            "3mer_NNN".into(),
            Arc::new(Float64Array::from(vec![1.0; hi - lo])),
            true,
        ));
        match f {
            1 => cols.retain(|(n, _, _)| n != "acceptor_score" && n != "kmers_2"),
            2 => cols.push((
                "extra_flag".into(),
                Arc::new(Int64Array::from(vec![1; hi - lo])),
                true,
            )),
            _ => {}
        }
        write(&dir.join(format!("master/batch_0000{}.parquet", f + 1)), cols);
    }
    open(dir)
}

/// Every value of each feature named, through the feature reader, in file order.
fn read_features(ds: &Dataset, names: &[&str]) -> Vec<Vec<f32>> {
    let pool = Arc::new(MemoryPool::new(1 << 30));
    let res = MemoryConsumer::new("scan").register(&pool);
    let reader = FeatureReader::named(ds, names).unwrap();
    let mut out = vec![vec![]; names.len()];
    let mut buf = vec![];
    for b in ds.scan().with_features(&reader).build(&res).unwrap() {
        let b = b.unwrap();
        let fb = reader.read(&b).unwrap();
        for (j, o) in out.iter_mut().enumerate() {
            fb.fill(j, &mut buf);
            o.extend_from_slice(&buf);
        }
    }
    out
}

#[test]
fn schema_drift_a_column_most_files_hold_reads_as_missing_where_absent() {
    let dir = tempfile::tempdir().unwrap();
    let ds = drifting(dir.path());
    let names = ds.feature_names();
    assert!(names.iter().any(|n| n == "acceptor_score"));
    assert!(names.iter().any(|n| n == "2mer_AC"));
    let v = read_features(&ds, &["acceptor_score", "2mer_AC", "donor_score"]);
    for (j, col) in v.iter().enumerate() {
        assert_eq!(col.len(), 60);
        let missing: Vec<bool> = col.iter().map(|x| x.is_nan()).collect();
        if j < 2 {
            assert!(missing[20..40].iter().all(|&m| m), "feature {j}: {col:?}");
        }
        assert!(
            missing[..20].iter().chain(&missing[40..]).all(|&m| !m),
            "feature {j} is present in files 1 and 3: {col:?}"
        );
    }
    assert!(
        ds.warnings
            .iter()
            .any(|w| w.contains("acceptor_score") && w.contains("absent from 1 of 3")),
        "{:?}",
        ds.warnings
    );
}

#[test]
fn schema_drift_a_column_few_files_hold_is_a_warning_not_a_feature() {
    let dir = tempfile::tempdir().unwrap();
    let ds = drifting(dir.path());
    assert!(!ds.feature_names().iter().any(|n| n == "extra_flag"));
    let w: Vec<&String> = ds.warnings.iter().filter(|w| w.contains("extra_flag")).collect();
    assert_eq!(w.len(), 1, "{:?}", ds.warnings);
    assert!(
        w[0].contains("1 of 3 files") && w[0].contains("ignored"),
        "{}",
        w[0]
    );
}

#[test]
fn schema_drift_stray_kmer_columns_over_other_letters_are_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let ds = drifting(dir.path());
    assert!(!ds.feature_names().iter().any(|n| n.contains("NNN")));
    let w: Vec<&String> = ds.warnings.iter().filter(|w| w.contains("3mer_NNN")).collect();
    assert_eq!(w.len(), 1, "{:?}", ds.warnings);
    assert!(w[0].contains("ignored"), "{}", w[0]);
    // The sparse and dense k-mers still there: 16 of k = 2, 64 of k = 3, and three scores.
    assert_eq!(ds.feature_names().len(), 3 + 16 + 64);
}

#[test]
fn sparse_field_is_what_the_written_column_holds() {
    let dir = tempfile::tempdir().unwrap();
    let sparse = dataset(dir.path(), "sparse", Layout::Sparse);
    let ds = open(&sparse);
    for k in KS {
        let f = ds.schema.field_with_name(&sparse_column(k)).unwrap();
        assert_eq!(f.data_type(), sparse_field(k).data_type());
    }
}
