//! `spliceboost synth --genome`: a synthetic genome read back through the genome room and the
//! `[score.file]` reader, as the dataset builder will read it.
//!
//! Oracles: the genes as planted ([`planted_genes`]), the coordinate convention of
//! docs/genome.md worked by hand on both strands, [`noisy_base_scores`] recomputed from the
//! FASTA, a second run's bytes, and the annotation against the scores at threshold 0.5.

mod common;

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use spliceboost::genome::{Gene, Genome, GenomeConfig, SiteKind, Strand};
use spliceboost::memory::{MemoryConsumer, MemoryPool, MemoryReservation};
use spliceboost::score::import::{ScoreFile, ScoreFileConfig};
use spliceboost::score::reverse_complement;
use spliceboost::synth::genome::{
    acceptor_motif_strength, donor_motif_strength, noisy_base_scores, planted_genes, write_genome,
    SynthGenomeOptions, SynthGenomeSummary, ROW_GROUP_META_BYTES,
};

fn reservation() -> MemoryReservation {
    let pool = Arc::new(MemoryPool::new(1 << 30));
    MemoryConsumer::new("synth").register(&pool)
}

fn synth(dir: &Path, name: &str, opts: &SynthGenomeOptions) -> (PathBuf, SynthGenomeSummary) {
    let out = dir.join(name);
    let s = write_genome(&out, opts, &mut reservation()).unwrap();
    (out, s)
}

fn genome_config(out: &Path) -> GenomeConfig {
    let mut cfg = GenomeConfig::new(out.join("genome.fa"), out.join("annotation.gff3"));
    // Single-exon genes too: they are planted.
    cfg.select.require_sites = false;
    cfg.cache_dir = Some(out.join("cache"));
    cfg
}

/// Every gene of the written annotation, through the genome room, with its forward sequence.
fn read_back(out: &Path) -> (Genome, Vec<(Gene, Vec<u8>)>) {
    let res = reservation();
    let cfg = genome_config(out);
    let mut genome = Genome::open(&cfg, &out.join("cache"), 0, &res).unwrap();
    let genes: Vec<Gene> = genome
        .genes(&res)
        .unwrap()
        .collect::<anyhow::Result<Vec<_>>>()
        .unwrap();
    let with_seq = genes
        .into_iter()
        .map(|g| {
            let seq = genome
                .fasta
                .fetch(&g.chrom, g.start as i64, g.end as i64)
                .unwrap();
            (g, seq)
        })
        .collect();
    (genome, with_seq)
}

fn oriented(g: &Gene, forward: &[u8]) -> Vec<u8> {
    let mut s = forward.to_vec();
    if g.strand == Strand::Minus {
        reverse_complement(&mut s);
    }
    s
}

fn without_lines(mut g: Gene) -> Gene {
    g.line = 0;
    for t in &mut g.transcripts {
        t.line = 0;
    }
    g
}

/// Reads every gene's scores back through `[score.file]`, as `[donor, acceptor, neither]`.
fn scores_of(out: &Path, genes: &[Gene]) -> Vec<Vec<[f32; 3]>> {
    let cfg = ScoreFileConfig {
        path: out.join("scores.parquet"),
        columns: Default::default(),
    };
    let file = ScoreFile::open(&cfg, &genome_config(out)).unwrap();
    let mut rows: Vec<Vec<[f32; 3]>> = genes
        .iter()
        .map(|g| vec![[f32::NAN; 3]; g.len() as usize])
        .collect();
    file.fill(genes, &mut rows).unwrap();
    // The reader fills SpliceAI's channel order.
    rows.into_iter()
        .map(|r| r.into_iter().map(|[n, a, d]| [d, a, n]).collect())
        .collect()
}

#[test]
fn the_annotation_reads_back_as_planted_with_gt_ag_at_every_intron_on_both_strands() {
    let dir = tempfile::tempdir().unwrap();
    let opts = SynthGenomeOptions {
        chromosomes: Some(2),
        ..SynthGenomeOptions::new(120, 11)
    };
    let (out, summary) = synth(dir.path(), "g", &opts);
    let (genome, read) = read_back(&out);
    let planted: Vec<_> = planted_genes(&opts).unwrap().collect();
    assert_eq!(read.len(), 120);
    assert_eq!(planted.len(), 120);
    let chroms: Vec<&str> = genome
        .fasta
        .index()
        .records()
        .iter()
        .map(|r| r.name.as_str())
        .collect();
    assert_eq!(chroms, ["chr1", "chr2"]);

    let (mut donors, mut acceptors, mut strands) = (0, 0, [0, 0]);
    for ((g, fwd), p) in read.iter().zip(&planted) {
        assert_eq!(without_lines(g.clone()), p.gene, "gene {}", p.gene.id);
        assert_eq!(fwd, &p.forward, "sequence of {}", g.id);
        let seq = oriented(g, fwd);
        for site in g.sites() {
            // Worked by hand from docs/genome.md: the site is the exonic base; a donor's
            // intron follows it in transcription order, an acceptor's precedes it.
            let o = g.offset(site.position).unwrap() as usize;
            match site.kind {
                SiteKind::Donor => {
                    assert_eq!(&seq[o + 1..o + 3], b"GT", "donor {} of {}", site.position, g.id);
                    donors += 1;
                }
                SiteKind::Acceptor => {
                    assert_eq!(&seq[o - 2..o], b"AG", "acceptor {} of {}", site.position, g.id);
                    acceptors += 1;
                }
            }
        }
        // The same on the forward strand, intron by intron: `+` reads GT..AG, `-` reads
        // CT..AC (GT..AG once reverse-complemented), with the donor on the exonic base
        // before the GT in transcription order.
        let at = |p: u64| fwd[(p - g.start) as usize];
        for t in &g.transcripts {
            for i in t.introns() {
                let (first, last) = ([at(i.start), at(i.start + 1)], [at(i.end - 1), at(i.end)]);
                match g.strand {
                    Strand::Plus => {
                        assert_eq!((&first, &last), (b"GT", b"AG"), "{} {i:?}", g.id);
                        assert_eq!(i.donor(g.strand), i.start - 1);
                        strands[0] += 1;
                    }
                    Strand::Minus => {
                        assert_eq!((&first, &last), (b"CT", b"AC"), "{} {i:?}", g.id);
                        assert_eq!(i.donor(g.strand), i.end + 1);
                        strands[1] += 1;
                    }
                }
            }
        }
    }
    assert!(
        strands[0] > 50 && strands[1] > 50,
        "introns per strand {strands:?}"
    );
    assert_eq!((summary.donors, summary.acceptors), (donors, acceptors));
    assert_eq!(summary.genes, 120);
    assert!(
        summary.single_exon_genes > 0 && summary.alternative_genes > 0,
        "{summary:?}"
    );
    assert_eq!(
        summary.positions,
        read.iter().map(|(g, _)| g.len()).sum::<u64>(),
        "every base of every gene is scored"
    );
}

#[test]
fn the_scores_read_through_score_file_are_the_noisy_model_on_both_strands() {
    let dir = tempfile::tempdir().unwrap();
    let opts = SynthGenomeOptions::new(40, 5);
    let out = dir.path().join("g");
    let mut res = reservation();
    let written = write_genome(&out, &opts, &mut res).unwrap();
    // What it held: one gene's working set from the start, then the writer's metadata row
    // group by row group (the only thing that grows with the genome).
    assert_eq!(
        res.peak(),
        opts.working_bytes() + written.positions.div_ceil(65_536) * ROW_GROUP_META_BYTES
    );
    assert_eq!(res.size(), 0);
    let (_, read) = read_back(&out);
    let genes: Vec<Gene> = read.iter().map(|(g, _)| g.clone()).collect();
    let scores = scores_of(&out, &genes);
    let mut checked = HashSet::new();
    for ((g, fwd), got) in read.iter().zip(&scores) {
        let want = noisy_base_scores(g, fwd, opts.seed);
        assert_eq!(got, &want, "scores of {} ({})", g.id, g.strand);
        if g.has_sites() {
            checked.insert(g.strand);
        }
    }
    assert_eq!(checked.len(), 2, "a + and a - gene with sites");
    // The scores are SpliceAI-shaped: probabilities summing to 1, and the gene's own
    // strand's sites peak where the annotation puts them.
    let minus = read
        .iter()
        .position(|(g, _)| g.strand == Strand::Minus && g.has_sites())
        .unwrap();
    let (g, _) = &read[minus];
    for r in &scores[minus] {
        assert!(
            r.iter().all(|v| (0.0..=1.0).contains(v)) && r[0] + r[1] + r[2] == 1.0,
            "{r:?}"
        );
    }
    let peaks = g
        .sites()
        .iter()
        .filter(|s| {
            let r = scores[minus][(s.position - g.start) as usize];
            r[(s.kind == SiteKind::Acceptor) as usize] >= 0.5
        })
        .count();
    assert!(
        peaks * 2 > g.sites().len(),
        "{peaks} of {} sites found",
        g.sites().len()
    );
}

#[test]
fn the_same_seed_gives_the_same_bytes_and_another_seed_other_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let opts = SynthGenomeOptions {
        chromosomes: Some(2),
        ..SynthGenomeOptions::new(30, 9)
    };
    let (a, _) = synth(dir.path(), "a", &opts);
    let (b, _) = synth(dir.path(), "b", &opts);
    let (c, _) = synth(
        dir.path(),
        "c",
        &SynthGenomeOptions {
            seed: 10,
            ..opts.clone()
        },
    );
    let files = |d: &Path| -> BTreeMap<String, Vec<u8>> { common::files_of(d) };
    let (fa, fb, fc) = (files(&a), files(&b), files(&c));
    assert_eq!(
        fa.keys().collect::<Vec<_>>(),
        [
            "annotation.gff3",
            "genome.fa",
            "genome.fa.fai",
            "scores.parquet",
            "synth_genome.json"
        ]
    );
    assert!(fa == fb, "two runs with seed 9 differ");
    for name in ["genome.fa", "annotation.gff3", "scores.parquet"] {
        assert_ne!(fa[name], fc[name], "{name} is the same for seeds 9 and 10");
    }
    // Not only in the comments or a chromosome's tail: the genes themselves differ.
    let records = |f: &[u8]| -> Vec<String> {
        String::from_utf8_lossy(f)
            .lines()
            .filter(|l| !l.starts_with('#'))
            .map(String::from)
            .collect()
    };
    let (ra, rc) = (records(&fa["annotation.gff3"]), records(&fc["annotation.gff3"]));
    assert_ne!(ra[0], rc[0], "the first gene is the same for seeds 9 and 10");
    assert_ne!(fa["genome.fa"][..600], fc["genome.fa"][..600]);
    // No temporary file or directory is left beside or inside the outputs.
    let hidden: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(hidden.is_empty(), "{hidden:?}");
}

/// Average precision of `scores` against `truth` (scikit-learn's definition, ties broken by
/// order, which is close enough here).
fn average_precision(mut pairs: Vec<(f32, bool)>) -> f64 {
    pairs.sort_by(|a, b| b.0.total_cmp(&a.0));
    let positives = pairs.iter().filter(|p| p.1).count() as f64;
    let (mut hits, mut sum) = (0.0, 0.0);
    for (k, &(_, t)) in pairs.iter().enumerate() {
        if t {
            hits += 1.0;
            sum += hits / (k + 1) as f64;
        }
    }
    sum / positives
}

#[test]
fn the_noisy_model_has_false_positives_and_negatives_at_half_but_ranks_sites_far_above_decoys() {
    let dir = tempfile::tempdir().unwrap();
    let opts = SynthGenomeOptions::new(200, 21);
    let (out, _) = synth(dir.path(), "g", &opts);
    let (_, read) = read_back(&out);
    let genes: Vec<Gene> = read.iter().map(|(g, _)| g.clone()).collect();
    let scores = scores_of(&out, &genes);

    for (t, kind) in [(0, SiteKind::Donor), (1, SiteKind::Acceptor)] {
        let strength = |seq: &[u8], o: usize| match kind {
            SiteKind::Donor => donor_motif_strength(seq, o),
            SiteKind::Acceptor => acceptor_motif_strength(seq, o),
        };
        let (mut tp, mut fp, mut fn_) = (0u64, 0u64, 0u64);
        // Misses among weak and strong sites; calls among strong decoys and weak candidates.
        let (mut weak, mut weak_missed, mut strong, mut strong_missed) = (0u64, 0u64, 0u64, 0u64);
        let (mut decoys, mut decoys_called, mut others, mut others_called) = (0u64, 0u64, 0u64, 0u64);
        let mut site_scores = vec![];
        let mut decoy_scores = vec![];
        let mut all = vec![];
        for ((g, fwd), rows) in read.iter().zip(&scores) {
            let seq = oriented(g, fwd);
            let sites: HashSet<u64> = g
                .sites()
                .iter()
                .filter(|s| s.kind == kind)
                .map(|s| s.position)
                .collect();
            for (i, r) in rows.iter().enumerate() {
                let pos = g.start + i as u64;
                let o = g.offset(pos).unwrap() as usize;
                let (s, m, truth) = (r[t], strength(&seq, o), sites.contains(&pos));
                let called = s >= 0.5;
                all.push((s, truth));
                match (truth, called) {
                    (true, true) => tp += 1,
                    (true, false) => fn_ += 1,
                    (false, true) => fp += 1,
                    (false, false) => {}
                }
                if truth {
                    site_scores.push(s);
                    let (n, missed) = if m >= 0.7 {
                        (&mut strong, &mut strong_missed)
                    } else {
                        (&mut weak, &mut weak_missed)
                    };
                    *n += 1;
                    *missed += u64::from(!called);
                } else if m > 0.0 {
                    let (n, c) = if m >= 0.8 {
                        decoy_scores.push(s);
                        (&mut decoys, &mut decoys_called)
                    } else {
                        (&mut others, &mut others_called)
                    };
                    *n += 1;
                    *c += u64::from(called);
                }
            }
        }
        let recall = tp as f64 / (tp + fn_) as f64;
        let precision = tp as f64 / (tp + fp) as f64;
        eprintln!(
            "{kind:?}: tp {tp} fp {fp} fn {fn_}, recall {recall:.3}, precision {precision:.3}; \
             missed weak {weak_missed}/{weak} strong {strong_missed}/{strong}; \
             called strong decoys {decoys_called}/{decoys}, other candidates {others_called}/{others}"
        );
        assert!(
            fn_ > 20 && fp > 20,
            "{kind:?}: needs false negatives and positives"
        );
        assert!((0.75..0.95).contains(&recall), "{kind:?} recall {recall}");
        assert!((0.6..0.97).contains(&precision), "{kind:?} precision {precision}");
        // The errors follow the motif: weak sites are missed far more often than strong
        // ones, strong decoys called far more often than other candidates.
        let rate = |a: u64, b: u64| a as f64 / b.max(1) as f64;
        assert!(
            weak > 30 && decoys > 30,
            "{kind:?}: {weak} weak sites, {decoys} strong decoys"
        );
        assert!(
            rate(weak_missed, weak) > 3.0 * rate(strong_missed, strong),
            "{kind:?}"
        );
        assert!(
            rate(decoys_called, decoys) > 10.0 * rate(others_called, others),
            "{kind:?}"
        );
        // Far better than chance: a true site outranks a strong decoy most of the time, and
        // the average precision over every position is high.
        let mut wins = 0u64;
        for &s in &site_scores {
            wins += decoy_scores.iter().filter(|&&d| s > d).count() as u64;
        }
        let auc = wins as f64 / (site_scores.len() * decoy_scores.len()) as f64;
        let ap = average_precision(all);
        eprintln!("{kind:?}: sites over strong decoys {auc:.3}, average precision {ap:.3}");
        assert!(auc > 0.8, "{kind:?}: sites outrank strong decoys only {auc}");
        assert!(ap > 0.75, "{kind:?}: average precision {ap}");
    }
}

#[test]
fn the_command_line_writes_the_same_genome_and_refuses_what_does_not_apply() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("cli");
    let summary = dir.path().join("run_summary.json");
    let (code, stdout, err) = common::run(&[
        "synth",
        "--genome",
        "--out",
        out.to_str().unwrap(),
        "--genes",
        "25",
        "--seed",
        "4",
        "--summary",
        summary.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(stdout.contains("25 genes"), "{stdout}");
    let (lib, _) = synth(dir.path(), "lib", &SynthGenomeOptions::new(25, 4));
    assert!(
        common::files_of(&out) == common::files_of(&lib),
        "the CLI wrote another genome"
    );
    // The stage stayed within what it reserved.
    let s: serde_json::Value = serde_json::from_slice(&std::fs::read(&summary).unwrap()).unwrap();
    let stage = &s["stages"][0];
    assert_eq!(stage["name"], "synth");
    let (heap, reserved) = (
        stage["peak_heap_bytes"].as_u64().unwrap(),
        stage["peak_reserved_bytes"].as_u64().unwrap(),
    );
    assert!(
        heap > 0 && heap <= reserved,
        "heap {heap} above the {reserved} reserved"
    );

    let o = dir.path().join("x");
    let o = o.to_str().unwrap();
    for (args, says) in [
        (
            vec!["synth", "--genome", "--out", out.to_str().unwrap()],
            "already exists",
        ),
        (vec!["synth", "--genome", "--out", o, "--kmer", "4"], "--kmer"),
        (
            vec!["synth", "--genome", "--out", o, "--with-sequence"],
            "--with-sequence",
        ),
        (vec!["synth", "--out", o, "--chromosomes", "2"], "--genome"),
        (
            vec!["synth", "--genome", "--out", o, "--genes", "0"],
            "at least 1 gene",
        ),
        (
            vec![
                "synth",
                "--genome",
                "--out",
                o,
                "--genes",
                "3",
                "--chromosomes",
                "4",
            ],
            "4 chromosomes",
        ),
        (
            vec!["synth", "--genome", "--out", o, "--set", "memory.synth=1MiB"],
            "memory.synth",
        ),
    ] {
        let (code, _, err) = common::run(&args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
        assert!(!Path::new(o).exists(), "{args:?} wrote {o}");
    }
}

#[test]
fn the_noisy_model_scores_any_gene_of_a_real_genome() {
    // D. melanogaster chromosome 4, as tests/genome.rs reads it.
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/genome");
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = GenomeConfig::new(root.join("dmel_chr4.fna.gz"), root.join("dmel_chr4.gff3.gz"));
    cfg.cache_dir = Some(dir.path().to_path_buf());
    let res = reservation();
    let mut genome = Genome::open(&cfg, dir.path(), 0, &res).unwrap();
    let genes: Vec<Gene> = genome
        .genes(&res)
        .unwrap()
        .collect::<anyhow::Result<Vec<_>>>()
        .unwrap();
    assert!(genes.len() > 50);
    let strands: HashSet<Strand> = genes.iter().map(|g| g.strand).collect();
    assert_eq!(strands.len(), 2);
    let (mut sites, mut found, mut calls) = (0u64, 0u64, 0u64);
    for g in &genes {
        let fwd = genome
            .fasta
            .fetch(&g.chrom, g.start as i64, g.end as i64)
            .unwrap();
        let rows = noisy_base_scores(g, &fwd, 1);
        assert_eq!(rows.len() as u64, g.len());
        assert_eq!(rows, noisy_base_scores(g, &fwd, 1));
        for r in &rows {
            assert!(
                r[0] + r[1] + r[2] == 1.0 && r.iter().all(|v| (0.0..=1.0).contains(v)),
                "{r:?}"
            );
            calls += u64::from(r[0] >= 0.5) + u64::from(r[1] >= 0.5);
        }
        for s in g.sites() {
            let r = rows[(s.position - g.start) as usize];
            sites += 1;
            found += u64::from(r[(s.kind == SiteKind::Acceptor) as usize] >= 0.5);
        }
    }
    let recall = found as f64 / sites as f64;
    eprintln!("fly chr4: {sites} sites, recall at 0.5 {recall:.3}, {calls} calls");
    assert!((0.6..0.97).contains(&recall), "recall {recall}");
    assert!(calls > found, "no false positive on a real chromosome");
}
