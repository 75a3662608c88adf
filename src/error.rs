//! Errors a user can fix, apart from internal failures.
//!
//! Bad input, bad config and budgets that do not fit exit with code 2; anything else is an
//! internal failure (code 1). [`exit_code`] makes that call by walking the cause chain.

use std::fmt;
use std::path::{Path, PathBuf};

/// Something wrong with an input file, located as precisely as the reader knows.
///
/// Boxed, so that the `Result`s of hot reading paths stay one pointer wide.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputError(Box<InputErrorDetail>);

/// Where and what an [`InputError`] is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputErrorDetail {
    pub file: Option<PathBuf>,
    pub row_group: Option<usize>,
    pub row: Option<u64>,
    pub column: Option<String>,
    pub message: String,
    pub hint: Option<String>,
}

impl std::ops::Deref for InputError {
    type Target = InputErrorDetail;
    fn deref(&self) -> &InputErrorDetail {
        &self.0
    }
}

impl InputError {
    pub fn new(message: impl Into<String>) -> Self {
        Self(Box::new(InputErrorDetail {
            file: None,
            row_group: None,
            row: None,
            column: None,
            message: message.into(),
            hint: None,
        }))
    }
    pub fn file(mut self, file: impl AsRef<Path>) -> Self {
        self.0.file = Some(file.as_ref().to_path_buf());
        self
    }
    pub fn row_group(mut self, rg: usize) -> Self {
        self.0.row_group = Some(rg);
        self
    }
    pub fn row(mut self, row: u64) -> Self {
        self.0.row = Some(row);
        self
    }
    pub fn column(mut self, column: impl Into<String>) -> Self {
        self.0.column = Some(column.into());
        self
    }
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.0.hint = Some(hint.into());
        self
    }
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut sep = "";
        if let Some(file) = &self.file {
            write!(f, "{}", file.display())?;
            sep = ": ";
        }
        if let Some(rg) = self.row_group {
            write!(f, "{sep}row group {rg}")?;
            sep = ", ";
        }
        if let Some(row) = self.row {
            write!(f, "{sep}row {row}")?;
            sep = ", ";
        }
        if let Some(col) = &self.column {
            write!(f, "{sep}column `{col}`")?;
        }
        if self.file.is_some() || self.row_group.is_some() || self.row.is_some() || self.column.is_some() {
            write!(f, ": ")?;
        }
        write!(f, "{}", self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, " ({hint})")?;
        }
        Ok(())
    }
}

impl std::error::Error for InputError {}

/// 2 for usage, config, input and budget errors a user can fix, and for I/O failures of the
/// user's environment (a full disk, a file-size limit, a missing permission or file); 1 for
/// internal failures.
pub fn exit_code(err: &anyhow::Error) -> i32 {
    let fixable = err.chain().any(|e| {
        e.is::<InputError>()
            || e.is::<ConfigError>()
            || e.is::<crate::memory::MemoryError>()
            || e.is::<BudgetAdvice>()
            || e.is::<clap::Error>()
            || e.downcast_ref::<std::io::Error>()
                .is_some_and(|io| environmental(io.kind()))
    });
    if fixable {
        2
    } else {
        1
    }
}

/// I/O failures that come from the machine the run is on rather than from spliceboost: the
/// user can fix them (free space, raise a limit, grant a permission, restore a file).
pub fn environmental(kind: std::io::ErrorKind) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        kind,
        StorageFull
            | QuotaExceeded
            | FileTooLarge
            | PermissionDenied
            | ReadOnlyFilesystem
            | NotFound
            | NotADirectory
            | IsADirectory
    )
}

/// What to do about an I/O failure of this kind, where there is something to say.
pub fn io_hint(kind: std::io::ErrorKind) -> Option<&'static str> {
    use std::io::ErrorKind::*;
    Some(match kind {
        StorageFull | QuotaExceeded => "the disk is full: free space on it, or write to another disk",
        FileTooLarge => {
            "a file-size limit stopped the write (`ulimit -f`): raise it, or write to another disk"
        }
        PermissionDenied => "check the permissions of the path, or write somewhere you may",
        ReadOnlyFilesystem => "the file system is read-only: write somewhere else",
        NotFound => "check that the path exists",
        NotADirectory => "a part of the path is a file, not a directory",
        IsADirectory => "the path is a directory: name a file",
        _ => return None,
    })
}

/// An I/O failure on a user's path as an [`InputError`] naming it: `doing` says what failed
/// (`"cannot write"`), and the hint what to do about the failure's kind.
pub fn io_error(path: &Path, doing: &str, err: &std::io::Error) -> InputError {
    let e = InputError::new(format!("{doing}: {err}")).file(path);
    match io_hint(err.kind()) {
        Some(h) => e.hint(h),
        None => e,
    }
}

/// Names `path` in an error that does not say where it happened: an error of a fixable
/// kind ([`InputError`], [`ConfigError`], a budget refusal) is returned as it is, and one
/// caused by an I/O failure becomes an [`InputError`] on `path` saying `doing` and the cause.
/// Anything else is returned unchanged.
pub fn locate_io(err: anyhow::Error, path: &Path, doing: &str) -> anyhow::Error {
    let located = err.chain().any(|e| {
        e.is::<InputError>()
            || e.is::<ConfigError>()
            || e.is::<crate::memory::MemoryError>()
            || e.is::<BudgetAdvice>()
    });
    if located {
        return err;
    }
    match err.chain().find_map(|e| e.downcast_ref::<std::io::Error>()) {
        Some(io) => io_error(path, doing, io).into(),
        None => err,
    }
}

/// A writer that remembers its first I/O failure, so that a caller whose format library
/// turns that failure into text (serde_json, the Parquet writer) can still report its kind
/// and the path it happened on.
pub struct Watched<W> {
    inner: W,
    first_error: Option<std::io::Error>,
}

impl<W> Watched<W> {
    pub fn new(inner: W) -> Self {
        Self {
            inner,
            first_error: None,
        }
    }

    /// The first I/O failure seen, if any.
    pub fn take_error(&mut self) -> Option<std::io::Error> {
        self.first_error.take()
    }

    fn note(&mut self, e: &std::io::Error) {
        if self.first_error.is_none() && e.kind() != std::io::ErrorKind::Interrupted {
            self.first_error = Some(match e.raw_os_error() {
                Some(code) => std::io::Error::from_raw_os_error(code),
                None => std::io::Error::new(e.kind(), e.to_string()),
            });
        }
    }
}

impl<W: std::io::Write> std::io::Write for Watched<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.inner.write(buf).inspect_err(|e| self.note(e))
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush().inspect_err(|e| self.note(e))
    }
}

/// A budget refusal whose advice also raises `memory.total`: the stage budget it suggests
/// would not fit in the total the config sets, so raising the stage alone would only trade
/// this error for a config error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BudgetAdvice {
    pub error: crate::memory::MemoryError,
    /// The `memory.total` to suggest, in bytes.
    pub total: u64,
}

impl fmt::Display for BudgetAdvice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.error.describe(Some(self.total)))
    }
}

impl std::error::Error for BudgetAdvice {}

/// A config mistake, located in the file (or in a `--set` override).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The config file, or `--set KEY=VALUE` for an override.
    pub source: String,
    /// 1-based line and column, where known.
    pub line: Option<(usize, usize)>,
    /// The dotted key, where known.
    pub key: Option<String>,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.source)?;
        if let Some((line, col)) = self.line {
            write!(f, ":{line}:{col}")?;
        }
        if let Some(key) = &self.key {
            write!(f, ": key `{key}`")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ConfigError {}

thread_local! {
    static QUIET_PANICS: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f` (a third-party decoder that panics on some corrupt inputs instead of returning an
/// error), turning a panic into `None` without its message on standard error: the caller
/// reports the bad input in its own one-line error.
pub fn catch_decoder_panic<T>(f: impl FnOnce() -> T) -> Option<T> {
    static HOOK: std::sync::Once = std::sync::Once::new();
    // The hook in place at first use (the default, or a fuzzer's) still sees every other
    // panic, on every thread.
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !QUIET_PANICS.with(std::cell::Cell::get) {
                previous(info);
            }
        }));
    });
    let was = QUIET_PANICS.with(|q| q.replace(true));
    let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    QUIET_PANICS.with(|q| q.set(was));
    out.ok()
}
