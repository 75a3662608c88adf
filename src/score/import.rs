//! Scores from a file: users who ran SpliceAI or OpenSpliceAI elsewhere hand over its
//! per-nucleotide scores (Parquet or TSV, plain or gzip) instead of running the network here.
//!
//! [`ScoreFile::fill`] reads the whole file once per batch of genes and fills the same
//! `[neither, acceptor, donor]` rows the network would, so that everything downstream cannot
//! tell the two sources apart. The file may be in any order and hold any other positions; every
//! position of every gene of the batch must be in it, and every score must be a probability.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, Read};
use std::path::{Path, PathBuf};

use arrow::array::{Array, AsArray};
use arrow::datatypes::{DataType, Float64Type, Int64Type};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ProjectionMask;
use serde::{Deserialize, Serialize};

use crate::error::InputError;
use crate::genome::{Compression, Gene, GenomeConfig, Strand};

/// `[score.file]` in the config.
///
/// ```toml
/// [score.file]
/// path = "nucleotide_scores.tsv.gz"
/// [score.file.columns]      # every key optional; these are the defaults
/// chrom = "chrom"
/// position = "position"     # 1-based genomic, on the FASTA's forward strand
/// strand = "strand"
/// donor = "donor"
/// acceptor = "acceptor"
/// neither = "neither"       # may be absent from the file: then 1 - donor - acceptor
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScoreFileConfig {
    /// Parquet or TSV (plain or gzip), told by content: Parquet begins with `PAR1`.
    pub path: PathBuf,
    /// The names of the columns in the file.
    #[serde(default)]
    pub columns: ScoreColumns,
}

/// `[score.file.columns]`: which column of the file holds what.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScoreColumns {
    #[serde(default = "default_chrom")]
    pub chrom: String,
    /// 1-based genomic position on the FASTA's forward strand, whatever the gene's strand.
    #[serde(default = "default_position")]
    pub position: String,
    /// `+` / `-` (or `1` / `-1`).
    #[serde(default = "default_strand")]
    pub strand: String,
    #[serde(default = "default_donor")]
    pub donor: String,
    #[serde(default = "default_acceptor")]
    pub acceptor: String,
    /// Optional in the file: SpliceAI's three outputs sum to 1, so it can be derived.
    #[serde(default = "default_neither")]
    pub neither: String,
}

fn default_chrom() -> String {
    "chrom".into()
}
fn default_position() -> String {
    "position".into()
}
fn default_strand() -> String {
    "strand".into()
}
fn default_donor() -> String {
    "donor".into()
}
fn default_acceptor() -> String {
    "acceptor".into()
}
fn default_neither() -> String {
    "neither".into()
}

impl Default for ScoreColumns {
    fn default() -> Self {
        Self {
            chrom: default_chrom(),
            position: default_position(),
            strand: default_strand(),
            donor: default_donor(),
            acceptor: default_acceptor(),
            neither: default_neither(),
        }
    }
}

impl ScoreColumns {
    /// (key, column name) in a fixed order, for checks and messages.
    fn named(&self) -> [(&'static str, &str); 6] {
        [
            ("chrom", &self.chrom),
            ("position", &self.position),
            ("strand", &self.strand),
            ("donor", &self.donor),
            ("acceptor", &self.acceptor),
            ("neither", &self.neither),
        ]
    }
}

impl ScoreFileConfig {
    /// Checks what can be checked without reading the file; the error names the dotted key
    /// (as `Config::validate` reports it) and what to write instead.
    pub fn validate(&self) -> Result<(), (String, String)> {
        let err = |k: &str, m: String| Err((format!("score.file.{k}"), m));
        if self.path.as_os_str().is_empty() {
            return err(
                "path",
                "must name the score file (Parquet, or TSV plain or gzip)".into(),
            );
        }
        let named = self.columns.named();
        for (i, (key, name)) in named.iter().enumerate() {
            if name.trim().is_empty() {
                return err(&format!("columns.{key}"), "must name a column of the file".into());
            }
            if let Some((other, _)) = named[..i].iter().find(|(_, n)| n == name) {
                return err(
                    &format!("columns.{key}"),
                    format!(
                        "names column `{name}`, as `columns.{other}` does: each role needs its own column"
                    ),
                );
            }
        }
        Ok(())
    }
}

/// What one [`ScoreFile::fill`] pass read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FillStats {
    /// Data rows in the file.
    pub rows_read: u64,
    /// Rows that fell in at least one gene of the batch.
    pub rows_used: u64,
}

/// A score file opened and checked, ready for one pass per batch of genes.
pub struct ScoreFile {
    path: PathBuf,
    columns: ScoreColumns,
    genome: GenomeConfig,
    layout: Layout,
}

enum Layout {
    Tsv {
        at: Fields,
        fields: usize,
    },
    Parquet {
        /// Root columns to read.
        roots: Vec<usize>,
        has_neither: bool,
        working: u64,
    },
}

/// Field indices of a TSV's columns.
#[derive(Clone, Copy)]
struct Fields {
    chrom: usize,
    position: usize,
    strand: usize,
    donor: usize,
    acceptor: usize,
    neither: Option<usize>,
}

/// Rows per Parquet record batch: large enough that per-batch costs vanish, small enough that
/// a batch of the projected columns stays near a megabyte.
const PARQUET_BATCH_ROWS: usize = 8192;

/// The TSV pass's buffers: the file and gzip buffers (64 KiB each), the decoder's state, the
/// csv reader's buffer and one record, with room for long lines.
const TSV_WORKING_BYTES: u64 = 512 << 10;

const TEXT_BUFFER: usize = 64 << 10;

/// Out-of-range slack: scores written with limited decimals may round just past 0 or 1.
const SLACK: f32 = 1e-6;

/// Bytes [`ScoreFile::fill`] keeps per batch of `genes` besides the output arrays: a coverage
/// bitmap of `len / 8` bytes per gene plus its entry in the interval index.
pub fn coverage_bytes(genes: &[Gene]) -> u64 {
    genes.iter().map(|g| g.len().div_ceil(64) * 8 + 64).sum()
}

impl ScoreFile {
    /// Opens and checks the header/schema: every named column present (neither optional), with
    /// usable types.
    pub fn open(cfg: &ScoreFileConfig, genome: &GenomeConfig) -> Result<Self, InputError> {
        let path = &cfg.path;
        let head = read_head(path)?;
        let layout = if head.starts_with(b"PAR1") {
            open_parquet(path, &cfg.columns)?
        } else {
            let (mut reader, compression) = crate::genome::open_text(path)?;
            let (header, _) = read_header(&mut reader, path, compression)?;
            let names: Vec<&str> = header.iter().map(String::as_str).collect();
            check_relative_position(path, &cfg.columns, &names)?;
            let index_of = |name: &str| -> Result<Option<usize>, InputError> {
                match names.iter().position(|n| *n == name) {
                    Some(i) if names[i + 1..].contains(&name) => {
                        Err(InputError::new(format!("the header names column `{name}` twice"))
                            .file(path)
                            .column(name)
                            .hint("rename one of them"))
                    }
                    found => Ok(found),
                }
            };
            let find = |role: &str, name: &str| -> Result<usize, InputError> {
                index_of(name)?.ok_or_else(|| missing_column(path, role, name, &names))
            };
            let c = &cfg.columns;
            let at = Fields {
                chrom: find("chrom", &c.chrom)?,
                position: find("position", &c.position)?,
                strand: find("strand", &c.strand)?,
                donor: find("donor", &c.donor)?,
                acceptor: find("acceptor", &c.acceptor)?,
                neither: index_of(&c.neither)?,
            };
            Layout::Tsv {
                at,
                fields: names.len(),
            }
        };
        Ok(Self {
            path: path.clone(),
            columns: cfg.columns.clone(),
            genome: genome.clone(),
            layout,
        })
    }

    /// Whether the file has a `neither` column (else it is derived as `1 - donor - acceptor`).
    pub fn has_neither(&self) -> bool {
        match &self.layout {
            Layout::Tsv { at, .. } => at.neither.is_some(),
            Layout::Parquet { has_neither, .. } => *has_neither,
        }
    }

    /// Bytes `fill` needs beyond the output arrays (its read buffers), so the caller can
    /// reserve first; [`coverage_bytes`] prices what it keeps per gene.
    pub fn working_bytes(&self) -> u64 {
        match &self.layout {
            Layout::Tsv { .. } => TSV_WORKING_BYTES,
            Layout::Parquet { working, .. } => *working,
        }
    }

    /// One streaming pass over the whole file, filling the scores of `genes` (a batch chosen by
    /// the caller). `out[g]` has `genes[g].len()` rows already allocated by the caller;
    /// `out[g][i]` is genomic position `genes[g].start + i`, as `[neither, acceptor, donor]`
    /// (SpliceAI/Keras channel order).
    pub fn fill(&self, genes: &[Gene], out: &mut [Vec<[f32; 3]>]) -> anyhow::Result<FillStats> {
        anyhow::ensure!(
            out.len() == genes.len(),
            "score file: {} output arrays for {} genes",
            out.len(),
            genes.len()
        );
        for (g, o) in genes.iter().zip(out.iter()) {
            anyhow::ensure!(
                o.len() as u64 == g.len(),
                "score file: gene {} has {} positions but its output array {} rows",
                g.id,
                g.len(),
                o.len()
            );
        }
        let mut pass = Pass::new(self, genes, out);
        match &self.layout {
            Layout::Tsv { at, fields } => self.fill_tsv(&mut pass, *at, *fields)?,
            Layout::Parquet { roots, .. } => self.fill_parquet(&mut pass, roots)?,
        }
        pass.finish()
    }

    fn fill_tsv(&self, pass: &mut Pass, at: Fields, fields: usize) -> Result<(), InputError> {
        let path = &self.path;
        let (mut reader, compression) = crate::genome::open_text(path)?;
        let (_, header_line) = read_header(&mut reader, path, compression)?;
        let mut csv = csv::ReaderBuilder::new()
            .delimiter(b'\t')
            .has_headers(false)
            .flexible(true)
            .buffer_capacity(TEXT_BUFFER)
            .from_reader(reader);
        // One record for the whole pass: reading a row allocates nothing.
        let mut rec = csv::ByteRecord::with_capacity(256, fields);
        let c = &self.columns;
        let mut row = 0u64;
        loop {
            match csv.read_byte_record(&mut rec) {
                Ok(true) => {}
                Ok(false) => break,
                Err(e) => {
                    let line = header_line + rec.position().map_or(row + 1, |p| p.line());
                    return Err(csv_error(path, line, compression, &e));
                }
            }
            row += 1;
            pass.stats.rows_read += 1;
            let line = header_line + rec.position().map_or(row, |p| p.line());
            let loc = Loc {
                row,
                line: Some(line),
            };
            if rec.len() != fields {
                return Err(self
                    .at(
                        loc,
                        None,
                        format!("has {} fields where the header has {fields}", rec.len()),
                    )
                    .hint("the file must be tab-separated, with a value in every column"));
            }
            let field = |i: usize| rec.get(i).unwrap_or_default().trim_ascii();
            let strand = parse_strand(field(at.strand)).ok_or_else(|| {
                self.bad_text(loc, &c.strand, field(at.strand), "is not a strand: +, -, 1 or -1")
            })?;
            let position = parse_position(field(at.position)).ok_or_else(|| {
                self.bad_text(loc, &c.position, field(at.position), "is not a 1-based position")
            })?;
            if !pass.targets(field(at.chrom), strand, position, loc, self)? {
                continue;
            }
            let mut number = |i: usize, column: &str| -> Result<Option<f32>, InputError> {
                let text = field(i);
                let v = if text.is_empty() {
                    f32::NAN
                } else {
                    std::str::from_utf8(text)
                        .ok()
                        .and_then(|s| s.parse::<f32>().ok())
                        .ok_or_else(|| self.bad_text(loc, column, text, "is not a number"))?
                };
                Ok(pass.check(v, loc, column, || shown(text)))
            };
            let donor = number(at.donor, &c.donor)?;
            let acceptor = number(at.acceptor, &c.acceptor)?;
            let neither = match at.neither {
                Some(i) => Some(number(i, &c.neither)?),
                None => None,
            };
            pass.put(position, neither, acceptor, donor);
        }
        Ok(())
    }

    fn fill_parquet(&self, pass: &mut Pass, roots: &[usize]) -> Result<(), InputError> {
        let path = &self.path;
        let file = File::open(path).map_err(|e| crate::error::io_error(path, "cannot open", &e))?;
        let builder = crate::io::read_footer(|| ParquetRecordBatchReaderBuilder::try_new(file))
            .map_err(|e| parquet_error(path, &e))?;
        let mask = ProjectionMask::roots(builder.parquet_schema(), roots.iter().copied());
        let reader = crate::io::batches(builder.with_projection(mask).with_batch_size(PARQUET_BATCH_ROWS))
            .map_err(|e| parquet_error(path, &e))?;
        let c = &self.columns;
        // Reused across batches.
        let (mut donor, mut acceptor, mut neither) = (Vec::new(), Vec::new(), Vec::new());
        let mut first_row = 0u64;
        for batch in reader {
            let batch = batch.map_err(|e| {
                InputError::new(format!("cannot decode: {e}"))
                    .file(path)
                    .hint("the file is truncated or corrupt: write it again")
            })?;
            let column = |name: &str| {
                batch.column_by_name(name).cloned().ok_or_else(|| {
                    InputError::new("column vanished from a batch")
                        .file(path)
                        .column(name)
                })
            };
            let as_text = |name: &str| -> Result<arrow::array::ArrayRef, InputError> {
                arrow::compute::cast(&column(name)?, &DataType::Utf8).map_err(|e| {
                    InputError::new(format!("cannot read as text: {e}"))
                        .file(path)
                        .column(name)
                })
            };
            let chrom = as_text(&c.chrom)?;
            let chrom = chrom.as_string::<i32>();
            let strand = as_text(&c.strand)?;
            let strand = strand.as_string::<i32>();
            let position = column(&c.position)?;
            let position = Positions::new(&position).map_err(|e| e.file(path).column(&c.position))?;
            let numbers = |name: &str, out: &mut Vec<f32>| {
                crate::io::try_to_f32(column(name)?.as_ref(), out).map_err(|e| e.file(path).column(name))
            };
            numbers(&c.donor, &mut donor)?;
            numbers(&c.acceptor, &mut acceptor)?;
            let has_neither = batch.column_by_name(&c.neither).is_some();
            if has_neither {
                numbers(&c.neither, &mut neither)?;
            }
            let shown_at = |name: &str, i: usize, v: f32| {
                let nulls = batch.column_by_name(name).is_some_and(|a| a.is_null(i));
                if nulls {
                    "a missing value".to_string()
                } else {
                    v.to_string()
                }
            };
            for i in 0..batch.num_rows() {
                let loc = Loc {
                    row: first_row + i as u64,
                    line: None,
                };
                pass.stats.rows_read += 1;
                let s = row_text(strand, i)
                    .ok_or_else(|| self.at(loc, Some(c.strand.as_str()), "is missing".into()))?;
                let strand = parse_strand(s)
                    .ok_or_else(|| self.bad_text(loc, &c.strand, s, "is not a strand: +, -, 1 or -1"))?;
                let position = position.get(i).map_err(|v| {
                    self.at(
                        loc,
                        Some(c.position.as_str()),
                        format!("{v} is not a 1-based position"),
                    )
                })?;
                let name = row_text(chrom, i)
                    .ok_or_else(|| self.at(loc, Some(c.chrom.as_str()), "is missing".into()))?;
                if !pass.targets(name, strand, position, loc, self)? {
                    continue;
                }
                let d = pass.check(donor[i], loc, &c.donor, || shown_at(&c.donor, i, donor[i]));
                let a = pass.check(acceptor[i], loc, &c.acceptor, || {
                    shown_at(&c.acceptor, i, acceptor[i])
                });
                let n = has_neither.then(|| {
                    pass.check(neither[i], loc, &c.neither, || {
                        shown_at(&c.neither, i, neither[i])
                    })
                });
                pass.put(position, n, a, d);
            }
            first_row += batch.num_rows() as u64;
        }
        Ok(())
    }

    /// An error at a row (and, for TSV, a line) of the file.
    fn at(&self, loc: Loc, column: Option<&str>, message: String) -> InputError {
        let message = match loc.line {
            Some(line) => format!("{message} (line {line})"),
            None => message,
        };
        let e = InputError::new(message).file(&self.path).row(loc.row);
        match column {
            Some(c) => e.column(c),
            None => e,
        }
    }

    fn bad_text(&self, loc: Loc, column: &str, text: &[u8], what: &str) -> InputError {
        self.at(loc, Some(column), format!("{} {what}", shown(text)))
            .hint("check that [score.file.columns] names the right columns")
    }
}

/// Where a row is: its row number as errors give it (TSV: 1-based data row; Parquet: 0-based
/// row index in the file) and, for TSV, its line.
#[derive(Clone, Copy)]
struct Loc {
    row: u64,
    line: Option<u64>,
}

/// The state of one pass: where each gene is, what has been seen, the first bad value.
struct Pass<'a> {
    genes: &'a [Gene],
    out: &'a mut [Vec<[f32; 3]>],
    index: GeneIndex<'a>,
    genome: &'a GenomeConfig,
    /// One bit per position of each gene.
    seen: Vec<Vec<u64>>,
    /// The last chromosome name read and its slot in the index: files are mostly sorted, so
    /// names are looked up only when they change.
    last_chrom: Vec<u8>,
    last_slot: Option<usize>,
    hits: Vec<u32>,
    out_of_range: u64,
    first_out_of_range: Option<InputError>,
    path: &'a Path,
    stats: FillStats,
}

impl<'a> Pass<'a> {
    fn new(file: &'a ScoreFile, genes: &'a [Gene], out: &'a mut [Vec<[f32; 3]>]) -> Self {
        Self {
            genes,
            out,
            index: GeneIndex::new(genes),
            genome: &file.genome,
            seen: genes
                .iter()
                .map(|g| vec![0u64; g.len().div_ceil(64) as usize])
                .collect(),
            last_chrom: Vec::new(),
            last_slot: None,
            hits: Vec::new(),
            out_of_range: 0,
            first_out_of_range: None,
            path: &file.path,
            stats: FillStats::default(),
        }
    }

    /// Finds the genes a row falls in; false when none does.
    fn targets(
        &mut self,
        chrom: &[u8],
        strand: Strand,
        position: u64,
        loc: Loc,
        file: &ScoreFile,
    ) -> Result<bool, InputError> {
        if chrom != self.last_chrom.as_slice() || self.last_chrom.is_empty() {
            let name = std::str::from_utf8(chrom)
                .map_err(|_| file.bad_text(loc, &file.columns.chrom, chrom, "is not UTF-8 text"))?;
            self.last_slot = self.index.slots.get(self.genome.canonical(name)).copied();
            self.last_chrom.clear();
            self.last_chrom.extend_from_slice(chrom);
        }
        self.hits.clear();
        if let Some(slot) = self.last_slot {
            self.index.lanes[slot][strand_lane(strand)].find(position, &mut self.hits);
        }
        Ok(!self.hits.is_empty())
    }

    /// A score checked against [0, 1]: clamped within the slack, else counted (and the first
    /// remembered) and `None`.
    fn check(&mut self, v: f32, loc: Loc, column: &str, shown: impl FnOnce() -> String) -> Option<f32> {
        if v.is_finite() && (-SLACK..=1.0 + SLACK).contains(&v) {
            return Some(v.clamp(0.0, 1.0));
        }
        self.out_of_range += 1;
        if self.first_out_of_range.is_none() {
            let message = format!("{} is not a score from 0 to 1", shown());
            let message = match loc.line {
                Some(line) => format!("{message} (line {line})"),
                None => message,
            };
            self.first_out_of_range = Some(
                InputError::new(message)
                    .file(self.path)
                    .row(loc.row)
                    .column(column),
            );
        }
        None
    }

    /// Writes a row into every gene it falls in, unless one of its scores was bad.
    fn put(
        &mut self,
        position: u64,
        neither: Option<Option<f32>>,
        acceptor: Option<f32>,
        donor: Option<f32>,
    ) {
        let (Some(a), Some(d)) = (acceptor, donor) else {
            return;
        };
        let n = match neither {
            Some(Some(n)) => n,
            Some(None) => return,
            None => (1.0 - d - a).max(0.0),
        };
        self.stats.rows_used += 1;
        for &g in &self.hits {
            let g = g as usize;
            let off = (position - self.genes[g].start) as usize;
            self.out[g][off] = [n, a, d];
            self.seen[g][off / 64] |= 1 << (off % 64);
        }
    }

    /// The pass's verdict: bad values first (they leave holes), then positions never seen.
    fn finish(self) -> anyhow::Result<FillStats> {
        if let Some(first) = self.first_out_of_range {
            let n = self.out_of_range;
            let message = format!(
                "{n} score value{} missing, not finite or outside [0, 1]; the first: {}",
                if n == 1 { " is" } else { "s are" },
                first.message
            );
            let mut e = InputError::new(message).hint(
                "scores are probabilities: check that [score.file.columns] maps donor, acceptor and \
                 neither to the right columns",
            );
            e = e.file(self.path);
            if let Some(row) = first.row {
                e = e.row(row);
            }
            if let Some(column) = &first.column {
                e = e.column(column.clone());
            }
            return Err(e.into());
        }
        let mut missing = 0u64;
        let mut genes_missing = 0u64;
        let mut first: Option<(usize, u64)> = None;
        for (g, gene) in self.genes.iter().enumerate() {
            let len = gene.len();
            let seen: u64 = self.seen[g].iter().map(|w| w.count_ones() as u64).sum();
            if seen == len {
                continue;
            }
            missing += len - seen;
            genes_missing += 1;
            if first.is_none() {
                let off = self.seen[g]
                    .iter()
                    .enumerate()
                    .find(|(_, w)| **w != u64::MAX)
                    .map(|(i, w)| i as u64 * 64 + w.trailing_ones() as u64)
                    .unwrap_or(0);
                first = Some((g, off));
            }
        }
        if let Some((g, off)) = first {
            let gene = &self.genes[g];
            let message = format!(
                "{missing} position{} of {genes_missing} gene{} {} not in the file; the first is \
                 {}:{} ({}) of gene {}",
                if missing == 1 { "" } else { "s" },
                if genes_missing == 1 { "" } else { "s" },
                if missing == 1 { "is" } else { "are" },
                gene.chrom,
                gene.start + off,
                gene.strand,
                gene.id
            );
            return Err(InputError::new(message)
                .file(self.path)
                .hint(
                    "the file must hold a score for every position of every selected gene, on \
                     the gene's strand: score them all, or restrict [genome.select] to the genes \
                     it holds",
                )
                .into());
        }
        Ok(self.stats)
    }
}

fn strand_lane(strand: Strand) -> usize {
    match strand {
        Strand::Plus => 0,
        Strand::Minus => 1,
    }
}

/// The batch's genes by (chromosome, strand), sorted by start, for a binary search per row.
struct GeneIndex<'a> {
    slots: HashMap<&'a str, usize>,
    lanes: Vec<[Lane; 2]>,
}

#[derive(Default)]
struct Lane {
    start: Vec<u64>,
    end: Vec<u64>,
    /// The largest end among genes `0..=i`: the backward search stops when it falls short of
    /// the position, which makes overlapping genes cheap to find.
    reach: Vec<u64>,
    gene: Vec<u32>,
}

impl<'a> GeneIndex<'a> {
    fn new(genes: &'a [Gene]) -> Self {
        let mut slots = HashMap::new();
        let mut lists: Vec<[Vec<(u64, u64, u32)>; 2]> = Vec::new();
        for (g, gene) in genes.iter().enumerate() {
            let next = lists.len();
            let slot = *slots.entry(gene.chrom.as_str()).or_insert(next);
            if slot == next {
                lists.push([Vec::new(), Vec::new()]);
            }
            lists[slot][strand_lane(gene.strand)].push((gene.start, gene.end, g as u32));
        }
        let lanes = lists
            .into_iter()
            .map(|pair| {
                pair.map(|mut list| {
                    list.sort_unstable();
                    let mut lane = Lane::default();
                    let mut reach = 0;
                    for (start, end, g) in list {
                        reach = reach.max(end);
                        lane.start.push(start);
                        lane.end.push(end);
                        lane.reach.push(reach);
                        lane.gene.push(g);
                    }
                    lane
                })
            })
            .collect();
        Self { slots, lanes }
    }
}

impl Lane {
    /// Pushes every gene whose `start..=end` holds `position`.
    fn find(&self, position: u64, hits: &mut Vec<u32>) {
        let below = self.start.partition_point(|&s| s <= position);
        for j in (0..below).rev() {
            if self.reach[j] < position {
                break;
            }
            if self.end[j] >= position {
                hits.push(self.gene[j]);
            }
        }
    }
}

/// Positions of a Parquet batch as integers, whatever their numeric type.
enum Positions {
    Int(arrow::array::ArrayRef),
    Float(arrow::array::ArrayRef),
}

impl Positions {
    fn new(array: &arrow::array::ArrayRef) -> Result<Self, InputError> {
        let dt = array.data_type();
        let cast = |to: &DataType| {
            arrow::compute::cast(array, to)
                .map_err(|e| InputError::new(format!("cannot read positions of type {dt}: {e}")))
        };
        if dt.is_integer() {
            Ok(Positions::Int(cast(&DataType::Int64)?))
        } else {
            Ok(Positions::Float(cast(&DataType::Float64)?))
        }
    }

    /// The position of row `i`, or the value to name in the error.
    fn get(&self, i: usize) -> Result<u64, String> {
        match self {
            Positions::Int(a) => {
                let a = a.as_primitive::<Int64Type>();
                if a.is_null(i) {
                    return Err("a missing value".into());
                }
                let v = a.value(i);
                u64::try_from(v)
                    .ok()
                    .filter(|&v| v >= 1)
                    .ok_or_else(|| v.to_string())
            }
            Positions::Float(a) => {
                let a = a.as_primitive::<Float64Type>();
                if a.is_null(i) {
                    return Err("a missing value".into());
                }
                let v = a.value(i);
                float_position(v).ok_or_else(|| v.to_string())
            }
        }
    }
}

/// Row `i` of a text column, trimmed; `None` when null.
fn row_text(a: &arrow::array::StringArray, i: usize) -> Option<&[u8]> {
    (!a.is_null(i)).then(|| a.value(i).trim().as_bytes())
}

fn float_position(v: f64) -> Option<u64> {
    (v.fract() == 0.0 && v >= 1.0 && v <= (1u64 << 53) as f64).then_some(v as u64)
}

fn parse_strand(s: &[u8]) -> Option<Strand> {
    match s {
        b"+" | b"1" | b"+1" => Some(Strand::Plus),
        b"-" | b"-1" => Some(Strand::Minus),
        _ => None,
    }
}

/// A 1-based position; integral floats too (`123.0`), as pandas writes an integer column that
/// once held a missing value.
fn parse_position(s: &[u8]) -> Option<u64> {
    let s = std::str::from_utf8(s).ok()?;
    match s.parse::<u64>() {
        Ok(v) => (v >= 1).then_some(v),
        Err(_) => float_position(s.parse::<f64>().ok()?),
    }
}

/// A field as an error shows it, cut short if long.
fn shown(text: &[u8]) -> String {
    if text.is_empty() {
        return "a missing value".into();
    }
    let s = String::from_utf8_lossy(&text[..text.len().min(40)]);
    if text.len() > 40 {
        format!("{s:?}...")
    } else {
        format!("{s:?}")
    }
}

/// The first bytes of a file: enough to tell Parquet, gzip and BGZF apart.
fn read_head(path: &Path) -> Result<Vec<u8>, InputError> {
    let mut f = File::open(path).map_err(|e| crate::error::io_error(path, "cannot open", &e))?;
    let mut head = vec![0u8; 16];
    let mut n = 0;
    while n < head.len() {
        match f.read(&mut head[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(crate::error::io_error(path, "cannot read", &e)),
        }
    }
    head.truncate(n);
    Ok(head)
}

fn csv_error(path: &Path, line: u64, compression: Compression, e: &csv::Error) -> InputError {
    match e.kind() {
        csv::ErrorKind::Io(io) => crate::genome::read_error(path, line, compression, io),
        _ => InputError::new(format!("cannot read (line {line}): {e}")).file(path),
    }
}

/// Reads up to the header, skipping `#` comments and blank lines before it: its names, trimmed
/// and unquoted, and its line number.
fn read_header(
    reader: &mut dyn BufRead,
    path: &Path,
    compression: Compression,
) -> Result<(Vec<String>, u64), InputError> {
    let mut line = Vec::new();
    let mut number = 0u64;
    loop {
        line.clear();
        number += 1;
        let n = reader
            .read_until(b'\n', &mut line)
            .map_err(|e| crate::genome::read_error(path, number, compression, &e))?;
        if n == 0 {
            return Err(InputError::new("has no header line")
                .file(path)
                .hint("a score file's first line (after `#` comments) names its tab-separated columns"));
        }
        let text = line.trim_ascii();
        if text.is_empty() || text.starts_with(b"#") {
            continue;
        }
        let names = text
            .split(|&b| b == b'\t')
            .map(|name| {
                let name = name.trim_ascii();
                let name = name
                    .strip_prefix(b"\"")
                    .and_then(|n| n.strip_suffix(b"\""))
                    .unwrap_or(name);
                String::from_utf8_lossy(name).into_owned()
            })
            .collect();
        return Ok((names, number));
    }
}

fn missing_column(path: &Path, role: &str, name: &str, names: &[&str]) -> InputError {
    let mut list = names
        .iter()
        .take(20)
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > 20 {
        list.push_str(", ...");
    }
    // A column whose name holds the role's (`donor_score` for donor) is the likely one.
    let example = names
        .iter()
        .find(|n| n.to_ascii_lowercase().contains(role))
        .map_or(String::new(), |n| format!(", e.g. {role} = \"{n}\""));
    InputError::new(format!("has no column `{name}` (the {role} column)"))
        .file(path)
        .column(name)
        .hint(format!(
            "its columns are {list}: name the {role} column in [score.file.columns]{example}"
        ))
}

/// The Python original's `nucleotide_scores.tsv` has a `position` column that counts from the
/// gene's 5' end: read as genomic it would put every score in the wrong place, and silently
/// wherever it happened to land inside a gene.
fn check_relative_position(path: &Path, columns: &ScoreColumns, names: &[&str]) -> Result<(), InputError> {
    if columns.position == "position" && names.contains(&"position") && names.contains(&"genomic_position") {
        return Err(InputError::new(
            "has both `position` and `genomic_position`: in MetaSpliceAI's nucleotide_scores.tsv \
             `position` counts from the gene's 5' end, not along the chromosome",
        )
        .file(path)
        .column("position")
        .hint(
            "set [score.file.columns] position = \"genomic_position\" (and donor = \"donor_score\", \
             acceptor = \"acceptor_score\", neither = \"neither_score\" for that file)",
        ));
    }
    Ok(())
}

fn parquet_error(path: &Path, e: &parquet::errors::ParquetError) -> InputError {
    InputError::new(format!("cannot read as Parquet: {e}"))
        .file(path)
        .hint("the file is truncated or corrupt: write it again")
}

/// Opens a Parquet score file's footer: finds the columns, checks their types and prices a
/// record batch of them.
fn open_parquet(path: &Path, columns: &ScoreColumns) -> Result<Layout, InputError> {
    let file = File::open(path).map_err(|e| crate::error::io_error(path, "cannot open", &e))?;
    let builder = crate::io::read_footer(|| ParquetRecordBatchReaderBuilder::try_new(file))
        .map_err(|e| parquet_error(path, &e))?;
    let schema = builder.schema().clone();
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    check_relative_position(path, columns, &names)?;
    fn texty(dt: &DataType) -> bool {
        match dt {
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => true,
            DataType::Dictionary(_, v) => texty(v),
            d => d.is_integer(),
        }
    }
    fn numeric(dt: &DataType) -> bool {
        match dt {
            DataType::Dictionary(_, v) => numeric(v),
            d => d.is_numeric(),
        }
    }
    let mut roots = Vec::new();
    let mut has_neither = false;
    let mut text_roots = Vec::new();
    for (role, name) in columns.named() {
        let Some(i) = names.iter().position(|n| *n == name) else {
            if role == "neither" {
                continue;
            }
            return Err(missing_column(path, role, name, &names));
        };
        let dt = schema.field(i).data_type();
        let (ok, wanted) = match role {
            "chrom" => (texty(dt), "text (or integer) chromosome names"),
            "strand" => (texty(dt), "text `+`/`-` or integer 1/-1 strands"),
            "position" => (dt.is_integer() || dt.is_floating(), "integer positions"),
            _ => (numeric(dt), "numeric scores"),
        };
        if !ok {
            return Err(
                InputError::new(format!("has type {dt}, which cannot hold {wanted}"))
                    .file(path)
                    .column(name)
                    .hint("check that [score.file.columns] names the right columns"),
            );
        }
        if role == "neither" {
            has_neither = true;
        }
        if matches!(role, "chrom" | "strand") {
            text_roots.push(i);
        }
        roots.push(i);
    }
    // A batch of the projected columns, generously: each column's widest row group per row
    // (at least 8 bytes, 32 for text, whose dictionary pages understate it), twice (the arrays
    // and their cast copies), plus two pages per column while decoding and the f32 copies.
    let descr = builder.parquet_schema();
    let mut working = PARQUET_BATCH_ROWS as u64 * 3 * 4;
    for &root in &roots {
        let mut per_row = 0u64;
        let mut chunk = 0u64;
        for rg in builder.metadata().row_groups() {
            let bytes: u64 = (0..descr.num_columns())
                .filter(|&leaf| descr.get_column_root_idx(leaf) == root)
                .map(|leaf| rg.column(leaf).uncompressed_size().max(0) as u64)
                .sum();
            chunk = chunk.max(bytes);
            per_row = per_row.max(bytes.div_ceil(rg.num_rows().max(1) as u64));
        }
        let floor = if text_roots.contains(&root) { 32 } else { 8 };
        working += 2 * PARQUET_BATCH_ROWS as u64 * (per_row.max(floor) + 8);
        working += 2 * chunk.min(8 << 20);
    }
    roots.sort_unstable();
    Ok(Layout::Parquet {
        roots,
        has_neither,
        working,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::io::Write;
    use std::sync::Arc;

    use arrow::array::{DictionaryArray, Float64Array, Int64Array, RecordBatch, StringArray};
    use arrow::datatypes::{Field, Int32Type, Schema};

    use super::*;

    fn gene(id: &str, chrom: &str, strand: Strand, start: u64, end: u64) -> Gene {
        Gene {
            id: id.into(),
            name: None,
            biotype: None,
            chrom: chrom.into(),
            strand,
            start,
            end,
            transcripts: vec![],
            line: 1,
        }
    }

    /// A and B overlap at 13-14 on `+`; C covers the same positions on `-`.
    fn genes() -> Vec<Gene> {
        vec![
            gene("A", "chr1", Strand::Plus, 10, 14),
            gene("B", "chr1", Strand::Plus, 13, 16),
            gene("C", "chr1", Strand::Minus, 12, 15),
        ]
    }

    fn genome() -> GenomeConfig {
        GenomeConfig::new("g.fa", "g.gff3")
    }

    /// (chrom, position, strand, donor, acceptor, neither), shuffled, with rows outside every
    /// gene (8, 17, 20 and chr2) and strands written as 1 / -1 in places. `neither` is not
    /// `1 - donor - acceptor`, so a test can tell read from derived.
    const ROWS: &[(&str, u64, &str, f64, f64, f64)] = &[
        ("chr1", 13, "-", 0.0, 0.7, 0.25),
        ("chr1", 14, "+", 0.0, -0.0000005, 1.0000005),
        ("chr1", 8, "+", 0.5, 0.5, 0.0),
        ("chr2", 12, "+", 0.9, 0.1, 0.0),
        ("chr1", 11, "+", 0.9, 0.0, 0.05),
        ("chr1", 16, "1", 0.05, 0.05, 0.85),
        ("chr1", 12, "-1", 0.6, 0.1, 0.2),
        ("chr1", 10, "+", 0.1, 0.2, 0.6),
        ("chr1", 20, "-", 0.5, 0.5, 0.0),
        ("chr1", 15, "-", 0.0, 0.0, 0.95),
        ("chr1", 13, "+", 0.25, 0.25, 0.45),
        ("chr1", 17, "+", 1.0, 0.0, 0.0),
        ("chr1", 12, "+", 0.0, 0.8, 0.15),
        ("chr1", 14, "-", 0.2, 0.2, 0.55),
        ("chr1", 15, "+", 0.3, 0.1, 0.5),
    ];

    /// [neither, acceptor, donor] per gene, position by position, with the file's neither.
    fn expected_read() -> Vec<Vec<[f32; 3]>> {
        vec![
            // A: 10..=14 (+)
            vec![
                [0.6, 0.2, 0.1],
                [0.05, 0.0, 0.9],
                [0.15, 0.8, 0.0],
                [0.45, 0.25, 0.25],
                [1.0, 0.0, 0.0],
            ],
            // B: 13..=16 (+)
            vec![
                [0.45, 0.25, 0.25],
                [1.0, 0.0, 0.0],
                [0.5, 0.1, 0.3],
                [0.85, 0.05, 0.05],
            ],
            // C: 12..=15 (-)
            vec![
                [0.2, 0.1, 0.6],
                [0.25, 0.7, 0.0],
                [0.55, 0.2, 0.2],
                [0.95, 0.0, 0.0],
            ],
        ]
    }

    /// The same with neither = max(0, 1 - donor - acceptor).
    fn expected_derived() -> Vec<Vec<[f32; 3]>> {
        vec![
            vec![
                [0.7, 0.2, 0.1],
                [0.1, 0.0, 0.9],
                [0.2, 0.8, 0.0],
                [0.5, 0.25, 0.25],
                [1.0, 0.0, 0.0],
            ],
            vec![
                [0.5, 0.25, 0.25],
                [1.0, 0.0, 0.0],
                [0.6, 0.1, 0.3],
                [0.9, 0.05, 0.05],
            ],
            vec![[0.3, 0.1, 0.6], [0.3, 0.7, 0.0], [0.6, 0.2, 0.2], [1.0, 0.0, 0.0]],
        ]
    }

    /// A TSV of `ROWS` with a comment, columns in an unusual order and an extra column.
    fn tsv(with_neither: bool) -> String {
        let mut s = String::from("# scored elsewhere\n");
        s += if with_neither {
            "neither\tgene_id\tchrom\tposition\tstrand\tacceptor\tdonor\n"
        } else {
            "gene_id\tchrom\tposition\tstrand\tacceptor\tdonor\n"
        };
        for (chrom, pos, strand, d, a, n) in ROWS {
            if with_neither {
                s += &format!("{n}\tg\t{chrom}\t{pos}\t{strand}\t{a}\t{d}\n");
            } else {
                s += &format!("g\t{chrom}\t{pos}\t{strand}\t{a}\t{d}\n");
            }
        }
        s
    }

    fn config(path: &Path) -> ScoreFileConfig {
        ScoreFileConfig {
            path: path.to_path_buf(),
            columns: ScoreColumns::default(),
        }
    }

    fn fill_with(
        cfg: &ScoreFileConfig,
        genome: &GenomeConfig,
        genes: &[Gene],
    ) -> anyhow::Result<(Vec<Vec<[f32; 3]>>, FillStats)> {
        let file = ScoreFile::open(cfg, genome)?;
        let mut out: Vec<Vec<[f32; 3]>> = genes.iter().map(|g| vec![[-1.0; 3]; g.len() as usize]).collect();
        let stats = file.fill(genes, &mut out)?;
        Ok((out, stats))
    }

    fn assert_close(got: &[Vec<[f32; 3]>], want: &[Vec<[f32; 3]>]) {
        assert_eq!(got.len(), want.len());
        for (g, (a, b)) in got.iter().zip(want).enumerate() {
            assert_eq!(a.len(), b.len(), "gene {g}");
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                for k in 0..3 {
                    assert!(
                        (x[k] - y[k]).abs() <= 1e-6,
                        "gene {g} offset {i}: got {x:?}, want {y:?}"
                    );
                }
            }
        }
    }

    fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }

    fn write_parquet(path: &Path) {
        let schema = Arc::new(Schema::new(vec![
            Field::new(
                "chrom",
                DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)),
                false,
            ),
            Field::new("position", DataType::Int64, false),
            Field::new("strand", DataType::Utf8, false),
            Field::new("donor", DataType::Float64, false),
            Field::new("acceptor", DataType::Float64, false),
            Field::new("neither", DataType::Float64, false),
        ]));
        let chrom: DictionaryArray<Int32Type> = ROWS.iter().map(|r| r.0).collect();
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(chrom),
                Arc::new(Int64Array::from_iter_values(ROWS.iter().map(|r| r.1 as i64))),
                Arc::new(StringArray::from_iter_values(ROWS.iter().map(|r| r.2))),
                Arc::new(Float64Array::from_iter_values(ROWS.iter().map(|r| r.3))),
                Arc::new(Float64Array::from_iter_values(ROWS.iter().map(|r| r.4))),
                Arc::new(Float64Array::from_iter_values(ROWS.iter().map(|r| r.5))),
            ],
        )
        .unwrap();
        let mut w = parquet::arrow::ArrowWriter::try_new(File::create(path).unwrap(), schema, None).unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();
    }

    #[test]
    fn tsv_fills_overlapping_genes_on_both_strands_from_shuffled_rows() {
        let dir = tempfile::tempdir().unwrap();
        let genes = genes();
        let p = write(dir.path(), "s.tsv", tsv(true).as_bytes());
        let (out, stats) = fill_with(&config(&p), &genome(), &genes).unwrap();
        assert_close(&out, &expected_read());
        // 8, 17, 20 and chr2 fall in no gene; 13 and 14 on `+` count once for both A and B.
        assert_eq!(
            stats,
            FillStats {
                rows_read: 15,
                rows_used: 11
            }
        );

        let p = write(dir.path(), "d.tsv", tsv(false).as_bytes());
        let file = ScoreFile::open(&config(&p), &genome()).unwrap();
        assert!(!file.has_neither());
        let (out, _) = fill_with(&config(&p), &genome(), &genes).unwrap();
        assert_close(&out, &expected_derived());
    }

    #[test]
    fn parquet_and_gzip_fill_as_the_plain_tsv_does() {
        let dir = tempfile::tempdir().unwrap();
        let genes = genes();
        let plain = write(dir.path(), "s.tsv", tsv(true).as_bytes());
        let (want, want_stats) = fill_with(&config(&plain), &genome(), &genes).unwrap();

        let pq = dir.path().join("s.parquet");
        write_parquet(&pq);
        let file = ScoreFile::open(&config(&pq), &genome()).unwrap();
        assert!(file.has_neither());
        assert!(file.working_bytes() >= (PARQUET_BATCH_ROWS * 5 * 8) as u64);
        let (got, stats) = fill_with(&config(&pq), &genome(), &genes).unwrap();
        assert_eq!(got, want);
        assert_eq!(stats, want_stats);

        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(tsv(true).as_bytes()).unwrap();
        let gz = write(dir.path(), "s.tsv.gz", &gz.finish().unwrap());
        let (got, stats) = fill_with(&config(&gz), &genome(), &genes).unwrap();
        assert_eq!(got, want);
        assert_eq!(stats, want_stats);
    }

    #[test]
    fn chromosome_names_go_through_the_aliases() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            dir.path(),
            "s.tsv",
            b"chrom\tposition\tstrand\tdonor\tacceptor\n4\t101\t+\t0.5\t0.25\n4\t102\t+\t0\t1\n",
        );
        let genes = [gene("G", "NC_004353.4", Strand::Plus, 101, 102)];
        let mut genome = genome();
        assert!(fill_with(&config(&p), &genome, &genes).is_err());
        genome.aliases = BTreeMap::from([("4".to_string(), "NC_004353.4".to_string())]);
        let (out, _) = fill_with(&config(&p), &genome, &genes).unwrap();
        assert_eq!(out, vec![vec![[0.25, 0.25, 0.5], [0.0, 1.0, 0.0]]]);
    }

    #[test]
    fn out_of_range_scores_are_counted_and_the_first_named() {
        let dir = tempfile::tempdir().unwrap();
        let text = "# comment\nchrom\tposition\tstrand\tdonor\tacceptor\n\
                    chr1\t10\t+\t0.1\t0.1\n\
                    chr1\t11\t+\t0.1\t0.1\n\
                    chr1\t12\t+\t1.7\t0.1\n\
                    chr1\t13\t+\t0.1\t0.1\n\
                    chr1\t14\t+\t0.1\tNaN\n";
        let p = write(dir.path(), "bad.tsv", text.as_bytes());
        let genes = [gene("A", "chr1", Strand::Plus, 10, 14)];
        let err = fill_with(&config(&p), &genome(), &genes).unwrap_err();
        let input = err.downcast_ref::<InputError>().expect("an input error");
        assert_eq!(input.row, Some(3));
        assert_eq!(input.column.as_deref(), Some("donor"));
        assert_eq!(input.file.as_deref(), Some(p.as_path()));
        let msg = err.to_string();
        assert!(msg.contains("2 score values"), "{msg}");
        assert!(msg.contains("\"1.7\""), "{msg}");
        assert!(msg.contains("line 5"), "{msg}");
        assert!(msg.contains("bad.tsv"), "{msg}");

        let text = text.replace("1.7\t", "one\t");
        let p = write(dir.path(), "word.tsv", text.as_bytes());
        let err = fill_with(&config(&p), &genome(), &genes).unwrap_err().to_string();
        assert!(
            err.contains("row 3") && err.contains("\"one\" is not a number"),
            "{err}"
        );
    }

    #[test]
    fn a_missing_position_names_the_gene_and_counts() {
        let dir = tempfile::tempdir().unwrap();
        let text: String = tsv(true)
            .lines()
            .filter(|l| !l.contains("\tchr1\t12\t+\t") && !l.contains("\tchr1\t15\t-\t"))
            .map(|l| format!("{l}\n"))
            .collect();
        let p = write(dir.path(), "holes.tsv", text.as_bytes());
        let err = fill_with(&config(&p), &genome(), &genes()).unwrap_err();
        assert!(err.downcast_ref::<InputError>().is_some());
        let msg = err.to_string();
        assert!(
            msg.contains("2 positions of 2 genes are not in the file"),
            "{msg}"
        );
        assert!(msg.contains("chr1:12 (+) of gene A"), "{msg}");
        assert!(msg.contains("[genome.select]"), "{msg}");
    }

    #[test]
    fn python_headers_read_through_the_column_map() {
        let dir = tempfile::tempdir().unwrap();
        // The Python original's file: `position` counts from the 5' end (here 4 down to 1 on
        // the minus gene), `genomic_position` is the one to read.
        let text = "gene_id\tchrom\tstrand\tposition\tgenomic_position\tdonor_score\tacceptor_score\tneither_score\n\
                    C\tchr1\t-\t1\t15\t0\t0\t1\n\
                    C\tchr1\t-\t2\t14\t0.2\t0.2\t0.6\n\
                    C\tchr1\t-\t3\t13\t0\t0.7\t0.3\n\
                    C\tchr1\t-\t4\t12\t0.6\t0.1\t0.3\n";
        let p = write(dir.path(), "nucleotide_scores.tsv", text.as_bytes());
        let genes = [gene("C", "chr1", Strand::Minus, 12, 15)];
        let mut cfg = ScoreFileConfig {
            path: p,
            columns: ScoreColumns {
                donor: "donor_score".into(),
                acceptor: "acceptor_score".into(),
                neither: "neither_score".into(),
                ..ScoreColumns::default()
            },
        };
        // Read as genomic, the 5'-relative `position` would be refused only later, if at all.
        let err = ScoreFile::open(&cfg, &genome())
            .err()
            .expect("the relative position is refused");
        assert_eq!(err.column.as_deref(), Some("position"));
        assert!(
            err.to_string().contains("position = \"genomic_position\""),
            "{err}"
        );
        cfg.columns.position = "genomic_position".into();
        let (out, _) = fill_with(&cfg, &genome(), &genes).unwrap();
        assert_close(
            &out,
            &[vec![
                [0.3, 0.1, 0.6],
                [0.3, 0.7, 0.0],
                [0.6, 0.2, 0.2],
                [1.0, 0.0, 0.0],
            ]],
        );
    }

    #[test]
    fn config_defaults_and_checks() {
        let cfg: ScoreFileConfig =
            toml::from_str("path = \"s.tsv\"\n[columns]\ndonor = \"donor_score\"\n").unwrap();
        assert_eq!(cfg.columns.donor, "donor_score");
        assert_eq!(cfg.columns.neither, "neither");
        assert!(cfg.validate().is_ok());
        assert!(toml::from_str::<ScoreFileConfig>("path = \"s.tsv\"\ncolums = {}\n").is_err());
        let mut bad = cfg.clone();
        bad.columns.acceptor = "donor_score".into();
        assert_eq!(bad.validate().unwrap_err().0, "score.file.columns.acceptor");
        bad.path = PathBuf::new();
        assert_eq!(bad.validate().unwrap_err().0, "score.file.path");
    }

    #[test]
    fn missing_columns_are_named_with_the_file_s_columns() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            dir.path(),
            "s.tsv",
            b"chrom\tposition\tstrand\tdonor_score\tacceptor\n",
        );
        let err = ScoreFile::open(&config(&p), &genome()).err().unwrap();
        assert_eq!(err.column.as_deref(), Some("donor"));
        assert!(err.to_string().contains("donor = \"donor_score\""), "{err}");
    }

    #[test]
    fn coverage_is_priced_per_gene() {
        let g = genes();
        // 5, 4 and 4 positions: one word each, plus the index entries.
        assert_eq!(coverage_bytes(&g), 3 * (8 + 64));
        assert_eq!(
            coverage_bytes(&[gene("L", "c", Strand::Plus, 1, 129)]),
            3 * 8 + 64
        );
    }
}
