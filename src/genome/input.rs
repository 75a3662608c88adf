//! Opening genome inputs: compression told by content, errors located by file and line.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use crate::error::InputError;

/// How a file is compressed, told by its first bytes (never its name).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// Not compressed.
    Plain,
    /// gzip that is not BGZF: readable only from the start.
    Gzip,
    /// Blocked gzip (`bgzip`): gzip that a `.gzi` index makes seekable.
    Bgzf,
}

impl Compression {
    pub fn as_str(self) -> &'static str {
        match self {
            Compression::Plain => "plain",
            Compression::Gzip => "gzip",
            Compression::Bgzf => "bgzip",
        }
    }
}

/// An error at `line` of `path`: `path: line N: message`.
///
/// Every line-located genome error goes through here, so that the form changes in one place.
pub fn at_line(path: &Path, line: u64, message: impl std::fmt::Display) -> InputError {
    InputError::new(format!("line {line}: {message}")).file(path)
}

/// An I/O failure while reading `path`, as an input error.
pub fn io_error(path: &Path, e: &std::io::Error) -> InputError {
    InputError::new(format!("cannot read: {e}")).file(path)
}

/// Reads the compression of `path` from its magic bytes.
pub fn sniff(path: &Path) -> Result<Compression, InputError> {
    let mut f = File::open(path).map_err(|e| open_error(path, &e))?;
    let mut head = [0u8; 16];
    let mut n = 0;
    while n < head.len() {
        match f.read(&mut head[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(io_error(path, &e)),
        }
    }
    Ok(compression_of(&head[..n]))
}

/// Tells plain, gzip and BGZF apart from a file's first bytes (at least 16 for BGZF).
pub fn compression_of(head: &[u8]) -> Compression {
    if head.len() < 2 || head[0] != 0x1f || head[1] != 0x8b {
        return Compression::Plain;
    }
    // BGZF: gzip with FEXTRA, XLEN = 6 and a `BC` subfield of length 2 (SAM spec § 4.1).
    let bgzf = head.len() >= 16
        && head[2] == 8
        && head[3] & 4 != 0
        && u16::from_le_bytes([head[10], head[11]]) == 6
        && &head[12..14] == b"BC"
        && u16::from_le_bytes([head[14], head[15]]) == 2;
    if bgzf {
        Compression::Bgzf
    } else {
        Compression::Gzip
    }
}

pub fn open_error(path: &Path, e: &std::io::Error) -> InputError {
    let hint = match e.kind() {
        std::io::ErrorKind::NotFound => "check the path in the config",
        std::io::ErrorKind::PermissionDenied => "check the file's permissions",
        _ => "",
    };
    let err = InputError::new(format!("cannot open: {e}")).file(path);
    if hint.is_empty() {
        err
    } else {
        err.hint(hint)
    }
}

/// A text file, decompressed on the fly when it is gzip or BGZF (both are read as
/// multi-member gzip from the start).
pub fn open_text(path: &Path) -> Result<(Box<dyn BufRead + Send>, Compression), InputError> {
    let compression = sniff(path)?;
    let f = File::open(path).map_err(|e| open_error(path, &e))?;
    let reader: Box<dyn BufRead + Send> = match compression {
        Compression::Plain => Box::new(BufReader::with_capacity(64 << 10, f)),
        Compression::Gzip | Compression::Bgzf => Box::new(BufReader::with_capacity(
            64 << 10,
            flate2::read::MultiGzDecoder::new(BufReader::with_capacity(64 << 10, f)),
        )),
    };
    Ok((reader, compression))
}

/// Bytes that [`open_text`]'s buffers hold.
pub const OPEN_TEXT_BYTES: u64 = 2 * (64 << 10) + (64 << 10);

/// A read error at `line` of a possibly compressed text file, worded for the likely cause.
pub fn read_error(path: &Path, line: u64, compression: Compression, e: &std::io::Error) -> InputError {
    match compression {
        Compression::Plain => at_line(path, line, format!("cannot read: {e}")),
        _ => at_line(
            path,
            line,
            format!(
                "cannot decompress ({e}): the {} file is truncated or corrupt",
                compression.as_str()
            ),
        )
        .hint("download or copy it again; `gzip -t FILE` checks a gzip file"),
    }
}

/// `path` with `suffix` appended to its file name (`a.fa` + `.fai` = `a.fa.fai`).
pub fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// A stable 64-bit FNV-1a hash (cache file names must not change between builds).
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// A key for cache files derived from `path`: its absolute path, size and modification time,
/// so that a changed source never meets a stale cache entry.
pub fn cache_key(path: &Path) -> Result<String, InputError> {
    let meta = std::fs::metadata(path).map_err(|e| open_error(path, &e))?;
    let abs = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let mtime = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    let text = format!("{}\0{}\0{}", abs.display(), meta.len(), mtime);
    Ok(format!("{:016x}", fnv1a(text.as_bytes())))
}

/// Whether `index` exists and is at least as new as `source`.
pub fn is_fresh(index: &Path, source: &Path) -> bool {
    let (Ok(i), Ok(s)) = (std::fs::metadata(index), std::fs::metadata(source)) else {
        return false;
    };
    match (i.modified(), s.modified()) {
        (Ok(i), Ok(s)) => i >= s,
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compression_is_told_by_magic_bytes() {
        assert_eq!(compression_of(b">chr1\nACGT"), Compression::Plain);
        assert_eq!(
            compression_of(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3]),
            Compression::Gzip
        );
        let bgzf = [
            0x1f, 0x8b, 8, 4, 0, 0, 0, 0, 0, 0xff, 6, 0, b'B', b'C', 2, 0, 0x1b, 0,
        ];
        assert_eq!(compression_of(&bgzf), Compression::Bgzf);
        assert_eq!(compression_of(&bgzf[..12]), Compression::Gzip);
    }

    #[test]
    fn cache_names_hash_the_same_in_every_build() {
        // FNV-1a test vectors.
        assert_eq!(fnv1a(b""), 0xcbf29ce484222325);
        assert_eq!(fnv1a(b"a"), 0xaf63dc4c8601ec8c);
        assert_eq!(
            with_suffix(Path::new("d/g.fa.gz"), ".fai"),
            Path::new("d/g.fa.gz.fai")
        );
    }
}
