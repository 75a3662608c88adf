//! What each fuzz target does with one input, shared by the cargo-fuzz binaries
//! (`fuzz/fuzz_targets/*.rs`) and the regression test that replays the saved crash inputs
//! (`tests/fuzz_regressions.rs`, which includes this file as a module). It uses only
//! spliceboost and crates spliceboost itself depends on, never libfuzzer.
//!
//! Every function feeds its input to the crate's public readers the way a run would and
//! ignores every `Err`: a malformed input must be refused with an error, so only a panic, an
//! abort, a hang or runaway memory is a finding.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use spliceboost::memory::{MemoryConsumer, MemoryPool, MemoryReservation};

/// The memory pool each input gets: readers reserve what they hold, so a file that asks for
/// more than this is refused with an error instead of growing the process.
const POOL_BYTES: u64 = 256 << 20;

fn reservation(stage: &str) -> MemoryReservation {
    let pool = Arc::new(MemoryPool::new(POOL_BYTES));
    MemoryConsumer::new(stage.to_string()).register(&pool)
}

fn write(path: &Path, bytes: &[u8]) {
    let mut f = std::fs::File::create(path).expect("create a file in the temporary directory");
    f.write_all(bytes).expect("write the fuzz input");
}

fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("spliceboost-fuzz")
        .tempdir()
        .expect("a temporary directory")
}

/// Splits `data` at its first NUL byte (which none of the text formats hold): the part
/// before it and, when there is one, the part after it.
fn split_nul(data: &[u8]) -> (&[u8], Option<&[u8]>) {
    match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], Some(&data[i + 1..])),
        None => (data, None),
    }
}

/// `annotation`: the first byte picks how the file is opened, the rest is the file.
///
/// Bits 0-1 of that byte: the configured format (GFF3, GTF, or `auto` twice, which reads
/// the content); bits 2-3: the file name's extension (`.gff3`, `.gtf`, `.txt`, `.gtf.gz`),
/// which `auto` falls back on; bits 4-5: `genome.max_open_genes` (1, 2, 4 or the default),
/// small values forcing genes to be closed early. Every gene read is taken apart into its
/// sites and introns, as the dataset builder does.
pub fn annotation(data: &[u8]) {
    use spliceboost::genome::{default_max_open_genes, AnnotationFormat, AnnotationReader};
    let Some((&mode, text)) = data.split_first() else {
        return;
    };
    let format = match mode & 3 {
        0 => AnnotationFormat::Gff3,
        1 => AnnotationFormat::Gtf,
        _ => AnnotationFormat::Auto,
    };
    let ext = ["gff3", "gtf", "txt", "gtf.gz"][((mode >> 2) & 3) as usize];
    let max_open = [1, 2, 4, default_max_open_genes()][((mode >> 4) & 3) as usize];
    let dir = tempdir();
    let path = dir.path().join(format!("annotation.{ext}"));
    write(&path, text);
    let res = reservation("annotation");
    let _ = spliceboost::genome::detect_format(&path, format);
    let Ok(mut reader) = AnnotationReader::open(&path, format, max_open, &res) else {
        return;
    };
    while let Ok(Some(gene)) = reader.next_gene() {
        let _ = gene.sites();
        let _ = gene.introns();
        let _ = gene.has_sites();
        let _ = gene.len();
        let _ = gene.offset(gene.start);
        let _ = gene.heap_bytes();
    }
    let _ = reader.stats();
}

/// `fasta`: the input up to its first NUL byte is a plain-text FASTA; what follows the NUL,
/// when there is one, is its `.fai`, written beside it.
///
/// The FASTA text is indexed in memory ([`index_fasta`](spliceboost::genome::index_fasta)),
/// the `.fai` text parsed ([`load_fai`](spliceboost::genome::load_fai)), and then the file
/// opened as a run opens it ([`Fasta::open`](spliceboost::genome::Fasta)), which uses the
/// given `.fai` when it fits the file and builds one otherwise (and decompresses gzip or
/// indexes BGZF input). Every sequence is then read across its ends and in a few regions
/// that the input's bytes pick.
pub fn fasta(data: &[u8]) {
    use spliceboost::genome::{build_fai, index_fasta, load_fai, Compression, Fasta};
    let (text, fai) = split_nul(data);
    let dir = tempdir();
    let path = dir.path().join("genome.fa");
    let _ = index_fasta(text, &path, Compression::Plain);
    write(&path, text);
    let _ = build_fai(&path, Compression::Plain);
    if let Some(fai) = fai {
        let fai_path = dir.path().join("genome.fa.fai");
        write(&fai_path, fai);
        let _ = load_fai(&fai_path);
    }
    let cache = dir.path().join("cache");
    let res = reservation("genome");
    let Ok(mut fasta) = Fasta::open(&path, Some(&cache), &res) else {
        return;
    };
    let records: Vec<(String, i64)> = fasta
        .index()
        .records()
        .iter()
        .take(16)
        .map(|r| (r.name.clone(), r.length.min(1 << 20) as i64))
        .collect();
    // Regions picked by the input: offsets from -8 to +247 around each end.
    let picks: Vec<i64> = data.iter().rev().take(8).map(|&b| b as i64 - 8).collect();
    for (name, len) in &records {
        let mut regions = vec![(1, *len), (-3, 4), (len - 3, len + 4), (5, 2), (len + 1, len + 9)];
        for w in picks.chunks(2) {
            if let [a, b] = w {
                regions.push((*a, *a + *b));
                regions.push((len - *a, len - *a + *b));
            }
        }
        for (start, end) in regions {
            let _ = fasta.fetch(name, start, end);
        }
    }
    let _ = fasta.fetch("no such sequence", 1, 10);
}

/// `score_file`: a score directory as `spliceboost build` reads it back. The first byte
/// picks what the rest of the input is:
///
/// - even: the directory's `manifest.json`, read as the score store's manifest and as the
///   dataset builder's (both `Manifest::read_of`), then opened for reading when it parses;
/// - odd: the directory's only batch file, `scores-00000.parquet`, listed by a complete
///   manifest; every gene is read back ([`ScoreReader`](spliceboost::score::store::ScoreReader)).
pub fn score_file(data: &[u8]) {
    use spliceboost::score::store::{Manifest, ScoreReader, MANIFEST, SCORES};
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let dir = tempdir();
    if mode & 1 == 0 {
        write(&dir.path().join(MANIFEST), rest);
        let _ = Manifest::read_of(&spliceboost::build::DATASET, dir.path());
        if !matches!(Manifest::read_of(&SCORES, dir.path()), Ok(Some(_))) {
            return;
        }
    } else {
        let file = spliceboost::score::store::batch_name(0);
        write(&dir.path().join(&file), rest);
        let manifest = serde_json::json!({
            "format": SCORES.format,
            "version": SCORES.version,
            "settings": {},
            "batches": [{"file": file, "genes": ["g1"], "rows": 1, "bytes": rest.len(), "sha256": ""}],
            "complete": true,
        });
        write(&dir.path().join(MANIFEST), manifest.to_string().as_bytes());
    }
    let res = reservation("build");
    let Ok((_, mut reader)) = ScoreReader::open(dir.path(), &res) else {
        return;
    };
    while let Ok(Some(gene)) = reader.next_gene() {
        let _ = gene.scores.len();
    }
}

/// `config`: the input up to its first NUL byte is a TOML config; the lines after it, when
/// there is one, are `--set` overrides. A config that loads is printed back as TOML, as
/// `spliceboost config` does.
pub fn config(data: &[u8]) {
    use spliceboost::run::config::Config;
    let (text, overrides) = split_nul(data);
    let Ok(text) = std::str::from_utf8(text) else {
        return;
    };
    let overrides: Vec<String> = match overrides {
        Some(o) => String::from_utf8_lossy(o)
            .lines()
            .take(16)
            .map(str::to_string)
            .collect(),
        None => vec![],
    };
    if let Ok(cfg) = Config::from_toml(text, "fuzz.toml", &overrides) {
        let _ = toml::to_string_pretty(&cfg);
        let _ = (cfg.cache_dir(), cfg.score_dir(), cfg.build_dir(), cfg.spill_dir());
    }
}

/// `model`: the input is a JSON file that `predict` is given: a model from `train` or a
/// bundle from cross-validation (`Predictor::load`, which tells them apart by `format`).
/// The parsed JSON is also handed to `Model::from_json` and `Bundle::from_json` directly.
/// Whatever loads is applied to a few rows (all missing, zeros, values from the input),
/// and a model's importance and XGBoost export are computed: loading checks a model so
/// that prediction can neither panic nor loop.
pub fn model(data: &[u8]) {
    use spliceboost::boost::Model;
    use spliceboost::cv::Bundle;
    use spliceboost::predict::Predictor;
    let dir = tempdir();
    let path = dir.path().join("model.json");
    write(&path, data);
    let _ = Predictor::load(&path).map(|p| p.features().len());
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    let rows = |n: usize| -> Vec<Vec<f32>> {
        let from_input = (0..n)
            .map(|i| {
                let b = data.get(i % data.len().max(1)).copied().unwrap_or(0);
                (b as f32 - 128.0) / 16.0
            })
            .collect();
        vec![
            vec![f32::NAN; n],
            vec![0.0; n],
            from_input,
            vec![f32::INFINITY; n],
        ]
    };
    if let Ok(m) = Model::load(&path) {
        for x in rows(m.features.len()) {
            let _ = m.predict(&x);
        }
        let _ = m.importance();
        let _ = serde_json::to_string(&m.to_xgboost_json());
    }
    let _ = Model::from_json(value.clone(), &path);
    if let Ok(b) = Bundle::from_json(value, &path) {
        for x in rows(b.features.len()) {
            let _ = b.predict(&x);
        }
    }
}

/// `parquet_scan`: the input is the one Parquet file of a dataset directory. The dataset
/// is opened as training opens it (`Dataset::open`, then unlabelled as `predict` does), and
/// every column scanned in full under a memory reservation; the feature columns are also
/// decoded as training reads them (`FeatureReader`), and the label column as `inspect`
/// decodes it.
pub fn parquet_scan(data: &[u8]) {
    use spliceboost::io::{decode_labels, Dataset, DatasetConfig, FeatureReader};
    let dir = tempdir();
    let path = dir.path().join("batch_00000.parquet");
    write(&path, data);
    let cfg = DatasetConfig {
        path: dir.path().to_path_buf(),
        ..Default::default()
    };
    let res = MemoryConsumer::new("scan")
        .with_budget(128 << 20, "memory.scan")
        .register(&Arc::new(MemoryPool::new(POOL_BYTES)));
    let ds = match Dataset::open(&cfg) {
        Ok(ds) => ds,
        Err(_) => match Dataset::open_unlabelled(&cfg) {
            Ok(ds) => ds,
            Err(_) => return,
        },
    };
    let names: Vec<String> = ds.schema.fields().iter().map(|f| f.name().clone()).collect();
    if let Ok(scan) = ds.scan().with_columns(&names).build(&res) {
        for batch in scan {
            let Ok(batch) = batch else { break };
            let _ = batch.batch.num_rows();
        }
    }
    if !ds.roles.label.is_empty() {
        if let Ok(scan) = ds.scan().with_columns(&[ds.roles.label.as_str()]).build(&res) {
            let mut labels = Vec::new();
            for batch in scan {
                let Ok(b) = batch else { break };
                if decode_labels(b.batch.column(0).as_ref(), b.first_row, &mut labels).is_err() {
                    break;
                }
            }
        }
    }
    let reader = FeatureReader::all(&ds);
    if let Ok(scan) = ds.scan().with_features(&reader).build(&res) {
        let mut values = Vec::new();
        for batch in scan {
            let Ok(b) = batch else { break };
            let Ok(features) = reader.read(&b) else { break };
            for j in 0..features.len() {
                features.fill(j, &mut values);
                let _ = features.null_count(j);
            }
        }
    }
}

/// The files of a seed or regression directory, sorted, for replaying them.
pub fn inputs(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.is_file())
            .collect(),
        Err(_) => vec![],
    };
    files.sort();
    files
}
