//! `spliceboost build` on a hand-made genome: which positions become rows and with which
//! calls on both strands, the context scores, distances and k-mer windows in transcript
//! orientation, a gene's rows independent of the other genes, resume after an interruption
//! between and inside batches, and bad input.
//!
//! The oracle is worked by hand: the genome is two genes on a 400-nt chromosome whose sites,
//! scores and windows are written out below; the reverse complement and the k-mer counts are
//! computed here with a table and a sliding count of their own.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{Float32Type, Int32Type, Int64Type, UInt16Type, UInt32Type};
use common::*;
use spliceboost::genome::Strand;
use spliceboost::score::store::{BatchEntry, GeneWriter, Manifest};

/// A fixed pseudo-random chromosome of 400 nt.
fn chromosome() -> Vec<u8> {
    let mut x: u32 = 12345;
    (0..400)
        .map(|_| {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            b"ACGT"[((x >> 16) & 3) as usize]
        })
        .collect()
}

/// Gene P (+, 101-200): exons 101-130 and 161-200, so the donor is 130 and the acceptor 161.
/// Gene M (-, 251-350): exons 251-280 and 311-350; read 5' to 3' from 350 down, the donor is
/// 311 and the acceptor 280.
const GFF: &str = "##gff-version 3
c1\tt\tgene\t101\t200\t.\t+\t.\tID=P;Name=pname;gene_biotype=protein_coding
c1\tt\tmRNA\t101\t200\t.\t+\t.\tID=P.1;Parent=P
c1\tt\texon\t101\t130\t.\t+\t.\tParent=P.1
c1\tt\texon\t161\t200\t.\t+\t.\tParent=P.1
c1\tt\tgene\t251\t350\t.\t-\t.\tID=M;gene_biotype=protein_coding
c1\tt\tmRNA\t251\t350\t.\t-\t.\tID=M.1;Parent=M
c1\tt\texon\t251\t280\t.\t-\t.\tParent=M.1
c1\tt\texon\t311\t350\t.\t-\t.\tParent=M.1
";

/// A gene of the score directory: id, start, end, strand, and `(position, donor, acceptor)`
/// where the score is not 0.
type ScoredGene = (&'static str, u64, u64, Strand, Vec<(u64, f32, f32)>);

fn planted() -> Vec<ScoredGene> {
    vec![
        (
            "P",
            101,
            200,
            Strand::Plus,
            vec![
                (128, 0.02, 0.0),
                (129, 0.04, 0.0),
                (130, 0.45, 0.0), // the donor: missed at 130 …
                (131, 0.9, 0.0),  // … but found 1 nt away: TP, and an FP row at 131
                (132, 0.01, 0.0),
                (161, 0.0, 0.3), // the acceptor, missed: FN
                (180, 0.6, 0.0), // nothing there: FP
            ],
        ),
        (
            "M",
            251,
            350,
            Strand::Minus,
            vec![
                (279, 0.0, 0.7), // 1 nt from the acceptor at 280: TP, and an FP row at 279
                (309, 0.07, 0.0),
                (310, 0.22, 0.0),
                (311, 0.8, 0.1), // the donor, found exactly
                (312, 0.11, 0.0),
                (313, 0.05, 0.0),
            ],
        ),
    ]
}

struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let seq = chromosome();
        let mut fasta = b">c1\n".to_vec();
        for line in seq.chunks(60) {
            fasta.extend_from_slice(line);
            fasta.push(b'\n');
        }
        std::fs::write(dir.path().join("g.fa"), fasta).unwrap();
        std::fs::write(dir.path().join("g.gff3"), GFF).unwrap();
        let f = Self { dir };
        f.write_scores(&planted(), 1);
        f
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// A finished score directory holding `genes`, `per_batch` genes a file.
    fn write_scores(&self, genes: &[ScoredGene], per_batch: usize) {
        let out = self.path().join("scores");
        let _ = std::fs::remove_dir_all(&out);
        std::fs::create_dir_all(&out).unwrap();
        let mut m = Manifest::new(serde_json::json!({"test": true}));
        for (i, chunk) in genes.chunks(per_batch).enumerate() {
            let name = spliceboost::score::store::batch_name(i);
            let mut w = GeneWriter::new(std::fs::File::create(out.join(&name)).unwrap()).unwrap();
            for (id, start, end, strand, set) in chunk {
                let mut s = vec![[1.0f32, 0.0, 0.0]; (end - start + 1) as usize];
                for &(p, d, a) in set {
                    s[(p - start) as usize] = [1.0 - d - a, a, d];
                }
                w.write_gene(id, "c1", *strand, *start, &s).unwrap();
            }
            let rows = w.finish().unwrap();
            let ids = chunk.iter().map(|g| g.0.to_string()).collect();
            m.batches
                .push(BatchEntry::written(&out, name, ids, rows).unwrap());
        }
        m.complete = true;
        m.write(&out).unwrap();
    }

    /// A config building into `dir/data` with `extra` appended to `[build]`.
    fn config(&self, extra: &str) -> PathBuf {
        let p = self.path();
        let path = p.join("build.toml");
        std::fs::write(
            &path,
            format!(
                "[run]\nout_dir = {:?}\nprogress = false\n[genome]\nfasta = {:?}\nannotation = {:?}\n\
                 [dataset]\npath = {:?}\n[memory]\ntotal = \"512MiB\"\n\
                 [build]\nscores = {:?}\nwindow = 8\nkmers = [2]\ntn_sample_factor = 0.0\n\
                 downsample = {{ enabled = false }}\n{extra}\n",
                p.join("out").display().to_string(),
                p.join("g.fa").display().to_string(),
                p.join("g.gff3").display().to_string(),
                p.join("data").display().to_string(),
                p.join("scores").display().to_string(),
            ),
        )
        .unwrap();
        path
    }

    fn build(&self, extra: &str) -> (i32, String, String) {
        let cfg = self.config(extra);
        run(&["build", cfg.to_str().unwrap()])
    }

    fn master(&self) -> PathBuf {
        self.path().join("data/master")
    }
}

fn read_all(master: &Path) -> Vec<RecordBatch> {
    let mut names: Vec<PathBuf> = std::fs::read_dir(master)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "parquet"))
        .collect();
    names.sort();
    names
        .iter()
        .flat_map(|p| {
            parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
                std::fs::File::open(p).unwrap(),
            )
            .unwrap()
            .build()
            .unwrap()
            .map(|b| b.unwrap())
        })
        .collect()
}

/// One row per (gene, position): column name → value as text.
fn rows(master: &Path) -> BTreeMap<(String, i64), BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for b in read_all(master) {
        let schema = b.schema();
        for r in 0..b.num_rows() {
            let mut row = BTreeMap::new();
            for (f, c) in schema.fields().iter().zip(b.columns()) {
                let v = match c.data_type() {
                    arrow::datatypes::DataType::Utf8 => {
                        let s = c.as_string::<i32>();
                        if s.is_null(r) {
                            "null".into()
                        } else {
                            s.value(r).to_string()
                        }
                    }
                    arrow::datatypes::DataType::Float32 => {
                        format!("{}", c.as_primitive::<Float32Type>().value(r))
                    }
                    arrow::datatypes::DataType::Float64 => {
                        format!("{}", c.as_primitive::<arrow::datatypes::Float64Type>().value(r))
                    }
                    arrow::datatypes::DataType::Int64 => c.as_primitive::<Int64Type>().value(r).to_string(),
                    arrow::datatypes::DataType::Int32 => c.as_primitive::<Int32Type>().value(r).to_string(),
                    arrow::datatypes::DataType::List(_) => {
                        let l = c.as_list::<i32>().value(r);
                        let st = l.as_struct();
                        let idx = st.column(0).as_primitive::<UInt32Type>();
                        let cnt = st.column(1).as_primitive::<UInt16Type>();
                        (0..idx.len())
                            .map(|i| format!("{}:{}", idx.value(i), cnt.value(i)))
                            .collect::<Vec<_>>()
                            .join(",")
                    }
                    other => format!("{other}"),
                };
                row.insert(f.name().clone(), v);
            }
            let key = (row["gene_id"].clone(), row["position"].parse().unwrap());
            out.insert(key, row);
        }
    }
    out
}

fn revcomp(s: &[u8]) -> Vec<u8> {
    s.iter()
        .rev()
        .map(|b| match b {
            b'A' => b'T',
            b'C' => b'G',
            b'G' => b'C',
            b'T' => b'A',
            _ => b'N',
        })
        .collect()
}

/// Sparse 2-mer counts of `w` as the column prints them: `index:count` by index.
fn two_mers(w: &[u8]) -> String {
    let code = |b: u8| b"ACGT".iter().position(|&c| c == b).unwrap() as u32;
    let mut m = BTreeMap::new();
    for p in w.windows(2) {
        *m.entry(code(p[0]) * 4 + code(p[1])).or_insert(0) += 1;
    }
    m.iter()
        .map(|(i, c)| format!("{i}:{c}"))
        .collect::<Vec<_>>()
        .join(",")
}

#[test]
fn sites_and_predictions_become_rows_with_their_calls_on_both_strands() {
    let f = Fixture::new();
    let (code, _, err) = f.build("");
    assert_eq!(code, 0, "{err}");
    let rows = rows(&f.master());
    let got: Vec<(String, i64, String, String, String, String)> = rows
        .iter()
        .map(|((g, p), r)| {
            (
                g.clone(),
                *p,
                r["splice_type"].clone(),
                r["pred_type_donor"].clone(),
                r["pred_type_acceptor"].clone(),
                r["pred_type"].clone(),
            )
        })
        .collect();
    let want = [
        ("M", 279, "neither", "TN", "FP", "FP"),
        ("M", 280, "acceptor", "TN", "TP", "TP"),
        ("M", 311, "donor", "TP", "TN", "TP"),
        ("P", 130, "donor", "TP", "TN", "TP"),
        ("P", 131, "neither", "FP", "TN", "FP"),
        ("P", 161, "acceptor", "TN", "FN", "FN"),
        ("P", 180, "neither", "FP", "TN", "FP"),
    ];
    let want: Vec<_> = want
        .iter()
        .map(|(g, p, s, d, a, t)| {
            (
                g.to_string(),
                *p,
                s.to_string(),
                d.to_string(),
                a.to_string(),
                t.to_string(),
            )
        })
        .collect();
    assert_eq!(got, want);
}

#[test]
fn context_distances_and_windows_follow_transcript_orientation() {
    let f = Fixture::new();
    let (code, _, err) = f.build("");
    assert_eq!(code, 0, "{err}");
    let rows = rows(&f.master());
    let seq = chromosome();
    let genomic = |a: u64, b: u64| seq[(a - 1) as usize..b as usize].to_vec();

    // P (+) at 130: upstream is 129, 128; downstream 131, 132.
    let p = &rows[&("P".into(), 130)];
    let ctx: Vec<&str> = ["m2", "m1", "p1", "p2"]
        .iter()
        .map(|k| p[&format!("donor_context_{k}")].as_str())
        .collect();
    assert_eq!(ctx, ["0.02", "0.04", "0.9", "0.01"]);
    assert_eq!(
        (p["gene_distance_start"].as_str(), p["gene_distance_end"].as_str()),
        ("29", "70")
    );
    // The 8-nt window [p - 4, p + 4): 126..=133.
    let w = genomic(126, 133);
    assert_eq!(p["kmers_2"], two_mers(&w));

    // M (−) at 311: upstream in transcription is 312, 313; downstream 310, 309.
    let m = &rows[&("M".into(), 311)];
    let ctx: Vec<&str> = ["m2", "m1", "p1", "p2"]
        .iter()
        .map(|k| m[&format!("donor_context_{k}")].as_str())
        .collect();
    assert_eq!(ctx, ["0.05", "0.11", "0.22", "0.07"]);
    assert_eq!(
        (m["gene_distance_start"].as_str(), m["gene_distance_end"].as_str()),
        ("39", "60")
    );
    // Oriented offset 39 of M is genomic 311; its window [35, 43) is genomic 315 down to 308.
    let w = revcomp(&genomic(308, 315));
    assert_eq!(m["kmers_2"], two_mers(&w));
    let gc = w.iter().filter(|&&b| b == b'G' || b == b'C').count() as f32 / 8.0;
    assert_eq!(m["gc_content"], format!("{gc}"));
    assert_eq!(m["sequence_length"], "8");
    assert_eq!(
        (
            m["gene_length"].as_str(),
            m["gene_transcripts"].as_str(),
            m["gene_exons"].as_str()
        ),
        ("100", "1", "2")
    );
}

#[test]
fn engineered_features_match_the_formulas_by_hand() {
    let f = Fixture::new();
    let (code, _, err) = f.build("");
    assert_eq!(code, 0, "{err}");
    let rows = rows(&f.master());
    let p = &rows[&("P".into(), 130)];
    let v = |k: &str| p[k].parse::<f64>().unwrap();
    // d = 0.45, a = 0, n = 0.55; donor track m2 .02, m1 .04, p1 .9, p2 .01; acceptor track 0.
    let (d, a, n) = (0.45f64, 0.0f64, 0.55f64);
    let close = |k: &str, want: f64| {
        let got = v(k);
        assert!(
            (got - want).abs() <= 1e-6 * want.abs().max(1.0),
            "{k}: {got} vs {want}"
        );
    };
    close("donor_surge_ratio", 0.45 / (0.04 + 0.9 + 0.01));
    close("donor_peak_height_ratio", 0.45 / (0.2425 + 0.01));
    close("donor_context_diff_ratio", 0.45 / (0.9 + 0.01));
    close(
        "donor_weighted_context",
        0.1 * 0.02 + 0.2 * 0.04 + 0.4 * 0.45 + 0.2 * 0.9 + 0.1 * 0.01,
    );
    close("donor_second_derivative", (0.45 - 0.04) - (0.9 - 0.45));
    close("donor_signal_strength", 0.45 - 0.2425);
    close("donor_is_local_peak", 0.0);
    close("acceptor_surge_ratio", 0.0);
    // The stronger track here is the donor's.
    close("context_neighbor_mean", 0.2425);
    close("context_asymmetry", (0.04 + 0.02) - (0.9 + 0.01));
    close("context_max", 0.9);
    close("relative_donor_probability", d / (d + a + 1e-10));
    close("splice_probability", (d + a) / (d + a + n + 1e-10));
    close(
        "donor_acceptor_logodds",
        (d + 1e-10f64).ln() - (a + 1e-10f64).ln(),
    );
    close("probability_entropy", -(d * d.ln()) - n * n.ln());
    close("donor_diff_m1", 0.45 - 0.04);
    close("donor_diff_m2", 0.45 - 0.02);
    close("donor_diff_p1", 0.45 - 0.9);
    close("donor_diff_p2", 0.45 - 0.01);
    close("acceptor_diff_p1", 0.0);
    close("acceptor_weighted_context", 0.0);
    close("donor_acceptor_diff", (d - a) / (d.max(a) + 1e-10));
    close("splice_neither_diff", (d.max(a) - n) / (d.max(a).max(n) + 1e-10));
    close(
        "splice_neither_logodds",
        (d + a + 1e-10f64).ln() - (n + 1e-10f64).ln(),
    );
    close("type_signal_difference", (0.45 - 0.2425) - 0.0);
    close("score_difference_ratio", (d - a) / (d + a + 1e-10));
    // The acceptor's signal strength is 0: the ratio's denominator is floored at 0.01.
    close("signal_strength_ratio", (0.45 - 0.2425) / 0.01);
    close("donor_acceptor_peak_ratio", (0.45 / 0.2525) / 0.01);
}

#[test]
fn a_genes_rows_do_not_depend_on_the_other_genes() {
    let f = Fixture::new();
    let sampled = "tn_sample_factor = 3.0\ndownsample = { enabled = true }";
    // Replaces the fixture's `downsample` line: the last key of the table wins in the
    // extra text, so write the config by hand.
    let cfg = f.config("").to_string_lossy().into_owned();
    let text = std::fs::read_to_string(&cfg).unwrap().replace(
        "tn_sample_factor = 0.0\ndownsample = { enabled = false }",
        sampled,
    );
    std::fs::write(&cfg, &text).unwrap();
    assert_eq!(run(&["build", &cfg]).0, 0);
    let both = rows(&f.master());
    // Only M, in a genome whose annotation lists only M.
    std::fs::remove_dir_all(f.path().join("data")).unwrap();
    let only_m: String = GFF
        .lines()
        .filter(|l| l.starts_with('#') || l.contains("=M"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(f.path().join("g.gff3"), only_m).unwrap();
    f.write_scores(&planted()[1..], 1);
    let (code, _, err) = run(&["build", &cfg]);
    assert_eq!(code, 0, "{err}");
    let alone = rows(&f.master());
    let m_of = |r: &BTreeMap<(String, i64), BTreeMap<String, String>>| {
        r.iter()
            .filter(|((g, _), _)| g == "M")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect::<Vec<_>>()
    };
    assert!(m_of(&both).len() > 3, "negatives were sampled");
    assert_eq!(m_of(&both), m_of(&alone));
}

#[test]
fn an_interrupted_build_resumes_to_identical_files() {
    let f = Fixture::new();
    f.write_scores(&planted(), 1);
    let extra = "batch_genes = 1";
    assert_eq!(f.build(extra).0, 0);
    let first = files_of(&f.master());
    assert!(first.contains_key("batch_00001.parquet"));

    // Killed between batches: the second batch and the gene manifest never written, the
    // manifest listing one batch.
    let m = f.master();
    let mut manifest: serde_json::Value = serde_json::from_slice(&first["manifest.json"]).unwrap();
    manifest["batches"].as_array_mut().unwrap().truncate(1);
    manifest["complete"] = false.into();
    std::fs::write(
        m.join("manifest.json"),
        serde_json::to_vec_pretty(&manifest).unwrap(),
    )
    .unwrap();
    std::fs::remove_file(m.join("batch_00001.parquet")).unwrap();
    std::fs::remove_file(m.join("gene_manifest.csv")).unwrap();
    assert_eq!(f.build(extra).0, 0);
    assert_eq!(files_of(&m), first);

    // Killed inside a batch: its temporary file left behind, and a first batch damaged on disk.
    std::fs::write(m.join(".spliceboost-999999-abcdef.tmp"), b"half a batch").unwrap();
    let mut bytes = first["batch_00000.parquet"].clone();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(m.join("batch_00000.parquet"), bytes).unwrap();
    assert_eq!(f.build(extra).0, 0);
    assert_eq!(files_of(&m), first);
    assert!(hidden_in(&m).is_empty(), "{:?}", hidden_in(&m));
}

#[test]
fn a_build_killed_between_or_inside_batches_resumes_to_the_same_files() {
    let f = Fixture::new();
    f.write_scores(&planted(), 1);
    let cfg = f.config("batch_genes = 1");
    let args = ["build", cfg.to_str().unwrap()];
    let (code, _, err) = run(&args);
    assert_eq!(code, 0, "{err}");
    let m = f.master();
    let whole = files_of(&m);

    killed_between_and_inside_batches_resumes_to(
        &args,
        &m,
        "batch_00001.parquet",
        "1 batches kept from an earlier run",
        &whole,
    );
}

#[test]
fn other_settings_are_refused_without_overwrite() {
    let f = Fixture::new();
    assert_eq!(f.build("").0, 0);
    let (code, _, err) = f.build("threshold = 0.3");
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("differ in build") && err.contains("--overwrite"),
        "{err}"
    );
    let cfg = f.config("threshold = 0.3");
    assert_eq!(run(&["build", cfg.to_str().unwrap(), "--overwrite"]).0, 0);
}

#[test]
fn a_score_outside_zero_to_one_stops_the_build() {
    let f = Fixture::new();
    let mut genes = planted();
    genes[1].4.push((300, 1.5, 0.0));
    f.write_scores(&genes, 1);
    let (code, _, err) = f.build("");
    assert_eq!(code, 2, "{err}");
    let errors: Vec<&str> = err.lines().filter(|l| l.starts_with("error")).collect();
    assert_eq!(errors.len(), 1, "{err}");
    assert!(
        errors[0].contains("column `donor`: gene M position 300: the donor score 1.5 is not a probability"),
        "{err}"
    );
    // Nothing of gene M's batch was written.
    assert!(!f.master().join("batch_00001.parquet").exists());
}

#[test]
fn scores_missing_for_a_gene_stop_the_build() {
    let f = Fixture::new();
    f.write_scores(&planted()[..1], 1);
    let (code, _, err) = f.build("");
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("annotation's selection yields M"), "{err}");
}

/// Mann-Whitney ROC-AUC of `x` for `y`, ties counting one half, computed here by sorting.
fn auc(x: &[f64], y: &[bool]) -> f64 {
    let mut idx: Vec<usize> = (0..x.len()).collect();
    idx.sort_by(|&a, &b| x[a].total_cmp(&x[b]));
    let (mut rank_sum, mut i) = (0.0, 0);
    while i < idx.len() {
        let mut j = i;
        while j < idx.len() && x[idx[j]] == x[idx[i]] {
            j += 1;
        }
        let mid = (i + j + 1) as f64 / 2.0; // mean 1-based rank of the tie block
        rank_sum += mid * idx[i..j].iter().filter(|&&k| y[k]).count() as f64;
        i = j;
    }
    let p = y.iter().filter(|&&v| v).count() as f64;
    let n = y.len() as f64 - p;
    (rank_sum - p * (p + 1.0) / 2.0) / (p * n)
}

/// The fly chromosome built with a noisy base model's scores (`synth::genome`): no feature
/// that is not a score — sequence, gene structure, every 3-mer — separates splice rows from
/// neither rows on its own (ROC-AUC, or 1 − AUC, below 0.95). The same computation finds the
/// leak in a column made from the base model's calls, so it can fail.
#[test]
fn no_non_score_feature_separates_splice_from_neither_rows_on_the_fly_chromosome() {
    use spliceboost::genome::{Genome, GenomeConfig};
    use spliceboost::memory::{MemoryConsumer, MemoryPool};
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/genome");
    let (fasta, gff) = (
        fixtures.join("dmel_chr4.fna.gz"),
        fixtures.join("dmel_chr4.gff3.gz"),
    );

    // The scores of every selected gene, written as a score directory.
    let pool = std::sync::Arc::new(MemoryPool::new(1 << 30));
    let res = MemoryConsumer::new("test").register(&pool);
    let mut cfg = GenomeConfig::new(&fasta, &gff);
    cfg.cache_dir = Some(d.join("cache"));
    let mut genome = Genome::open(&cfg, &d.join("cache"), 42, &res).unwrap();
    let genes: Vec<_> = genome.genes(&res).unwrap().map(|g| g.unwrap()).collect();
    let scores = d.join("scores");
    std::fs::create_dir_all(&scores).unwrap();
    let name = spliceboost::score::store::batch_name(0);
    let mut w = GeneWriter::new(std::fs::File::create(scores.join(&name)).unwrap()).unwrap();
    for g in &genes {
        let seq = genome
            .fasta
            .fetch(&g.chrom, g.start as i64, g.end as i64)
            .unwrap();
        let s: Vec<[f32; 3]> = spliceboost::synth::genome::noisy_base_scores(g, &seq, 7)
            .into_iter()
            .map(|[dn, ac, ne]| [ne, ac, dn])
            .collect();
        w.write_gene(&g.id, &g.chrom, g.strand, g.start, &s).unwrap();
    }
    let rows = w.finish().unwrap();
    let mut m = Manifest::new(serde_json::json!({"noisy": 7}));
    m.batches.push(
        BatchEntry::written(&scores, name, genes.iter().map(|g| g.id.clone()).collect(), rows).unwrap(),
    );
    m.complete = true;
    m.write(&scores).unwrap();

    let cfg_path = d.join("b.toml");
    std::fs::write(
        &cfg_path,
        format!(
            "[run]\nout_dir = {:?}\nprogress = false\n[genome]\nfasta = {:?}\nannotation = {:?}\ncache_dir = {:?}\n\
             [dataset]\npath = {:?}\n[build]\nscores = {:?}\nkmers = [3]\n",
            d.join("out"),
            fasta,
            gff,
            d.join("cache"),
            d.join("data"),
            scores
        ),
    )
    .unwrap();
    let (code, _, err) = run(&["build", cfg_path.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");

    // Every feature that is not a score, as f64, and the label.
    let mut cols: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    let (mut splice, mut called) = (vec![], vec![]);
    for b in read_all(&d.join("data/master")) {
        let n = b.num_rows();
        for r in 0..n {
            splice.push(
                b.column_by_name("splice_type")
                    .unwrap()
                    .as_string::<i32>()
                    .value(r)
                    != "neither",
            );
            let call = b.column_by_name("pred_type").unwrap().as_string::<i32>().value(r);
            called.push(if matches!(call, "TP" | "FN") { 1.0 } else { 0.0 });
        }
        for name in ["gc_content", "sequence_complexity"] {
            let c = b.column_by_name(name).unwrap().as_primitive::<Float32Type>();
            cols.entry(name.into())
                .or_default()
                .extend(c.values().iter().map(|&v| f64::from(v)));
        }
        for name in ["sequence_length", "gene_transcripts", "gene_exons"] {
            let c = b.column_by_name(name).unwrap().as_primitive::<Int32Type>();
            cols.entry(name.into())
                .or_default()
                .extend(c.values().iter().map(|&v| f64::from(v)));
        }
        for name in ["gene_length", "gene_distance_start", "gene_distance_end"] {
            let c = b.column_by_name(name).unwrap().as_primitive::<Int64Type>();
            cols.entry(name.into())
                .or_default()
                .extend(c.values().iter().map(|&v| v as f64));
        }
        let list = b.column_by_name("kmers_3").unwrap().as_list::<i32>();
        let mut dense = vec![vec![0f64; n]; 64];
        for (r, items) in list.iter().enumerate() {
            let items = items.unwrap();
            let st = items.as_struct();
            let (idx, cnt) = (
                st.column(0).as_primitive::<UInt32Type>(),
                st.column(1).as_primitive::<UInt16Type>(),
            );
            for i in 0..idx.len() {
                dense[idx.value(i) as usize][r] = f64::from(cnt.value(i));
            }
        }
        for (k, v) in dense.into_iter().enumerate() {
            cols.entry(format!("3mer#{k}")).or_default().extend(v);
        }
    }
    let (pos, neg) = (
        splice.iter().filter(|&&v| v).count(),
        splice.iter().filter(|&&v| !v).count(),
    );
    assert!(pos > 500 && neg > 500, "{pos} splice rows, {neg} neither rows");
    assert_eq!(cols.len(), 8 + 64);
    let leaks: Vec<String> = cols
        .iter()
        .map(|(name, x)| {
            let a = auc(x, &splice);
            (name, a.max(1.0 - a))
        })
        .filter(|(_, s)| *s >= 0.95)
        .map(|(n, s)| format!("{n}: {s:.3}"))
        .collect();
    assert!(leaks.is_empty(), "features that give the label away: {leaks:?}");
    let a = auc(&called, &splice);
    assert!(
        a.max(1.0 - a) >= 0.95,
        "the base model's call column separates: {a}"
    );
}

#[test]
fn scores_over_another_span_or_for_extra_genes_stop_the_build() {
    let f = Fixture::new();
    let mut genes = planted();
    // M's 100 scores start one base early: the same length, the wrong span.
    genes[1].1 = 250;
    genes[1].2 = 349;
    genes[1].4.clear();
    f.write_scores(&genes, 1);
    let (code, _, err) = f.build("");
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("gene M is scored over - c1:250-349, its annotation spans - c1:251-350"),
        "{err}"
    );

    let mut genes = planted();
    genes.push(("X", 360, 380, Strand::Plus, vec![]));
    f.write_scores(&genes, 1);
    std::fs::remove_dir_all(f.path().join("data")).unwrap();
    let (code, _, err) = f.build("");
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("the scores hold gene X where the annotation's selection yields no more genes"),
        "{err}"
    );
}

#[test]
fn a_window_past_the_chromosome_start_counts_only_the_bases_inside() {
    let f = Fixture::new();
    let cfg = f.config("");
    let (code, _, err) = run(&["build", cfg.to_str().unwrap(), "--set", "build.window=300"]);
    assert_eq!(code, 0, "{err}");
    let rows = rows(&f.master());
    // P's donor at 130: the window [130 - 150, 130 + 150) is genomic -20..=279, of which
    // 1..=279 lie on the chromosome.
    let p = &rows[&("P".into(), 130)];
    assert_eq!(p["sequence_length"], "279");
    let inside = &chromosome()[..279];
    let gc = inside.iter().filter(|&&b| b == b'G' || b == b'C').count() as f32 / 279.0;
    assert_eq!(p["gc_content"], format!("{gc}"));
}

#[test]
fn a_build_budget_too_small_stops_before_any_batch_naming_the_key() {
    let f = Fixture::new();
    let cfg = f.config("kmer_layout = \"dense\"");
    let sets = ["--set", "build.kmers=[8]", "--set", "memory.build=16MiB"];
    let (code, _, err) = run(&[&["build", cfg.to_str().unwrap()][..], &sets].concat());
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("memory.build"), "{err}");
    let written: Vec<_> = std::fs::read_dir(f.master())
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(
        !written.iter().any(|n| n.to_string_lossy().ends_with(".parquet")),
        "{written:?}"
    );
}

#[test]
fn overwrite_builds_every_batch_again() {
    let f = Fixture::new();
    assert_eq!(f.build("batch_genes = 1").0, 0);
    let first = files_of(&f.master());
    let (code, out, _) = f.build("batch_genes = 1");
    assert_eq!(code, 0);
    assert!(out.contains("2 batches kept from an earlier run"), "{out}");
    let cfg = f.config("batch_genes = 1");
    let (code, out, err) = run(&["build", cfg.to_str().unwrap(), "--overwrite"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        !out.contains("kept from an earlier run") && out.contains("this run:"),
        "{out}"
    );
    assert_eq!(files_of(&f.master()), first);
}

#[test]
fn the_gene_manifest_lists_each_gene_with_its_sites_and_file() {
    let f = Fixture::new();
    assert_eq!(f.build("batch_genes = 1").0, 0);
    let text = std::fs::read_to_string(f.master().join("gene_manifest.csv")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines,
        [
            "global_index,gene_id,gene_name,gene_type,chrom,strand,gene_length,start,end,total_splice_sites,donor_sites,acceptor_sites,splice_density_per_kb,file_index,file_name",
            "0,P,pname,protein_coding,c1,+,100,101,200,2,1,1,20.000000,0,batch_00000.parquet",
            "1,M,,protein_coding,c1,-,100,251,350,2,1,1,20.000000,1,batch_00001.parquet",
        ]
    );
}

#[test]
fn dense_kmers_hold_the_same_counts_as_sparse_ones() {
    let f = Fixture::new();
    assert_eq!(f.build("").0, 0);
    let sparse = rows(&f.master());
    std::fs::remove_dir_all(f.path().join("data")).unwrap();
    assert_eq!(f.build("kmer_layout = \"dense\"").0, 0);
    let dense = rows(&f.master());
    assert_eq!(sparse.len(), dense.len());
    let names: Vec<String> = (0..16u32)
        .map(|i| {
            format!(
                "2mer_{}{}",
                b"ACGT"[(i / 4) as usize] as char,
                b"ACGT"[(i % 4) as usize] as char
            )
        })
        .collect();
    for (key, s) in &sparse {
        let d = &dense[key];
        let from_dense: Vec<String> = names
            .iter()
            .enumerate()
            .filter(|(_, n)| d[*n] != "0")
            .map(|(i, n)| format!("{i}:{}", d[n]))
            .collect();
        assert_eq!(s["kmers_2"], from_dense.join(","), "{key:?}");
        for (col, v) in s.iter().filter(|(c, _)| *c != "kmers_2") {
            assert_eq!(&d[col], v, "{key:?} {col}");
        }
    }
}

#[test]
fn the_files_do_not_depend_on_the_thread_count() {
    let f = Fixture::new();
    let cfg = f.config("tn_sample_factor = 2.0\nbatch_genes = 2");
    let cfg_text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("tn_sample_factor = 0.0\n", "");
    std::fs::write(&cfg, cfg_text).unwrap();
    let mut out = vec![];
    for threads in ["1", "2"] {
        let _ = std::fs::remove_dir_all(f.path().join("data"));
        let (code, _, err) = run(&[
            "build",
            cfg.to_str().unwrap(),
            "--set",
            &format!("run.threads={threads}"),
        ]);
        assert_eq!(code, 0, "{err}");
        out.push(files_of(&f.master()));
    }
    assert_eq!(out[0], out[1]);
}
