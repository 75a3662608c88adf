//! FASTA by region: plain (memory-mapped), BGZF (through its `.gzi`) or plain gzip
//! (decompressed once to the cache directory, then memory-mapped).
//!
//! A `.fai` index (samtools' format) is read beside the file, or built when missing or older
//! than the FASTA: written atomically beside it, or in the cache directory when the FASTA's
//! directory cannot be written. BGZF files get a `.gzi` the same way.
//!
//! Reads come back upper-case: soft-masked (lower-case) bases read as their upper-case
//! letter, and every code other than A, C, G and T (IUPAC ambiguity codes, `N`, `-`, `*`)
//! reads as `N`. Positions before 1 or past the sequence's end read as `N`, so that callers
//! can ask for flanks without clipping them.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use memmap2::Mmap;
use noodles_bgzf as bgzf;

use super::input::{self, at_line, Compression};
use crate::error::InputError;
use crate::memory::MemoryReservation;

/// One line of a `.fai`: a sequence's name, length and layout in the (uncompressed) file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaiRecord {
    pub name: String,
    /// Bases.
    pub length: u64,
    /// Byte offset of its first base.
    pub offset: u64,
    /// Bases per line.
    pub line_bases: u64,
    /// Bytes per line, line break included.
    pub line_width: u64,
}

impl FaiRecord {
    /// Byte offset of 0-based base `i`; `u64::MAX` (past the end of any file) when a `.fai`'s
    /// numbers overflow it.
    fn byte_of(&self, i: u64) -> u64 {
        if self.line_bases == 0 {
            return self.offset;
        }
        (i / self.line_bases)
            .checked_mul(self.line_width)
            .and_then(|b| b.checked_add(self.offset))
            .and_then(|b| b.checked_add(i % self.line_bases))
            .unwrap_or(u64::MAX)
    }
}

/// A FASTA's sequences, by name, in file order.
#[derive(Debug, Clone)]
pub struct FastaIndex {
    path: PathBuf,
    records: Vec<FaiRecord>,
    by_name: HashMap<String, usize>,
}

impl FastaIndex {
    /// An index of the FASTA at `path` made of `records`.
    pub fn new(path: &Path, records: Vec<FaiRecord>) -> Self {
        let by_name = records
            .iter()
            .enumerate()
            .map(|(i, r)| (r.name.clone(), i))
            .collect();
        Self {
            path: path.to_path_buf(),
            records,
            by_name,
        }
    }

    /// The FASTA file (as configured, before any decompression).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Every sequence, in file order.
    pub fn records(&self) -> &[FaiRecord] {
        &self.records
    }

    /// The sequence named `name`.
    pub fn get(&self, name: &str) -> Option<&FaiRecord> {
        self.by_name.get(name).map(|&i| &self.records[i])
    }

    /// The length of `name`, if the FASTA has it.
    pub fn length(&self, name: &str) -> Option<u64> {
        self.get(name).map(|r| r.length)
    }

    /// Heap bytes the index holds.
    pub fn heap_bytes(&self) -> u64 {
        self.records.iter().map(|r| 2 * r.name.len() as u64 + 112).sum()
    }
}

/// Upper-case A, C, G, T; `N` for every other byte.
const fn base_table() -> [u8; 256] {
    let mut t = [b'N'; 256];
    t[b'A' as usize] = b'A';
    t[b'C' as usize] = b'C';
    t[b'G' as usize] = b'G';
    t[b'T' as usize] = b'T';
    t[b'a' as usize] = b'A';
    t[b'c' as usize] = b'C';
    t[b'g' as usize] = b'G';
    t[b't' as usize] = b'T';
    t
}
static BASES: [u8; 256] = base_table();

/// Bytes allowed in sequence lines: letters, `-`, `*` and `.`.
const fn valid_table() -> [bool; 256] {
    let mut t = [false; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        t[c] = b.is_ascii_alphabetic() || b == b'-' || b == b'*' || b == b'.';
        c += 1;
    }
    t
}
static VALID: [bool; 256] = valid_table();

/// Normalises bases in place: upper-case ACGT, everything else `N`.
pub fn normalize_bases(bytes: &mut [u8]) {
    for b in bytes {
        *b = BASES[*b as usize];
    }
}

enum Data {
    Mapped(Arc<Mmap>),
    Bgzf(Box<bgzf::io::IndexedReader<File>>),
}

/// Bytes a BGZF reader holds: a compressed block, its inflated data and slack.
const BGZF_READER_BYTES: u64 = 3 * (64 << 10);

/// A FASTA opened for reads by region.
pub struct Fasta {
    index: Arc<FastaIndex>,
    data: Data,
    compression: Compression,
    data_path: PathBuf,
    fai_path: PathBuf,
    gzi: Option<(PathBuf, bgzf::gzi::Index)>,
    notes: Vec<String>,
    _reservation: MemoryReservation,
}

impl std::fmt::Debug for Fasta {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fasta")
            .field("path", &self.index.path)
            .field("compression", &self.compression)
            .field("sequences", &self.index.records.len())
            .finish()
    }
}

impl Fasta {
    /// Opens `path`, reading or building its indexes (see the module doc). `cache_dir` takes
    /// indexes that cannot be written beside the file and the decompressed copy of a plain
    /// gzip file; without it such files are refused. Memory for the index and the reader is
    /// reserved on a sibling of `parent`.
    pub fn open(path: &Path, cache_dir: Option<&Path>, parent: &MemoryReservation) -> anyhow::Result<Self> {
        let compression = input::sniff(path)?;
        let mut notes = Vec::new();
        let data_path = match compression {
            Compression::Gzip => decompress_to_cache(path, cache_dir, &mut notes)?,
            _ => path.to_path_buf(),
        };
        let gzi = match compression {
            Compression::Bgzf => Some(gzi_for(&data_path, cache_dir, &mut notes)?),
            _ => None,
        };
        let readable = if compression == Compression::Bgzf {
            Compression::Bgzf
        } else {
            Compression::Plain
        };
        let (fai_path, records) = fai_for(&data_path, readable, cache_dir, &mut notes)?;
        let index = FastaIndex::new(path, records);
        let mut reservation = parent.new_empty();
        let gzi_bytes = gzi.as_ref().map_or(0, |(_, g)| 16 * g.as_ref().len() as u64);
        let reader_bytes = if gzi.is_some() { BGZF_READER_BYTES } else { 0 };
        reservation.try_grow(index.heap_bytes() + gzi_bytes + reader_bytes)?;
        let data = open_data(&data_path, gzi.as_ref().map(|(_, g)| g))?;
        if let Data::Mapped(map) = &data {
            check_fits(&index, map.len() as u64, &fai_path)?;
        }
        Ok(Self {
            index: Arc::new(index),
            data,
            compression,
            data_path,
            fai_path,
            gzi,
            notes,
            _reservation: reservation,
        })
    }

    /// A second handle on the same file and index (for another thread).
    pub fn try_clone(&self, parent: &MemoryReservation) -> anyhow::Result<Self> {
        let mut reservation = parent.new_empty();
        if self.gzi.is_some() {
            reservation.try_grow(BGZF_READER_BYTES)?;
        }
        let data = match &self.data {
            Data::Mapped(m) => Data::Mapped(m.clone()),
            Data::Bgzf(_) => open_data(&self.data_path, self.gzi.as_ref().map(|(_, g)| g))?,
        };
        Ok(Self {
            index: self.index.clone(),
            data,
            compression: self.compression,
            data_path: self.data_path.clone(),
            fai_path: self.fai_path.clone(),
            gzi: self.gzi.clone(),
            notes: vec![],
            _reservation: reservation,
        })
    }

    /// The sequences and their lengths.
    pub fn index(&self) -> &Arc<FastaIndex> {
        &self.index
    }

    /// How the configured file is compressed.
    pub fn compression(&self) -> Compression {
        self.compression
    }

    /// The file regions are read from: the FASTA itself, or the decompressed copy of a plain
    /// gzip FASTA in the cache directory.
    pub fn data_path(&self) -> &Path {
        &self.data_path
    }

    /// The `.fai` in use.
    pub fn fai_path(&self) -> &Path {
        &self.fai_path
    }

    /// The `.gzi` in use (BGZF only).
    pub fn gzi_path(&self) -> Option<&Path> {
        self.gzi.as_ref().map(|(p, _)| p.as_path())
    }

    /// What opening did (indexes built, a gzip file decompressed), one sentence each.
    pub fn notes(&self) -> &[String] {
        &self.notes
    }

    /// Appends bases `start..=end` (1-based, inclusive) of sequence `name` to `out`:
    /// `end - start + 1` bytes, upper-case, `N` outside `1..=length` and for every code
    /// other than ACGT. Nothing when `end < start`.
    pub fn read(&mut self, name: &str, start: i64, end: i64, out: &mut Vec<u8>) -> Result<(), InputError> {
        let Some(rec) = self.index.get(name).cloned() else {
            return Err(InputError::new(format!(
                "no sequence named `{name}` in the FASTA ({})",
                list_names(&self.index, 5)
            ))
            .file(&self.index.path));
        };
        if end < start {
            return Ok(());
        }
        let total = (end - start + 1) as usize;
        out.reserve(total);
        let lo = start.max(1);
        let hi = end.min(rec.length as i64);
        if hi < lo {
            out.resize(out.len() + total, b'N');
            return Ok(());
        }
        out.resize(out.len() + (lo - start) as usize, b'N');
        let (i0, i1) = ((lo - 1) as u64, hi as u64);
        let at = out.len();
        match &mut self.data {
            Data::Mapped(map) => read_mapped(map, &rec, i0, i1, out).map_err(|m| {
                InputError::new(m)
                    .file(&self.fai_path)
                    .hint("delete the index to have it rebuilt")
            })?,
            Data::Bgzf(reader) => read_bgzf(reader, &rec, i0, i1, out).map_err(|e| {
                InputError::new(format!(
                    "cannot read `{name}`:{lo}-{hi}: {e}: the BGZF file is truncated or corrupt, or its \
                     .fai/.gzi do not match it"
                ))
                .file(&self.index.path)
                .hint("delete the .fai and .gzi beside it to have them rebuilt")
            })?,
        }
        normalize_bases(&mut out[at..]);
        out.resize(out.len() + (end - hi) as usize, b'N');
        Ok(())
    }

    /// [`Self::read`] into a new vector.
    pub fn fetch(&mut self, name: &str, start: i64, end: i64) -> Result<Vec<u8>, InputError> {
        let mut out = Vec::new();
        self.read(name, start, end, &mut out)?;
        Ok(out)
    }
}

fn read_mapped(map: &Mmap, rec: &FaiRecord, i0: u64, i1: u64, out: &mut Vec<u8>) -> Result<(), String> {
    let mut i = i0;
    while i < i1 {
        let col = i % rec.line_bases;
        let n = (rec.line_bases - col).min(i1 - i);
        let b = rec.byte_of(i) as usize;
        let Some(slice) = map.get(b..b + n as usize) else {
            return Err(format!(
                "the index puts `{}` past the end of the FASTA: it does not match the file",
                rec.name
            ));
        };
        out.extend_from_slice(slice);
        i += n;
    }
    Ok(())
}

fn read_bgzf(
    reader: &mut bgzf::io::IndexedReader<File>,
    rec: &FaiRecord,
    i0: u64,
    i1: u64,
    out: &mut Vec<u8>,
) -> std::io::Result<()> {
    reader.seek(SeekFrom::Start(rec.byte_of(i0)))?;
    let gap = (rec.line_width - rec.line_bases) as usize;
    let mut skip = [0u8; 8];
    let mut i = i0;
    while i < i1 {
        let col = i % rec.line_bases;
        let n = (rec.line_bases - col).min(i1 - i) as usize;
        let at = out.len();
        out.resize(at + n, 0);
        reader.read_exact(&mut out[at..])?;
        i += n as u64;
        if i < i1 && gap > 0 {
            reader.read_exact(&mut skip[..gap.min(8)])?;
        }
    }
    Ok(())
}

fn open_data(path: &Path, gzi: Option<&bgzf::gzi::Index>) -> anyhow::Result<Data> {
    let file = File::open(path).map_err(|e| input::open_error(path, &e))?;
    Ok(match gzi {
        Some(g) => Data::Bgzf(Box::new(bgzf::io::IndexedReader::new(file, g.clone()))),
        None => {
            // SAFETY: the map is read-only; a file changed under a running job gives wrong
            // bases or a bounds error, never undefined behaviour in safe code reading `&[u8]`
            // (the same contract as the dataset scans' maps).
            let map =
                unsafe { Mmap::map(&file) }.with_context(|| format!("cannot map {}", path.display()))?;
            Data::Mapped(Arc::new(map))
        }
    })
}

/// Checks that every sequence of `index` lies within a plain file of `len` bytes.
fn check_fits(index: &FastaIndex, len: u64, fai: &Path) -> Result<(), InputError> {
    for r in &index.records {
        if r.length > 0 && r.byte_of(r.length - 1) >= len {
            return Err(InputError::new(format!(
                "the index puts `{}` past the end of the FASTA ({len} bytes): it does not match the file",
                r.name
            ))
            .file(fai)
            .hint("delete the index to have it rebuilt"));
        }
    }
    Ok(())
}

fn list_names(index: &FastaIndex, n: usize) -> String {
    let names: Vec<&str> = index.records.iter().take(n).map(|r| r.name.as_str()).collect();
    let more = index.records.len().saturating_sub(n);
    if more > 0 {
        format!(
            "{} sequences: {}, … ({more} more)",
            index.records.len(),
            names.join(", ")
        )
    } else {
        format!(
            "{} sequence{}: {}",
            index.records.len(),
            if index.records.len() == 1 { "" } else { "s" },
            names.join(", ")
        )
    }
}

pub(super) fn describe_names(index: &FastaIndex) -> String {
    list_names(index, 5)
}

/// The decompressed copy of a plain gzip FASTA in `cache_dir`, made once.
fn decompress_to_cache(
    path: &Path,
    cache_dir: Option<&Path>,
    notes: &mut Vec<String>,
) -> anyhow::Result<PathBuf> {
    let Some(dir) = cache_dir else {
        return Err(InputError::new(
            "plain gzip (not bgzip) cannot be read by region, and no cache directory is set to \
             decompress it into",
        )
        .file(path)
        .hint("compress it with `bgzip` (`gunzip -c F.fa.gz | bgzip > F.fa.bgz`), or set genome.cache_dir")
        .into());
    };
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("genome.fa.gz");
    let stem = name
        .strip_suffix(".gz")
        .or_else(|| name.strip_suffix(".gzip"))
        .unwrap_or(name);
    let out = dir.join(format!("{stem}.{}.fa", input::cache_key(path)?));
    if out.is_file() {
        return Ok(out);
    }
    let note = format!(
        "{} is plain gzip, which cannot be read by region: decompressing it once to {} \
         (bgzip it to read it in place)",
        path.display(),
        out.display()
    );
    eprintln!("genome: {note}");
    notes.push(note);
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create the cache directory {}", dir.display()))?;
    crate::io::write_atomic(&out, |w| {
        let f = File::open(path).map_err(|e| input::open_error(path, &e))?;
        let mut d = flate2::read::MultiGzDecoder::new(BufReader::with_capacity(64 << 10, f));
        std::io::copy(&mut d, w).map_err(|e| {
            InputError::new(format!(
                "cannot decompress ({e}): the gzip file is truncated or corrupt"
            ))
            .file(path)
            .hint("download or copy it again; `gzip -t FILE` checks it")
        })?;
        Ok(())
    })?;
    Ok(out)
}

/// Reads a fresh index beside `data` or in the cache, else builds one with `build` and
/// writes it beside `data`, or in the cache when that fails.
fn index_for<T>(
    data: &Path,
    ext: &str,
    cache_dir: Option<&Path>,
    notes: &mut Vec<String>,
    load: impl Fn(&Path) -> Option<T>,
    build: impl FnOnce() -> Result<(T, Vec<u8>), InputError>,
) -> anyhow::Result<(PathBuf, T)> {
    let beside = input::with_suffix(data, ext);
    let stale = beside.exists() && !input::is_fresh(&beside, data);
    if beside.exists() && !stale {
        if let Some(t) = load(&beside) {
            return Ok((beside, t));
        }
    }
    let name = data.file_name().and_then(|n| n.to_str()).unwrap_or("genome");
    let cached = match cache_dir {
        Some(d) => Some(d.join(format!("{name}.{}{ext}", input::cache_key(data)?))),
        None => None,
    };
    if let Some(c) = &cached {
        if c.is_file() {
            if let Some(t) = load(c) {
                return Ok((c.clone(), t));
            }
        }
    }
    let (t, bytes) = build()?;
    let why = if stale {
        "older than the FASTA, rebuilt"
    } else if beside.exists() {
        "unreadable, rebuilt"
    } else {
        "built"
    };
    match crate::io::write_bytes_atomic(&beside, &bytes) {
        Ok(()) => {
            let note = format!("{} {why}", beside.display());
            eprintln!("genome: {note}");
            notes.push(note);
            Ok((beside, t))
        }
        Err(beside_err) => {
            let Some(c) = cached else {
                return Err(beside_err.context(format!(
                    "cannot write the index {} beside the FASTA, and no cache directory is set \
                     (genome.cache_dir)",
                    beside.display()
                )));
            };
            std::fs::create_dir_all(c.parent().unwrap_or(Path::new(".")))
                .with_context(|| format!("cannot create the cache directory for {}", c.display()))?;
            crate::io::write_bytes_atomic(&c, &bytes).with_context(|| {
                format!(
                    "cannot write the index beside the FASTA ({beside_err:#}) nor in the cache as {}",
                    c.display()
                )
            })?;
            let note = format!(
                "{} {why} in the cache directory ({} cannot be written: {beside_err:#})",
                c.display(),
                beside.display()
            );
            eprintln!("genome: {note}");
            notes.push(note);
            Ok((c, t))
        }
    }
}

fn fai_for(
    data: &Path,
    compression: Compression,
    cache_dir: Option<&Path>,
    notes: &mut Vec<String>,
) -> anyhow::Result<(PathBuf, Vec<FaiRecord>)> {
    let len = std::fs::metadata(data)
        .map_err(|e| input::open_error(data, &e))?
        .len();
    index_for(
        data,
        ".fai",
        cache_dir,
        notes,
        |p| {
            let records = load_fai(p).ok()?;
            // A plain file's index must fit it; a BGZF one is checked on reading.
            let fits = compression != Compression::Plain
                || records
                    .iter()
                    .all(|r| r.length == 0 || r.byte_of(r.length - 1) < len);
            fits.then_some(records)
        },
        || {
            let records = build_fai(data, compression)?;
            let text = fai_text(&records);
            Ok((records, text.into_bytes()))
        },
    )
}

fn gzi_for(
    data: &Path,
    cache_dir: Option<&Path>,
    notes: &mut Vec<String>,
) -> anyhow::Result<(PathBuf, bgzf::gzi::Index)> {
    index_for(
        data,
        ".gzi",
        cache_dir,
        notes,
        |p| bgzf::gzi::fs::read(p).ok(),
        || {
            let index = build_gzi(data)?;
            let mut bytes = Vec::new();
            bgzf::gzi::io::Writer::new(&mut bytes)
                .write_index(&index)
                .expect("writing to memory");
            Ok((index, bytes))
        },
    )
}

/// Parses a `.fai` (five tab-separated columns a line).
pub fn load_fai(path: &Path) -> Result<Vec<FaiRecord>, InputError> {
    let text = std::fs::read_to_string(path).map_err(|e| input::io_error(path, &e))?;
    let mut records = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.is_empty() {
            continue;
        }
        let cols: Vec<&str> = line.split('\t').collect();
        let num = |k: usize| cols.get(k).and_then(|c| c.parse::<u64>().ok());
        match (cols.len(), num(1), num(2), num(3), num(4)) {
            (5, Some(length), Some(offset), Some(line_bases), Some(line_width))
                if length == 0 || (line_bases > 0 && line_width > line_bases) =>
            {
                records.push(FaiRecord {
                    name: cols[0].to_string(),
                    length,
                    offset,
                    line_bases,
                    line_width,
                })
            }
            _ => {
                return Err(at_line(
                    path,
                    i as u64 + 1,
                    "not a FASTA index line (NAME LENGTH OFFSET LINEBASES LINEWIDTH)",
                ))
            }
        }
    }
    if records.is_empty() {
        return Err(InputError::new("an empty FASTA index").file(path));
    }
    Ok(records)
}

/// The `.fai` text of `records`.
pub fn fai_text(records: &[FaiRecord]) -> String {
    records
        .iter()
        .map(|r| {
            format!(
                "{}\t{}\t{}\t{}\t{}\n",
                r.name, r.length, r.offset, r.line_bases, r.line_width
            )
        })
        .collect()
}

/// Builds the `.fai` of a plain or BGZF FASTA (offsets in uncompressed bytes), checking that
/// every line but the last of each sequence has the same length.
pub fn build_fai(path: &Path, compression: Compression) -> Result<Vec<FaiRecord>, InputError> {
    let file = File::open(path).map_err(|e| input::open_error(path, &e))?;
    match compression {
        Compression::Bgzf => index_fasta(bgzf::io::Reader::new(file), path, compression),
        _ => index_fasta(BufReader::with_capacity(256 << 10, file), path, compression),
    }
}

struct Building {
    rec: FaiRecord,
    first_line: u64,
    /// A line shorter than `line_bases` (or blank) was seen: only blank lines may follow.
    ended_at: Option<u64>,
}

/// Indexes FASTA text from `reader` in one pass; `path` names errors.
pub fn index_fasta<R: BufRead>(
    mut reader: R,
    path: &Path,
    compression: Compression,
) -> Result<Vec<FaiRecord>, InputError> {
    let mut records: Vec<FaiRecord> = Vec::new();
    let mut names: HashSet<String> = HashSet::new();
    let mut first_seen: HashMap<String, u64> = HashMap::new();
    let mut cur: Option<Building> = None;
    let mut line: u64 = 1;
    let mut pos: u64 = 0; // byte offset of the chunk's start
    let mut at_start = true; // at the start of a line
    let mut in_header = false;
    let mut name_done = false;
    let mut name: Vec<u8> = Vec::new();
    let mut len: u64 = 0; // bytes of the current sequence line so far
    let mut cr = false; // the last byte of the current line was '\r'

    let finish_seq_line = |cur: &mut Option<Building>,
                           line: u64,
                           len: u64,
                           cr: bool,
                           newline: bool|
     -> Result<(), InputError> {
        let bases = len - cr as u64;
        let width = len + newline as u64;
        let Some(b) = cur.as_mut() else {
            if bases > 0 {
                return Err(at_line(
                    path,
                    line,
                    "sequence before the first `>` header: not a FASTA file?",
                ));
            }
            return Ok(());
        };
        if bases == 0 {
            b.ended_at.get_or_insert(line);
            return Ok(());
        }
        if let Some(short) = b.ended_at {
            return Err(at_line(
                path,
                line,
                format!(
                    "sequence `{}` goes on after a shorter line (line {short}): every line of a sequence \
                     but its last must have the same length to be indexed",
                    b.rec.name
                ),
            )
            .hint("rewrap it, e.g. `seqkit seq -w 60` or `samtools faidx --length 60`"));
        }
        if b.rec.line_bases == 0 {
            b.rec.line_bases = bases;
            b.rec.line_width = if newline { width } else { bases + 1 };
            b.first_line = line;
        } else if bases > b.rec.line_bases {
            return Err(at_line(
                path,
                line,
                format!(
                    "{bases} bases, more than the {} of the first line of sequence `{}` (line {}): every \
                     line of a sequence but its last must have the same length to be indexed",
                    b.rec.line_bases, b.rec.name, b.first_line
                ),
            )
            .hint("rewrap it, e.g. `seqkit seq -w 60` or `samtools faidx --length 60`"));
        } else if bases < b.rec.line_bases {
            b.ended_at = Some(line);
        } else if newline && width != b.rec.line_width {
            return Err(at_line(
                path,
                line,
                format!(
                    "this line ends with {} but line {} with {}: mixed line breaks",
                    if cr { "\\r\\n" } else { "\\n" },
                    b.first_line,
                    if b.rec.line_width == b.rec.line_bases + 2 {
                        "\\r\\n"
                    } else {
                        "\\n"
                    }
                ),
            ));
        }
        b.rec.length += bases;
        Ok(())
    };

    loop {
        let chunk = match reader.fill_buf() {
            Ok(c) => c,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(input::read_error(path, line, compression, &e)),
        };
        if chunk.is_empty() {
            break;
        }
        let n = chunk.len();
        let mut i = 0;
        while i < n {
            if at_start {
                at_start = false;
                if chunk[i] == b'>' {
                    if let Some(b) = cur.take() {
                        records.push(b.rec);
                    }
                    in_header = true;
                    name_done = false;
                    name.clear();
                    i += 1;
                    continue;
                }
            }
            if in_header {
                // Up to the line break: the name is the text before the first blank.
                let rest = &chunk[i..];
                let nl = rest.iter().position(|&b| b == b'\n');
                let seg = &rest[..nl.unwrap_or(rest.len())];
                if !name_done {
                    let stop = seg.iter().position(|&b| b == b' ' || b == b'\t' || b == b'\r');
                    name.extend_from_slice(&seg[..stop.unwrap_or(seg.len())]);
                    if stop.is_some() {
                        name_done = true;
                    }
                    if name.len() > 64 << 10 {
                        return Err(at_line(path, line, "a sequence name longer than 64 KiB"));
                    }
                }
                match nl {
                    Some(k) => {
                        let offset = pos + (i + k + 1) as u64;
                        let name_s = header_name(&name, path, line, &names, &first_seen)?;
                        names.insert(name_s.clone());
                        first_seen.insert(name_s.clone(), line);
                        cur = Some(Building {
                            rec: FaiRecord {
                                name: name_s,
                                length: 0,
                                offset,
                                line_bases: 0,
                                line_width: 0,
                            },
                            first_line: 0,
                            ended_at: None,
                        });
                        in_header = false;
                        at_start = true;
                        line += 1;
                        i += k + 1;
                    }
                    None => i = n,
                }
                continue;
            }
            // A sequence line (or part of one).
            let rest = &chunk[i..];
            let nl = rest.iter().position(|&b| b == b'\n');
            let seg = &rest[..nl.unwrap_or(rest.len())];
            for (k, &b) in seg.iter().enumerate() {
                if cr {
                    return Err(at_line(
                        path,
                        line,
                        format!(
                            "a carriage return (\\r) inside the line, before column {}",
                            len + k as u64 + 1
                        ),
                    ));
                }
                if b == b'\r' {
                    cr = true;
                } else if !VALID[b as usize] {
                    return Err(at_line(
                        path,
                        line,
                        format!(
                            "column {}: `{}` is not a nucleotide code",
                            len + k as u64 + 1,
                            (b as char).escape_default()
                        ),
                    ));
                }
            }
            len += seg.len() as u64;
            match nl {
                Some(k) => {
                    finish_seq_line(&mut cur, line, len, cr, true)?;
                    len = 0;
                    cr = false;
                    at_start = true;
                    line += 1;
                    i += k + 1;
                }
                None => i = n,
            }
        }
        pos += n as u64;
        reader.consume(n);
    }
    if in_header {
        let name_s = header_name(&name, path, line, &names, &first_seen)?;
        cur = Some(Building {
            rec: FaiRecord {
                name: name_s,
                length: 0,
                offset: pos,
                line_bases: 0,
                line_width: 0,
            },
            first_line: 0,
            ended_at: None,
        });
    } else if len > 0 {
        finish_seq_line(&mut cur, line, len, cr, false)?;
    }
    if let Some(b) = cur.take() {
        records.push(b.rec);
    }
    if records.is_empty() {
        return Err(
            InputError::new("no sequences: no line starts with `>`, so this is no FASTA file").file(path),
        );
    }
    Ok(records)
}

fn header_name(
    name: &[u8],
    path: &Path,
    line: u64,
    names: &HashSet<String>,
    first_seen: &HashMap<String, u64>,
) -> Result<String, InputError> {
    let s = std::str::from_utf8(name)
        .map_err(|_| at_line(path, line, "the sequence name is not UTF-8 text"))?
        .to_string();
    if s.is_empty() {
        return Err(at_line(path, line, "a `>` header without a name"));
    }
    if names.contains(&s) {
        return Err(at_line(
            path,
            line,
            format!(
                "a second sequence named `{s}` (the first is at line {})",
                first_seen.get(&s).copied().unwrap_or(0)
            ),
        ));
    }
    Ok(s)
}

/// Walks a BGZF file's block headers (no inflating) and returns its `.gzi`: the compressed
/// and uncompressed offsets of every non-empty block after the first. A block cut short or a
/// missing end-of-file block is an error: the file is truncated.
pub fn build_gzi(path: &Path) -> Result<bgzf::gzi::Index, InputError> {
    let file = File::open(path).map_err(|e| input::open_error(path, &e))?;
    let total = file.metadata().map_err(|e| input::io_error(path, &e))?.len();
    let mut r = BufReader::with_capacity(64 << 10, file);
    let truncated = |at: u64, what: &str| {
        InputError::new(format!(
            "BGZF block at byte {at}: {what}: the file is truncated or corrupt"
        ))
        .file(path)
        .hint("download or copy it again; `bgzip -t FILE` checks it")
    };
    let mut entries = Vec::new();
    let mut pos = 0u64;
    let mut upos = 0u64;
    let mut last_empty = false;
    while pos < total {
        let mut head = [0u8; 18];
        if total - pos < 18 {
            return Err(truncated(pos, "the header is cut short"));
        }
        r.read_exact(&mut head).map_err(|e| input::io_error(path, &e))?;
        if input::compression_of(&head) != Compression::Bgzf {
            return Err(truncated(pos, "not a BGZF block header"));
        }
        let bsize = u16::from_le_bytes([head[16], head[17]]) as u64 + 1;
        if bsize < 26 || pos + bsize > total {
            return Err(truncated(pos, "the block is cut short"));
        }
        r.seek_relative((bsize - 18 - 4) as i64)
            .map_err(|e| input::io_error(path, &e))?;
        let mut isize = [0u8; 4];
        r.read_exact(&mut isize).map_err(|e| input::io_error(path, &e))?;
        let isize = u32::from_le_bytes(isize) as u64;
        if pos > 0 && isize > 0 {
            entries.push((pos, upos));
        }
        last_empty = isize == 0;
        upos += isize;
        pos += bsize;
    }
    if !last_empty {
        return Err(truncated(pos, "no end-of-file block after the last block"));
    }
    Ok(bgzf::gzi::Index::from(entries))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index(text: &str) -> Result<Vec<FaiRecord>, InputError> {
        index_fasta(text.as_bytes(), Path::new("t.fa"), Compression::Plain)
    }

    #[test]
    fn fai_of_a_file_without_a_final_line_break() {
        let r = index(">a\nACGT\nAC").unwrap();
        assert_eq!(
            (r[0].length, r[0].offset, r[0].line_bases, r[0].line_width),
            (6, 3, 4, 5)
        );
        let r = index(">a\nACGT").unwrap();
        assert_eq!((r[0].length, r[0].line_bases, r[0].line_width), (4, 4, 5));
        let r = index(">a\n>b\nA\n").unwrap();
        assert_eq!((r[0].length, r[1].offset), (0, 6));
    }

    #[test]
    fn fai_lines_with_zero_bases_but_a_length_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.fai");
        std::fs::write(&p, "a\t10\t3\t0\t1\n").unwrap();
        assert!(load_fai(&p).is_err());
        std::fs::write(&p, "a\t10\t3\t4\t5\nb\t0\t30\t0\t0\n").unwrap();
        assert_eq!(load_fai(&p).unwrap().len(), 2);
    }

    #[test]
    fn bases_normalise_to_upper_case_acgt_or_n() {
        let mut b = b"acgtACGTnNryRY-*.u".to_vec();
        normalize_bases(&mut b);
        assert_eq!(b, b"ACGTACGTNNNNNNNNNN");
    }
}
