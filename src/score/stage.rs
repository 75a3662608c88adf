//! The score stage: every position of every selected gene through the base model (or read
//! from a score file), written in resumable gene batches under the `memory.score` budget.
//!
//! Per gene the network reads the gene plus [`SpliceAi::context`] nucleotides of its real
//! genomic flank on each side (`N` beyond a chromosome's ends, or everywhere outside the
//! gene with `flank = "n"`); a minus-strand gene is reverse-complemented, scored, and its
//! outputs reversed back, so every file is in genomic order whatever the strand. The
//! context is computed once per gene (see the module docs of [`crate::score`]), not once per
//! 5,000-nt block.

use std::path::{Path, PathBuf};
use std::time::{Instant, UNIX_EPOCH};

use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

use super::config::{Flank, ScoreConfig};
use super::import::{coverage_bytes, ScoreFile};
use super::store::{self, GeneWriter};
use super::{weights, SpliceAi};
use crate::error::InputError;
use crate::genome::{Gene, GeneStream, Genome, Strand};
use crate::memory::{MemoryError, MemoryReservation};

/// What a score run did.
#[derive(Debug, Clone, Serialize)]
pub struct ScoreSummary {
    pub out: PathBuf,
    pub genes: u64,
    pub positions: u64,
    pub batches: usize,
    /// Batches found whole from an earlier run and kept.
    pub reused_batches: usize,
    pub reused_genes: u64,
    /// Genes scored (or read from the score file) by this run.
    pub scored_genes: u64,
    pub scored_positions: u64,
    pub seconds: f64,
    /// What produced the scores.
    pub source: String,
}

impl ScoreSummary {
    /// Positions per second of this run's own work.
    pub fn positions_per_second(&self) -> f64 {
        self.scored_positions as f64 / self.seconds.max(1e-9)
    }
}

/// A score run: the genome, the `[score]` section, where to write.
pub struct ScoreJob<'a> {
    pub genome: &'a mut Genome,
    pub config: &'a ScoreConfig,
    /// `run.seed`, which seeds `genome.select.random` unless it has its own seed.
    pub seed: u64,
    pub out: PathBuf,
    /// Replace scores made with other settings instead of refusing.
    pub overwrite: bool,
    pub progress: bool,
}

/// A file's identity for the settings: a changed input must not resume old scores.
fn file_stamp(path: &Path) -> serde_json::Value {
    match std::fs::metadata(path) {
        Ok(m) => serde_json::json!({
            "path": path.display().to_string(),
            "bytes": m.len(),
            "modified": m.modified().ok().and_then(|t| t.duration_since(UNIX_EPOCH).ok()).map(|d| d.as_secs()),
        }),
        Err(_) => serde_json::json!({ "path": path.display().to_string() }),
    }
}

/// Everything that decides the scores written: the inputs, the selection, the model, the
/// flanks, the shifts and the batching.
pub fn settings(genome: &Genome, cfg: &ScoreConfig, seed: u64) -> serde_json::Value {
    let g = &genome.config;
    let source = match &cfg.file {
        Some(f) => serde_json::json!({ "file": file_stamp(&f.path), "columns": f.columns }),
        None => serde_json::json!({
            "spliceai": weights::SPLICEAI_VERSION,
            "models": cfg.models,
            "flank": cfg.flank.as_str(),
        }),
    };
    serde_json::json!({
        "fasta": file_stamp(&g.fasta),
        "annotation": file_stamp(&g.annotation),
        "format": g.format,
        "aliases": g.aliases,
        "select": g.select,
        "ids": g.select.ids.as_deref().map(file_stamp),
        "seed": g.select.seed.unwrap_or(seed),
        "source": source,
        "shifts": cfg.shifts,
        "genes_per_batch": cfg.genes_per_batch,
    })
}

/// What produces the scores of a batch.
enum Source {
    Network {
        model: SpliceAi,
        ws: super::Workspace,
        flank: Flank,
    },
    File(Box<ScoreFile>),
}

/// What produces the scores, in words.
fn describe_source(cfg: &ScoreConfig) -> String {
    match &cfg.file {
        Some(f) => format!("scores read from {}", f.path.display()),
        None => format!(
            "SpliceAI {} models {:?}, {} flanks",
            weights::SPLICEAI_VERSION,
            cfg.models,
            cfg.flank.as_str()
        ),
    }
}

/// The selected genes' sizes, counted in one pass over the annotation before any work:
/// the progress bar's length, and the largest buffers the stage will need.
#[derive(Debug, Default)]
struct Plan {
    genes: u64,
    positions: u64,
    /// The longest gene, in nucleotides.
    max_gene: u64,
    /// The most positions (and genes) in one batch.
    max_batch: (u64, u64),
}

fn plan(stream: GeneStream, genes_per_batch: usize) -> anyhow::Result<Plan> {
    let mut p = Plan::default();
    let mut batch = (0u64, 0u64);
    for g in stream {
        let g = g?;
        p.genes += 1;
        p.positions += g.len();
        p.max_gene = p.max_gene.max(g.len());
        batch = (batch.0 + g.len(), batch.1 + 1);
        if batch.1 as usize == genes_per_batch {
            p.max_batch = p.max_batch.max(batch);
            batch = (0, 0);
        }
    }
    p.max_batch = p.max_batch.max(batch);
    Ok(p)
}

/// Bytes of a batch's scores read from a file: the arrays, their coverage bitmaps (as
/// [`coverage_bytes`] prices them, at most `len / 8 + 72` a gene), the vectors' headers.
fn file_batch_bytes(positions: u64, genes: u64) -> u64 {
    12 * positions + positions / 8 + (72 + 24) * genes
}

/// Bytes of one gene's buffers for the network: its sequence with context, its scores.
fn gene_bytes(len: u64, context: u64) -> u64 {
    len + 2 * context + 12 * len
}

fn bar(show: bool, positions: u64) -> ProgressBar {
    let bar = if show {
        ProgressBar::new(positions)
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template("score {bar:30} {msg}  {binary_bytes_per_sec:.dim} eta {eta}")
            .expect("static template")
            .with_key(
                "binary_bytes_per_sec",
                |s: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                    let _ = write!(w, "{:.0} nt/s", s.per_sec());
                },
            ),
    );
    bar
}

/// Scores the selected genes of `job.genome` into `job.out` under `res` (the score stage's
/// reservation), resuming from the batches an earlier run finished with equal settings.
pub fn score_job(job: ScoreJob<'_>, res: &mut MemoryReservation) -> anyhow::Result<ScoreSummary> {
    let started = Instant::now();
    let cfg = job.config;
    let out = job.out.clone();
    let settings = settings(job.genome, cfg, job.seed);
    let mut manifest = store::SCORES.resume(&out, &settings, job.overwrite)?;
    let reused_batches = manifest.batches.len();
    let reused_genes = manifest.genes() as u64;

    let plan = plan(job.genome.genes(res)?, cfg.genes_per_batch)?;
    let (total_genes, total_positions) = (plan.genes, plan.positions);
    let mut stream = job.genome.genes(res)?;
    let writer_bytes = GeneWriter::<std::fs::File>::bytes();
    let mut buffers = GeneBuffers::new(res);

    // The model (or the file) and the largest buffers first: a budget that cannot hold
    // them stops here, before any gene is scored.
    let mut source = if manifest.complete {
        None
    } else if let Some(f) = &cfg.file {
        let file = ScoreFile::open(f, &job.genome.config)?;
        let batch = file_batch_bytes(plan.max_batch.0, plan.max_batch.1);
        res.require(
            file.working_bytes() + writer_bytes + batch,
            format_args!(
                "the score file's read buffers and a batch of {} genes ({} nt)",
                plan.max_batch.1, plan.max_batch.0
            ),
        )?;
        res.try_grow(file.working_bytes())?;
        buffers.grow_to(batch, String::new)?;
        Some(Source::File(Box::new(file)))
    } else {
        let dir = cfg.weights_dir();
        let load = SpliceAi::load_bytes(cfg.models.len());
        // The context is SpliceAI-10k's 5,000 nucleotides; checked against the loaded network below.
        let gene = gene_bytes(plan.max_gene, 5_000);
        res.require(
            load + writer_bytes + gene,
            format_args!(
                "the SpliceAI networks, the Parquet writer and the longest gene ({} nt)",
                plan.max_gene
            ),
        )?;
        weights::ensure(&dir, &cfg.models)?;
        res.try_grow(load)?;
        let model = SpliceAi::load(&cfg.models, &dir)?;
        // Each file is read whole while parsing; what stays is the weights.
        res.shrink(load.saturating_sub(model.weight_bytes()));
        buffers.grow_to(gene_bytes(plan.max_gene, model.context() as u64), String::new)?;
        res.try_grow(writer_bytes)?;
        let ws = model.reserve_workspace(res, cfg.max_chunk)?;
        Some(Source::Network {
            model,
            ws,
            flank: cfg.flank,
        })
    };
    if source.as_ref().is_some_and(|s| matches!(s, Source::File(..))) {
        res.try_grow(writer_bytes)?;
    }

    let bar = bar(job.progress, total_positions);
    let mut done_genes = 0u64;
    // Skip (and check) the genes of the batches kept.
    for b in &manifest.batches {
        for id in &b.genes {
            let gene = stream.next().transpose()?.ok_or_else(|| {
                InputError::new(format!("lists gene {id}, which the selection no longer yields"))
                    .file(out.join(store::MANIFEST))
                    .hint("run `spliceboost score` with --overwrite to score again")
            })?;
            if &gene.id != id {
                return Err(InputError::new(format!(
                    "lists gene {id} where the selection now yields {}",
                    gene.id
                ))
                .file(out.join(store::MANIFEST))
                .hint("run `spliceboost score` with --overwrite to score again")
                .into());
            }
            bar.inc(gene.len());
            done_genes += 1;
        }
    }
    let show_genes = |bar: &ProgressBar, n: u64| {
        let per = n.saturating_sub(reused_genes) as f64 / started.elapsed().as_secs_f64().max(1e-9);
        bar.set_message(format!("{n}/{total_genes} genes {per:.1} genes/s"));
    };
    show_genes(&bar, done_genes);

    let mut scored_genes = 0u64;
    let mut scored_positions = 0u64;
    if let Some(source) = &mut source {
        loop {
            let mut genes = Vec::with_capacity(cfg.genes_per_batch);
            for g in stream.by_ref().take(cfg.genes_per_batch) {
                genes.push(g?);
            }
            if genes.is_empty() {
                break;
            }
            let i = manifest.batches.len();
            let name = store::batch_name(i);
            let path = out.join(&name);
            let rows = crate::io::write_atomic(&path, |w| {
                let mut writer = GeneWriter::new(w)?;
                match source {
                    Source::Network { model, ws, flank } => {
                        for gene in &genes {
                            let scores = buffers.score(model, ws, *flank, job.genome, gene)?;
                            cfg.shifts.apply(gene.strand, scores);
                            writer.write_gene(&gene.id, &gene.chrom, gene.strand, gene.start, scores)?;
                            bar.inc(gene.len());
                            done_genes += 1;
                            show_genes(&bar, done_genes);
                        }
                    }
                    Source::File(file) => {
                        let all = buffers.fill(file, &genes)?;
                        for (gene, scores) in genes.iter().zip(all.iter_mut()) {
                            cfg.shifts.apply(gene.strand, scores);
                            writer.write_gene(&gene.id, &gene.chrom, gene.strand, gene.start, scores)?;
                            bar.inc(gene.len());
                            done_genes += 1;
                        }
                        show_genes(&bar, done_genes);
                    }
                }
                writer.finish()
            })?;
            scored_genes += genes.len() as u64;
            scored_positions += rows;
            let genes = genes.iter().map(|g| g.id.clone()).collect();
            manifest.add_batch(&out, name, genes, rows)?;
        }
        manifest.complete = true;
        manifest.write(&out)?;
    }
    drop(buffers);
    bar.finish_and_clear();
    let unmatched = stream.unmatched_ids();
    if !unmatched.is_empty() {
        eprintln!(
            "note: {} id(s) of genome.select.ids name no selected gene (first: {})",
            unmatched.len(),
            unmatched[0]
        );
    }
    Ok(ScoreSummary {
        out,
        genes: manifest.genes() as u64,
        positions: manifest.rows(),
        batches: manifest.batches.len(),
        reused_batches,
        reused_genes,
        scored_genes,
        scored_positions,
        seconds: started.elapsed().as_secs_f64(),
        source: describe_source(cfg),
    })
}

/// The per-gene buffers, grown to the largest gene so far and reserved before they grow.
struct GeneBuffers {
    seq: Vec<u8>,
    scores: Vec<[f32; 3]>,
    batch: Vec<Vec<[f32; 3]>>,
    reservation: MemoryReservation,
}

impl GeneBuffers {
    fn new(parent: &MemoryReservation) -> Self {
        Self {
            seq: vec![],
            scores: vec![],
            batch: vec![],
            reservation: parent.new_empty(),
        }
    }

    fn grow_to(&mut self, bytes: u64, what: impl FnOnce() -> String) -> Result<(), MemoryError> {
        if bytes > self.reservation.size() {
            self.reservation.require(bytes, what())?;
            self.reservation.try_grow(bytes - self.reservation.size())?;
        }
        Ok(())
    }

    /// The network's scores of `gene`, genomic order.
    fn score(
        &mut self,
        model: &SpliceAi,
        ws: &mut super::Workspace,
        flank: Flank,
        genome: &mut Genome,
        gene: &Gene,
    ) -> anyhow::Result<&mut [[f32; 3]]> {
        let ctx = model.context() as i64;
        let len = gene.len() as usize;
        let seq_len = len + 2 * ctx as usize;
        let need = (seq_len.max(self.seq.capacity()) + 12 * len.max(self.scores.capacity())) as u64;
        self.grow_to(need, || {
            format!("gene {} ({} nt) with its context and scores", gene.id, gene.len())
        })?;
        self.seq.clear();
        self.seq.reserve_exact(seq_len);
        let (start, end) = (gene.start as i64, gene.end as i64);
        match flank {
            Flank::Genomic => genome
                .fasta
                .read(&gene.chrom, start - ctx, end + ctx, &mut self.seq)?,
            Flank::N => {
                self.seq.resize(ctx as usize, b'N');
                genome.fasta.read(&gene.chrom, start, end, &mut self.seq)?;
                self.seq.resize(seq_len, b'N');
            }
        }
        if gene.strand == Strand::Minus {
            reverse_complement(&mut self.seq);
        }
        self.scores.clear();
        self.scores.reserve_exact(len);
        self.scores.resize(len, [0.0; 3]);
        model.predict_with(ws, &self.seq, &mut self.scores);
        if gene.strand == Strand::Minus {
            self.scores.reverse();
        }
        Ok(&mut self.scores)
    }

    /// A batch's scores from the score file.
    fn fill(&mut self, file: &ScoreFile, genes: &[Gene]) -> anyhow::Result<&mut [Vec<[f32; 3]>]> {
        let positions: u64 = genes.iter().map(Gene::len).sum();
        self.batch.clear();
        self.batch.shrink_to_fit();
        self.grow_to(
            12 * positions + coverage_bytes(genes) + 24 * genes.len() as u64,
            || format!("the scores of a batch of {} genes ({positions} nt)", genes.len()),
        )?;
        self.batch = genes.iter().map(|g| vec![[0f32; 3]; g.len() as usize]).collect();
        file.fill(genes, &mut self.batch)?;
        Ok(&mut self.batch)
    }
}

/// Reverse-complements upper-case `ACGTN` in place (anything else becomes `N`).
pub fn reverse_complement(seq: &mut [u8]) {
    seq.reverse();
    for b in seq.iter_mut() {
        *b = match *b {
            b'A' => b'T',
            b'C' => b'G',
            b'G' => b'C',
            b'T' => b'A',
            _ => b'N',
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reverse_complement_reverses_and_pairs_bases() {
        let mut s = b"AACGTN".to_vec();
        reverse_complement(&mut s);
        assert_eq!(&s, b"NACGTT");
    }
}
