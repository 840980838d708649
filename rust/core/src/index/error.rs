//! The one error type of the index module. Every message names the file it is about.

use std::path::PathBuf;

/// Errors raised while indexing a dataset.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    /// A directory the layout requires does not exist.
    #[error("{path}: directory not found; expected {expected}")]
    MissingDir { path: PathBuf, expected: String },
    /// A file the layout requires does not exist.
    #[error("{path}: file not found; expected {expected}")]
    MissingFile { path: PathBuf, expected: String },
    /// An operating-system error while reading a file or directory.
    #[error("{path}: cannot read: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid JSON.
    #[error("{path}: line {line}, column {column}: malformed JSON: {message}")]
    Json { path: PathBuf, line: usize, column: usize, message: String },
    /// The JSON is valid but its structure is not the expected one.
    #[error("{path}: {location}: expected {expected}, found {found}")]
    Format { path: PathBuf, location: String, expected: String, found: String },
    /// A label lies outside the class range given by the training list.
    #[error("{path}: {location}: label {label} is out of range; expected 0..{num_classes} (the labels of the training list)")]
    LabelOutOfRange { path: PathBuf, location: String, label: i64, num_classes: i64 },
    /// Two entries give different class names for one label.
    #[error("{path}: {location}: class name {found:?} for label {label} differs from {first:?} given at {first_location}; expected one name per label")]
    ClassnameConflict {
        path: PathBuf,
        location: String,
        label: i64,
        found: String,
        first: String,
        first_location: String,
    },
}

impl IndexError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        IndexError::Io { path: path.into(), source }
    }
}
