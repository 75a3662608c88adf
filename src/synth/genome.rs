//! Synthetic genomes of any size: a FASTA, its GFF3 annotation and per-nucleotide base-model
//! scores, the three inputs of the dataset builder.
//!
//! Running SpliceAI over 10k-100k genes is far too slow for tests and benchmarks, so this
//! writes all three at once. Genes of 3-8 exons lie on both strands with splice motifs planted
//! at their true sites (some weak) and decoy motifs around them; the scores come from
//! [`noisy_base_scores`], a base model whose mistakes follow the sequence (it misses sites
//! with a weak motif and fires on decoys with a strong one), so that a meta-model trained on
//! the builder's rows has something to learn.
//!
//! Nothing is held beyond one gene: the files are written gene by gene, each gene drawn from
//! its own generator seeded by (seed, gene number) and its scores from (seed, gene id), so a
//! seed gives byte-identical files. Everything goes into a temporary directory beside the
//! output, renamed into place when complete.
//!
//! The coordinate convention is [`crate::genome::model`]'s: 1-based positions, splice sites
//! on the exonic base of each boundary.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Serialize;

use crate::error::InputError;
use crate::genome::{fai_text, fnv1a, Exon, FaiRecord, Gene, SiteKind, Strand, Transcript};
use crate::memory::MemoryReservation;
use crate::score::reverse_complement;
use crate::score::store::{piece_bytes, GeneWriter};

/// The FASTA's file name in the output directory (its index is `genome.fa.fai`).
pub const FASTA: &str = "genome.fa";
/// The annotation's file name.
pub const ANNOTATION: &str = "annotation.gff3";
/// The scores' file name: the score store's columns, readable by `[score.file]` as it is.
pub const SCORES: &str = "scores.parquet";
/// The summary's file name.
pub const SUMMARY: &str = "synth_genome.json";

/// Heap the Parquet writer keeps per finished row group until the file closes (its
/// metadata, statistics and page indexes): 6.6 KiB measured at 100k genes (4,578 row groups
/// took the heap from 8.4 to 35.6 MiB), with a margin.
pub const ROW_GROUP_META_BYTES: u64 = 10 << 10;

/// Bases per FASTA line.
const LINE_BASES: usize = 60;
/// Genes per chromosome when the number of chromosomes is not given.
const GENES_PER_CHROMOSOME: usize = 2000;

/// What to generate. Lengths are inclusive `(min, max)` ranges.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SynthGenomeOptions {
    pub genes: usize,
    /// `None`: one per 2,000 genes, at least one.
    pub chromosomes: Option<usize>,
    pub seed: u64,
    /// Exons of a multi-exon gene (uniform).
    pub exons: (usize, usize),
    /// Exon length (uniform).
    pub exon_len: (u64, u64),
    /// Intron length, log-uniform: most introns short, as in real genomes (mean about 450 nt
    /// for 60-1,500).
    pub intron_len: (u64, u64),
    /// Sequence before each gene and after a chromosome's last (uniform).
    pub intergenic_len: (u64, u64),
    /// Length of a single-exon gene (uniform).
    pub single_exon_len: (u64, u64),
    /// Genes of a single exon, hence no splice site.
    pub single_exon_fraction: f64,
    /// Multi-exon genes with a second transcript that skips one internal exon.
    pub alternative_fraction: f64,
    /// Genes whose biotype is `ncRNA` rather than `protein_coding`.
    pub ncrna_fraction: f64,
    /// GC content of introns and intergenic sequence; exons get 8 points more.
    pub gc: f64,
    /// True sites planted with a weak motif (GT / AG kept, the rest of the consensus mostly
    /// missing): the base model's false negatives come mostly from these.
    pub weak_site_fraction: f64,
    /// One decoy motif per this many intronic or intergenic bases, on average.
    pub decoy_spacing: u64,
    /// Decoys planted with the full consensus: the base model's false positives.
    pub strong_decoy_fraction: f64,
}

impl Default for SynthGenomeOptions {
    fn default() -> Self {
        Self {
            genes: 1000,
            chromosomes: None,
            seed: 42,
            exons: (3, 8),
            exon_len: (80, 300),
            intron_len: (60, 1500),
            intergenic_len: (500, 3000),
            single_exon_len: (400, 2500),
            single_exon_fraction: 0.04,
            alternative_fraction: 0.08,
            ncrna_fraction: 0.1,
            gc: 0.40,
            weak_site_fraction: 0.2,
            decoy_spacing: 150,
            strong_decoy_fraction: 0.3,
        }
    }
}

impl SynthGenomeOptions {
    /// Default options for `genes` genes and `seed`.
    pub fn new(genes: usize, seed: u64) -> Self {
        Self {
            genes,
            seed,
            ..Self::default()
        }
    }

    /// The number of chromosomes: as given, or one per 2,000 genes.
    pub fn chromosome_count(&self) -> usize {
        self.chromosomes
            .unwrap_or_else(|| self.genes.div_ceil(GENES_PER_CHROMOSOME).max(1))
    }

    /// The longest gene these options can draw, in bases.
    pub fn max_gene_len(&self) -> u64 {
        let exons = self.exons.1 as u64;
        (exons * self.exon_len.1 + exons.saturating_sub(1) * self.intron_len.1).max(self.single_exon_len.1)
    }

    /// Refuses options that cannot make a genome, in one line.
    pub fn validate(&self) -> Result<(), InputError> {
        let bad = |m: String| Err(InputError::new(m));
        if self.genes == 0 {
            return bad("synth --genome needs at least 1 gene".into());
        }
        let chroms = self.chromosome_count();
        if chroms == 0 || chroms > self.genes {
            return bad(format!(
                "synth --genome: {chroms} chromosomes for {} genes; give between 1 and the number of genes",
                self.genes
            ));
        }
        let ranges = [
            ("exon length", self.exon_len, 10),
            ("intron length", self.intron_len, 40),
            ("intergenic length", self.intergenic_len, 0),
            ("single-exon gene length", self.single_exon_len, 10),
        ];
        for (what, (lo, hi), min) in ranges {
            // The motifs need room: 3 exonic bases and 6 intronic at a donor, a 20-nt
            // polypyrimidine tract at an acceptor.
            if lo < min || lo > hi || hi > 1_000_000 {
                return bad(format!(
                    "synth --genome: {what} {lo}-{hi} must lie between {min} and 1,000,000, min ≤ max"
                ));
            }
        }
        if self.exons.0 < 2 || self.exons.0 > self.exons.1 || self.exons.1 > 1000 {
            return bad(format!(
                "synth --genome: {}-{} exons per gene; need 2 ≤ min ≤ max ≤ 1,000",
                self.exons.0, self.exons.1
            ));
        }
        let fractions = [
            ("single_exon_fraction", self.single_exon_fraction),
            ("alternative_fraction", self.alternative_fraction),
            ("ncrna_fraction", self.ncrna_fraction),
            ("weak_site_fraction", self.weak_site_fraction),
            ("strong_decoy_fraction", self.strong_decoy_fraction),
        ];
        for (what, f) in fractions {
            if !(0.0..=1.0).contains(&f) {
                return bad(format!(
                    "synth --genome: {what} = {f} is not a fraction in [0, 1]"
                ));
            }
        }
        if !(self.gc > 0.0 && self.gc <= 0.9) {
            return bad(format!("synth --genome: gc = {} must lie in (0, 0.9]", self.gc));
        }
        if self.decoy_spacing < 20 {
            return bad(format!(
                "synth --genome: decoy_spacing = {} must be at least 20 bases",
                self.decoy_spacing
            ));
        }
        Ok(())
    }

    /// Heap bytes [`write_genome`] holds from the start: one gene's sequences and scores, the
    /// Parquet writer's row group and the files' buffers. It reserves [`ROW_GROUP_META_BYTES`]
    /// more per row group as it writes them.
    pub fn working_bytes(&self) -> u64 {
        let len = self.max_gene_len();
        // Per base: the oriented and forward sequences (2), the model's oriented copy and site
        // flags (3), its two raw tracks (8), its rows and their Keras-order copy (24).
        let gene = len * 37 + self.exons.1 as u64 * 96 + 4096;
        let piece = piece_bytes(len.min(crate::io::OUTPUT_ROW_GROUP_ROWS as u64) as usize, 32);
        let chroms = self.chromosome_count() as u64 * 128;
        gene + piece + self.intergenic_len.1 + GeneWriter::<Vec<u8>>::bytes() + chroms + (64 << 10)
    }
}

/// A gene as planted: its annotation and its sequence `start..=end` on the forward strand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlantedGene {
    /// Genes are numbered from 0 in file order.
    pub index: usize,
    /// `line` fields are 0: the planted gene has no annotation line.
    pub gene: Gene,
    /// Upper-case, forward strand, `gene.len()` bases.
    pub forward: Vec<u8>,
}

/// What [`write_genome`] wrote; `synth_genome.json` holds the same without the path.
#[derive(Debug, Clone, Serialize)]
pub struct SynthGenomeSummary {
    #[serde(skip)]
    pub path: PathBuf,
    pub seed: u64,
    pub genes: usize,
    pub multi_exon_genes: usize,
    pub single_exon_genes: usize,
    pub alternative_genes: usize,
    pub ncrna_genes: usize,
    pub transcripts: usize,
    /// Distinct splice sites (a gene's two transcripts share theirs).
    pub donors: u64,
    pub acceptors: u64,
    /// Scored positions: every base of every gene.
    pub positions: u64,
    /// Bases of the genome.
    pub bases: u64,
    pub chromosomes: Vec<ChromosomeSummary>,
    /// Size in bytes of each file.
    pub files: BTreeMap<String, u64>,
    pub options: SynthGenomeOptions,
}

#[derive(Debug, Clone, Serialize)]
pub struct ChromosomeSummary {
    pub name: String,
    pub length: u64,
    pub genes: usize,
}

/// Writes a synthetic genome into the directory `out`, which must not exist:
/// `genome.fa` (+ `.fai`), `annotation.gff3`, `scores.parquet` and `synth_genome.json`.
///
/// The files are written into a temporary directory beside `out` and renamed into place
/// together, so a failed run leaves no partial genome.
pub fn write_genome(
    out: &Path,
    opts: &SynthGenomeOptions,
    res: &mut MemoryReservation,
) -> anyhow::Result<SynthGenomeSummary> {
    opts.validate()?;
    if out.exists() {
        return Err(InputError::new("already exists; synth never overwrites a genome")
            .file(out)
            .hint("remove it or choose another --out")
            .into());
    }
    let bytes = opts.working_bytes();
    res.require(
        bytes,
        format!(
            "genes of up to {} bases and a Parquet row group",
            opts.max_gene_len()
        ),
    )?;
    res.try_grow(bytes)?;

    let parent = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent)
        .map_err(|e| crate::error::io_error(parent, "cannot create the directory", &e))?;
    let tmp = tempfile::Builder::new()
        .prefix(&format!(".synth-genome-{}-", std::process::id()))
        .tempdir_in(parent)
        .map_err(|e| crate::error::io_error(parent, "cannot create a temporary directory here", &e))?;

    let mut summary = SynthGenomeSummary {
        path: out.to_path_buf(),
        seed: opts.seed,
        genes: 0,
        multi_exon_genes: 0,
        single_exon_genes: 0,
        alternative_genes: 0,
        ncrna_genes: 0,
        transcripts: 0,
        donors: 0,
        acceptors: 0,
        positions: 0,
        bases: 0,
        chromosomes: vec![],
        files: BTreeMap::new(),
        options: opts.clone(),
    };
    let dir = tmp.path();
    let mut fai = vec![];
    crate::io::write_atomic(&dir.join(FASTA), |fa| {
        crate::io::write_atomic(&dir.join(ANNOTATION), |gff| {
            crate::io::write_atomic(&dir.join(SCORES), |sc| {
                write_all(opts, fa, gff, sc, &mut fai, &mut summary, res)
            })
        })
    })?;
    crate::io::write_bytes_atomic(&dir.join(format!("{FASTA}.fai")), fai_text(&fai).as_bytes())?;
    for name in [
        FASTA.to_string(),
        format!("{FASTA}.fai"),
        ANNOTATION.into(),
        SCORES.into(),
    ] {
        let len = std::fs::metadata(dir.join(&name))?.len();
        summary.files.insert(name, len);
    }
    crate::io::write_bytes_atomic(
        &dir.join(SUMMARY),
        format!("{}\n", serde_json::to_string_pretty(&summary)?).as_bytes(),
    )?;

    let tmp_path = tmp.keep();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&tmp_path, std::fs::Permissions::from_mode(0o755)).ok();
    }
    std::fs::rename(&tmp_path, out)
        .with_context(|| format!("cannot move the genome to {}", out.display()))?;
    res.free();
    Ok(summary)
}

/// The three streams, gene by gene.
fn write_all(
    opts: &SynthGenomeOptions,
    fa: &mut impl Write,
    gff: &mut impl Write,
    sc: &mut (impl Write + Send),
    fai: &mut Vec<FaiRecord>,
    summary: &mut SynthGenomeSummary,
    res: &mut MemoryReservation,
) -> anyhow::Result<()> {
    let mut scores = GeneWriter::new(sc)?;
    let mut groups = 0;
    let mut fasta = FastaOut { written: 0, col: 0 };
    let mut keras: Vec<[f32; 3]> = vec![];
    writeln!(gff, "##gff-version 3")?;
    writeln!(
        gff,
        "# spliceboost synth --genome: {} genes, seed {}",
        opts.genes, opts.seed
    )?;
    for piece in Walk::new(opts) {
        match piece {
            Piece::Start { name } => {
                fasta.header(fa, &name)?;
                fai.push(FaiRecord {
                    name: name.clone(),
                    length: 0,
                    offset: fasta.written,
                    line_bases: LINE_BASES as u64,
                    line_width: LINE_BASES as u64 + 1,
                });
                summary.chromosomes.push(ChromosomeSummary {
                    name,
                    length: 0,
                    genes: 0,
                });
            }
            Piece::Gene { lead_in, planted } => {
                fasta.bases(fa, &lead_in)?;
                fasta.bases(fa, &planted.forward)?;
                let g = &planted.gene;
                write_gff_gene(gff, g)?;
                let rows = noisy_base_scores(g, &planted.forward, opts.seed);
                // The score store keeps SpliceAI's channel order.
                keras.clear();
                keras.extend(rows.iter().map(|&[d, a, n]| [n, a, d]));
                scores.write_gene(&g.id, &g.chrom, g.strand, g.start, &keras)?;
                // The one thing that grows with the genome: the writer's metadata.
                let now = scores.rows().div_ceil(crate::io::OUTPUT_ROW_GROUP_ROWS as u64);
                if now > groups {
                    res.try_grow((now - groups) * ROW_GROUP_META_BYTES)?;
                    groups = now;
                }

                let chrom = summary.chromosomes.last_mut().expect("a chromosome is open");
                chrom.length += lead_in.len() as u64 + g.len();
                chrom.genes += 1;
                summary.genes += 1;
                summary.transcripts += g.transcripts.len();
                if g.has_sites() {
                    summary.multi_exon_genes += 1;
                } else {
                    summary.single_exon_genes += 1;
                }
                summary.alternative_genes += usize::from(g.transcripts.len() > 1);
                summary.ncrna_genes += usize::from(g.biotype.as_deref() == Some("ncRNA"));
                for s in g.sites() {
                    match s.kind {
                        SiteKind::Donor => summary.donors += 1,
                        SiteKind::Acceptor => summary.acceptors += 1,
                    }
                }
                summary.positions += g.len();
            }
            Piece::End { tail } => {
                fasta.bases(fa, &tail)?;
                fasta.end(fa)?;
                let chrom = summary.chromosomes.last_mut().expect("a chromosome is open");
                chrom.length += tail.len() as u64;
                summary.bases += chrom.length;
                fai.last_mut().expect("a chromosome is open").length = chrom.length;
            }
        }
    }
    scores.finish()?;
    Ok(())
}

/// Plain FASTA in lines of [`LINE_BASES`], counting the bytes written for the `.fai`.
struct FastaOut {
    written: u64,
    /// Bases on the current line.
    col: usize,
}

impl FastaOut {
    fn header(&mut self, w: &mut impl Write, name: &str) -> std::io::Result<()> {
        let line = format!(">{name}\n");
        w.write_all(line.as_bytes())?;
        self.written += line.len() as u64;
        self.col = 0;
        Ok(())
    }

    fn bases(&mut self, w: &mut impl Write, mut bases: &[u8]) -> std::io::Result<()> {
        while !bases.is_empty() {
            let n = (LINE_BASES - self.col).min(bases.len());
            w.write_all(&bases[..n])?;
            self.col += n;
            self.written += n as u64;
            bases = &bases[n..];
            if self.col == LINE_BASES {
                w.write_all(b"\n")?;
                self.written += 1;
                self.col = 0;
            }
        }
        Ok(())
    }

    fn end(&mut self, w: &mut impl Write) -> std::io::Result<()> {
        if self.col > 0 {
            w.write_all(b"\n")?;
            self.written += 1;
            self.col = 0;
        }
        Ok(())
    }
}

fn write_gff_gene(w: &mut impl Write, g: &Gene) -> std::io::Result<()> {
    let biotype = g.biotype.as_deref().unwrap_or("protein_coding");
    let tx_type = if biotype == "ncRNA" { "ncRNA" } else { "mRNA" };
    let s = g.strand.as_char();
    let c = &g.chrom;
    writeln!(
        w,
        "{c}\tspliceboost\tgene\t{}\t{}\t.\t{s}\t.\tID={};Name={};gene_biotype={biotype}",
        g.start, g.end, g.id, g.id
    )?;
    for t in &g.transcripts {
        writeln!(
            w,
            "{c}\tspliceboost\t{tx_type}\t{}\t{}\t.\t{s}\t.\tID={};Parent={}",
            t.start(),
            t.end(),
            t.id,
            g.id
        )?;
        for e in &t.exons {
            writeln!(
                w,
                "{c}\tspliceboost\texon\t{}\t{}\t.\t{s}\t.\tParent={}",
                e.start, e.end, t.id
            )?;
        }
    }
    // Closes the gene for the reader at once: it never holds more than one.
    writeln!(w, "###")
}

/// The genome planted gene by gene, in file order, without writing anything.
pub fn planted_genes(
    opts: &SynthGenomeOptions,
) -> Result<impl Iterator<Item = PlantedGene> + '_, InputError> {
    opts.validate()?;
    Ok(Walk::new(opts).filter_map(|p| match p {
        Piece::Gene { planted, .. } => Some(planted),
        _ => None,
    }))
}

/// The genome in file order: a chromosome's header, each gene with the intergenic
/// sequence before it, and the chromosome's tail.
enum Piece {
    Start { name: String },
    Gene { lead_in: Vec<u8>, planted: PlantedGene },
    End { tail: Vec<u8> },
}

struct Walk<'a> {
    opts: &'a SynthGenomeOptions,
    chromosomes: usize,
    chrom: usize,
    gene: usize,
    /// Next 1-based position on the chromosome; 0 before its header.
    pos: u64,
}

impl<'a> Walk<'a> {
    fn new(opts: &'a SynthGenomeOptions) -> Self {
        Self {
            opts,
            chromosomes: opts.chromosome_count(),
            chrom: 0,
            gene: 0,
            pos: 0,
        }
    }

    /// One past the last gene of chromosome `c`: genes are spread evenly, in order.
    fn genes_end(&self, c: usize) -> usize {
        (c + 1) * self.opts.genes / self.chromosomes
    }
}

impl Iterator for Walk<'_> {
    type Item = Piece;

    fn next(&mut self) -> Option<Piece> {
        if self.chrom >= self.chromosomes {
            return None;
        }
        let name = format!("chr{}", self.chrom + 1);
        if self.pos == 0 {
            self.pos = 1;
            return Some(Piece::Start { name });
        }
        if self.gene < self.genes_end(self.chrom) {
            let (lead_in, planted) = draw_gene(self.opts, self.gene, name, self.pos);
            self.pos += lead_in.len() as u64 + planted.gene.len();
            self.gene += 1;
            return Some(Piece::Gene { lead_in, planted });
        }
        let mut rng = Mix::new(self.opts.seed ^ 0xD1B5_4A32_D192_ED03u64.wrapping_mul(self.chrom as u64 + 1));
        let tail = intergenic(&mut rng, self.opts);
        self.chrom += 1;
        self.pos = 0;
        Some(Piece::End { tail })
    }
}

/// SplitMix64: tiny, fast even in debug builds (tests write whole genomes), and fixed here so
/// that a seed's genome does not change with a dependency's version.
struct Mix(u64);

impl Mix {
    fn new(seed: u64) -> Self {
        let mut m = Mix(seed);
        m.next();
        m
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in `lo..=hi`.
    fn range(&mut self, (lo, hi): (u64, u64)) -> u64 {
        lo + ((self.next() as u128 * (hi - lo + 1) as u128) >> 64) as u64
    }

    fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    fn pick(&mut self, of: &[u8]) -> u8 {
        of[self.range((0, of.len() as u64 - 1)) as usize]
    }
}

/// `n` random bases of GC content `gc`, appended.
fn random_bases(rng: &mut Mix, gc: f64, n: usize, out: &mut Vec<u8>) {
    let cut = (gc * 32768.0) as u64;
    let mut left = 0;
    let mut bits = 0u64;
    for _ in 0..n {
        if left == 0 {
            bits = rng.next();
            left = 4;
        }
        let r = bits & 0xFFFF;
        bits >>= 16;
        left -= 1;
        let strong = (r & 0x7FFF) < cut;
        out.push(match (strong, r >> 15) {
            (true, 0) => b'G',
            (true, _) => b'C',
            (false, 0) => b'A',
            (false, _) => b'T',
        });
    }
}

const PYRIMIDINES: &[u8] = b"CTTCT";

/// Writes `s` at `at`, dropping what falls outside `seq`.
fn put(seq: &mut [u8], at: usize, s: &[u8]) {
    for (i, &b) in s.iter().enumerate() {
        if let Some(x) = seq.get_mut(at + i) {
            *x = b;
        }
    }
}

/// A donor consensus `MAG|GTRAGT` whose intron starts at `at` (`at >= 3`): all of it when
/// `strong`, else the GT and, per other base, the consensus or not at 35 / 65 %.
fn plant_donor(seq: &mut [u8], at: usize, strong: bool, rng: &mut Mix) {
    let consensus: [&[u8]; 9] = [b"AC", b"A", b"G", b"G", b"T", b"AG", b"A", b"G", b"T"];
    for (k, allowed) in consensus.iter().enumerate() {
        let p = at + k - 3;
        let must = k == 3 || k == 4;
        let b = if must || strong || rng.chance(0.35) {
            rng.pick(allowed)
        } else {
            let others: Vec<u8> = b"ACGT".iter().copied().filter(|b| !allowed.contains(b)).collect();
            rng.pick(&others)
        };
        put(seq, p, &[b]);
    }
}

/// An acceptor `Y(20)..YAG|G` whose exon starts at `at` (`at >= 23`): a polypyrimidine
/// tract (90 % pyrimidines when `strong`, 60 % when weak), `CAG`/`TAG`, and a G as the exon's
/// first base; weak ones keep only the AG for sure.
fn plant_acceptor(seq: &mut [u8], at: usize, strong: bool, rng: &mut Mix) {
    let tract = if strong { 0.9 } else { 0.6 };
    for p in at - 23..at - 3 {
        if rng.chance(tract) {
            let b = rng.pick(PYRIMIDINES);
            put(seq, p, &[b]);
        }
    }
    let before = if strong || rng.chance(0.35) {
        rng.pick(b"CCT")
    } else {
        rng.pick(b"AG")
    };
    put(seq, at - 3, &[before, b'A', b'G']);
    if strong || rng.chance(0.35) {
        put(seq, at, b"G");
    }
}

/// Decoy motifs in `seq[lo..hi)` (oriented): one per `decoy_spacing` bases on average,
/// donor- or acceptor-like, with the full consensus at `strong_decoy_fraction`.
fn plant_decoys(seq: &mut [u8], lo: usize, hi: usize, opts: &SynthGenomeOptions, rng: &mut Mix) {
    // A decoy spans at most 24 bases: 23 before its boundary, 1 after (acceptor) or 3
    // before and 6 after (donor).
    if hi < lo + 30 {
        return;
    }
    let room = (hi - lo) as u64;
    let mut n = room / opts.decoy_spacing;
    if rng.chance((room % opts.decoy_spacing) as f64 / opts.decoy_spacing as f64) {
        n += 1;
    }
    for _ in 0..n {
        let at = lo + 23 + rng.range((0, room - 30)) as usize;
        let strong = rng.chance(opts.strong_decoy_fraction);
        if rng.chance(0.5) {
            plant_donor(seq, at, strong, rng);
        } else {
            plant_acceptor(seq, at, strong, rng);
        }
    }
}

/// Intergenic sequence with decoys, all in one random orientation.
fn intergenic(rng: &mut Mix, opts: &SynthGenomeOptions) -> Vec<u8> {
    let n = rng.range(opts.intergenic_len) as usize;
    let mut seq = Vec::with_capacity(n);
    random_bases(rng, opts.gc, n, &mut seq);
    plant_decoys(&mut seq, 0, n, opts, rng);
    if rng.chance(0.5) {
        reverse_complement(&mut seq);
    }
    seq
}

fn gene_rng(seed: u64, g: usize) -> Mix {
    Mix::new(seed ^ (g as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

/// Gene `g` (0-based) with the intergenic sequence before it, the sequence starting at
/// `pos` on chromosome `chrom`.
fn draw_gene(opts: &SynthGenomeOptions, g: usize, chrom: String, pos: u64) -> (Vec<u8>, PlantedGene) {
    let mut rng = gene_rng(opts.seed, g);
    let lead_in = intergenic(&mut rng, opts);
    let strand = if rng.chance(0.5) {
        Strand::Plus
    } else {
        Strand::Minus
    };
    let biotype = if rng.chance(opts.ncrna_fraction) {
        "ncRNA"
    } else {
        "protein_coding"
    };
    let exon_gc = (opts.gc + 0.08).min(0.95);
    let id = format!("SG{:06}", g + 1);
    // Built 5' to 3' in transcription order; exons as [from, to) offsets into it.
    let mut seq = vec![];
    let mut exons: Vec<(usize, usize)> = vec![];
    if rng.chance(opts.single_exon_fraction) {
        let n = rng.range(opts.single_exon_len) as usize;
        random_bases(&mut rng, exon_gc, n, &mut seq);
        exons.push((0, n));
    } else {
        let n = rng.range((opts.exons.0 as u64, opts.exons.1 as u64)) as usize;
        let (lo, hi) = (opts.intron_len.0 as f64, opts.intron_len.1 as f64 + 1.0);
        for e in 0..n {
            if e > 0 {
                let len = (lo * (hi / lo).powf(rng.unit())).floor().min(hi - 1.0) as usize;
                let at = seq.len();
                random_bases(&mut rng, opts.gc, len, &mut seq);
                plant_decoys(&mut seq, at + 10, at + len - 24, opts, &mut rng);
            }
            let len = rng.range(opts.exon_len) as usize;
            let at = seq.len();
            random_bases(&mut rng, exon_gc, len, &mut seq);
            exons.push((at, at + len));
        }
        // The true sites last, so that no decoy overwrites them.
        for w in exons.windows(2) {
            let strong = !rng.chance(opts.weak_site_fraction);
            plant_donor(&mut seq, w[0].1, strong, &mut rng);
            let strong = !rng.chance(opts.weak_site_fraction);
            plant_acceptor(&mut seq, w[1].0, strong, &mut rng);
        }
    }
    let len = seq.len() as u64;
    let (start, end) = (pos + lead_in.len() as u64, pos + lead_in.len() as u64 + len - 1);
    let genomic = |&(from, to): &(usize, usize)| match strand {
        Strand::Plus => Exon {
            start: start + from as u64,
            end: start + to as u64 - 1,
        },
        Strand::Minus => Exon {
            start: end + 1 - to as u64,
            end: end - from as u64,
        },
    };
    let mut all: Vec<Exon> = exons.iter().map(genomic).collect();
    all.sort_unstable();
    let mut transcripts = vec![Transcript {
        id: format!("{id}.1"),
        exons: all.clone(),
        line: 0,
    }];
    if exons.len() >= 3 && rng.chance(opts.alternative_fraction) {
        let skip = rng.range((1, exons.len() as u64 - 2)) as usize;
        let skipped = genomic(&exons[skip]);
        transcripts.push(Transcript {
            id: format!("{id}.2"),
            exons: all.iter().copied().filter(|e| *e != skipped).collect(),
            line: 0,
        });
    }
    if strand == Strand::Minus {
        reverse_complement(&mut seq);
    }
    let gene = Gene {
        name: Some(id.clone()),
        id,
        biotype: Some(biotype.into()),
        chrom,
        strand,
        start,
        end,
        transcripts,
        line: 0,
    };
    let planted = PlantedGene {
        index: g,
        gene,
        forward: seq,
    };
    (lead_in, planted)
}

/// How well the bases around oriented offset `i` match a donor whose exonic base is `i`
/// (`MAG|GTRAGT`), in [0, 1]; 0 without the GT at `i + 1`, `i + 2`.
///
/// `oriented` is read 5' to 3' in transcription order; bases outside it and codes other than
/// A, C, G, T (either case) match nothing.
pub fn donor_motif_strength(oriented: &[u8], i: usize) -> f32 {
    let at = |k: isize| -> u8 {
        let p = i as isize + k;
        if p < 0 {
            return b'N';
        }
        oriented.get(p as usize).map_or(b'N', u8::to_ascii_uppercase)
    };
    if at(1) != b'G' || at(2) != b'T' {
        return 0.0;
    }
    // Weights roughly as informative as the positions of real donors' logos.
    let mut s = 0.0;
    if matches!(at(-2), b'A' | b'C') {
        s += 0.5;
    }
    if at(-1) == b'A' {
        s += 0.5;
    }
    if at(0) == b'G' {
        s += 1.0;
    }
    if matches!(at(3), b'A' | b'G') {
        s += 1.0;
    }
    if at(4) == b'A' {
        s += 1.0;
    }
    if at(5) == b'G' {
        s += 1.5;
    }
    if at(6) == b'T' {
        s += 0.5;
    }
    s / 6.0
}

/// How well the bases around oriented offset `i` match an acceptor whose exonic base is `i`
/// (a polypyrimidine tract, `YAG|G`), in [0, 1]; 0 without the AG at `i - 2`, `i - 1`.
/// Read as [`donor_motif_strength`] reads.
pub fn acceptor_motif_strength(oriented: &[u8], i: usize) -> f32 {
    let at = |k: isize| -> u8 {
        let p = i as isize + k;
        if p < 0 {
            return b'N';
        }
        oriented.get(p as usize).map_or(b'N', u8::to_ascii_uppercase)
    };
    if at(-2) != b'A' || at(-1) != b'G' {
        return 0.0;
    }
    let mut s = match at(-3) {
        b'C' => 1.0,
        b'T' => 0.7,
        _ => 0.0,
    };
    let pyr = (-20..=-4).filter(|&k| matches!(at(k), b'C' | b'T')).count() as f32 / 17.0;
    s += 3.0 * ((pyr - 0.5) / 0.4).clamp(0.0, 1.0);
    if at(0) == b'G' {
        s += 1.0;
    }
    s / 5.0
}

/// Scores are multiples of `1 / QUANTUM_INV`.
const QUANTUM_INV: f32 = 65536.0;

/// One track's raw score at a position: a true site (`site`), or not, with motif
/// strength `m`.
fn raw_score(rng: &mut Mix, site: bool, m: f32) -> f32 {
    let (u, v) = (rng.unit(), rng.unit());
    let m = m as f64;
    let s = if site {
        // Strong motifs are found 95 % of the time, weak ones about half.
        if u < (0.3 + 0.65 * m).clamp(0.05, 0.97) {
            1.0 - 0.5 * v * v
        } else {
            0.02 + 0.43 * v * v
        }
    } else if m > 0.0 {
        // Only decoys close to the consensus fire, up to 60 % of the time.
        if u < ((m - 0.65) * 1.7).clamp(0.0, 0.6) {
            0.3 + 0.6 * v
        } else {
            0.001 + 0.08 * m * v * v * v
        }
    } else {
        // Background: beta-like, near 0.
        0.02 * (v * v) * (v * v)
    };
    s as f32
}

/// The scores of a noisy base model at every position of `gene`: one row per genomic
/// position `gene.start..=gene.end` in that order, `[donor, acceptor, neither]` for the
/// gene's own strand, `neither = 1 - donor - acceptor`, all in [0, 1].
///
/// `forward` is the gene's sequence `start..=end` on the **forward** strand, as
/// [`crate::genome::Fasta::fetch`] returns it (either case); the model reverse-complements
/// it on the minus strand. Bases past the end of a short slice read as `N`.
///
/// The model knows the annotation and errs according to the sequence: a true site scores
/// above 0.5 with a probability rising from 0.3 to 0.95 with the strength of its motif
/// ([`donor_motif_strength`], [`acceptor_motif_strength`]), otherwise 0.02-0.45; a non-site
/// with a GT (donor) or AG (acceptor) scores 0.3-0.9 up to 60 % of the time once its motif
/// is strong, and a little above background otherwise; every other position is near 0.
/// The neighbours of a score of 0.3 or more get 5-30 % of it (±1) and 1-10 % (±2).
/// Seeded by `seed` and the gene id: the same for a gene wherever it is and whatever
/// precedes it.
pub fn noisy_base_scores(gene: &Gene, forward: &[u8], seed: u64) -> Vec<[f32; 3]> {
    let len = gene.len() as usize;
    let mut oriented: Vec<u8> = (0..len)
        .map(|j| forward.get(j).map_or(b'N', u8::to_ascii_uppercase))
        .collect();
    if gene.strand == Strand::Minus {
        reverse_complement(&mut oriented);
    }
    // Per oriented offset: bit 0 a true donor, bit 1 a true acceptor.
    let mut truth = vec![0u8; len];
    for s in gene.sites() {
        if let Some(o) = gene.offset(s.position) {
            truth[o as usize] |= match s.kind {
                SiteKind::Donor => 1,
                SiteKind::Acceptor => 2,
            };
        }
    }
    let mut rng = Mix::new(seed ^ fnv1a(gene.id.as_bytes()));
    let mut raw: Vec<[f32; 2]> = (0..len)
        .map(|i| {
            [
                raw_score(&mut rng, truth[i] & 1 != 0, donor_motif_strength(&oriented, i)),
                raw_score(&mut rng, truth[i] & 2 != 0, acceptor_motif_strength(&oriented, i)),
            ]
        })
        .collect();
    drop(truth);
    drop(oriented);
    // Echoes: SpliceAI's peaks have shoulders. Taken from the peaks as drawn, not from
    // other echoes.
    let peaks: Vec<(usize, usize, f32)> = raw
        .iter()
        .enumerate()
        .flat_map(|(i, r)| (0..2).filter(|&t| r[t] >= 0.3).map(move |t| (i, t, r[t])))
        .collect();
    for (i, t, s) in peaks {
        for (d, lo, width) in [(1usize, 0.05, 0.25), (2, 0.01, 0.09)] {
            for j in [i.checked_sub(d), Some(i + d).filter(|&j| j < len)]
                .into_iter()
                .flatten()
            {
                let echo = s * (lo + width * rng.unit()) as f32;
                raw[j][t] = raw[j][t].max(echo);
            }
        }
    }
    let row = |r: [f32; 2]| {
        let (mut d, mut a) = (r[0].clamp(0.0, 1.0), r[1].clamp(0.0, 1.0));
        if d + a > 1.0 {
            let total = d + a;
            d /= total;
            a /= total;
        }
        // Multiples of 2^-16, as a network's outputs stored at 16 bits: f32 holds them and
        // their sums exactly, so `neither` is exactly 1 - donor - acceptor, and the scores
        // compress to a third of their size. Never 0, as no network's softmax is.
        let q = |x: f32| (x * QUANTUM_INV).round().max(1.0) / QUANTUM_INV;
        let (d, mut a) = (q(d), q(a));
        if d + a > 1.0 {
            a = 1.0 - d;
        }
        [d, a, 1.0 - d - a]
    };
    match gene.strand {
        Strand::Plus => raw.into_iter().map(row).collect(),
        Strand::Minus => raw.into_iter().rev().map(row).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gene(strand: Strand, start: u64, exons: &[(u64, u64)]) -> Gene {
        let exons: Vec<Exon> = exons.iter().map(|&(s, e)| Exon { start: s, end: e }).collect();
        Gene {
            id: "G1".into(),
            name: None,
            biotype: None,
            chrom: "c".into(),
            strand,
            start,
            end: exons.last().unwrap().end,
            transcripts: vec![Transcript {
                id: "T1".into(),
                exons,
                line: 0,
            }],
            line: 0,
        }
    }

    #[test]
    fn motif_strengths_read_the_consensus_at_the_exonic_base() {
        // CAG|GTAAGT: the donor is the G before GT, offset 2.
        assert_eq!(donor_motif_strength(b"CAGGTAAGT", 2), 1.0);
        assert_eq!(donor_motif_strength(b"cagGTaagt", 2), 1.0);
        assert_eq!(donor_motif_strength(b"CAGGTAAGT", 3), 0.0);
        assert!(donor_motif_strength(b"TTTGTCCCC", 2) < 0.2);
        // The sequence's edges read as N.
        assert!(donor_motif_strength(b"GGT", 0) > 0.0);
        assert_eq!(donor_motif_strength(b"GG", 0), 0.0);
        // 17 pyrimidines, CAG|G: the acceptor is the G after AG, offset 20.
        let acc = b"TTCTTCTTCCTTTCTTTCAGG";
        assert_eq!(acc.len(), 21);
        assert_eq!(acceptor_motif_strength(acc, 20), 1.0);
        assert_eq!(acceptor_motif_strength(acc, 19), 0.0);
        assert!(acceptor_motif_strength(b"GAGAGGAGAGAGGAGAAAGA", 19) < 0.1);
        assert_eq!(acceptor_motif_strength(b"AG", 1), 0.0);
    }

    #[test]
    fn planted_motifs_score_as_planted() {
        let mut rng = Mix::new(1);
        let mut weak = 0.0;
        for _ in 0..200 {
            let mut seq = vec![b'A'; 60];
            plant_donor(&mut seq, 30, true, &mut rng);
            assert_eq!(donor_motif_strength(&seq, 29), 1.0);
            plant_donor(&mut seq, 30, false, &mut rng);
            weak += donor_motif_strength(&seq, 29) / 200.0;
            assert_eq!(&seq[30..32], b"GT");
        }
        assert!(weak > 0.15 && weak < 0.6, "{weak}");
        let (mut strong, mut weak) = (0.0, 0.0);
        for _ in 0..200 {
            let mut seq = vec![b'G'; 60];
            plant_acceptor(&mut seq, 40, true, &mut rng);
            strong += acceptor_motif_strength(&seq, 40) / 200.0;
            assert_eq!(&seq[38..40], b"AG");
            let mut seq = vec![b'G'; 60];
            plant_acceptor(&mut seq, 40, false, &mut rng);
            weak += acceptor_motif_strength(&seq, 40) / 200.0;
        }
        assert!(strong > 0.85, "{strong}");
        assert!(weak > 0.1 && weak < 0.6, "{weak}");
    }

    #[test]
    fn noisy_scores_are_probabilities_in_genomic_order_and_seeded_by_gene() {
        // Plus: exons 1-10, 20-30; the intron 11-19 starts GT, ends AG.
        let mut fwd = vec![b'C'; 30];
        fwd[10..12].copy_from_slice(b"GT");
        fwd[17..19].copy_from_slice(b"AG");
        let g = gene(Strand::Plus, 1, &[(1, 10), (20, 30)]);
        let s = noisy_base_scores(&g, &fwd, 7);
        assert_eq!(s.len(), 30);
        for r in &s {
            assert!(r.iter().all(|v| (0.0..=1.0).contains(v)), "{r:?}");
            assert!((r[0] + r[1] + r[2] - 1.0).abs() < 1e-6, "{r:?}");
        }
        assert_eq!(s, noisy_base_scores(&g, &fwd, 7));
        assert_ne!(s, noisy_base_scores(&g, &fwd, 8));
        // The same gene elsewhere, on the minus strand with the reverse complement, gets the
        // same scores in reverse genomic order.
        let mut rev = fwd.clone();
        reverse_complement(&mut rev);
        let m = gene(Strand::Minus, 101, &[(101, 111), (121, 130)]);
        let sm = noisy_base_scores(&m, &rev, 7);
        let back: Vec<[f32; 3]> = sm.into_iter().rev().collect();
        assert_eq!(back, s);
        // A short slice reads as N past its end and does not panic.
        assert_eq!(noisy_base_scores(&g, &fwd[..5], 7).len(), 30);
    }

    #[test]
    fn options_are_checked_in_one_line() {
        let ok = SynthGenomeOptions::new(10, 1);
        assert!(ok.validate().is_ok());
        assert_eq!(ok.chromosome_count(), 1);
        assert_eq!(SynthGenomeOptions::new(4001, 1).chromosome_count(), 3);
        for bad in [
            SynthGenomeOptions::new(0, 1),
            SynthGenomeOptions {
                chromosomes: Some(11),
                ..ok.clone()
            },
            SynthGenomeOptions {
                intron_len: (30, 100),
                ..ok.clone()
            },
            SynthGenomeOptions {
                exon_len: (300, 80),
                ..ok.clone()
            },
            SynthGenomeOptions {
                gc: 1.5,
                ..ok.clone()
            },
        ] {
            let e = bad.validate().unwrap_err().to_string();
            assert!(!e.contains('\n'), "{e}");
        }
    }

    #[test]
    fn fasta_lines_are_60_bases_and_the_offsets_count_them() {
        let mut out = vec![];
        let mut f = FastaOut { written: 0, col: 0 };
        f.header(&mut out, "c").unwrap();
        f.bases(&mut out, &[b'A'; 50]).unwrap();
        f.bases(&mut out, &[b'C'; 70]).unwrap();
        f.end(&mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert_eq!(lines[1].len(), 60);
        assert_eq!(lines[2].len(), 60);
        assert_eq!(f.written as usize, text.len());
    }

    #[test]
    fn planted_genes_are_as_the_options_say() {
        let opts = SynthGenomeOptions::new(300, 3);
        let genes: Vec<PlantedGene> = planted_genes(&opts).unwrap().collect();
        assert_eq!(genes.len(), 300);
        let mut strands = [0; 2];
        let mut total = 0;
        for p in &genes {
            let g = &p.gene;
            assert_eq!(p.forward.len() as u64, g.len());
            strands[(g.strand == Strand::Minus) as usize] += 1;
            total += g.len();
            let n = g.transcripts[0].exons.len();
            assert!(n == 1 || (3..=8).contains(&n), "{n}");
            for e in &g.transcripts[0].exons {
                assert!(n == 1 || (80..=300).contains(&(e.end + 1 - e.start)));
            }
        }
        assert!(strands[0] > 100 && strands[1] > 100, "{strands:?}");
        let mean = total / 300;
        assert!((2500..4000).contains(&mean), "mean gene length {mean}");
        assert!(genes.iter().any(|p| p.gene.transcripts.len() == 2));
        assert!(genes.iter().any(|p| !p.gene.has_sites()));
        assert!(genes.iter().any(|p| p.gene.biotype.as_deref() == Some("ncRNA")));
    }
}
