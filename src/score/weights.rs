//! The SpliceAI weight files: where they are cached, their checksums, and their download.
//!
//! The five Keras models of PyPI `spliceai` 1.3.1 (GPLv3, never committed) are fetched on
//! first use with pip, the registry's own client (`pip download --no-deps spliceai==1.3.1`),
//! the `.h5` files taken out of the wheel, checked against the SHA-256 below and renamed into
//! the cache directory one by one, so that a failed download leaves nothing half-written.
//! Every load checks the checksum again: a damaged cached file is an error naming it, never
//! silently replaced.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use sha2::{Digest, Sha256};

use crate::error::InputError;

/// The PyPI release the weights come from.
pub const SPLICEAI_VERSION: &str = "1.3.1";

/// The five models' files and their SHA-256, as shipped in `spliceai-1.3.1-py2.py3-none-any.whl`.
pub const MODEL_FILES: [(&str, &str); 5] = [
    (
        "spliceai1.h5",
        "e1fd5adcef7489d604b10e79c40078ef790d51ef048c4ce3869c9119ac5de42b",
    ),
    (
        "spliceai2.h5",
        "6ab042b82ab966b6d3582cb31b96f0859ea08a864f168d69e83aa14450a3b66e",
    ),
    (
        "spliceai3.h5",
        "e2e790bde53dfdf410c6dc434a86122a7d12f3f38dc2ef45d85986e9ecf22fad",
    ),
    (
        "spliceai4.h5",
        "ca88ac9e58e69ba6fdeed319b72f063f164c9abf7392eaccef903e94c1d99dd6",
    ),
    (
        "spliceai5.h5",
        "791cd22c62a80a08d2ca674615a93ce8159d7b55bd157cfef2983b1bd6b41391",
    ),
];

/// The environment variable naming spliceboost's data directory.
pub const DATA_ENV: &str = "SPLICEBOOST_DATA";

/// The data directory: `$SPLICEBOOST_DATA`, else `$XDG_CACHE_HOME/spliceboost`, else
/// `~/.cache/spliceboost`.
pub fn data_root() -> PathBuf {
    let var = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(d) = var(DATA_ENV) {
        return d;
    }
    if let Some(d) = var("XDG_CACHE_HOME") {
        return d.join("spliceboost");
    }
    var("HOME")
        .unwrap_or_else(std::env::temp_dir)
        .join(".cache")
        .join("spliceboost")
}

/// Where the weights are cached: `<data root>/spliceai/1.3.1`.
pub fn default_dir() -> PathBuf {
    data_root().join("spliceai").join(SPLICEAI_VERSION)
}

/// The file name and SHA-256 of model `m` (1..=5).
pub fn model_file(m: u8) -> Result<(&'static str, &'static str), InputError> {
    match m {
        1..=5 => Ok(MODEL_FILES[m as usize - 1]),
        _ => {
            Err(InputError::new(format!("SpliceAI has models 1 to 5, not {m}"))
                .hint("choose models among 1..5"))
        }
    }
}

/// Whether every file of `models` is in `dir` (present, not yet checked).
pub fn cached(dir: &Path, models: &[u8]) -> bool {
    models
        .iter()
        .all(|&m| model_file(m).is_ok_and(|(name, _)| dir.join(name).is_file()))
}

/// Hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// Hex SHA-256 of a file, read in 64 KiB pieces (score batches are checked this way).
pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    use std::io::Read;
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            return Ok(hex(&h.finalize()));
        }
        h.update(&buf[..n]);
    }
}

fn hex(digest: &[u8]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Checks `bytes`, read from `path`, against the checksum of `name`.
pub fn verify(bytes: &[u8], path: &Path, expected: &str) -> Result<(), InputError> {
    let got = sha256_hex(bytes);
    if got != expected {
        return Err(InputError::new(format!(
            "SHA-256 mismatch: {got}, expected {expected} (spliceai {SPLICEAI_VERSION})"
        ))
        .file(path)
        .hint("the file is damaged or not the original: delete it and spliceboost downloads it again"));
    }
    Ok(())
}

/// Makes sure the files of `models` are in `dir`, downloading the missing ones from PyPI.
pub fn ensure(dir: &Path, models: &[u8]) -> anyhow::Result<()> {
    for &m in models {
        model_file(m)?;
    }
    if cached(dir, models) {
        return Ok(());
    }
    // One download at a time in this process; other processes only ever see whole files.
    static LOCK: Mutex<()> = Mutex::new(());
    let _guard = LOCK.lock().unwrap_or_else(|p| p.into_inner());
    if cached(dir, models) {
        return Ok(());
    }
    let cannot = |m: String| {
        InputError::new(format!("cannot download the SpliceAI weights: {m}"))
            .file(dir)
            .hint(format!(
                "put spliceai1.h5..spliceai5.h5 from PyPI spliceai {SPLICEAI_VERSION} (its wheel's spliceai/models/) there, \
                 or set {DATA_ENV} to a directory holding spliceai/{SPLICEAI_VERSION}/"
            ))
    };
    std::fs::create_dir_all(dir).map_err(|e| cannot(format!("cannot create the directory: {e}")))?;
    let tmp = tempfile::Builder::new()
        .prefix(".download-")
        .tempdir_in(dir)
        .map_err(|e| cannot(format!("no temporary directory: {e}")))?;
    let wheel = pip_download(tmp.path()).map_err(cannot)?;
    extract(&wheel, dir)?;
    Ok(())
}

/// Runs `pip download` into `into` and returns the wheel it fetched.
fn pip_download(into: &Path) -> Result<PathBuf, String> {
    let spec = format!("spliceai=={SPLICEAI_VERSION}");
    let args = [
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--disable-pip-version-check",
        "--quiet",
        "--dest",
    ];
    let candidates: [(&str, &[&str]); 4] = [
        ("python3", &["-m", "pip"]),
        ("pip3", &[]),
        ("pip", &[]),
        ("python", &["-m", "pip"]),
    ];
    let mut tried = vec![];
    for (prog, pre) in candidates {
        let out = Command::new(prog)
            .args(pre)
            .args(args)
            .arg(into)
            .arg(&spec)
            .output();
        match out {
            Err(_) => tried.push(format!("{prog}: not found")),
            Ok(o) if o.status.success() => {
                let wheel = std::fs::read_dir(into)
                    .map_err(|e| e.to_string())?
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .find(|p| p.extension().is_some_and(|x| x == "whl"));
                return wheel.ok_or_else(|| format!("`{prog} {}` left no wheel", pre.join(" ")));
            }
            Ok(o) => {
                let err = String::from_utf8_lossy(&o.stderr);
                let last = err
                    .lines()
                    .rev()
                    .find(|l| !l.trim().is_empty())
                    .unwrap_or("no message");
                tried.push(format!("{prog} {}: {}", pre.join(" "), last.trim()));
            }
        }
    }
    Err(format!("pip download {spec} failed ({})", tried.join("; ")))
}

/// Takes the five `.h5` files out of `wheel`, checks them and renames each into `dir`.
fn extract(wheel: &Path, dir: &Path) -> anyhow::Result<()> {
    let bad = |m: String| InputError::new(m).file(wheel);
    let f = std::fs::File::open(wheel).map_err(|e| bad(format!("cannot open: {e}")))?;
    let mut zip = zip::ZipArchive::new(f).map_err(|e| bad(format!("not a readable wheel: {e}")))?;
    for (name, sha) in MODEL_FILES {
        let dest = dir.join(name);
        if dest.is_file() {
            continue;
        }
        let entry = format!("spliceai/models/{name}");
        let mut bytes = vec![];
        zip.by_name(&entry)
            .map_err(|e| bad(format!("no `{entry}`: {e}")))?
            .read_to_end(&mut bytes)
            .map_err(|e| bad(format!("cannot inflate `{entry}`: {e}")))?;
        verify(&bytes, &wheel.join(&entry), sha)?;
        crate::io::write_bytes_atomic(&dest, &bytes)?;
    }
    Ok(())
}
