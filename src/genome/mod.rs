//! Real genomes in: the annotation streamed gene by gene, the sequence read by region.
//!
//! - [`AnnotationReader`] streams GFF3 or GTF (plain or gzip) into [`Gene`]s with their
//!   transcripts, holding only the genes still open; [`GeneStream`] applies the
//!   `[genome.select]` filters, the chromosome aliases and a seeded random draw, and checks
//!   every gene against the FASTA.
//! - [`Fasta`] reads any region of a plain, gzip or BGZF FASTA through its `.fai` (and
//!   `.gzi`), built when missing; upper-case, `N` for non-ACGT codes and beyond the ends.
//! - [`model`] holds the one coordinate convention: 1-based genomic positions, and splice
//!   sites on the exonic base of each boundary (SpliceAI's). docs/genome.md draws it.
//!
//! ```no_run
//! use std::sync::Arc;
//! use spliceboost::genome::{Genome, GenomeConfig};
//! use spliceboost::memory::{MemoryConsumer, MemoryPool};
//!
//! let pool = Arc::new(MemoryPool::new(256 << 20));
//! let res = MemoryConsumer::new("genome").register(&pool);
//! let cfg = GenomeConfig::new("fixtures/genome/dmel_chr4.fna.gz", "fixtures/genome/dmel_chr4.gff3.gz");
//! let mut genome = Genome::open(&cfg, "out/cache/genome".as_ref(), 42, &res)?;
//! for gene in genome.genes(&res)? {
//!     let gene = gene?;
//!     let seq = genome.fasta.fetch(&gene.chrom, gene.start as i64 - 5000, gene.end as i64 + 5000)?;
//!     println!("{} {} {} sites, {} nt", gene.id, gene.strand, gene.sites().len(), seq.len());
//! }
//! # Ok::<(), anyhow::Error>(())
//! ```

mod annotation;
mod config;
mod fasta;
mod input;
pub mod model;
mod select;

use std::path::{Path, PathBuf};

pub use annotation::{detect_format, AnnotationReader, AnnotationStats, Format, MAX_LINE};
pub use config::{default_max_open_genes, AnnotationFormat, GeneSelection, GenomeConfig, MAX_OPEN_GENES};
pub use fasta::{
    build_fai, build_gzi, fai_text, index_fasta, load_fai, normalize_bases, FaiRecord, Fasta, FastaIndex,
};
pub use input::{compression_of, fnv1a, open_text, read_error, Compression, OPEN_TEXT_BYTES};
pub use model::{Exon, Gene, Intron, Site, SiteKind, Strand, Transcript};
pub use select::{check_chromosome, read_id_list, suggest, GeneFilter, GeneStream};

use crate::memory::MemoryReservation;

/// A genome opened for a run: the FASTA indexed and ready, the annotation to stream.
pub struct Genome {
    pub config: GenomeConfig,
    pub fasta: Fasta,
    seed: u64,
    cache_dir: PathBuf,
}

impl Genome {
    /// Opens the FASTA of `cfg` (indexing it if needed) and checks that the annotation can be
    /// opened and its format told. `default_cache_dir` serves when `genome.cache_dir` is not
    /// set; `seed` seeds `select.random` when `select.seed` is not set (the lead passes
    /// `run.seed`).
    pub fn open(
        cfg: &GenomeConfig,
        default_cache_dir: &Path,
        seed: u64,
        parent: &MemoryReservation,
    ) -> anyhow::Result<Self> {
        let cache_dir = cfg.cache_dir_or(default_cache_dir).to_path_buf();
        let fasta = Fasta::open(&cfg.fasta, Some(&cache_dir), parent)?;
        detect_format(&cfg.annotation, cfg.format)?;
        Ok(Self {
            config: cfg.clone(),
            fasta,
            seed,
            cache_dir,
        })
    }

    /// The selected genes, each checked against the FASTA.
    pub fn genes(&self, parent: &MemoryReservation) -> anyhow::Result<GeneStream> {
        GeneStream::open(&self.config, Some(self.fasta.index().clone()), self.seed, parent)
    }

    /// The cache directory in use.
    pub fn cache_dir(&self) -> &Path {
        &self.cache_dir
    }
}
