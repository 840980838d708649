//! Dataset indexing: parallel scans of class-per-folder trees, split-file parsing and
//! existence checks, producing a compact index (one path buffer, offsets, labels).
//!
//! Paths are raw bytes relative to a dataset's path prefix, so nothing here allocates one
//! object per item; the Python layer keeps the buffer and decodes a path only when asked.

// Errors carry the file and its context; they are rare and cold, so their size is not worth boxing.
#![allow(clippy::result_large_err)]

mod cache;
mod check;
mod error;
mod scan;
mod split;

pub use cache::{scan_class_folders_cached, CacheOptions, CacheReport};
pub use check::{lookup_paths, missing_files};
pub use error::IndexError;
pub use scan::{list_class_dirs, scan_class_folders, ClassScan, FileOrder};
pub use split::{read_split_json, SplitFile};

/// Relative paths with labels, stored as one byte buffer plus `len + 1` offsets.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PathIndex {
    /// Concatenated path bytes.
    pub buf: Vec<u8>,
    /// `offsets[i]..offsets[i + 1]` is the i-th path; `offsets[0] == 0`.
    pub offsets: Vec<i64>,
    /// One label per path.
    pub labels: Vec<i64>,
}

impl PathIndex {
    /// An empty index.
    pub fn new() -> Self {
        PathIndex { buf: Vec::new(), offsets: vec![0], labels: Vec::new() }
    }

    /// Appends one path with its label.
    pub fn push(&mut self, path: &[u8], label: i64) {
        self.buf.extend_from_slice(path);
        self.offsets.push(self.buf.len() as i64);
        self.labels.push(label);
    }

    /// Appends all paths of `other`, every one with `label` (their labels in `other` are ignored).
    pub fn extend_as(&mut self, other: &PathIndex, label: i64) {
        let base = self.buf.len() as i64;
        self.buf.extend_from_slice(&other.buf);
        self.offsets.extend(other.offsets[1..].iter().map(|o| o + base));
        self.labels.extend(std::iter::repeat_n(label, other.len()));
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether the index has no entries.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The bytes of the i-th path.
    pub fn path(&self, i: usize) -> &[u8] {
        &self.buf[self.offsets[i] as usize..self.offsets[i + 1] as usize]
    }
}

/// The path named by raw bytes (on Unix, exactly those bytes).
#[cfg(unix)]
pub fn bytes_to_path(b: &[u8]) -> std::path::PathBuf {
    use std::os::unix::ffi::OsStrExt;
    std::path::PathBuf::from(std::ffi::OsStr::from_bytes(b))
}

/// The path named by raw bytes (elsewhere, lossily decoded as UTF-8).
#[cfg(not(unix))]
pub fn bytes_to_path(b: &[u8]) -> std::path::PathBuf {
    std::path::PathBuf::from(String::from_utf8_lossy(b).into_owned())
}

/// The raw bytes of an OS string (on Unix, exactly its bytes).
#[cfg(unix)]
pub fn os_to_bytes(s: &std::ffi::OsStr) -> Vec<u8> {
    use std::os::unix::ffi::OsStrExt;
    s.as_bytes().to_vec()
}

/// The bytes of an OS string (elsewhere, lossily encoded as UTF-8).
#[cfg(not(unix))]
pub fn os_to_bytes(s: &std::ffi::OsStr) -> Vec<u8> {
    s.to_string_lossy().into_owned().into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_and_extend_as_keep_offsets_consistent() {
        let mut a = PathIndex::new();
        a.push(b"x/1.jpg", 0);
        let mut b = PathIndex::new();
        b.push(b"y/22.jpg", 7);
        b.push(b"y/3.jpg", 0);
        a.extend_as(&b, 1);
        assert_eq!(a.len(), 3);
        assert_eq!(a.path(0), b"x/1.jpg");
        assert_eq!(a.path(1), b"y/22.jpg");
        assert_eq!(a.path(2), b"y/3.jpg");
        assert_eq!(a.labels, vec![0, 1, 1]);
    }
}
