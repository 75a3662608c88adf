//! The `[genome]` config section: where the sequence and the annotation are, how chromosome
//! names map between them, and which genes to take.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// `[genome]`: a FASTA, its annotation, the alias map and the gene selection.
///
/// ```toml
/// [genome]
/// fasta = "fixtures/genome/dmel_chr4.fna.gz"
/// annotation = "fixtures/genome/dmel_chr4.gff3.gz"
///
/// [genome.aliases]          # annotation (or selection) name = FASTA name
/// "4" = "NC_004353.4"
/// chr4 = "NC_004353.4"
///
/// [genome.select]           # every key optional; none at all = every gene with a splice site
/// biotypes = ["protein_coding"]
/// random = 50
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenomeConfig {
    /// The genome: FASTA, plain, gzip or bgzip.
    pub fasta: PathBuf,
    /// The annotation: GFF3 or GTF, plain or gzip (or bgzip).
    pub annotation: PathBuf,
    /// `auto` (the default) tells GFF3 from GTF by the file's content, then its extension.
    #[serde(default)]
    pub format: AnnotationFormat,
    /// Other names of FASTA sequences: `alias = "FASTA name"`. Applies to the annotation's
    /// column 1 and to `select.chromosomes`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub aliases: BTreeMap<String, String>,
    #[serde(default)]
    pub select: GeneSelection,
    /// Genes whose features may be interleaved in the annotation at once (see
    /// docs/genome.md); a gene seen again after more than this many others started is an
    /// error naming its lines.
    #[serde(default = "default_max_open_genes")]
    pub max_open_genes: usize,
    /// Where indexes go when they cannot be written beside the FASTA, and where a plain
    /// gzip FASTA is decompressed; by default `<run.out_dir>/cache/genome`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_dir: Option<PathBuf>,
}

/// The annotation's format.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AnnotationFormat {
    #[default]
    Auto,
    Gff3,
    Gtf,
}

/// `[genome.select]`: the genes to take. Filters combine (a gene must pass all that are
/// set); `random` then draws that many of the genes that pass.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GeneSelection {
    /// A file of gene ids, one a line (`#` starts a comment).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ids: Option<PathBuf>,
    /// Gene biotypes to keep (GFF3 `biotype` / `gene_biotype` / `gene_type`, GTF
    /// `gene_type` / `gene_biotype`); a gene without one never matches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub biotypes: Option<Vec<String>>,
    /// Chromosomes to keep, by FASTA name or alias.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chromosomes: Option<Vec<String>>,
    /// Take this many of the genes that pass the filters, at random (all of them if fewer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub random: Option<usize>,
    /// Seed of `random`; defaults to `run.seed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// Keep only genes with at least one splice site (a transcript of two exons or more).
    #[serde(default = "yes")]
    pub require_sites: bool,
}

impl Default for GeneSelection {
    fn default() -> Self {
        Self {
            ids: None,
            biotypes: None,
            chromosomes: None,
            random: None,
            seed: None,
            require_sites: true,
        }
    }
}

fn yes() -> bool {
    true
}

/// The default of `genome.max_open_genes`.
pub fn default_max_open_genes() -> usize {
    16
}

/// The largest `genome.max_open_genes` accepted: each open gene is searched on every line.
pub const MAX_OPEN_GENES: usize = 4096;

impl GenomeConfig {
    /// A config for `fasta` and `annotation` with every other key at its default.
    pub fn new(fasta: impl Into<PathBuf>, annotation: impl Into<PathBuf>) -> Self {
        Self {
            fasta: fasta.into(),
            annotation: annotation.into(),
            format: AnnotationFormat::Auto,
            aliases: BTreeMap::new(),
            select: GeneSelection::default(),
            max_open_genes: default_max_open_genes(),
            cache_dir: None,
        }
    }

    /// The FASTA name a chromosome name stands for: its alias target, or itself.
    pub fn canonical<'a>(&'a self, name: &'a str) -> &'a str {
        self.aliases.get(name).map(String::as_str).unwrap_or(name)
    }

    /// The cache directory: `cache_dir` if set, else `default`.
    pub fn cache_dir_or<'a>(&'a self, default: &'a Path) -> &'a Path {
        self.cache_dir.as_deref().unwrap_or(default)
    }

    /// Checks what can be checked without reading files; the error names the dotted key
    /// (as `Config::validate` reports it) and what to write instead.
    pub fn validate(&self) -> Result<(), (String, String)> {
        let err = |k: &str, m: &str| Err((format!("genome.{k}"), m.to_string()));
        if self.fasta.as_os_str().is_empty() {
            return err(
                "fasta",
                "must name the genome's FASTA file (plain, gzip or bgzip)",
            );
        }
        if self.annotation.as_os_str().is_empty() {
            return err("annotation", "must name the GFF3 or GTF annotation file");
        }
        if self.max_open_genes == 0 || self.max_open_genes > MAX_OPEN_GENES {
            return err(
                "max_open_genes",
                &format!("must be from 1 to {MAX_OPEN_GENES} (the default is 16)"),
            );
        }
        for (alias, target) in &self.aliases {
            let key = format!("aliases.{alias}");
            if alias.is_empty() || target.is_empty() {
                return err(&key, "an alias and its FASTA name must both be non-empty");
            }
            if alias == target {
                return err(&key, "maps a name to itself; leave it out");
            }
            if let Some(next) = self.aliases.get(target) {
                return err(
                    &key,
                    &format!(
                        "maps `{alias}` to `{target}`, which is itself an alias (of `{next}`); \
                         map every alias straight to the FASTA's name: \"{alias}\" = \"{next}\""
                    ),
                );
            }
        }
        let s = &self.select;
        if s.ids.as_ref().is_some_and(|p| p.as_os_str().is_empty()) {
            return err("select.ids", "must name a file of gene ids, one a line");
        }
        for (key, list) in [("biotypes", &s.biotypes), ("chromosomes", &s.chromosomes)] {
            if let Some(list) = list {
                if list.is_empty() {
                    return err(
                        &format!("select.{key}"),
                        "an empty list selects no gene; leave the key out to keep them all",
                    );
                }
                if list.iter().any(|x| x.trim().is_empty()) {
                    return err(&format!("select.{key}"), "holds an empty name");
                }
            }
        }
        if s.random == Some(0) {
            return err(
                "select.random",
                "must be at least 1; leave it out to keep every gene that passes the filters",
            );
        }
        if s.seed.is_some() && s.random.is_none() {
            return err("select.seed", "seeds `select.random`, which is not set");
        }
        Ok(())
    }
}
