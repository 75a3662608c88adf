//! The selected genes, streamed: aliases applied, the `[genome.select]` filters, a seeded
//! random draw, and every gene checked against the FASTA's sequences.

use std::collections::{BTreeMap, HashSet};
use std::io::BufRead;
use std::path::Path;
use std::sync::Arc;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::annotation::{AnnotationReader, AnnotationStats, Format};
use super::config::GenomeConfig;
use super::fasta::{describe_names, FastaIndex};
use super::input::{self, at_line};
use super::model::Gene;
use crate::error::InputError;
use crate::memory::MemoryReservation;

/// The filters of `[genome.select]`, with chromosome names made canonical.
#[derive(Debug, Clone, Default)]
pub struct GeneFilter {
    pub ids: Option<HashSet<String>>,
    pub biotypes: Option<HashSet<String>>,
    pub chromosomes: Option<HashSet<String>>,
    pub require_sites: bool,
}

impl GeneFilter {
    /// Whether `gene` (its `chrom` already canonical) passes every filter set.
    pub fn accepts(&self, gene: &Gene) -> bool {
        if self.require_sites && !gene.has_sites() {
            return false;
        }
        if let Some(ids) = &self.ids {
            if !ids.contains(&gene.id) {
                return false;
            }
        }
        if let Some(b) = &self.biotypes {
            if !gene.biotype.as_ref().is_some_and(|t| b.contains(t)) {
                return false;
            }
        }
        if let Some(c) = &self.chromosomes {
            if !c.contains(&gene.chrom) {
                return false;
            }
        }
        true
    }

    /// Heap bytes held by the sets.
    fn heap_bytes(&self) -> u64 {
        let set = |s: &Option<HashSet<String>>| {
            s.as_ref()
                .map_or(0, |s| s.iter().map(|x| x.len() as u64 + 48).sum::<u64>())
        };
        set(&self.ids) + set(&self.biotypes) + set(&self.chromosomes)
    }
}

/// Reads a gene id list: one id a line, blank lines and `#` comments skipped.
pub fn read_id_list(path: &Path) -> Result<HashSet<String>, InputError> {
    let (reader, compression) = input::open_text(path)?;
    let mut ids = HashSet::new();
    for (i, line) in reader.lines().enumerate() {
        let line = line.map_err(|e| input::read_error(path, i as u64 + 1, compression, &e))?;
        let id = line.split('#').next().unwrap_or("").trim();
        if !id.is_empty() {
            ids.insert(id.to_string());
        }
    }
    if ids.is_empty() {
        return Err(InputError::new("no gene id in the list (one id a line)")
            .file(path)
            .hint("genome.select.ids names this file"));
    }
    Ok(ids)
}

/// The genes `[genome.select]` picks, in annotation order, each checked against the FASTA
/// when one is given.
pub struct GeneStream {
    reader: AnnotationReader,
    filter: GeneFilter,
    aliases: BTreeMap<String, String>,
    fasta: Option<Arc<FastaIndex>>,
    /// Ordinals (among the genes that pass the filters) of the genes drawn, sorted.
    chosen: Option<Vec<u64>>,
    next_chosen: usize,
    passing: u64,
    selected: u64,
    found_ids: HashSet<String>,
    failed: bool,
    _reservation: MemoryReservation,
}

impl GeneStream {
    /// Opens the annotation of `cfg` with its selection. `fasta`, when given, is checked
    /// for every selected gene's chromosome; `seed` seeds `select.random` unless
    /// `select.seed` is set. A random draw reads the annotation twice: once to count the
    /// genes that pass the filters (and check them all), once to hand over those drawn.
    pub fn open(
        cfg: &GenomeConfig,
        fasta: Option<Arc<FastaIndex>>,
        seed: u64,
        parent: &MemoryReservation,
    ) -> anyhow::Result<Self> {
        let s = &cfg.select;
        let canon = |names: &Vec<String>| -> HashSet<String> {
            names
                .iter()
                .map(|n| cfg.canonical(n.trim()).to_string())
                .collect()
        };
        let filter = GeneFilter {
            ids: match &s.ids {
                Some(p) => Some(read_id_list(p)?),
                None => None,
            },
            biotypes: s
                .biotypes
                .as_ref()
                .map(|b| b.iter().map(|x| x.trim().to_string()).collect()),
            chromosomes: s.chromosomes.as_ref().map(canon),
            require_sites: s.require_sites,
        };
        let mut reservation = parent.new_empty();
        reservation.try_grow(filter.heap_bytes())?;
        let open_reader = || AnnotationReader::open(&cfg.annotation, cfg.format, cfg.max_open_genes, parent);
        let mut stream = Self {
            reader: open_reader()?,
            filter,
            aliases: cfg.aliases.clone(),
            fasta,
            chosen: None,
            next_chosen: 0,
            passing: 0,
            selected: 0,
            found_ids: HashSet::new(),
            failed: false,
            _reservation: reservation,
        };
        if let Some(n) = s.random {
            // Pass 1: count (and check) the genes that pass.
            for g in stream.by_ref() {
                g?;
            }
            let total = stream.passing;
            let amount = (n as u64).min(total);
            stream._reservation.try_grow(8 * amount)?;
            let mut rng = ChaCha8Rng::seed_from_u64(s.seed.unwrap_or(seed));
            let mut chosen: Vec<u64> = rand::seq::index::sample(&mut rng, total as usize, amount as usize)
                .into_iter()
                .map(|i| i as u64)
                .collect();
            chosen.sort_unstable();
            stream.reader = open_reader()?;
            stream.chosen = Some(chosen);
            stream.passing = 0;
            stream.selected = 0;
            stream.found_ids.clear();
        }
        Ok(stream)
    }

    /// The annotation's format.
    pub fn format(&self) -> Format {
        self.reader.format()
    }

    /// What the annotation stream has seen so far.
    pub fn stats(&self) -> &AnnotationStats {
        self.reader.stats()
    }

    /// Genes handed over so far.
    pub fn selected(&self) -> u64 {
        self.selected
    }

    /// Ids of `select.ids` that named no gene of the annotation (complete once the stream
    /// has ended), sorted.
    pub fn unmatched_ids(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .filter
            .ids
            .iter()
            .flatten()
            .filter(|id| !self.found_ids.contains(*id))
            .cloned()
            .collect();
        v.sort();
        v
    }

    fn next_gene(&mut self) -> anyhow::Result<Option<Gene>> {
        loop {
            if let Some(ch) = &self.chosen {
                if self.next_chosen >= ch.len() {
                    return Ok(None);
                }
            }
            let Some(mut gene) = self.reader.next_gene()? else {
                return Ok(None);
            };
            let raw = gene.chrom.clone();
            if let Some(c) = self.aliases.get(&raw) {
                gene.chrom = c.clone();
            }
            if self.filter.ids.as_ref().is_some_and(|ids| ids.contains(&gene.id)) {
                self.found_ids.insert(gene.id.clone());
            }
            if !self.filter.accepts(&gene) {
                continue;
            }
            if let Some(fasta) = &self.fasta {
                check_chromosome(fasta, &gene, &raw, self.reader.path())?;
            }
            let ordinal = self.passing;
            self.passing += 1;
            if let Some(ch) = &self.chosen {
                if ch[self.next_chosen] != ordinal {
                    continue;
                }
                self.next_chosen += 1;
            }
            self.selected += 1;
            return Ok(Some(gene));
        }
    }
}

impl Iterator for GeneStream {
    type Item = anyhow::Result<Gene>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let r = self.next_gene().transpose();
        if matches!(r, Some(Err(_))) {
            self.failed = true;
        }
        r
    }
}

/// The FASTA must hold the gene's chromosome, and the gene must end within it.
pub fn check_chromosome(
    fasta: &FastaIndex,
    gene: &Gene,
    raw: &str,
    annotation: &Path,
) -> Result<(), InputError> {
    match fasta.get(&gene.chrom) {
        Some(rec) if gene.end > rec.length => Err(at_line(
            annotation,
            gene.line,
            format!(
                "gene `{}` ends at {} but sequence `{}` of the FASTA {} has {} bases: the annotation \
                 and the FASTA are of different assemblies",
                gene.id,
                gene.end,
                gene.chrom,
                fasta.path().display(),
                rec.length
            ),
        )),
        Some(_) => Ok(()),
        None => {
            let shown = if raw == gene.chrom {
                format!("`{raw}`")
            } else {
                format!("`{raw}` (alias of `{}`)", gene.chrom)
            };
            let mut e = at_line(
                annotation,
                gene.line,
                format!(
                    "chromosome {shown} of gene `{}` is not in the FASTA {} ({})",
                    gene.id,
                    fasta.path().display(),
                    describe_names(fasta)
                ),
            );
            e = match suggest(raw, fasta) {
                Some(name) => e.hint(format!(
                    "if `{raw}` is `{name}` of the FASTA, map it in the config: [genome.aliases] \
                     \"{raw}\" = \"{name}\""
                )),
                None => e.hint(format!(
                    "if the FASTA names `{raw}` differently, map it under [genome.aliases] \
                     (\"{raw}\" = \"FASTA name\"); else leave it out with genome.select.chromosomes"
                )),
            };
            Err(e)
        }
    }
}

/// A FASTA name that `name` likely means: the same after dropping case, a `chr` prefix and
/// a `.N` version (and M = MT); else the FASTA's only sequence.
pub fn suggest(name: &str, fasta: &FastaIndex) -> Option<String> {
    fn norm(s: &str) -> String {
        let s = s.to_ascii_lowercase();
        let s = s.strip_prefix("chr").unwrap_or(&s).to_string();
        let s = match s.rsplit_once('.') {
            Some((a, v)) if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) => a.to_string(),
            _ => s,
        };
        if s == "mt" {
            "m".into()
        } else {
            s
        }
    }
    let n = norm(name);
    let hits: Vec<&str> = fasta
        .records()
        .iter()
        .map(|r| r.name.as_str())
        .filter(|f| norm(f) == n)
        .collect();
    match (hits.as_slice(), fasta.records()) {
        ([one], _) => Some(one.to_string()),
        ([], [only]) => Some(only.name.clone()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::genome::FaiRecord;

    fn index(names: &[&str]) -> FastaIndex {
        let records = names
            .iter()
            .map(|n| FaiRecord {
                name: n.to_string(),
                length: 10,
                offset: 0,
                line_bases: 10,
                line_width: 11,
            })
            .collect();
        FastaIndex::new(Path::new("g.fa"), records)
    }

    #[test]
    fn suggestions_ignore_case_chr_prefixes_and_versions() {
        let f = index(&["1", "2", "MT", "NC_004353.4"]);
        assert_eq!(suggest("chr2", &f).as_deref(), Some("2"));
        assert_eq!(suggest("chrM", &f).as_deref(), Some("MT"));
        assert_eq!(suggest("nc_004353", &f).as_deref(), Some("NC_004353.4"));
        assert_eq!(suggest("chrZ", &f), None);
        assert_eq!(
            suggest("4", &index(&["NC_004353.4"])).as_deref(),
            Some("NC_004353.4")
        );
    }
}
