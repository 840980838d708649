//! The one error type of the store. Every variant names the file it is about.

use std::io;
use std::path::{Path, PathBuf};

/// Everything that can go wrong opening, reading or writing a feature store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// An operating-system call failed (open, read, write, rename, lock...).
    #[error("{}: cannot {op}: {source}", path.display())]
    Io {
        path: PathBuf,
        op: &'static str,
        #[source]
        source: io::Error,
    },
    /// The file is shorter or longer than its header says: an interrupted copy or a foreign edit.
    #[error("{}: truncated or damaged: expected {expected} bytes, the file has {actual}", path.display())]
    Length { path: PathBuf, expected: u64, actual: u64 },
    /// The file does not start with the store magic.
    #[error("{}: not an mmlop feature store (the first bytes are {found:02x?}, expected {expected:02x?})", path.display())]
    BadMagic { path: PathBuf, found: Vec<u8>, expected: Vec<u8> },
    /// A store written by a newer (or unknown) format version.
    #[error("{}: unsupported store format version {found}; this build reads version {supported}", path.display())]
    Version { path: PathBuf, found: u32, supported: u32 },
    /// A checksum or structural check failed: bit rot, a partial overwrite, or a foreign edit.
    #[error("{}: corrupt: {what}", path.display())]
    Corrupt { path: PathBuf, what: String },
    /// The store is valid but was made for other rows (dtype, width or base model).
    #[error("{}: {field} mismatch: the store holds {found}, the caller expects {expected}", path.display())]
    Mismatch { path: PathBuf, field: &'static str, expected: String, found: String },
    /// The caller passed something the store cannot hold (wrong lengths, bad dtype name...).
    #[error("{}: invalid argument: {what}", path.display())]
    Input { path: PathBuf, what: String },
}

/// Result alias for the store.
pub type Result<T> = std::result::Result<T, StoreError>;

impl From<crate::atomic::AtomicError> for StoreError {
    fn from(e: crate::atomic::AtomicError) -> Self {
        StoreError::Io { path: e.path, op: e.op, source: e.source }
    }
}

impl StoreError {
    pub(crate) fn io(path: &Path, op: &'static str, source: io::Error) -> Self {
        StoreError::Io { path: path.to_path_buf(), op, source }
    }

    pub(crate) fn corrupt(path: &Path, what: impl Into<String>) -> Self {
        StoreError::Corrupt { path: path.to_path_buf(), what: what.into() }
    }

    pub(crate) fn input(path: &Path, what: impl Into<String>) -> Self {
        StoreError::Input { path: path.to_path_buf(), what: what.into() }
    }

    /// The file the error is about.
    pub fn path(&self) -> &Path {
        match self {
            StoreError::Io { path, .. }
            | StoreError::Length { path, .. }
            | StoreError::BadMagic { path, .. }
            | StoreError::Version { path, .. }
            | StoreError::Corrupt { path, .. }
            | StoreError::Mismatch { path, .. }
            | StoreError::Input { path, .. } => path,
        }
    }
}
