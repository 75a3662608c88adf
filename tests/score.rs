//! `spliceboost score` on the fly fixture: genes with their genomic flanks through SpliceAI,
//! both strands mapped back to genomic positions, resumable batches, settings that must
//! match to resume, the budget, shifts found again by `--fit-shifts`, and score files read
//! back in.
//!
//! The oracle for the mapping is built here by hand: chromosome 4 decompressed with flate2
//! (not spliceboost's FASTA reader), the gene plus 5,000 nt each side sliced from it, the
//! minus strand reverse-complemented by a table written here, and the network called on that
//! sequence directly. The network itself is checked against TensorFlow in tests/spliceai.rs.

mod common;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use arrow::array::AsArray;
use common::*;
use spliceboost::score::{weights, SpliceAi};

/// One plus-strand and one minus-strand gene of chromosome 4 (552 and 830 nt).
const PLUS: (&str, u64, u64) = ("Dmel_CR45125", 380_724, 381_275);
const MINUS: (&str, u64, u64) = ("Dmel_CR43958", 557_025, 557_854);
const CONTEXT: u64 = 5_000;

static WEIGHTS: Mutex<()> = Mutex::new(());

/// The weights of model 1, downloaded once (tests of this binary run in parallel).
fn weights_dir() -> PathBuf {
    let _one = WEIGHTS.lock().unwrap_or_else(|e| e.into_inner());
    let dir = weights::default_dir();
    weights::ensure(&dir, &[1]).unwrap_or_else(|e| panic!("the SpliceAI weights: {e}"));
    dir
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/genome")
        .join(name)
}

/// Chromosome 4 as plain upper-case bytes, read without spliceboost.
fn chromosome() -> Vec<u8> {
    let mut text = String::new();
    flate2::read::MultiGzDecoder::new(std::fs::File::open(fixture("dmel_chr4.fna.gz")).unwrap())
        .read_to_string(&mut text)
        .unwrap();
    text.lines()
        .filter(|l| !l.starts_with('>'))
        .flat_map(|l| l.trim().bytes())
        .map(|b| b.to_ascii_uppercase())
        .collect()
}

/// A config scoring `genes` with model 1 into `dir/out`; `extra` is appended.
fn config(dir: &Path, genes: &[&str], extra: &str) -> PathBuf {
    let data = dir.join("genome");
    if !data.exists() {
        std::fs::create_dir_all(&data).unwrap();
        for f in ["dmel_chr4.fna.gz", "dmel_chr4.gff3.gz"] {
            std::fs::copy(fixture(f), data.join(f)).unwrap();
        }
    }
    std::fs::write(dir.join("genes.txt"), genes.join("\n")).unwrap();
    let path = dir.join("score.toml");
    std::fs::write(
        &path,
        format!(
            "[run]\nout_dir = \"{d}/out\"\nprogress = false\n\
             [memory]\ntotal = \"1GiB\"\nscore = \"128MiB\"\n\
             [genome]\nfasta = \"{d}/genome/dmel_chr4.fna.gz\"\nannotation = \"{d}/genome/dmel_chr4.gff3.gz\"\n\
             [genome.select]\nids = \"{d}/genes.txt\"\n\
             [score]\nmodels = [1]\nweights_dir = \"{w}\"\ngenes_per_batch = 1\n{extra}",
            d = dir.display(),
            w = weights_dir().display(),
        ),
    )
    .unwrap();
    path
}

/// Rows of a score directory's batches: (gene, chrom, strand, position, [neither, acceptor, donor]).
type Row = (String, String, String, i64, [f32; 3]);

fn read_scores(dir: &Path) -> Vec<Row> {
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["complete"], true);
    let mut rows = vec![];
    for b in manifest["batches"].as_array().unwrap() {
        let file = std::fs::File::open(dir.join(b["file"].as_str().unwrap())).unwrap();
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
            .unwrap()
            .build()
            .unwrap();
        for batch in reader {
            let batch = batch.unwrap();
            let s = |name: &str| batch.column_by_name(name).unwrap().as_string::<i32>().clone();
            let f = |name: &str| {
                batch
                    .column_by_name(name)
                    .unwrap()
                    .as_primitive::<arrow::datatypes::Float32Type>()
                    .clone()
            };
            let (g, c, st) = (s("gene_id"), s("chrom"), s("strand"));
            let pos = batch
                .column_by_name("position")
                .unwrap()
                .as_primitive::<arrow::datatypes::Int64Type>()
                .clone();
            let (d, a, n) = (f("donor"), f("acceptor"), f("neither"));
            for i in 0..batch.num_rows() {
                rows.push((
                    g.value(i).to_string(),
                    c.value(i).to_string(),
                    st.value(i).to_string(),
                    pos.value(i),
                    [n.value(i), a.value(i), d.value(i)],
                ));
            }
        }
    }
    rows
}

fn complement(seq: &[u8]) -> Vec<u8> {
    seq.iter()
        .rev()
        .map(|b| match b {
            b'A' => b'T',
            b'T' => b'A',
            b'C' => b'G',
            b'G' => b'C',
            _ => b'N',
        })
        .collect()
}

/// The scores the network gives a gene, computed here from a hand-sliced sequence, in
/// genomic order.
fn expected(chrom: &[u8], (_, start, end): (&str, u64, u64), minus: bool, n_flanks: bool) -> Vec<[f32; 3]> {
    let model = SpliceAi::load(&[1], &weights_dir()).unwrap();
    let (lo, hi) = ((start - CONTEXT) as usize, (end + CONTEXT) as usize);
    let mut seq = chrom[lo - 1..hi].to_vec();
    if n_flanks {
        for (i, b) in seq.iter_mut().enumerate() {
            if i < CONTEXT as usize || i >= seq_len(start, end) - CONTEXT as usize {
                *b = b'N';
            }
        }
    }
    if minus {
        seq = complement(&seq);
    }
    let mut out = vec![[0f32; 3]; (end - start + 1) as usize];
    model.predict(&seq, &mut out);
    if minus {
        out.reverse();
    }
    out
}

fn seq_len(start: u64, end: u64) -> usize {
    (end - start + 1 + 2 * CONTEXT) as usize
}

fn gene_rows<'a>(rows: &'a [Row], id: &str) -> Vec<&'a Row> {
    rows.iter().filter(|r| r.0 == id).collect()
}

#[test]
fn both_strands_are_scored_with_genomic_flanks_and_mapped_to_genomic_positions() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &[PLUS.0, MINUS.0], "");
    let (code, out, err) = run(&["score", cfg.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("scored 2 genes, 1382 positions"), "{out}");
    let rows = read_scores(&dir.path().join("out/scores"));
    let chrom = chromosome();
    for (gene, minus) in [(PLUS, false), (MINUS, true)] {
        let got = gene_rows(&rows, gene.0);
        let want = expected(&chrom, gene, minus, false);
        assert_eq!(got.len(), want.len(), "{}", gene.0);
        for (i, (r, w)) in got.iter().zip(&want).enumerate() {
            assert_eq!(
                r.3,
                (gene.1 + i as u64) as i64,
                "{} row {i}: genomic order",
                gene.0
            );
            assert_eq!(
                (r.1.as_str(), r.2.as_str()),
                ("NC_004353.4", if minus { "-" } else { "+" })
            );
            assert_eq!(&r.4, w, "{} at {}", gene.0, r.3);
        }
    }
}

#[test]
fn flank_n_pads_the_gene_with_n_as_the_python_original() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &[MINUS.0], "flank = \"n\"\n");
    let (code, _, err) = run(&["score", cfg.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let rows = read_scores(&dir.path().join("out/scores"));
    let chrom = chromosome();
    let want = expected(&chrom, MINUS, true, true);
    let genomic = expected(&chrom, MINUS, true, false);
    let got: Vec<[f32; 3]> = rows.iter().map(|r| r.4).collect();
    assert_eq!(got, want);
    // The flanks matter: real context gives other scores near the gene's ends.
    assert_ne!(got, genomic);
}

#[test]
fn a_rerun_keeps_whole_batches_and_rescores_missing_or_damaged_ones() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &[PLUS.0, MINUS.0], "");
    let scores = dir.path().join("out/scores");
    let (code, _, err) = run(&["score", cfg.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let first = files_of(&scores);
    assert_eq!(first.len(), 3, "two batches and the manifest: {:?}", first.keys());

    // As if killed after the first batch: the second is gone from the manifest and disk.
    let mut m: serde_json::Value = serde_json::from_slice(&first["manifest.json"]).unwrap();
    m["batches"].as_array_mut().unwrap().truncate(1);
    m["complete"] = false.into();
    std::fs::write(
        scores.join("manifest.json"),
        serde_json::to_vec_pretty(&m).unwrap(),
    )
    .unwrap();
    std::fs::remove_file(scores.join("scores-00001.parquet")).unwrap();
    let (code, out, err) = run(&["score", cfg.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("1 batches (1 genes) kept"), "{out}");
    assert_eq!(files_of(&scores), first);

    // A damaged batch is scored again, never read.
    let mut bytes = first["scores-00000.parquet"].clone();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(scores.join("scores-00000.parquet"), bytes).unwrap();
    let (code, out, err) = run(&["score", cfg.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(!out.contains("kept"), "{out}");
    assert_eq!(files_of(&scores), first);
}

#[test]
fn a_score_run_killed_between_or_inside_batches_resumes_to_the_same_files() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &[PLUS.0, MINUS.0], "");
    let args = ["score", cfg.to_str().unwrap()];
    let scores = dir.path().join("out/scores");
    let (code, _, err) = run(&args);
    assert_eq!(code, 0, "{err}");
    let whole = files_of(&scores);

    killed_between_and_inside_batches_resumes_to(
        &args,
        &scores,
        "scores-00001.parquet",
        "1 batches (1 genes) kept",
        &whole,
    );
}

#[test]
fn scores_made_with_other_settings_are_replaced_only_with_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &[PLUS.0], "");
    let (code, _, err) = run(&["score", cfg.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = run(&["score", cfg.to_str().unwrap(), "--set", "score.flank=n"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("manifest.json"), "{err}");
    assert!(err.contains("source.flank"), "{err}");
    assert!(err.contains("--overwrite"), "{err}");
    assert_eq!(err.lines().filter(|l| l.starts_with("error")).count(), 1, "{err}");
    let (code, _, err) = run(&[
        "score",
        cfg.to_str().unwrap(),
        "--set",
        "score.flank=n",
        "--overwrite",
    ]);
    assert_eq!(code, 0, "{err}");
}

#[test]
fn a_score_budget_too_small_for_the_network_stops_before_work_naming_memory_score() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &[PLUS.0], "");
    let (code, _, err) = run(&["score", cfg.to_str().unwrap(), "--set", "memory.score=4MiB"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("memory.score"), "{err}");
    let scores = dir.path().join("out/scores");
    assert!(!scores.join("scores-00000.parquet").exists());
}

#[test]
fn a_score_file_reads_back_to_the_same_scores() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &[PLUS.0, MINUS.0], "");
    // One batch file holding both genes, to be read back as a score file.
    let (code, _, err) = run(&["score", cfg.to_str().unwrap(), "--set", "score.genes_per_batch=2"]);
    assert_eq!(code, 0, "{err}");
    let scores = dir.path().join("out/scores");
    let net = read_scores(&scores);

    let other = dir.path().join("from_file");
    std::fs::create_dir_all(&other).unwrap();
    let file_cfg = config(
        &other,
        &[PLUS.0, MINUS.0],
        &format!(
            "[score.file]\npath = \"{}\"\n",
            scores.join("scores-00000.parquet").display()
        ),
    );
    let (code, out, err) = run(&[
        "score",
        file_cfg.to_str().unwrap(),
        "--set",
        "score.genes_per_batch=2",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("scores read from"), "{out}");
    assert_eq!(read_scores(&other.join("out/scores")), net);
}

#[test]
fn a_weight_file_that_fails_its_checksum_stops_before_any_score_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &[PLUS.0], "");
    let bad = dir.path().join("weights");
    std::fs::create_dir_all(&bad).unwrap();
    let mut bytes = std::fs::read(weights_dir().join("spliceai1.h5")).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    std::fs::write(bad.join("spliceai1.h5"), bytes).unwrap();
    let (code, _, err) = run(&[
        "score",
        cfg.to_str().unwrap(),
        "--set",
        &format!("score.weights_dir={}", bad.display()),
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("spliceai1.h5") && err.contains("SHA-256"), "{err}");
    assert_eq!(err.lines().filter(|l| l.starts_with("error")).count(), 1, "{err}");
    assert!(!dir.path().join("out/scores/scores-00000.parquet").exists());
}

#[test]
fn a_malformed_annotation_line_stops_before_any_score_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &[PLUS.0], "");
    // The annotation read whole, a broken line appended after every gene.
    let gff = dir.path().join("genome/dmel_chr4.gff3.gz");
    let mut text = String::new();
    flate2::read::MultiGzDecoder::new(std::fs::File::open(&gff).unwrap())
        .read_to_string(&mut text)
        .unwrap();
    let lines = text.lines().count() + 1;
    text.push_str("NC_004353.4\tRefSeq\texon\tten\t20\t.\t+\t.\tParent=x\n");
    std::fs::write(dir.path().join("genome/broken.gff3"), text).unwrap();
    let (code, _, err) = run(&[
        "score",
        cfg.to_str().unwrap(),
        "--set",
        &format!(
            "genome.annotation={}",
            dir.path().join("genome/broken.gff3").display()
        ),
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("broken.gff3") && err.contains(&format!("line {lines}")),
        "{err}"
    );
    assert!(!dir.path().join("out/scores/scores-00000.parquet").exists());
}

#[test]
fn fit_shifts_finds_planted_shifts_again() {
    let dir = tempfile::tempdir().unwrap();
    // Two genes a strand where model 1 calls donors and acceptors at 0.5 (3-6 of each).
    let cfg = config(
        dir.path(),
        &["Dmel_CG1587", "Dmel_CG1909", "Dmel_CG32016", "Dmel_CG32018"],
        "[score.shifts]\ndonor_plus = 2\ndonor_minus = -1\nacceptor_plus = -3\nacceptor_minus = 1\n",
    );
    let (code, out, err) = run(&["score", cfg.to_str().unwrap(), "--fit-shifts"]);
    assert_eq!(code, 0, "{err}");
    let q: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("out/scores/quality.json")).unwrap()).unwrap();
    let get = |k: &str, f: &str| q[k][f].as_i64().unwrap();
    for (f, planted) in [
        ("donor_plus", 2),
        ("donor_minus", -1),
        ("acceptor_plus", -3),
        ("acceptor_minus", 1),
    ] {
        assert_eq!(get("fitted", f), -planted, "{f}: {out}");
        assert_eq!(get("total", f), 0, "{f}: {out}");
    }
    // Undoing the shifts gives back the quality of unshifted scores: calls on the sites.
    assert!(
        q["after"]["donor"]["f1_at_half"].as_f64().unwrap()
            > q["before"]["donor"]["f1_at_half"].as_f64().unwrap(),
        "{out}"
    );
}
