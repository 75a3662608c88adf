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

/// 2 for usage, config, input and budget errors a user can fix; 1 for internal failures.
pub fn exit_code(err: &anyhow::Error) -> i32 {
    let fixable = err.chain().any(|e| {
        e.is::<InputError>()
            || e.is::<ConfigError>()
            || e.is::<crate::memory::MemoryError>()
            || e.is::<clap::Error>()
    });
    if fixable {
        2
    } else {
        1
    }
}

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
