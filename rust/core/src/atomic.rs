//! Atomic file replacement, the one way this crate publishes a file (the feature store and the listing cache).
//!
//! Data goes to a temporary file beside the target (same folder, so the rename cannot cross file systems),
//! is fsynced, renamed over the target, and the folder is fsynced so that the rename itself survives a crash.
//! Readers see the old file or the complete new one, never a mix.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// A failed step of an atomic write: what was being done, to which path, and the OS error.
#[derive(Debug)]
pub struct AtomicError {
    /// The file or folder the step acted on.
    pub path: PathBuf,
    /// The step, phrased to follow "failed to" (e.g. "rename the temporary file over the target").
    pub op: &'static str,
    /// The underlying error.
    pub source: io::Error,
}

impl std::fmt::Display for AtomicError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: cannot {}: {}", self.path.display(), self.op, self.source)
    }
}

impl std::error::Error for AtomicError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

impl AtomicError {
    fn new(path: &Path, op: &'static str, source: io::Error) -> AtomicError {
        AtomicError { path: path.to_path_buf(), op, source }
    }
}

/// A temporary file beside its target, removed on drop unless published.
pub struct AtomicFile {
    path: PathBuf,
    target: PathBuf,
    file: File,
    published: bool,
}

impl AtomicFile {
    /// Creates a new, empty temporary file beside `target` (read and write; never an existing file).
    pub fn create(target: &Path) -> Result<AtomicFile, AtomicError> {
        let name = target.file_name().map_or_else(|| "file".into(), |n| n.to_string_lossy().into_owned());
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let path = target.with_file_name(format!(".{name}.tmp-{}-{nanos}", std::process::id()));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| AtomicError::new(&path, "create the temporary file", e))?;
        Ok(AtomicFile { path, target: target.to_path_buf(), file, published: false })
    }

    /// The temporary file's path (for error messages about writing it).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The open temporary file, to write the content into.
    pub fn file(&mut self) -> &mut File {
        &mut self.file
    }

    /// Fsyncs the content, renames it over the target and fsyncs the target's folder.
    pub fn publish(mut self) -> Result<(), AtomicError> {
        self.file.sync_all().map_err(|e| AtomicError::new(&self.path, "fsync the temporary file", e))?;
        fs::rename(&self.path, &self.target)
            .map_err(|e| AtomicError::new(&self.target, "rename the temporary file over the target", e))?;
        self.published = true;
        sync_parent(&self.target)
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if !self.published {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// Writes `data` to `path` atomically (see the module docs), creating the parent folder if needed.
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<(), AtomicError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir).map_err(|e| AtomicError::new(dir, "create the folder", e))?;
    }
    let mut tmp = AtomicFile::create(path)?;
    let tmp_path = tmp.path.clone();
    tmp.file().write_all(data).map_err(|e| AtomicError::new(&tmp_path, "write the temporary file", e))?;
    tmp.publish()
}

/// Makes a rename durable by fsyncing the folder that holds `target`.
#[cfg(unix)]
fn sync_parent(target: &Path) -> Result<(), AtomicError> {
    let dir = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    File::open(dir).and_then(|d| d.sync_all()).map_err(|e| AtomicError::new(dir, "fsync the folder", e))
}

#[cfg(not(unix))]
fn sync_parent(_target: &Path) -> Result<(), AtomicError> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_file_and_leaves_no_temporary_behind() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("sub/out.bin");
        write_atomic(&target, b"old").unwrap();
        write_atomic(&target, b"new content").unwrap();
        assert_eq!(fs::read(&target).unwrap(), b"new content");
        let names: Vec<_> = fs::read_dir(target.parent().unwrap()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, vec![std::ffi::OsString::from("out.bin")]);
    }

    #[test]
    fn an_unpublished_file_is_removed_and_the_target_kept() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out.bin");
        fs::write(&target, b"kept").unwrap();
        let mut tmp = AtomicFile::create(&target).unwrap();
        tmp.file().write_all(b"half-written").unwrap();
        let tmp_path = tmp.path().to_path_buf();
        drop(tmp); // an error before publish
        assert!(!tmp_path.exists());
        assert_eq!(fs::read(&target).unwrap(), b"kept");
    }

    #[test]
    fn a_failure_names_the_path_and_the_step() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("file"), b"").unwrap();
        let err = write_atomic(&dir.path().join("file/out.bin"), b"x").unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("file") && msg.contains("cannot create the folder"), "{msg}");
    }
}
