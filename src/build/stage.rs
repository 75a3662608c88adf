//! The build stage: the selected genes, their base scores and their sequence streamed batch by
//! batch into a MetaSpliceAI-layout dataset under the `memory.build` budget.
//!
//! Genes come from the annotation and the score directory in the same order (the score stage
//! wrote them so); a batch of `batch_genes` genes is labelled and turned into rows in parallel,
//! then written in gene order under a temporary name, renamed, and listed in
//! `master/manifest.json` with its SHA-256. A rerun with equal settings keeps the whole batches
//! and rebuilds from the first missing or damaged one; every row depends only on its gene and
//! the seed, so the files come out byte-identical.

use std::path::{Path, PathBuf};
use std::time::Instant;

use arrow::datatypes::SchemaRef;
use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;
use serde::Serialize;

use super::candidates::{label_bytes, label_gene, GeneCounts, LabelParams};
use super::config::BuildConfig;
use super::rows::{gene_rows, row_bytes, schema, GeneInput, WindowSpec};
use crate::error::InputError;
use crate::genome::{Gene, Genome, SiteKind};
use crate::memory::MemoryReservation;
use crate::score::store::{BatchKind, Manifest, ScoreReader, StoredGene};

/// The dataset's batch directory.
pub const DATASET: BatchKind = BatchKind {
    format: "spliceboost-dataset",
    version: 1,
    what: "dataset",
    prefix: "batch_",
    derived: &[GENE_MANIFEST],
    redo: "delete the dataset directory (or run `spliceboost build` with --overwrite) to build again",
    replace:
        "run `spliceboost build` with --overwrite to replace them, or set `build.out` to another directory",
};

/// The Python's per-gene table, written when every batch is.
pub const GENE_MANIFEST: &str = "gene_manifest.csv";

/// What a build did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct BuildSummary {
    pub out: PathBuf,
    pub genes: u64,
    pub rows: u64,
    /// Rows by class: neither, donor, acceptor (this run's batches).
    pub rows_by_class: [u64; 3],
    pub batches: usize,
    pub reused_batches: usize,
    pub built_genes: u64,
    /// The base model against the annotation, this run's genes: `[donor, acceptor]`.
    pub tp: [u64; 2],
    pub fn_: [u64; 2],
    pub fp: [u64; 2],
    pub tn_sampled: u64,
    pub tn_kept: u64,
    /// Counted warnings: annotated sites outside their gene's scored positions (skipped),
    /// genes without an annotated site (their rows are predictions and negatives only).
    pub sites_outside: u64,
    pub genes_without_sites: u64,
    pub seconds: f64,
}

impl BuildSummary {
    fn add(&mut self, c: &GeneCounts) {
        for t in 0..2 {
            self.tp[t] += c.tp[t];
            self.fn_[t] += c.fn_[t];
            self.fp[t] += c.fp[t];
        }
        for k in 0..3 {
            self.rows_by_class[k] += c.rows[k];
        }
        self.tn_sampled += c.tn_sampled;
        self.tn_kept += c.tn_kept;
        self.sites_outside += c.sites_outside;
        if c.donor_sites + c.acceptor_sites == 0 {
            self.genes_without_sites += 1;
        }
    }
}

/// A build: the genome, the `[build]` section, the scores, where to write.
pub struct BuildJob<'a> {
    pub genome: &'a mut Genome,
    pub config: &'a BuildConfig,
    /// A finished `spliceboost score` directory.
    pub scores: PathBuf,
    /// The dataset directory; batches go to `<out>/master`.
    pub out: PathBuf,
    /// `run.seed`, unless `build.seed` is set.
    pub seed: u64,
    /// Replace a dataset built with other settings instead of refusing (one built with these
    /// settings is resumed).
    pub overwrite: bool,
    /// Build every batch again, whatever is there.
    pub rebuild: bool,
    pub progress: bool,
}

/// Everything that decides the rows: the scores' own settings and batches (their checksums),
/// and every `[build]` key but where the output goes.
pub fn settings(cfg: &BuildConfig, scores: &Manifest, seed: u64) -> serde_json::Value {
    let mut build = serde_json::to_value(cfg).expect("the config serialises");
    if let Some(o) = build.as_object_mut() {
        o.remove("out");
        o.remove("scores");
        o.insert("seed".into(), seed.into());
    }
    let checksums: Vec<&str> = scores.batches.iter().map(|b| b.sha256.as_str()).collect();
    let mut s = serde_json::json!({
        "build": build,
        "scores": { "settings": scores.settings, "batches": checksums },
    });
    let hash = crate::score::weights::sha256_hex(s.to_string().as_bytes());
    s["config_hash"] = hash.into();
    s
}

/// Each gene's seed: from the build seed and the gene's id only, so a gene's rows do not
/// depend on its batch, its neighbours or the thread that built it.
fn gene_seed(seed: u64, id: &str) -> u64 {
    // FNV-1a, then splitmix64 to spread it.
    let mut z = crate::genome::fnv1a(id.as_bytes()) ^ seed.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn bar(show: bool, genes: u64) -> ProgressBar {
    let bar = if show {
        ProgressBar::new(genes)
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template("build {bar:30} {pos}/{len} genes  {per_sec} eta {eta}")
            .expect("static template"),
    );
    bar
}

/// One gene of a batch and what its rows come from.
struct Loaded {
    gene: Gene,
    scores: StoredGene,
    sequence: Vec<u8>,
    chrom_len: u64,
}

/// Builds the dataset of `job` under `res` (the build stage's reservation).
pub fn build_job(job: BuildJob<'_>, res: &mut MemoryReservation) -> anyhow::Result<BuildSummary> {
    let started = Instant::now();
    let cfg = job.config;
    let master = job.out.join("master");
    let (score_manifest, mut reader) = ScoreReader::open(&job.scores, res)?;
    let settings = settings(cfg, &score_manifest, job.seed);
    if job.rebuild {
        // Without a manifest every batch file is unlisted, and `resume` removes them.
        let path = master.join(crate::score::store::MANIFEST);
        if let Err(e) = std::fs::remove_file(&path) {
            if e.kind() != std::io::ErrorKind::NotFound {
                return Err(crate::error::io_error(&path, "cannot remove", &e).into());
            }
        }
    }
    let mut manifest = DATASET.resume(&master, &settings, job.overwrite || job.rebuild)?;
    let mut summary = BuildSummary {
        out: job.out.clone(),
        reused_batches: manifest.batches.len(),
        ..BuildSummary::default()
    };
    let total = score_manifest.genes() as u64;
    if total == 0 {
        return Err(
            InputError::new("the scores hold no gene: the selection was empty")
                .file(job.scores.join(crate::score::store::MANIFEST))
                .hint("widen `[genome.select]` and run `spliceboost score` again")
                .into(),
        );
    }

    let spec = WindowSpec {
        window: cfg.window as usize,
        ks: cfg.kmers.clone(),
        layout: cfg.kmer_layout,
    };
    let params = LabelParams {
        threshold: cfg.threshold,
        consensus_window: cfg.consensus_window,
        tn_mode: cfg.tn_mode,
        tn_sample_factor: cfg.tn_sample_factor,
        tn_window: cfg.tn_window,
        downsample: cfg.downsample.clone(),
    };
    let schema = schema(&spec.ks, spec.layout);
    let mut stream = job.genome.genes(res)?;
    let bar = bar(job.progress, total);
    let mismatch = |want: &str, got: &str| -> anyhow::Error {
        InputError::new(format!(
            "the scores hold gene {want} where the annotation's selection yields {got}"
        ))
        .file(job.scores.join(crate::score::store::MANIFEST))
        .hint(
            "the [genome] selection changed since scoring: run `spliceboost score` again (with --overwrite)",
        )
        .into()
    };
    // Skip (and check) the genes of the batches kept.
    for b in &manifest.batches {
        for id in &b.genes {
            let gene = stream
                .next()
                .transpose()?
                .ok_or_else(|| mismatch(id, "no more genes"))?;
            let stored = reader
                .next_gene()?
                .ok_or_else(|| mismatch("no more genes", &gene.id))?;
            if &gene.id != id || stored.gene_id != gene.id {
                return Err(mismatch(&stored.gene_id, &gene.id));
            }
            bar.inc(1);
        }
        summary.genes += b.genes.len() as u64;
        summary.rows += b.rows;
    }

    let mut batch_res = res.new_empty();
    while !manifest.complete {
        // Read a batch: annotation, scores, sequence, each gene reserved before it is kept.
        let mut batch: Vec<Loaded> = Vec::with_capacity(cfg.batch_genes);
        while batch.len() < cfg.batch_genes {
            let Some(gene) = stream.next().transpose()? else {
                if let Some(extra) = reader.next_gene()? {
                    return Err(mismatch(&extra.gene_id, "no more genes"));
                }
                break;
            };
            let stored = reader
                .next_gene()?
                .ok_or_else(|| mismatch("no more genes", &gene.id))?;
            if stored.gene_id != gene.id {
                return Err(mismatch(&stored.gene_id, &gene.id));
            }
            if stored.scores.len() as u64 != gene.len()
                || stored.start != gene.start
                || stored.chrom != gene.chrom
                || stored.strand != gene.strand
            {
                return Err(InputError::new(format!(
                    "gene {} is scored over {} {}:{}-{}, its annotation spans {} {}:{}-{}",
                    gene.id,
                    stored.strand.as_char(),
                    stored.chrom,
                    stored.start,
                    stored.start + stored.scores.len() as u64 - 1,
                    gene.strand.as_char(),
                    gene.chrom,
                    gene.start,
                    gene.end
                ))
                .file(job.scores.join(crate::score::store::MANIFEST))
                .hint("score the genes again with `spliceboost score --overwrite`")
                .into());
            }
            check_scores(&stored, &job.scores)?;
            let len = gene.len() as usize;
            let flank = spec.window as i64;
            // Its scores, its sequence (and the oriented copy `gene_rows` reads), the
            // annotation, and the labelling's marks.
            let need =
                12 * len as u64 + 2 * (len + 2 * spec.window) as u64 + gene.heap_bytes() + label_bytes(len);
            batch_res.require(
                need,
                format_args!("gene {} ({} nt) with its scores and sequence", gene.id, len),
            )?;
            batch_res.try_grow(need)?;
            let sequence =
                job.genome
                    .fasta
                    .fetch(&gene.chrom, gene.start as i64 - flank, gene.end as i64 + flank)?;
            let chrom_len = job.genome.fasta.index().length(&gene.chrom).unwrap_or(0);
            batch.push(Loaded {
                gene,
                scores: stored,
                sequence,
                chrom_len,
            });
        }
        if batch.is_empty() {
            if manifest.batches.is_empty() {
                return Err(InputError::new("the annotation's selection yields no gene")
                    .file(&job.genome.config.annotation)
                    .hint("widen `[genome.select]`")
                    .into());
            }
            manifest.complete = true;
            break;
        }

        let seed = job.seed;
        let labelled: Vec<(Vec<super::candidates::Candidate>, GeneCounts)> = batch
            .par_iter()
            .map(|l| {
                let sites: Vec<(u32, SiteKind)> = l
                    .gene
                    .sites()
                    .into_iter()
                    .map(|s| {
                        (
                            s.position.wrapping_sub(l.gene.start).min(u64::from(u32::MAX)) as u32,
                            s.kind,
                        )
                    })
                    .collect();
                label_gene(&l.scores.scores, &sites, &params, gene_seed(seed, &l.gene.id))
            })
            .collect();
        // The batch's rows, held until written, and the writer's row group.
        let rows: u64 = labelled.iter().map(|(r, _)| r.len() as u64).sum();
        let candidates = rows * std::mem::size_of::<super::candidates::Candidate>() as u64;
        // The gene's strings are repeated on each of its rows.
        let names = batch
            .iter()
            .map(|l| {
                let g = &l.gene;
                g.id.len()
                    + g.chrom.len()
                    + g.name.as_ref().map_or(0, String::len)
                    + g.biotype.as_ref().map_or(0, String::len)
            })
            .max()
            .unwrap_or(0);
        let need = candidates
            + rows * row_bytes(&spec, names)
            + writer_bytes(&schema, (rows as usize).min(cfg.batch_rows), &spec);
        batch_res.require(
            batch_res.size() + need,
            format_args!("the {rows} rows of a batch of {} genes", batch.len()),
        )?;
        batch_res.try_grow(need)?;
        let pieces: Vec<anyhow::Result<arrow::array::RecordBatch>> = batch
            .par_iter()
            .zip(&labelled)
            .map(|(l, (rows, _))| {
                let input = GeneInput {
                    gene: &l.gene,
                    scores: &l.scores.scores,
                    sequence: &l.sequence,
                    chrom_len: l.chrom_len,
                };
                gene_rows(&input, rows, &spec, &schema)
            })
            .collect();

        let i = manifest.batches.len();
        let name = DATASET.batch_name(i);
        let path = master.join(&name);
        let written = crate::io::write_atomic(&path, |w| {
            let mut writer = crate::io::parquet_writer_rows(w, schema.clone(), cfg.batch_rows)?;
            let mut n = 0u64;
            for p in pieces {
                let p = p?;
                n += p.num_rows() as u64;
                writer.write(&p)?;
            }
            writer.close()?;
            Ok(n)
        })?;
        for (_, c) in &labelled {
            summary.add(c);
        }
        let genes: Vec<String> = batch.iter().map(|l| l.gene.id.clone()).collect();
        summary.genes += genes.len() as u64;
        summary.built_genes += genes.len() as u64;
        summary.rows += written;
        bar.inc(genes.len() as u64);
        manifest.add_batch(&master, name, genes, written)?;
        drop(batch);
        batch_res.free();
    }
    bar.finish_and_clear();
    manifest.write(&master)?;
    if !master.join(GENE_MANIFEST).exists() {
        write_gene_manifest(job.genome, &manifest, &master, res)?;
    }
    summary.batches = manifest.batches.len();
    summary.seconds = started.elapsed().as_secs_f64();
    Ok(summary)
}

/// Bytes the Parquet writer holds for a row group of `rows` rows of `schema` (its k-mer
/// lists priced by their items), and each column's encoder state (page and dictionary
/// buffers, about 64 KiB whatever the rows; measured on the fly chromosome, where a batch of
/// one gene took 3 MiB of writer for 65 columns).
fn writer_bytes(schema: &SchemaRef, rows: usize, spec: &WindowSpec) -> u64 {
    const PER_COLUMN: u64 = 64 << 10;
    let kmers = crate::io::kmers::window_row_bytes(&spec.ks, spec.window);
    crate::io::parquet_row_group_bytes(schema, rows, kmers) + schema.fields().len() as u64 * PER_COLUMN
}

/// Refuses a score outside [0, 1] (NaN included), naming the gene and the position.
fn check_scores(g: &StoredGene, dir: &Path) -> Result<(), InputError> {
    const NAMES: [&str; 3] = ["neither", "acceptor", "donor"];
    for (i, s) in g.scores.iter().enumerate() {
        // Donor and acceptor first: a bad one makes `neither` (1 - the two) bad as well.
        if let Some(t) = [2, 1, 0].into_iter().find(|&t| !(0.0..=1.0).contains(&s[t])) {
            return Err(InputError::new(format!(
                "gene {} position {}: the {} score {} is not a probability in [0, 1]",
                g.gene_id,
                g.start + i as u64,
                NAMES[t],
                s[t]
            ))
            .file(dir)
            .column(NAMES[t])
            .hint("rescore the genes, or fix the score file and score again"));
        }
    }
    Ok(())
}

/// `gene_manifest.csv` with the Python's columns, from the annotation and the batches.
fn write_gene_manifest(
    genome: &mut Genome,
    manifest: &Manifest,
    master: &Path,
    res: &MemoryReservation,
) -> anyhow::Result<()> {
    let mut stream = genome.genes(res)?;
    let header = [
        "global_index",
        "gene_id",
        "gene_name",
        "gene_type",
        "chrom",
        "strand",
        "gene_length",
        "start",
        "end",
        "total_splice_sites",
        "donor_sites",
        "acceptor_sites",
        "splice_density_per_kb",
        "file_index",
        "file_name",
    ];
    crate::io::write_atomic(&master.join(GENE_MANIFEST), |w| {
        let mut t = csv::Writer::from_writer(w);
        t.write_record(header)?;
        let mut index = 0usize;
        for (fi, b) in manifest.batches.iter().enumerate() {
            for id in &b.genes {
                let g = stream.next().transpose()?;
                let Some(g) = g.filter(|g| &g.id == id) else {
                    return Err(InputError::new(format!(
                        "lists gene {id}, which the selection no longer yields here"
                    ))
                    .file(master.join(crate::score::store::MANIFEST))
                    .hint(DATASET.redo)
                    .into());
                };
                let sites = g.sites();
                let donors = sites.iter().filter(|s| s.kind == SiteKind::Donor).count();
                let total = sites.len();
                t.write_record([
                    index.to_string(),
                    g.id.clone(),
                    g.name.clone().unwrap_or_default(),
                    g.biotype.clone().unwrap_or_default(),
                    g.chrom.clone(),
                    g.strand.as_char().to_string(),
                    g.len().to_string(),
                    g.start.to_string(),
                    g.end.to_string(),
                    total.to_string(),
                    donors.to_string(),
                    (total - donors).to_string(),
                    format!("{:.6}", total as f64 * 1000.0 / g.len() as f64),
                    fi.to_string(),
                    b.file.clone(),
                ])?;
                index += 1;
            }
        }
        t.flush()?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gene_seeds_depend_on_the_id_and_the_seed_only() {
        assert_eq!(gene_seed(1, "g1"), gene_seed(1, "g1"));
        assert_ne!(gene_seed(1, "g1"), gene_seed(1, "g2"));
        assert_ne!(gene_seed(1, "g1"), gene_seed(2, "g1"));
    }
}
