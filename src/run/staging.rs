//! How a run replaces its previous results without ever leaving a mix of the two.
//!
//! A run writes every output into a staging directory inside `run.out_dir`
//! (`.staging-<pid>`) and only when all of them are written moves them into place
//! ([`Staging::publish`]): renames within one file system, the model (`model_bundle.json`,
//! `model.json`) last. Before the first rename the list of moves is written down in the
//! staging directory (`.publish.json`), so that a run killed half-way through publishing is
//! finished by the next run rather than left as a mix. A run that fails or is killed before
//! that leaves the previous results as they were; its staging directory is removed on
//! failure, or by the next run after a kill ([`clean_leftovers`]).
//!
//! One run at a time works in an out_dir: [`OutDirLock`] holds an advisory lock on the
//! directory for the run's life (the kernel drops it when the process dies, however it dies).

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::error::{io_error, io_hint, InputError};

/// The name of a run's staging directory: `.staging-<pid>`.
const STAGING_PREFIX: &str = ".staging-";
/// The moves of a publication, written before the first one.
const JOURNAL: &str = ".publish.json";

/// An exclusive lock on an out_dir, released when dropped or when the process dies.
pub struct OutDirLock {
    _dir: std::fs::File,
}

impl OutDirLock {
    /// Locks `out_dir`, or refuses when another run holds it. `None` where the file system
    /// cannot lock (some network file systems): the run then goes on unlocked.
    pub fn acquire(out_dir: &Path) -> Result<Option<Self>, InputError> {
        let dir = match std::fs::File::open(out_dir) {
            Ok(d) => d,
            Err(e) => {
                return Err(io_error(out_dir, "cannot open the output directory", &e)
                    .hint("set `run.out_dir` to a directory you can write to"))
            }
        };
        #[cfg(unix)]
        {
            use std::os::unix::io::AsRawFd;
            // SAFETY: flock on a descriptor this function owns.
            let rc = unsafe { libc::flock(dir.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
            if rc != 0 {
                let e = std::io::Error::last_os_error();
                if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
                    return Err(InputError::new(
                        "another spliceboost run is writing to this output directory",
                    )
                    .file(out_dir)
                    .hint("wait for it to finish, or set `run.out_dir` to another directory"));
                }
                return Ok(None);
            }
        }
        Ok(Some(Self { _dir: dir }))
    }
}

/// One step of a publication.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Op {
    /// Move `<staging>/<name>` to `<out_dir>/<name>`.
    Rename(String),
    /// Remove `<out_dir>/<name>`: a previous run's file this run does not replace.
    Remove(String),
}

/// The staging directory of this run's outputs.
pub struct Staging {
    dir: PathBuf,
    out_dir: PathBuf,
    published: bool,
}

impl Staging {
    /// Creates `<out_dir>/.staging-<pid>` and checks that a file can be written there, so
    /// that an out_dir the run cannot write to is refused before any work.
    pub fn create(out_dir: &Path) -> Result<Self, InputError> {
        let dir = out_dir.join(format!("{STAGING_PREFIX}{}", std::process::id()));
        let refuse = |doing: &str, e: std::io::Error| {
            let hint = match io_hint(e.kind()) {
                Some(h) => format!("{h}; or set `run.out_dir` to another directory"),
                None => "set `run.out_dir` to a directory you can write to".into(),
            };
            io_error(out_dir, doing, &e).hint(hint)
        };
        if dir.exists() {
            // Left by an earlier process that had this pid: it is not running now.
            std::fs::remove_dir_all(&dir).map_err(|e| refuse("cannot clear an old staging directory", e))?;
        }
        std::fs::create_dir(&dir).map_err(|e| refuse("cannot write in the output directory", e))?;
        let staging = Self {
            dir,
            out_dir: out_dir.to_path_buf(),
            published: false,
        };
        let probe = staging.dir.join(".probe");
        std::fs::write(&probe, b"spliceboost\n")
            .and_then(|()| std::fs::remove_file(&probe))
            .map_err(|e| refuse("cannot write in the output directory", e))?;
        Ok(staging)
    }

    /// Where this run writes its outputs.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Moves every staged file into the out_dir and removes the previous run's files that
    /// `stale` claims and this run did not write; returns the names published.
    ///
    /// Order: every other file (by name), then `report.html` and `run_summary.json`, then the
    /// stale files' removal, then the model (`model.xgb.json`, then `model.json` or
    /// `model_bundle.json`) last, so that a model newer than the run's other files means all
    /// of them are in place. The moves are recorded first, so that a run killed while
    /// publishing is completed by the next one.
    pub fn publish(mut self, stale: &dyn Fn(&str) -> bool) -> anyhow::Result<Vec<String>> {
        let mut names = vec![];
        for entry in read_dir(&self.dir)? {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !name.starts_with('.') && entry.file_type().is_ok_and(|t| t.is_file()) {
                names.push(name);
            }
        }
        names.sort_by_key(|n| (rank(n), n.clone()));
        let mut ops: Vec<Op> = names
            .iter()
            .filter(|n| rank(n) < 2)
            .map(|n| Op::Rename(n.clone()))
            .collect();
        let mut old = vec![];
        for entry in read_dir(&self.out_dir)? {
            let name = entry.file_name().to_string_lossy().into_owned();
            if stale(&name) && !names.contains(&name) && entry.file_type().is_ok_and(|t| t.is_file()) {
                old.push(name);
            }
        }
        old.sort();
        ops.extend(old.into_iter().map(Op::Remove));
        ops.extend(
            names
                .iter()
                .filter(|n| rank(n) >= 2)
                .map(|n| Op::Rename(n.clone())),
        );

        crate::io::write_bytes_atomic(&self.dir.join(JOURNAL), &serde_json::to_vec(&ops)?)?;
        sync_dir(&self.dir);
        apply(&self.dir, &self.out_dir, &ops, true)?;
        sync_dir(&self.out_dir);
        self.published = true;
        // The results are in place; a staging directory left now would only be cleaned later.
        let _ = std::fs::remove_dir_all(&self.dir);
        Ok(names)
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.published {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Publication order: data and tables, then the report and summary, then the model.
fn rank(name: &str) -> u8 {
    match name {
        "model_bundle.json" | "model.json" => 3,
        "model.xgb.json" => 2,
        "report.html" | "run_summary.json" => 1,
        _ => 0,
    }
}

fn read_dir(dir: &Path) -> Result<Vec<std::fs::DirEntry>, InputError> {
    std::fs::read_dir(dir)
        .and_then(|d| d.collect::<Result<Vec<_>, _>>())
        .map_err(|e| io_error(dir, "cannot list the directory", &e))
}

/// Carries out `ops`; a move whose source is gone was done before (by a run killed while
/// publishing), a removal whose file is gone likewise.
fn apply(staging: &Path, out_dir: &Path, ops: &[Op], pause: bool) -> Result<(), InputError> {
    for (i, op) in ops.iter().enumerate() {
        match op {
            Op::Rename(name) => {
                let from = staging.join(name);
                if from.exists() {
                    let to = out_dir.join(name);
                    std::fs::rename(&from, &to)
                        .map_err(|e| io_error(&to, "cannot move the finished file into place", &e))?;
                }
            }
            Op::Remove(name) => {
                let path = out_dir.join(name);
                match std::fs::remove_file(&path) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                        return Err(io_error(&path, "cannot remove a previous run's file", &e))
                    }
                    _ => {}
                }
            }
        }
        if pause && i == 0 {
            crate::memory::pause_point("publish");
        }
    }
    Ok(())
}

/// Makes a directory's entries durable (renames included); best effort.
fn sync_dir(dir: &Path) {
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

/// Whether process `pid` exists.
fn alive(pid: u32) -> bool {
    if pid == std::process::id() {
        // This process has written nothing yet when leftovers are cleaned: an entry with its
        // pid is from an earlier process that had the same one.
        return false;
    }
    #[cfg(unix)]
    {
        let Ok(pid) = libc::pid_t::try_from(pid) else {
            return false;
        };
        // SAFETY: signal 0 only checks that the process exists.
        let rc = unsafe { libc::kill(pid, 0) };
        rc == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
    }
    #[cfg(not(unix))]
    {
        true
    }
}

/// The newest modification time of `path` and what lies below it, two levels down.
fn newest_mtime(path: &Path, depth: usize) -> Option<SystemTime> {
    let meta = std::fs::symlink_metadata(path).ok()?;
    let mut newest = meta.modified().ok()?;
    if meta.is_dir() && depth > 0 {
        for entry in std::fs::read_dir(path).ok()?.flatten() {
            if let Some(t) = newest_mtime(&entry.path(), depth - 1) {
                newest = newest.max(t);
            }
        }
    }
    Some(newest)
}

/// A temporary name spliceboost makes: `<prefix>[<pid>-]<6 letters or digits><suffix>`
/// (the tempfile crate's random part). Returns whether it matches and the pid it holds.
fn parse_temp(name: &str, prefix: &str, suffix: &str) -> Option<Option<u32>> {
    let rest = name.strip_prefix(prefix)?.strip_suffix(suffix)?;
    let random = |s: &str| s.len() == 6 && s.chars().all(|c| c.is_ascii_alphanumeric());
    if let Some((pid, r)) = rest.split_once('-') {
        if random(r) && !pid.is_empty() && pid.chars().all(|c| c.is_ascii_digit()) {
            return Some(pid.parse().ok());
        }
        return None;
    }
    random(rest).then_some(None)
}

/// Why a leftover may go, or `None` when a live process may still own it: the process its
/// name holds is gone, or (for a name without a pid) nothing in it changed since `started`.
fn dead(path: &Path, pid: Option<u32>, started: SystemTime) -> Option<String> {
    match pid {
        Some(pid) => (!alive(pid)).then(|| format!("process {pid} is gone")),
        None => newest_mtime(path, 2)
            .filter(|t| *t < started)
            .map(|_| "not modified since before this run started".into()),
    }
}

/// Removes what runs killed earlier left in `out_dir` (staging directories, temporary
/// files), in `cache_dir` (half-built binned caches), in `scores` (half-written score
/// batches) and in `synth_parent` (half-written synthetic datasets), and finishes a publication a killed run had begun. Only entries
/// spliceboost names are touched, and only those no live process can own: `.staging-<pid>`
/// in an out_dir this run has locked (a live run would hold the lock), otherwise entries
/// whose pid is not running, or whose name holds none and which nothing modified since
/// `started`. Returns one line per entry, saying what was done; failures to remove are
/// reported the same way and do not stop the run.
pub fn clean_leftovers(
    out_dir: &Path,
    locked: bool,
    cache_dir: &Path,
    scores: Option<&Path>,
    synth_parent: Option<&Path>,
    started: SystemTime,
) -> Vec<String> {
    let mut notes = vec![];
    let entries = |dir: &Path| -> Vec<(String, PathBuf, std::fs::FileType)> {
        std::fs::read_dir(dir)
            .map(|d| {
                d.flatten()
                    .filter_map(|e| {
                        let t = e.file_type().ok()?;
                        Some((e.file_name().to_string_lossy().into_owned(), e.path(), t))
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let remove = |path: &Path, is_dir: bool, why: String, notes: &mut Vec<String>| {
        let r = if is_dir {
            std::fs::remove_dir_all(path)
        } else {
            std::fs::remove_file(path)
        };
        notes.push(match r {
            Ok(()) => format!("removed {}, left by an interrupted run ({why})", path.display()),
            Err(e) => format!(
                "could not remove {}, left by an interrupted run: {e}",
                path.display()
            ),
        });
    };

    for (name, path, t) in entries(out_dir) {
        if let Some(pid) = name.strip_prefix(STAGING_PREFIX) {
            let Ok(pid) = pid.parse::<u32>() else { continue };
            if !t.is_dir() {
                continue;
            }
            let why = if locked {
                Some("no run holds the output directory".to_string())
            } else {
                dead(&path, Some(pid), started)
            };
            let Some(why) = why else { continue };
            match finish_publication(&path, out_dir) {
                Ok(true) => notes.push(format!(
                    "finished publishing the results of an interrupted run from {} ({why})",
                    path.display()
                )),
                Ok(false) => {}
                Err(e) => {
                    notes.push(format!(
                        "could not finish publishing the results of an interrupted run from {}: {e}",
                        path.display()
                    ));
                    continue;
                }
            }
            remove(&path, true, why, &mut notes);
        }
    }
    let mut tmp_dirs = vec![out_dir.to_path_buf()];
    for dir in std::iter::once(cache_dir).chain(scores) {
        if !tmp_dirs.iter().any(|d| d == dir) {
            tmp_dirs.push(dir.to_path_buf());
        }
    }
    for dir in &tmp_dirs {
        for (name, path, t) in entries(dir) {
            if !t.is_file() {
                continue;
            }
            if let Some(pid) = parse_temp(&name, ".spliceboost-", ".tmp") {
                if let Some(why) = dead(&path, pid, started) {
                    remove(&path, false, why, &mut notes);
                }
            }
        }
    }
    for (name, path, t) in entries(cache_dir) {
        if t.is_dir() {
            if let Some(pid) = parse_temp(&name, ".cache-", "") {
                if let Some(why) = dead(&path, pid, started) {
                    remove(&path, true, why, &mut notes);
                }
            }
        }
    }
    if let Some(parent) = synth_parent {
        for (name, path, t) in entries(parent) {
            if !t.is_dir() {
                continue;
            }
            // A half-written synthetic dataset holds `master/` and nothing else.
            let ours = entries(&path).iter().all(|(n, _, t)| n == "master" && t.is_dir());
            if let (Some(pid), true) = (parse_temp(&name, ".synth-", ""), ours) {
                if let Some(why) = dead(&path, pid, started) {
                    remove(&path, true, why, &mut notes);
                }
            }
        }
    }
    notes
}

/// Completes the publication recorded in `staging`, if it recorded one; says whether it did.
fn finish_publication(staging: &Path, out_dir: &Path) -> anyhow::Result<bool> {
    let journal = staging.join(JOURNAL);
    let bytes = match std::fs::read(&journal) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(io_error(&journal, "cannot read", &e).into()),
    };
    let ops: Vec<Op> = serde_json::from_slice(&bytes)?;
    apply(staging, out_dir, &ops, false)?;
    sync_dir(out_dir);
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temporary_names_are_recognised() {
        assert_eq!(
            parse_temp(".spliceboost-123-Ab3dE9.tmp", ".spliceboost-", ".tmp"),
            Some(Some(123))
        );
        assert_eq!(
            parse_temp(".spliceboost-Ab3dE9.tmp", ".spliceboost-", ".tmp"),
            Some(None)
        );
        assert_eq!(parse_temp(".cache-x1Y2z3", ".cache-", ""), Some(None));
        assert_eq!(parse_temp(".cache-old", ".cache-", ""), None);
        assert_eq!(parse_temp(".cache-12-old", ".cache-", ""), None);
        assert_eq!(
            parse_temp(".spliceboost-123-Ab3dE9.tmp.bak", ".spliceboost-", ".tmp"),
            None
        );
    }

    #[test]
    fn publication_order_puts_the_model_last() {
        let mut names = vec![
            "model_bundle.json",
            "report.html",
            "a.tsv",
            "run_summary.json",
            "oof.parquet",
        ];
        names.sort_by_key(|n| (rank(n), n.to_string()));
        assert_eq!(
            names,
            [
                "a.tsv",
                "oof.parquet",
                "report.html",
                "run_summary.json",
                "model_bundle.json"
            ]
        );
    }
}
