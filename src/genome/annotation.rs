//! GFF3 and GTF, streamed gene by gene: a gene's features are gathered while the file lists
//! them, and the gene is handed over once the file has moved on. Only the genes still open
//! are held, never the whole annotation.
//!
//! Lines are read here (so that every error names its line) and parsed by the `noodles`
//! crates (`noodles-gff`, `noodles-gtf`).
//!
//! Grouping: GTF lines name their gene (`gene_id`); GFF3 features are tied to the top-level
//! feature (no `Parent`) they descend from through `Parent`. Up to `max_open_genes` genes are
//! open at once; a new gene beyond that closes the one least recently added to. A gene
//! named again after it was closed (or a `Parent` that names no open feature) is an error
//! naming the line: the annotation must list each gene's features together, as GENCODE,
//! Ensembl, RefSeq and FlyBase files do. A GFF3 `###` directive closes every open gene.

use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, Read};
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::config::AnnotationFormat;
use super::input::{self, at_line, Compression};
use super::model::{Exon, Gene, Strand, Transcript};
use crate::error::InputError;
use crate::memory::MemoryReservation;

/// Longest annotation line accepted (a longer one is not GFF or GTF).
pub const MAX_LINE: usize = 1 << 20;

/// A resolved annotation format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Gff3,
    Gtf,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Gff3 => "GFF3",
            Format::Gtf => "GTF",
        }
    }
}

/// What the stream saw, for the run's report.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AnnotationStats {
    /// Lines read.
    pub lines: u64,
    /// Genes handed over (before any selection).
    pub genes: u64,
    /// Their transcripts.
    pub transcripts: u64,
    /// Top-level features with no exon (GFF3 regions, mobile elements, ...): not genes here.
    pub groups_without_exons: u64,
    /// Transcripts left out because their exons lie on more than one chromosome or strand, or
    /// on another one than their gene (trans-splicing).
    pub skipped_transcripts: u64,
    /// Genes left out because they have no strand (`.`) and no spliced transcript.
    pub unstranded_genes: u64,
    /// The most genes open at once.
    pub peak_open_genes: usize,
}

/// Tells GFF3 from GTF: `configured` unless `auto`; else the content (a `##gff-version 3` or
/// `#gtf-version` line, then the first record's attribute syntax); else the extension.
pub fn detect_format(path: &Path, configured: AnnotationFormat) -> Result<Format, InputError> {
    match configured {
        AnnotationFormat::Gff3 => return Ok(Format::Gff3),
        AnnotationFormat::Gtf => return Ok(Format::Gtf),
        AnnotationFormat::Auto => {}
    }
    let (mut reader, compression) = input::open_text(path)?;
    let mut buf = Vec::new();
    for line in 1..=1000u64 {
        buf.clear();
        let n = (&mut reader)
            .take(MAX_LINE as u64)
            .read_until(b'\n', &mut buf)
            .map_err(|e| input::read_error(path, line, compression, &e))?;
        if n == 0 {
            break;
        }
        let text = String::from_utf8_lossy(&buf);
        let text = text.trim_end();
        if let Some(v) = text.strip_prefix("##gff-version") {
            if v.trim().starts_with('3') {
                return Ok(Format::Gff3);
            }
            continue;
        }
        if text.starts_with("#gtf-version") {
            return Ok(Format::Gtf);
        }
        if text.is_empty() || text.starts_with('#') {
            continue;
        }
        if let Some(attrs) = text.split('\t').nth(8) {
            if looks_like_gtf_attributes(attrs) {
                return Ok(Format::Gtf);
            }
            if attrs.contains('=') {
                return Ok(Format::Gff3);
            }
        }
        break;
    }
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    let stem = ["gz", "bgz", "gzip"]
        .iter()
        .find_map(|z| name.strip_suffix(&format!(".{z}")))
        .unwrap_or(&name);
    if stem.ends_with(".gff3") || stem.ends_with(".gff") {
        return Ok(Format::Gff3);
    }
    if stem.ends_with(".gtf") {
        return Ok(Format::Gtf);
    }
    Err(
        InputError::new("cannot tell whether this annotation is GFF3 or GTF")
            .file(path)
            .hint("set genome.format = \"gff3\" or \"gtf\""),
    )
}

/// `key "value"` (GTF) rather than `key=value` (GFF3).
fn looks_like_gtf_attributes(attrs: &str) -> bool {
    let attrs = attrs.trim_start();
    match attrs.split_once(' ') {
        Some((key, rest)) => !key.contains('=') && !key.is_empty() && rest.trim_start().starts_with('"'),
        None => false,
    }
}

/// The header of a gene: its own feature line (GFF3's top-level feature, GTF's `gene`).
#[derive(Debug)]
struct Header {
    chrom: String,
    strand: Option<Strand>,
    start: u64,
    end: u64,
}

#[derive(Debug)]
struct TxBuild {
    id: String,
    chrom: String,
    strand: Option<Strand>,
    /// start, end, line
    exons: Vec<(u64, u64, u64)>,
    line: u64,
    /// Exons on more than one chromosome or strand.
    mixed: bool,
}

#[derive(Debug)]
struct OpenGene {
    serial: u32,
    /// What the file calls it: GFF3 `ID` of the top-level feature, GTF `gene_id`.
    key: String,
    /// The id handed over.
    id: String,
    name: Option<String>,
    biotype: Option<String>,
    first_line: u64,
    last_line: u64,
    header: Option<Header>,
    /// Span of all its features, for genes without a header.
    span: (u64, u64),
    transcripts: Vec<TxBuild>,
    tx_index: HashMap<String, usize>,
    /// GFF3: `transcript_id` attributes of its features, by `ID`.
    tx_names: HashMap<String, String>,
    /// GFF3: the `ID`s registered for it in the reader's map.
    ids: Vec<String>,
    /// Heap bytes counted for it.
    bytes: u64,
}

// Bytes counted per held item (allocation included, with slack for vector growth).
const EXON_BYTES: u64 = 48;
const TX_BYTES: u64 = 192;
const ID_BYTES: u64 = 96;
const GENE_BYTES: u64 = 512;
const CLOSED_BYTES: u64 = 40;
/// Reservations grow in steps of this much.
const STEP: u64 = 64 << 10;

/// Genes from a GFF3 or GTF file, one at a time, in the order the file finishes them.
pub struct AnnotationReader {
    path: PathBuf,
    format: Format,
    compression: Compression,
    input: Box<dyn BufRead + Send>,
    line: u64,
    buf: Vec<u8>,
    max_open: usize,
    /// Least recently added to first.
    open: Vec<OpenGene>,
    /// GFF3: feature `ID` -> serial of its open gene.
    ids: HashMap<String, u32>,
    /// Hash of a closed gene's key -> its last line.
    closed: HashMap<u64, u64>,
    ready: VecDeque<Gene>,
    next_serial: u32,
    finished: bool,
    failed: bool,
    reservation: MemoryReservation,
    held: u64,
    /// Capacity of `buf` counted in `held`.
    line_counted: u64,
    stats: AnnotationStats,
}

impl AnnotationReader {
    /// Opens `path` (plain, gzip or BGZF) as `format`, holding at most `max_open` genes at
    /// once; its memory is reserved on a sibling of `parent`.
    pub fn open(
        path: &Path,
        format: AnnotationFormat,
        max_open: usize,
        parent: &MemoryReservation,
    ) -> anyhow::Result<Self> {
        let format = detect_format(path, format)?;
        let (input, compression) = input::open_text(path)?;
        let mut reservation = parent.new_empty();
        let fixed = input::OPEN_TEXT_BYTES + STEP;
        reservation.try_grow(fixed)?;
        Ok(Self {
            path: path.to_path_buf(),
            format,
            compression,
            input,
            line: 0,
            buf: Vec::with_capacity(STEP as usize),
            max_open: max_open.max(1),
            open: Vec::new(),
            ids: HashMap::new(),
            closed: HashMap::new(),
            ready: VecDeque::new(),
            next_serial: 0,
            finished: false,
            failed: false,
            reservation,
            held: fixed,
            line_counted: STEP,
            stats: AnnotationStats::default(),
        })
    }

    /// The format read.
    pub fn format(&self) -> Format {
        self.format
    }

    /// The annotation file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What has been read so far.
    pub fn stats(&self) -> &AnnotationStats {
        &self.stats
    }

    /// Bytes reserved now.
    pub fn reserved(&self) -> u64 {
        self.reservation.size()
    }

    /// The next gene, `None` at the end. After an error the stream ends.
    pub fn next_gene(&mut self) -> anyhow::Result<Option<Gene>> {
        if self.failed {
            return Ok(None);
        }
        match self.fill() {
            Ok(()) => Ok(self.ready.pop_front()),
            Err(e) => {
                self.failed = true;
                Err(e)
            }
        }
    }

    fn fill(&mut self) -> anyhow::Result<()> {
        while self.ready.is_empty() && !self.finished {
            self.buf.clear();
            let line = self.line + 1;
            let n = (&mut self.input)
                .take(MAX_LINE as u64 + 1)
                .read_until(b'\n', &mut self.buf)
                .map_err(|e| input::read_error(&self.path, line, self.compression, &e))?;
            if n == 0 {
                self.finished = true;
                while !self.open.is_empty() {
                    self.close(0)?;
                }
                break;
            }
            self.line = line;
            self.stats.lines = line;
            if self.buf.len() > MAX_LINE {
                return Err(at_line(
                    &self.path,
                    line,
                    format!(
                        "longer than {} MiB: not a {} file?",
                        MAX_LINE >> 20,
                        self.format.as_str()
                    ),
                )
                .into());
            }
            self.track_line_buffer()?;
            while matches!(self.buf.last(), Some(b'\n' | b'\r')) {
                self.buf.pop();
            }
            if self.buf.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let buf = std::mem::take(&mut self.buf);
            let result = self.line_of(&buf);
            self.buf = buf;
            result?;
        }
        Ok(())
    }

    fn line_of(&mut self, bytes: &[u8]) -> anyhow::Result<()> {
        let line = self.line;
        let text = std::str::from_utf8(bytes).map_err(|e| {
            at_line(
                &self.path,
                line,
                format!(
                    "not UTF-8 text (byte {}): not a GFF/GTF file?",
                    e.valid_up_to() + 1
                ),
            )
        })?;
        if text.starts_with('#') {
            if self.format == Format::Gff3 {
                if text.trim_end() == "###" {
                    while !self.open.is_empty() {
                        self.close(0)?;
                    }
                } else if text.starts_with("##FASTA") {
                    self.finished = true;
                    while !self.open.is_empty() {
                        self.close(0)?;
                    }
                }
            }
            return Ok(());
        }
        match self.format {
            Format::Gff3 => self.gff3_line(text),
            Format::Gtf => self.gtf_line(text),
        }
    }

    fn err(&self, message: impl std::fmt::Display) -> InputError {
        at_line(&self.path, self.line, message)
    }

    /// Splits the nine columns, or says what is wrong with the line.
    fn columns<'t>(&self, text: &'t str) -> Result<Vec<&'t str>, InputError> {
        let cols: Vec<&str> = text.split('\t').collect();
        if cols.len() != 9 {
            let mut e = self.err(format!(
                "expected 9 tab-separated columns, found {}: `{}`",
                cols.len(),
                clip(text, 80)
            ));
            if cols.len() < 9 && text.contains(' ') {
                e = e.hint("the columns of GFF and GTF are separated by tabs, not spaces");
            } else if text.starts_with('>') {
                e = e.hint("FASTA lines in a GFF3 file must follow a `##FASTA` line");
            }
            return Err(e);
        }
        Ok(cols)
    }

    fn bounds(
        &self,
        cols: &[&str],
        start: std::io::Result<usize>,
        end: std::io::Result<usize>,
    ) -> Result<(u64, u64), InputError> {
        let start = start.map_err(|_| {
            self.err(format!(
                "column 4 (start) is `{}`: expected a position (a whole number from 1)",
                clip(cols[3], 40)
            ))
        })? as u64;
        let end = end.map_err(|_| {
            self.err(format!(
                "column 5 (end) is `{}`: expected a position (a whole number from 1)",
                clip(cols[4], 40)
            ))
        })? as u64;
        if end < start {
            return Err(self.err(format!("end {end} (column 5) is before start {start} (column 4)")));
        }
        Ok((start, end))
    }

    fn strand(
        &self,
        cols: &[&str],
        s: std::io::Result<noodles_gff::feature::record::Strand>,
    ) -> Result<Option<Strand>, InputError> {
        use noodles_gff::feature::record::Strand as S;
        match s {
            Ok(S::Forward) => Ok(Some(Strand::Plus)),
            Ok(S::Reverse) => Ok(Some(Strand::Minus)),
            Ok(S::None | S::Unknown) => Ok(None),
            Err(_) => Err(self.err(format!(
                "column 7 (strand) is `{}`: expected +, - or .",
                clip(cols[6], 20)
            ))),
        }
    }

    fn gff3_line(&mut self, text: &str) -> anyhow::Result<()> {
        let cols = self.columns(text)?;
        let mut reader = noodles_gff::io::Reader::new(text.as_bytes());
        let mut line = noodles_gff::Line::default();
        reader
            .read_line(&mut line)
            .map_err(|e| self.err(format!("cannot read: {e}")))?;
        let record = match line.as_record() {
            Some(Ok(r)) => r,
            Some(Err(e)) => return Err(self.err(format!("malformed GFF3 record: {e}")).into()),
            None => return Ok(()),
        };
        let (start, end) = self.bounds(
            &cols,
            record.start().map(usize::from),
            record.end().map(usize::from),
        )?;
        let strand = self.strand(&cols, record.strand())?;
        let chrom = lossy(&record.reference_sequence_name());
        let ty = record.ty();
        let ty: &[u8] = &ty;
        let attrs = record.attributes();
        let get = |tag: &str| -> Result<Option<Vec<String>>, InputError> {
            use noodles_gff::record::attributes::field::Value;
            match attrs.get(tag.as_bytes()) {
                None => Ok(None),
                Some(Ok(Value::String(s))) => Ok(Some(vec![lossy(&s)])),
                Some(Ok(Value::Array(a))) => Ok(Some(a.iter().map(|s| lossy(&s)).collect())),
                Some(Err(e)) => Err(self.err(format!(
                    "column 9 (attributes) cannot be read: {e}: `{}`",
                    clip(cols[8], 60)
                ))),
            }
        };
        let one = |tag: &str| -> Result<Option<String>, InputError> {
            Ok(get(tag)?.map(|v| v.join(",")).filter(|s| !s.is_empty()))
        };
        let id = one("ID")?;
        let parents: Vec<String> = get("Parent")?
            .unwrap_or_default()
            .into_iter()
            .filter(|p| !p.is_empty())
            .collect();
        let gene_id = one("gene_id")?;
        let name = first_of(&one, &["Name", "gene_name", "gene"])?;
        let biotype = first_of(&one, &["biotype", "gene_biotype", "gene_type"])?;
        let tid_attr = one("transcript_id")?;
        let is_exon = ty == b"exon";
        let leaf = is_leaf(ty);
        let line = self.line;
        if parents.is_empty() {
            if is_exon {
                return Err(self
                    .err("an exon without a Parent attribute: GFF3 exons name their transcript")
                    .into());
            }
            // A top-level feature without an ID can have no children: nothing to group.
            let Some(key) = id else { return Ok(()) };
            let serial = match self.find_open(&key) {
                Some(s) => s,
                None => {
                    let gene_id =
                        gene_id.unwrap_or_else(|| strip_prefixes(&key, &["gene-", "gene:"]).to_string());
                    let serial = self.open_gene(key.clone(), gene_id)?;
                    self.register(&key, serial);
                    serial
                }
            };
            let g = self.touch(serial);
            if g.name.is_none() {
                g.name = name;
            }
            if g.biotype.is_none() {
                g.biotype = biotype;
            }
            merge_header(g, chrom, strand, start, end);
            self.ensure_reserved()?;
            return Ok(());
        }
        // A child: every parent must be a feature of an open gene.
        let mut serials = Vec::with_capacity(parents.len());
        for p in &parents {
            match self.ids.get(p) {
                Some(&s) => serials.push(s),
                None => return Err(self.unknown_parent(p).into()),
            }
        }
        if let Some(id) = &id {
            if !leaf && !self.ids.contains_key(id) {
                self.register(id, serials[0]);
                if let Some(t) = &tid_attr {
                    let g = self.touch(serials[0]);
                    g.tx_names.insert(id.clone(), t.clone());
                    g.bytes += ID_BYTES + (id.len() + t.len()) as u64;
                    self.held += ID_BYTES + (id.len() + t.len()) as u64;
                }
            }
        }
        for (p, &serial) in parents.iter().zip(&serials) {
            let g = self.touch(serial);
            g.span = (g.span.0.min(start), g.span.1.max(end));
            if is_exon {
                let tx_id = if *p == g.key {
                    g.id.clone()
                } else if let Some(t) = g.tx_names.get(p) {
                    t.clone()
                } else if let Some(t) = &tid_attr {
                    t.clone()
                } else {
                    p.clone()
                };
                let added = add_exon(g, p, tx_id, &chrom, strand, start, end, line);
                self.held += added;
            }
        }
        self.ensure_reserved()?;
        Ok(())
    }

    fn unknown_parent(&self, parent: &str) -> InputError {
        let closed = self.closed.get(&input::fnv1a(parent.as_bytes()));
        let why = match closed {
            Some(last) => format!(
                "its Parent `{parent}` is a gene whose features ended at line {last} \
                 (the file lists its features apart)"
            ),
            None => format!(
                "its Parent `{parent}` is no feature of the {} gene(s) open here: the parent \
                 is listed later, belongs to a gene whose features ended earlier, or is missing",
                self.open.len()
            ),
        };
        self.err(why).hint(format!(
            "list each gene's features together, parents first (e.g. `gt gff3 -sort -tidy -retainids`), \
             or raise genome.max_open_genes (now {})",
            self.max_open
        ))
    }

    fn gtf_line(&mut self, text: &str) -> anyhow::Result<()> {
        let cols = self.columns(text)?;
        let text = escape_lone_backslashes(text);
        let mut reader = noodles_gtf::io::Reader::new(text.as_bytes());
        let mut line = noodles_gtf::Line::default();
        reader
            .read_line(&mut line)
            .map_err(|e| self.err(format!("cannot read: {e}")))?;
        let record = match line.as_record() {
            Some(Ok(r)) => r,
            Some(Err(e)) => return Err(self.err(format!("malformed GTF record: {e}")).into()),
            None => return Ok(()),
        };
        let (start, end) = self.bounds(
            &cols,
            record.start().map(usize::from),
            record.end().map(usize::from),
        )?;
        let strand = self.strand(&cols, record.strand())?;
        let chrom = lossy(record.reference_sequence_name());
        let ty: &[u8] = record.ty();
        let attrs = record.attributes().map_err(|e| {
            self.err(format!(
                "column 9 (attributes) cannot be read ({e}): `{}`; GTF attributes are `key \"value\";`",
                clip(cols[8], 60)
            ))
        })?;
        let one = |tag: &str| -> Result<Option<String>, InputError> {
            Ok(match attrs.get(tag.as_bytes()) {
                None => None,
                Some(Ok(v)) => v.iter().next().map(|s| lossy(s)).filter(|s| !s.is_empty()),
                Some(Err(e)) => return Err(self.err(format!("column 9 (attributes): {e}"))),
            })
        };
        let Some(gene_id) = one("gene_id")? else {
            return Err(self
                .err("no gene_id attribute: every GTF line names its gene (`gene_id \"...\";`)")
                .into());
        };
        let name = first_of(&one, &["gene_name", "gene"])?;
        let biotype = first_of(&one, &["gene_type", "gene_biotype"])?;
        let transcript_id = one("transcript_id")?;
        let is_exon = ty == b"exon";
        let is_gene = ty == b"gene";
        if is_exon && transcript_id.is_none() {
            return Err(self
                .err("an exon without a transcript_id attribute: GTF exons name their transcript")
                .into());
        }
        let line = self.line;
        let serial = match self.find_open(&gene_id) {
            Some(s) => s,
            None => self.open_gene(gene_id.clone(), gene_id)?,
        };
        let g = self.touch(serial);
        if g.name.is_none() {
            g.name = name;
        }
        if g.biotype.is_none() {
            g.biotype = biotype;
        }
        g.span = (g.span.0.min(start), g.span.1.max(end));
        if is_gene {
            merge_header(g, chrom.clone(), strand, start, end);
        }
        if let (true, Some(tid)) = (is_exon, transcript_id) {
            let added = add_exon(g, &tid, tid.clone(), &chrom, strand, start, end, line);
            self.held += added;
        }
        self.ensure_reserved()?;
        Ok(())
    }

    fn find_open(&self, key: &str) -> Option<u32> {
        if self.format == Format::Gff3 {
            return self
                .ids
                .get(key)
                .copied()
                .filter(|s| self.open.iter().any(|g| g.serial == *s && g.key == key));
        }
        self.open.iter().rev().find(|g| g.key == key).map(|g| g.serial)
    }

    /// Moves the gene to the most-recent end and returns it.
    fn touch(&mut self, serial: u32) -> &mut OpenGene {
        let i = self
            .open
            .iter()
            .rposition(|g| g.serial == serial)
            .expect("serials in the id map name open genes");
        if i + 1 != self.open.len() {
            let g = self.open.remove(i);
            self.open.push(g);
        }
        let line = self.line;
        let g = self.open.last_mut().expect("just pushed");
        g.last_line = line;
        g
    }

    fn register(&mut self, id: &str, serial: u32) {
        self.ids.insert(id.to_string(), serial);
        let bytes = ID_BYTES + 2 * id.len() as u64;
        if let Some(g) = self.open.iter_mut().rev().find(|g| g.serial == serial) {
            g.ids.push(id.to_string());
            g.bytes += bytes;
        }
        self.held += bytes;
    }

    fn open_gene(&mut self, key: String, id: String) -> anyhow::Result<u32> {
        if let Some(last) = self.closed.get(&input::fnv1a(key.as_bytes())) {
            return Err(self
                .err(format!(
                    "gene `{key}` appears again, but its features ended at line {last}: \
                     the annotation lists this gene's features apart"
                ))
                .hint(format!(
                    "list each gene's features together (genes may interleave by at most \
                     genome.max_open_genes = {}); sort it by gene, e.g. `gt gff3 -sort -tidy` \
                     for GFF3, or raise genome.max_open_genes",
                    self.max_open
                ))
                .into());
        }
        if self.open.len() >= self.max_open {
            self.close(0)?;
        }
        let serial = self.next_serial;
        self.next_serial = self.next_serial.wrapping_add(1);
        let bytes = GENE_BYTES + 2 * (key.len() + id.len()) as u64;
        self.open.push(OpenGene {
            serial,
            key,
            id,
            name: None,
            biotype: None,
            first_line: self.line,
            last_line: self.line,
            header: None,
            span: (u64::MAX, 0),
            transcripts: Vec::new(),
            tx_index: HashMap::new(),
            tx_names: HashMap::new(),
            ids: Vec::new(),
            bytes,
        });
        self.held += bytes;
        self.stats.peak_open_genes = self.stats.peak_open_genes.max(self.open.len());
        self.ensure_reserved()?;
        Ok(serial)
    }

    fn close(&mut self, index: usize) -> anyhow::Result<()> {
        let g = self.open.remove(index);
        for id in &g.ids {
            self.ids.remove(id);
        }
        self.closed.insert(input::fnv1a(g.key.as_bytes()), g.last_line);
        self.held = self.held.saturating_sub(g.bytes) + CLOSED_BYTES;
        if let Some(gene) = self.build(g)? {
            self.stats.genes += 1;
            self.stats.transcripts += gene.transcripts.len() as u64;
            self.ready.push_back(gene);
        }
        self.ensure_reserved()?;
        Ok(())
    }

    fn build(&mut self, g: OpenGene) -> Result<Option<Gene>, InputError> {
        if g.transcripts.is_empty() {
            self.stats.groups_without_exons += 1;
            return Ok(None);
        }
        let first = &g.transcripts[0];
        let (chrom, strand) = match &g.header {
            Some(h) => (h.chrom.clone(), h.strand.or(first.strand)),
            None => (first.chrom.clone(), first.strand),
        };
        let (start, end) = match &g.header {
            Some(h) => (h.start, h.end),
            None => g.span,
        };
        let mut transcripts = Vec::with_capacity(g.transcripts.len());
        for t in g.transcripts {
            if t.mixed || t.chrom != chrom || (strand.is_some() && t.strand != strand) {
                self.stats.skipped_transcripts += 1;
                continue;
            }
            let mut exons = t.exons;
            exons.sort_unstable();
            let mut merged: Vec<(u64, u64, u64)> = Vec::with_capacity(exons.len());
            for e in exons {
                if let Some(last) = merged.last_mut() {
                    if e.0 <= last.1 {
                        let (a, b) = if e.2 >= last.2 { (e, *last) } else { (*last, e) };
                        return Err(at_line(
                            &self.path,
                            a.2,
                            format!(
                                "exon {}-{} of transcript `{}` overlaps its exon {}-{} (line {}); \
                                 the exons of a transcript may not overlap",
                                a.0, a.1, t.id, b.0, b.1, b.2
                            ),
                        ));
                    }
                    if e.0 == last.1 + 1 {
                        // Abutting exons leave no intron between them: one exon.
                        last.1 = e.1;
                        continue;
                    }
                }
                merged.push(e);
            }
            if g.header.is_some() {
                if let Some(out) = merged.iter().find(|e| e.0 < start || e.1 > end) {
                    return Err(at_line(
                        &self.path,
                        out.2,
                        format!(
                            "exon {}-{} of transcript `{}` lies outside its gene `{}` ({}-{}, line {})",
                            out.0, out.1, t.id, g.id, start, end, g.first_line
                        ),
                    ));
                }
            }
            transcripts.push(Transcript {
                id: t.id,
                exons: merged.iter().map(|e| Exon { start: e.0, end: e.1 }).collect(),
                line: t.line,
            });
        }
        if transcripts.is_empty() {
            return Ok(None);
        }
        let strand = match strand {
            Some(s) => s,
            None => {
                if let Some(t) = transcripts.iter().find(|t| t.exons.len() >= 2) {
                    return Err(at_line(
                        &self.path,
                        t.line,
                        format!(
                            "transcript `{}` of gene `{}` has several exons but no strand \
                             (column 7 is `.` or `?`): its splice sites cannot be told apart",
                            t.id, g.id
                        ),
                    ));
                }
                self.stats.unstranded_genes += 1;
                return Ok(None);
            }
        };
        Ok(Some(Gene {
            id: g.id,
            name: g.name,
            biotype: g.biotype,
            chrom,
            strand,
            start,
            end,
            transcripts,
            line: g.first_line,
        }))
    }

    /// Counts the line buffer's growth past the step reserved for it at open.
    fn track_line_buffer(&mut self) -> anyhow::Result<()> {
        let cap = self.buf.capacity() as u64;
        if cap > self.line_counted {
            self.held += cap - self.line_counted;
            self.line_counted = cap;
            self.ensure_reserved()?;
        }
        Ok(())
    }

    fn ensure_reserved(&mut self) -> anyhow::Result<()> {
        let have = self.reservation.size();
        if self.held > have {
            let grow = (self.held - have).div_ceil(STEP) * STEP;
            self.reservation.try_grow(grow)?;
        } else if have - self.held > 4 * STEP {
            self.reservation.shrink(have - self.held - STEP);
        }
        Ok(())
    }
}

impl Iterator for AnnotationReader {
    type Item = anyhow::Result<Gene>;
    fn next(&mut self) -> Option<Self::Item> {
        self.next_gene().transpose()
    }
}

/// Adds an exon to the transcript `key` of `g`; returns the bytes it added.
#[allow(clippy::too_many_arguments)]
fn add_exon(
    g: &mut OpenGene,
    key: &str,
    id: String,
    chrom: &str,
    strand: Option<Strand>,
    start: u64,
    end: u64,
    line: u64,
) -> u64 {
    let mut added = EXON_BYTES;
    let i = match g.tx_index.get(key) {
        Some(&i) => i,
        None => {
            added += TX_BYTES + 2 * key.len() as u64 + id.len() as u64 + chrom.len() as u64;
            g.tx_index.insert(key.to_string(), g.transcripts.len());
            g.transcripts.push(TxBuild {
                id,
                chrom: chrom.to_string(),
                strand,
                exons: Vec::new(),
                line,
                mixed: false,
            });
            g.transcripts.len() - 1
        }
    };
    let t = &mut g.transcripts[i];
    if t.chrom != chrom || t.strand != strand {
        t.mixed = true;
    }
    t.exons.push((start, end, line));
    g.bytes += added;
    added
}

fn merge_header(g: &mut OpenGene, chrom: String, strand: Option<Strand>, start: u64, end: u64) {
    g.span = (g.span.0.min(start), g.span.1.max(end));
    match &mut g.header {
        Some(h) => {
            h.start = h.start.min(start);
            h.end = h.end.max(end);
        }
        None => {
            g.header = Some(Header {
                chrom,
                strand,
                start,
                end,
            })
        }
    }
}

fn first_of(
    one: &dyn Fn(&str) -> Result<Option<String>, InputError>,
    tags: &[&str],
) -> Result<Option<String>, InputError> {
    for t in tags {
        if let Some(v) = one(t)? {
            return Ok(Some(v));
        }
    }
    Ok(None)
}

/// Feature types that never parent others: their `ID`s are not remembered.
fn is_leaf(ty: &[u8]) -> bool {
    matches!(
        ty,
        b"exon"
            | b"CDS"
            | b"five_prime_UTR"
            | b"three_prime_UTR"
            | b"start_codon"
            | b"stop_codon"
            | b"intron"
    )
}

/// RefSeq's GTF writes backslashes as they are (`gene_synonym "Dmel\CG45760"`), which
/// `noodles-gtf` reads as an escape sequence and refuses: a backslash that escapes neither a
/// backslash nor a quote is read as itself.
fn escape_lone_backslashes(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.contains('\\') {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        out.push(c);
        if c == '\\' {
            match chars.peek() {
                Some('\\') | Some('"') => out.push(chars.next().expect("peeked")),
                _ => out.push('\\'),
            }
        }
    }
    std::borrow::Cow::Owned(out)
}

fn strip_prefixes<'a>(s: &'a str, prefixes: &[&str]) -> &'a str {
    prefixes.iter().find_map(|p| s.strip_prefix(p)).unwrap_or(s)
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn clip(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(n).collect::<String>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lone_backslashes_are_escaped_for_noodles() {
        assert_eq!(
            escape_lone_backslashes(r#"a "x"; b "Dmel\CG1";"#),
            r#"a "x"; b "Dmel\\CG1";"#
        );
        assert_eq!(escape_lone_backslashes(r#"b "q\"x";"#), r#"b "q\"x";"#);
        assert!(matches!(
            escape_lone_backslashes("plain"),
            std::borrow::Cow::Borrowed(_)
        ));
    }

    #[test]
    fn gtf_and_gff3_attributes_are_told_apart() {
        assert!(looks_like_gtf_attributes(r#"gene_id "G"; transcript_id "T";"#));
        assert!(!looks_like_gtf_attributes("ID=g;Name=G"));
        assert!(!looks_like_gtf_attributes("Note=a b"));
    }
}
