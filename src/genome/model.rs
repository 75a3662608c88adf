//! Genes, transcripts, exons, introns and splice sites, in one coordinate convention.
//!
//! Every position is a **1-based genomic coordinate** on the FASTA's forward strand, and every
//! interval is closed (`start..=end`), as in GFF3 and GTF. A splice site is the **exonic**
//! base of its exon-intron boundary, as SpliceAI labels it:
//!
//! - the **donor** is the last base of the upstream exon, in transcription order;
//! - the **acceptor** is the first base of the downstream exon, in transcription order.
//!
//! On the plus strand an intron `s..=e` has its donor at `s - 1` and its acceptor at
//! `e + 1`; on the minus strand its donor is at `e + 1` and its acceptor at `s - 1`.
//! docs/genome.md draws both and converts from the Python original's intronic convention.

use serde::{Deserialize, Serialize};

/// The strand a gene is transcribed from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Strand {
    #[serde(rename = "+")]
    Plus,
    #[serde(rename = "-")]
    Minus,
}

impl Strand {
    /// `+` or `-`, as GFF writes it.
    pub fn as_char(self) -> char {
        match self {
            Strand::Plus => '+',
            Strand::Minus => '-',
        }
    }
}

impl std::fmt::Display for Strand {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.as_char())
    }
}

/// Donor (5' splice site) or acceptor (3' splice site).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SiteKind {
    Donor,
    Acceptor,
}

impl SiteKind {
    /// `donor` or `acceptor`, as the datasets' `splice_type` column spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            SiteKind::Donor => "donor",
            SiteKind::Acceptor => "acceptor",
        }
    }
}

/// A splice site: the exonic base of an exon-intron boundary (1-based, genomic).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Site {
    pub position: u64,
    pub kind: SiteKind,
}

/// An exon, `start..=end`, 1-based genomic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Exon {
    pub start: u64,
    pub end: u64,
}

/// An intron, `start..=end`, 1-based genomic: the bases between two consecutive exons.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Intron {
    pub start: u64,
    pub end: u64,
}

impl Intron {
    /// The donor of this intron on `strand`: the exonic base before it in transcription
    /// order.
    pub fn donor(&self, strand: Strand) -> u64 {
        match strand {
            Strand::Plus => self.start - 1,
            Strand::Minus => self.end + 1,
        }
    }

    /// The acceptor of this intron on `strand`: the exonic base after it in transcription
    /// order.
    pub fn acceptor(&self, strand: Strand) -> u64 {
        match strand {
            Strand::Plus => self.end + 1,
            Strand::Minus => self.start - 1,
        }
    }

    /// Its length in bases.
    pub fn len(&self) -> u64 {
        self.end + 1 - self.start
    }

    /// Never true: an intron has at least one base (abutting exons are merged).
    pub fn is_empty(&self) -> bool {
        false
    }
}

/// A transcript: its exons sorted by position (genomic order, whatever the strand), none
/// overlapping another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transcript {
    pub id: String,
    pub exons: Vec<Exon>,
    /// The annotation line that first named it.
    pub line: u64,
}

impl Transcript {
    /// Its introns in genomic order (none for a single exon).
    pub fn introns(&self) -> impl Iterator<Item = Intron> + '_ {
        self.exons.windows(2).map(|w| Intron {
            start: w[0].end + 1,
            end: w[1].start - 1,
        })
    }

    /// Its splice sites in transcription order: donor, acceptor, donor, acceptor, ...
    pub fn sites(&self, strand: Strand) -> Vec<Site> {
        let mut introns: Vec<Intron> = self.introns().collect();
        if strand == Strand::Minus {
            introns.reverse();
        }
        introns
            .iter()
            .flat_map(|i| {
                [
                    Site {
                        position: i.donor(strand),
                        kind: SiteKind::Donor,
                    },
                    Site {
                        position: i.acceptor(strand),
                        kind: SiteKind::Acceptor,
                    },
                ]
            })
            .collect()
    }

    /// First base of its first exon.
    pub fn start(&self) -> u64 {
        self.exons.first().map_or(0, |e| e.start)
    }

    /// Last base of its last exon.
    pub fn end(&self) -> u64 {
        self.exons.last().map_or(0, |e| e.end)
    }
}

/// A gene and its transcripts, as the annotation stream hands it over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gene {
    /// GTF `gene_id`; GFF3 `gene_id`, else `ID` without a `gene-` or `gene:` prefix.
    pub id: String,
    /// GFF3 `Name` / `gene_name` / `gene`; GTF `gene_name` / `gene`.
    pub name: Option<String>,
    /// GFF3 `biotype` / `gene_biotype` / `gene_type`; GTF `gene_type` / `gene_biotype`.
    pub biotype: Option<String>,
    /// The FASTA's name of its chromosome (aliases applied).
    pub chrom: String,
    pub strand: Strand,
    /// `start..=end`, 1-based genomic: the gene feature's bounds, or its features' span
    /// where the annotation has no gene line.
    pub start: u64,
    pub end: u64,
    /// In the order the annotation first names them, single-exon ones included.
    pub transcripts: Vec<Transcript>,
    /// The annotation line where the gene begins.
    pub line: u64,
}

impl Gene {
    /// Every (transcript index, site) pair, transcript by transcript, each in transcription
    /// order.
    pub fn transcript_sites(&self) -> Vec<(usize, Site)> {
        self.transcripts
            .iter()
            .enumerate()
            .flat_map(|(t, tx)| tx.sites(self.strand).into_iter().map(move |s| (t, s)))
            .collect()
    }

    /// The gene's distinct splice sites, sorted by position (then donor before acceptor).
    pub fn sites(&self) -> Vec<Site> {
        let mut sites: Vec<Site> = self.transcript_sites().into_iter().map(|(_, s)| s).collect();
        sites.sort_unstable();
        sites.dedup();
        sites
    }

    /// The gene's distinct introns, sorted.
    pub fn introns(&self) -> Vec<Intron> {
        let mut introns: Vec<Intron> = self.transcripts.iter().flat_map(|t| t.introns()).collect();
        introns.sort_unstable();
        introns.dedup();
        introns
    }

    /// Whether any transcript has two exons or more.
    pub fn has_sites(&self) -> bool {
        self.transcripts.iter().any(|t| t.exons.len() >= 2)
    }

    /// The gene's length in bases.
    pub fn len(&self) -> u64 {
        // Not `end + 1 - start`, which overflows for a gene ending at position u64::MAX.
        self.end - self.start + 1
    }

    /// Never true: a gene spans at least one base.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The 0-based offset of genomic `position` in the gene's sequence read 5' to 3' (the
    /// reverse complement on the minus strand): `position - start` on plus, `end -
    /// position` on minus; `None` outside the gene.
    pub fn offset(&self, position: u64) -> Option<u64> {
        if position < self.start || position > self.end {
            return None;
        }
        Some(match self.strand {
            Strand::Plus => position - self.start,
            Strand::Minus => self.end - position,
        })
    }

    /// Heap bytes this gene holds, for a caller that keeps genes to reserve for them.
    pub fn heap_bytes(&self) -> u64 {
        let strings = self.id.capacity()
            + self.name.as_ref().map_or(0, String::capacity)
            + self.biotype.as_ref().map_or(0, String::capacity)
            + self.chrom.capacity();
        let tx: usize = self
            .transcripts
            .iter()
            .map(|t| std::mem::size_of::<Transcript>() + t.id.capacity() + t.exons.capacity() * 16)
            .sum();
        (strings + tx + (self.transcripts.capacity() - self.transcripts.len()) * 56) as u64
    }
}
