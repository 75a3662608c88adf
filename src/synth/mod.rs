//! Synthetic datasets in MetaSpliceAI's layout, at any size, for tests and benchmarks.
//!
//! Each gene draws its rows from its own seeded generator, so a dataset is the same for the
//! same seed whatever the thread count, and files are written in parallel under the synth
//! budget. The data carry a signal the base scores miss: true sites hold splice motifs in
//! their sequence window (seen by the k-mer counts) whether or not the base model found
//! them, and the base model's false positives do not — the job a meta-model is for.
//!
//! [`genome`] writes the inputs of the dataset builder instead: a synthetic genome's FASTA,
//! its GFF3 annotation and a noisy base model's per-nucleotide scores.

pub mod genome;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use arrow::array::{ArrayRef, BooleanArray, Float64Array, Int64Array, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::InputError;
use crate::features::{derive, ScoreWindow, DERIVED_COLUMNS};
use crate::io::kmers::{count_kmers, kmer_names};
use crate::memory::MemoryReservation;

/// Half-width of the sequence window around each position, as in the original (±250 nt).
pub const WINDOW: usize = 250;

/// Settings for `run` to write a synthetic dataset where `dataset.path` has none.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SynthConfig {
    pub genes: usize,
    #[serde(default = "default_rows_per_gene")]
    pub rows_per_gene: usize,
    /// k-mer length of the count columns (0 for none).
    #[serde(default = "default_k")]
    pub kmer: usize,
    #[serde(default = "default_genes_per_file")]
    pub genes_per_file: usize,
    /// Defaults to `run.seed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
}

pub fn default_rows_per_gene() -> usize {
    250
}
pub fn default_k() -> usize {
    3
}
pub fn default_genes_per_file() -> usize {
    100
}

/// What to generate.
#[derive(Debug, Clone)]
pub struct SynthOptions {
    pub genes: usize,
    pub rows_per_gene: usize,
    /// k-mer length of the count columns; 0 for none.
    pub kmer: usize,
    pub genes_per_file: usize,
    pub seed: u64,
    /// Also write the `sequence` column (501 nt per row).
    pub with_sequence: bool,
}

impl Default for SynthOptions {
    fn default() -> Self {
        Self {
            genes: 100,
            rows_per_gene: default_rows_per_gene(),
            kmer: default_k(),
            genes_per_file: default_genes_per_file(),
            seed: 42,
            with_sequence: false,
        }
    }
}

/// What was written.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SynthSummary {
    pub path: PathBuf,
    pub files: usize,
    pub genes: usize,
    pub rows: u64,
    pub bytes: u64,
    pub columns: usize,
}

const STRUCT_INT: [&str; 13] = [
    "gene_start",
    "gene_end",
    "gene_length",
    "tx_start",
    "tx_end",
    "transcript_length",
    "num_exons",
    "total_exon_length",
    "total_intron_length",
    "n_splice_sites",
    "num_overlaps",
    "distance_to_start",
    "distance_to_end",
];
const STRUCT_FLOAT: [&str; 2] = ["avg_exon_length", "median_exon_length"];

/// The schema of a synthetic dataset.
pub fn schema(opts: &SynthOptions) -> SchemaRef {
    let s = |n: &str| Field::new(n, DataType::Utf8, false);
    let sn = |n: &str| Field::new(n, DataType::Utf8, true);
    let i = |n: &str, null| Field::new(n, DataType::Int64, null);
    let f = |n: &str, null| Field::new(n, DataType::Float64, null);
    let mut fields = vec![
        s("gene_id"),
        s("transcript_id"),
        s("gene_name"),
        s("gene_type"),
        s("chrom"),
        s("strand"),
        i("position", false),
        i("absolute_position", false),
        i("window_start", false),
        i("window_end", false),
        i("transcript_count", false),
        sn("splice_type"),
        s("pred_type"),
        i("true_position", true),
        i("predicted_position", true),
        f("score", false),
        f("donor_score", false),
        f("acceptor_score", false),
        f("neither_score", false),
    ];
    fields.extend(DERIVED_COLUMNS.iter().map(|n| f(n, false)));
    if opts.kmer > 0 {
        fields.extend(kmer_names(opts.kmer).iter().map(|n| i(n, false)));
    }
    let tx_nullable = |n: &str| !matches!(n, "gene_start" | "gene_end" | "gene_length" | "num_overlaps");
    fields.extend(STRUCT_INT.iter().map(|n| i(n, tx_nullable(n))));
    fields.extend(STRUCT_FLOAT.iter().map(|n| f(n, true)));
    fields.push(Field::new("has_tx_info", DataType::Boolean, false));
    fields.push(Field::new("has_gene_info", DataType::Boolean, false));
    fields.push(i("missing_transcript_feats", false));
    fields.push(f("gc_content", false));
    fields.push(i("sequence_length", false));
    fields.push(f("sequence_complexity", false));
    if opts.with_sequence {
        fields.push(s("sequence"));
    }
    Arc::new(Schema::new(fields))
}

/// Genes built into one record batch before it goes to the writer.
const CHUNK_GENES: usize = 8;

/// Heap bytes one worker holds while it builds and writes a file of `rows` rows.
fn worker_bytes(opts: &SynthOptions, rows: usize) -> u64 {
    let cols = schema(opts).fields().len() as u64;
    let seq = if opts.with_sequence {
        2 * (2 * WINDOW as u64 + 1)
    } else {
        0
    };
    let chunk_rows = (CHUNK_GENES * opts.rows_per_gene).min(rows) as u64;
    // A chunk's column vectors and the arrays built from them (strings are copied), the
    // writer's open pages (one per column), and, until the file closes, the row group's
    // compressed pages and the dictionary encoders' state: together 14 bytes a value at
    // most, measured at 10k genes (72 MiB per worker for 25,000 rows × 144 columns).
    chunk_rows * (cols * 8 * 4 + 256 + seq) + cols * (64 << 10) + rows as u64 * (cols * 14 + seq) + (8 << 20)
}

/// Writes a dataset to `out` (`out/master/batch_NNNNN.parquet` plus `gene_manifest.csv`).
///
/// Everything is written under a temporary directory beside `out` and renamed into place at
/// the end, so a failed run leaves no partial dataset. `out` must not exist yet.
pub fn write_dataset(
    out: &Path,
    opts: &SynthOptions,
    res: &mut MemoryReservation,
) -> anyhow::Result<SynthSummary> {
    if out.exists() {
        return Err(
            InputError::new("already exists; synth never overwrites a dataset")
                .file(out)
                .hint("remove it or choose another --out")
                .into(),
        );
    }
    if opts.genes == 0 || opts.rows_per_gene == 0 || opts.genes_per_file == 0 || opts.kmer > 8 {
        return Err(InputError::new(
            "synth needs genes, rows per gene and genes per file above 0, and k ≤ 8",
        )
        .into());
    }
    let rows_per_file = opts.rows_per_gene * opts.genes_per_file;
    let per_worker = worker_bytes(opts, rows_per_file);
    res.require(
        per_worker,
        format!(
            "one file of {} genes × {} rows",
            opts.genes_per_file, opts.rows_per_gene
        ),
    )?;
    let workers = (res.available() / per_worker).clamp(1, rayon::current_num_threads() as u64) as usize;
    res.try_grow(per_worker * workers as u64)?;

    let parent = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
    let tmp = tempfile::Builder::new()
        .prefix(".synth-")
        .tempdir_in(parent)
        .with_context(|| format!("cannot create a temporary directory in {}", parent.display()))?;
    let master = tmp.path().join("master");
    std::fs::create_dir_all(&master)?;

    let schema = schema(opts);
    let n_files = opts.genes.div_ceil(opts.genes_per_file);
    let pool = rayon::ThreadPoolBuilder::new().num_threads(workers).build()?;
    let manifests: Vec<anyhow::Result<(u64, Vec<GeneRecord>)>> = pool.install(|| {
        (0..n_files)
            .into_par_iter()
            .map(|fi| {
                let g0 = fi * opts.genes_per_file;
                let g1 = (g0 + opts.genes_per_file).min(opts.genes);
                let name = format!("batch_{:05}.parquet", fi + 1);
                let path = master.join(&name);
                // The writer's default encodings (dictionary first), as pyarrow and Polars
                // write: files that read about twice as fast as plain-encoded ones.
                let props = WriterProperties::builder()
                    .set_compression(Compression::ZSTD(ZstdLevel::try_new(1)?))
                    .set_max_row_group_row_count(Some(rows_per_file));
                let file = std::fs::File::create(&path)
                    .with_context(|| format!("cannot create {}", path.display()))?;
                let mut w = ArrowWriter::try_new(file, schema.clone(), Some(props.build()))?;
                let mut genes = Vec::with_capacity(g1 - g0);
                // One row group per file, built a few genes at a time: the writer keeps the
                // compressed pages, never the whole file's columns.
                for c0 in (g0..g1).step_by(CHUNK_GENES) {
                    let (batch, chunk) = build_chunk(opts, &schema, c0..(c0 + CHUNK_GENES).min(g1), &name)?;
                    w.write(&batch)?;
                    genes.extend(chunk);
                }
                w.close()?;
                Ok((std::fs::metadata(&path)?.len(), genes))
            })
            .collect()
    });
    let mut bytes = 0;
    let mut genes = Vec::with_capacity(opts.genes);
    for m in manifests {
        let (b, g) = m?;
        bytes += b;
        genes.extend(g);
    }
    write_manifest(&master.join("gene_manifest.csv"), &genes)?;
    let tmp_path = tmp.keep();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&tmp_path, std::fs::Permissions::from_mode(0o755)).ok();
    }
    std::fs::rename(&tmp_path, out)
        .with_context(|| format!("cannot move the dataset to {}", out.display()))?;
    res.free();
    Ok(SynthSummary {
        path: out.to_path_buf(),
        files: n_files,
        genes: opts.genes,
        rows: (opts.genes * opts.rows_per_gene) as u64,
        bytes,
        columns: schema.fields().len(),
    })
}

#[derive(Debug, Clone)]
struct GeneRecord {
    gene_id: String,
    gene_name: String,
    gene_type: &'static str,
    chrom: String,
    strand: char,
    start: i64,
    end: i64,
    donors: usize,
    acceptors: usize,
    file: String,
}

fn write_manifest(path: &Path, genes: &[GeneRecord]) -> anyhow::Result<()> {
    crate::io::write_table(
        path,
        b',',
        &[
            "gene_id",
            "gene_name",
            "gene_type",
            "chrom",
            "strand",
            "gene_length",
            "start",
            "end",
            "n_donor",
            "n_acceptor",
            "file",
        ],
        genes.iter().map(|g| {
            [
                g.gene_id.to_string(),
                g.gene_name.to_string(),
                g.gene_type.to_string(),
                g.chrom.to_string(),
                g.strand.to_string(),
                (g.end - g.start + 1).to_string(),
                g.start.to_string(),
                g.end.to_string(),
                g.donors.to_string(),
                g.acceptors.to_string(),
                g.file.to_string(),
            ]
        }),
    )
}

/// Per-row columns while a file is being built.
#[derive(Default)]
struct Cols {
    s: Vec<Vec<String>>,
    splice_type: Vec<Option<&'static str>>,
    meta_i: Vec<Vec<i64>>,
    true_pos: Vec<Option<i64>>,
    pred_pos: Vec<Option<i64>>,
    f: Vec<Vec<f64>>,
    kmers: Vec<Vec<i64>>,
    struct_i: Vec<Vec<Option<i64>>>,
    struct_f: Vec<Vec<Option<f64>>>,
    has_tx: Vec<bool>,
    missing_tx: Vec<i64>,
    seq_f: Vec<Vec<f64>>,
    seq_len: Vec<i64>,
    seq: Vec<String>,
}

/// `n` empty columns, each with room for `rows` values.
fn columns<T>(n: usize, rows: usize) -> Vec<Vec<T>> {
    (0..n).map(|_| Vec::with_capacity(rows)).collect()
}

fn gene_rng(seed: u64, gene: usize) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed ^ (gene as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

fn build_chunk(
    opts: &SynthOptions,
    schema: &SchemaRef,
    genes: std::ops::Range<usize>,
    file_name: &str,
) -> anyhow::Result<(RecordBatch, Vec<GeneRecord>)> {
    let rows = genes.len() * opts.rows_per_gene;
    let n_k = if opts.kmer > 0 {
        1usize << (2 * opts.kmer)
    } else {
        0
    };
    let mut c = Cols {
        s: columns(7, rows),
        meta_i: columns(5, rows),
        f: columns(4 + DERIVED_COLUMNS.len(), rows),
        kmers: columns(n_k, rows),
        struct_i: columns(STRUCT_INT.len(), rows),
        struct_f: columns(STRUCT_FLOAT.len(), rows),
        seq_f: columns(2, rows),
        ..Default::default()
    };
    let mut records = Vec::with_capacity(genes.len());
    let mut counts = vec![0u32; n_k];
    let mut seq = Vec::with_capacity(2 * WINDOW + 1);
    let mut derived = [0.0; 40];
    for g in genes {
        let mut rng = gene_rng(opts.seed, g);
        let gene = Gene::draw(g, &mut rng);
        let mut positions: Vec<i64> = (0..opts.rows_per_gene)
            .map(|_| rng.random_range(0..gene.length))
            .collect();
        positions.sort_unstable();
        let (mut donors, mut acceptors) = (0, 0);
        for &pos in &positions {
            let row = Row::draw(&mut rng);
            match row.label {
                Some("donor") => donors += 1,
                Some("acceptor") => acceptors += 1,
                _ => {}
            }
            // Identity and coordinates.
            for (col, v) in c.s.iter_mut().zip([
                gene.id.clone(),
                gene.tx_id.clone(),
                gene.name.clone(),
                gene.kind.to_string(),
                gene.chrom.clone(),
                gene.strand.to_string(),
                row.pred_type.to_string(),
            ]) {
                col.push(v);
            }
            let abs = gene.start + pos;
            for (col, v) in
                c.meta_i
                    .iter_mut()
                    .zip([pos, abs, abs - WINDOW as i64, abs + WINDOW as i64, gene.tx_count])
            {
                col.push(v);
            }
            c.splice_type.push(row.label);
            c.true_pos.push(row.label.map(|_| pos));
            c.pred_pos
                .push((row.window.donor.max(row.window.acceptor) >= 0.5).then_some(pos));
            // Scores and the features derived from them.
            derive(&row.window, crate::features::EPS, &mut derived);
            let own = if row.window.own_is_donor {
                row.window.donor
            } else {
                row.window.acceptor
            };
            for (col, v) in c.f.iter_mut().zip(
                [own, row.window.donor, row.window.acceptor, row.window.neither]
                    .into_iter()
                    .chain(derived),
            ) {
                col.push(v);
            }
            // The sequence window, clipped at the gene's ends, and its k-mers.
            let lo = (pos - WINDOW as i64).max(0);
            let hi = (pos + WINDOW as i64).min(gene.length - 1);
            let centre = (pos - lo) as usize;
            draw_sequence(
                &mut rng,
                gene.gc,
                (hi - lo + 1) as usize,
                centre,
                row.motif,
                &mut seq,
            );
            if n_k > 0 {
                counts.fill(0);
                count_kmers(&seq, opts.kmer, &mut counts);
                for (col, &n) in c.kmers.iter_mut().zip(&counts) {
                    col.push(n as i64);
                }
            }
            let gc = seq.iter().filter(|&&b| b == b'G' || b == b'C').count() as f64 / seq.len() as f64;
            c.seq_f[0].push(gc);
            c.seq_f[1].push(complexity(&seq));
            c.seq_len.push(seq.len() as i64);
            if opts.with_sequence {
                c.seq.push(String::from_utf8(seq.clone()).expect("ACGT"));
            }
            // Gene and transcript structure; transcript fields missing where the gene has
            // no transcript record.
            let tx = gene.has_tx;
            let ints = [
                Some(gene.start),
                Some(gene.start + gene.length - 1),
                Some(gene.length),
                tx.then_some(gene.tx_start),
                tx.then_some(gene.tx_end),
                tx.then_some(gene.tx_end - gene.tx_start + 1),
                tx.then_some(gene.exons),
                tx.then_some(gene.exon_total),
                tx.then_some((gene.tx_end - gene.tx_start + 1 - gene.exon_total).max(0)),
                tx.then_some(2 * (gene.exons - 1)),
                Some(gene.overlaps),
                tx.then_some(abs - gene.tx_start),
                tx.then_some(gene.tx_end - abs),
            ];
            for (col, v) in c.struct_i.iter_mut().zip(ints) {
                col.push(v);
            }
            let avg = gene.exon_total as f64 / gene.exons as f64;
            c.struct_f[0].push(tx.then_some(avg));
            c.struct_f[1].push(tx.then_some(avg * gene.median_factor));
            c.has_tx.push(tx);
            c.missing_tx.push(i64::from(!tx));
        }
        records.push(GeneRecord {
            gene_id: gene.id.clone(),
            gene_name: gene.name.clone(),
            gene_type: gene.kind,
            chrom: gene.chrom.clone(),
            strand: gene.strand,
            start: gene.start,
            end: gene.start + gene.length - 1,
            donors,
            acceptors,
            file: file_name.to_string(),
        });
    }
    let mut arrays: Vec<ArrayRef> = vec![];
    let mut s = c.s.into_iter();
    for _ in 0..6 {
        arrays.push(Arc::new(StringArray::from(s.next().expect("7 string columns"))));
    }
    let pred_type = s.next().expect("7 string columns");
    let mut mi = c.meta_i.into_iter();
    for _ in 0..5 {
        arrays.push(Arc::new(Int64Array::from(mi.next().expect("5 int columns"))));
    }
    arrays.push(Arc::new(StringArray::from(c.splice_type)));
    arrays.push(Arc::new(StringArray::from(pred_type)));
    arrays.push(Arc::new(Int64Array::from(c.true_pos)));
    arrays.push(Arc::new(Int64Array::from(c.pred_pos)));
    arrays.extend(
        c.f.into_iter()
            .map(|v| Arc::new(Float64Array::from(v)) as ArrayRef),
    );
    arrays.extend(
        c.kmers
            .into_iter()
            .map(|v| Arc::new(Int64Array::from(v)) as ArrayRef),
    );
    arrays.extend(
        c.struct_i
            .into_iter()
            .map(|v| Arc::new(Int64Array::from(v)) as ArrayRef),
    );
    arrays.extend(
        c.struct_f
            .into_iter()
            .map(|v| Arc::new(Float64Array::from(v)) as ArrayRef),
    );
    arrays.push(Arc::new(BooleanArray::from(c.has_tx)));
    arrays.push(Arc::new(BooleanArray::from(vec![true; rows])));
    arrays.push(Arc::new(Int64Array::from(c.missing_tx)));
    let mut sf = c.seq_f.into_iter();
    arrays.push(Arc::new(Float64Array::from(sf.next().expect("gc"))));
    arrays.push(Arc::new(Int64Array::from(c.seq_len)));
    arrays.push(Arc::new(Float64Array::from(sf.next().expect("complexity"))));
    if opts.with_sequence {
        arrays.push(Arc::new(StringArray::from(c.seq)));
    }
    Ok((RecordBatch::try_new(schema.clone(), arrays)?, records))
}

struct Gene {
    id: String,
    tx_id: String,
    name: String,
    kind: &'static str,
    chrom: String,
    strand: char,
    start: i64,
    length: i64,
    gc: f64,
    has_tx: bool,
    tx_start: i64,
    tx_end: i64,
    tx_count: i64,
    exons: i64,
    exon_total: i64,
    median_factor: f64,
    overlaps: i64,
}

impl Gene {
    fn draw(g: usize, rng: &mut ChaCha8Rng) -> Gene {
        let length = (rng.random_range(2000f64.ln()..200_000f64.ln())).exp() as i64;
        let start = rng.random_range(1_000_000..200_000_000);
        let exons = (2 + (length as f64 / 8000.0 * rng.random_range(0.5..1.5)) as i64).min(60);
        let tx_start = start + rng.random_range(0..(length / 20).max(1));
        let tx_end = start + length - 1 - rng.random_range(0..(length / 20).max(1));
        let chrom_no = rng.random_range(1..=23);
        Gene {
            id: format!("ENSG{:011}", 100_000 + g),
            tx_id: format!("ENST{:011}", 100_000 + g),
            name: format!("SYN{g}"),
            kind: if rng.random_bool(0.85) {
                "protein_coding"
            } else {
                "lncRNA"
            },
            chrom: if chrom_no == 23 {
                "chrX".into()
            } else {
                format!("chr{chrom_no}")
            },
            strand: if rng.random_bool(0.5) { '+' } else { '-' },
            start,
            length,
            gc: rng.random_range(0.35..0.6),
            has_tx: rng.random_bool(0.9),
            tx_start,
            tx_end,
            tx_count: rng.random_range(1..=8),
            exons,
            exon_total: exons * rng.random_range(100..300),
            median_factor: rng.random_range(0.8..1.1),
            overlaps: rng.random_range(0..4),
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Motif {
    None,
    Donor,
    Acceptor,
}

struct Row {
    label: Option<&'static str>,
    pred_type: &'static str,
    window: ScoreWindow,
    motif: Motif,
}

impl Row {
    fn draw(rng: &mut ChaCha8Rng) -> Row {
        let u: f64 = rng.random();
        let label = if u < 0.15 {
            Some("donor")
        } else if u < 0.30 {
            Some("acceptor")
        } else {
            None
        };
        // The base model: finds most true sites, misses some, and fires on a few others.
        let (own_is_donor, s, peak, called) = match label {
            Some(kind) => {
                let hit = rng.random_bool(0.82);
                let s = if hit {
                    rng.random_range(0.5f64..1.0).powf(0.7)
                } else {
                    rng.random_range(0.0f64..0.7).powi(2)
                };
                (kind == "donor", s, true, hit)
            }
            None => {
                let donor_like = rng.random_bool(0.5);
                let v: f64 = rng.random();
                if v < 0.06 {
                    (
                        donor_like,
                        rng.random_range(0.5..0.95),
                        rng.random_bool(0.5),
                        true,
                    )
                } else if v < 0.30 {
                    (
                        donor_like,
                        rng.random_range(0.15..0.5),
                        rng.random_bool(0.3),
                        false,
                    )
                } else {
                    (donor_like, rng.random_range(0.0f64..0.25).powi(2), false, false)
                }
            }
        };
        let other = rng.random_range(0.0f64..0.2).powi(3);
        let (donor, acceptor) = if own_is_donor { (s, other) } else { (other, s) };
        let neither = (1.0 - donor - acceptor).max(0.0);
        let mut ctx = |peaked: bool, s: f64| -> [f64; 4] {
            let near = if peaked { 0.0..0.35 } else { 0.2..1.2 };
            let far = if peaked { 0.0..0.2 } else { 0.1..1.0 };
            [
                (s * rng.random_range(far.clone())).min(1.0),
                (s * rng.random_range(near.clone())).min(1.0),
                (s * rng.random_range(near)).min(1.0),
                (s * rng.random_range(far)).min(1.0),
            ]
        };
        let own_ctx = ctx(peak, s);
        let other_ctx = ctx(false, other);
        let (donor_ctx, acceptor_ctx) = if own_is_donor {
            (own_ctx, other_ctx)
        } else {
            (other_ctx, own_ctx)
        };
        // The sequence: true sites carry their motif whatever the base model said; a few
        // other positions carry a decoy.
        let motif = match label {
            Some(kind) if rng.random_bool(0.9) => {
                if kind == "donor" {
                    Motif::Donor
                } else {
                    Motif::Acceptor
                }
            }
            Some(_) => Motif::None,
            None => match rng.random_range(0..20) {
                0 => Motif::Donor,
                1 => Motif::Acceptor,
                _ => Motif::None,
            },
        };
        let pred_type = match (label.is_some(), called) {
            (true, true) => "TP",
            (true, false) => "FN",
            (false, true) => "FP",
            (false, false) => "TN",
        };
        Row {
            label,
            pred_type,
            window: ScoreWindow {
                donor,
                acceptor,
                neither,
                donor_ctx,
                acceptor_ctx,
                own_is_donor,
            },
            motif,
        }
    }
}

fn draw_sequence(rng: &mut ChaCha8Rng, gc: f64, len: usize, centre: usize, motif: Motif, out: &mut Vec<u8>) {
    out.clear();
    let gc_cut = (gc * 65536.0) as u32;
    let mut bits = 0u64;
    let mut left = 0;
    for _ in 0..len {
        if left == 0 {
            bits = rng.random();
            left = 3;
        }
        let r = bits as u32 & 0xFFFF;
        let pick = (bits >> 16) & 1;
        bits >>= 21;
        left -= 1;
        out.push(match (r < gc_cut, pick) {
            (true, 0) => b'G',
            (true, _) => b'C',
            (false, 0) => b'A',
            (false, _) => b'T',
        });
    }
    let put = |at: isize, s: &[u8], out: &mut Vec<u8>| {
        for (i, &b) in s.iter().enumerate() {
            let p = at + i as isize;
            if p >= 0 && (p as usize) < out.len() {
                out[p as usize] = b;
            }
        }
    };
    let c = centre as isize;
    match motif {
        Motif::Donor => {
            // Exon end, the GT dinucleotide and the consensus that follows; an A/T-rich
            // intron start.
            put(c - 3, b"CAGGTAAGTAT", out);
            for p in (c + 8)..(c + 40) {
                if p >= 0 && (p as usize) < out.len() && rng.random_bool(0.6) {
                    out[p as usize] = if rng.random_bool(0.5) { b'A' } else { b'T' };
                }
            }
        }
        Motif::Acceptor => {
            // A polypyrimidine tract, then the AG.
            for p in (c - 28)..(c - 4) {
                if p >= 0 && (p as usize) < out.len() && rng.random_bool(0.85) {
                    out[p as usize] = if rng.random_bool(0.6) { b'T' } else { b'C' };
                }
            }
            put(c - 4, b"TTCAGG", out);
        }
        Motif::None => {}
    }
}

/// Shannon entropy of the nucleotide composition, in bits (0 to 2).
fn complexity(seq: &[u8]) -> f64 {
    let mut n = [0usize; 4];
    for &b in seq {
        n[match b {
            b'A' => 0,
            b'C' => 1,
            b'G' => 2,
            _ => 3,
        }] += 1;
    }
    let total = seq.len().max(1) as f64;
    -n.iter()
        .filter(|&&k| k > 0)
        .map(|&k| {
            let p = k as f64 / total;
            p * p.log2()
        })
        .sum::<f64>()
}
