//! Parallel listing of class-per-folder trees (`<root>/<class>/<file>`).

use std::fs;
use std::path::Path;

use rayon::prelude::*;

use super::{bytes_to_path, os_to_bytes, IndexError, PathIndex};

/// Order of the files inside one class folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileOrder {
    /// Byte-wise sorted names: deterministic on every machine (our default).
    Sorted,
    /// The order the filesystem returns (`readdir`, like Python's `os.listdir`), which the
    /// reference code uses for ImageNet; it differs between machines.
    Filesystem,
}

/// The result of a class-folder scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassScan {
    /// Class folder names; label `i` is `classes[i]`.
    pub classes: Vec<Vec<u8>>,
    /// Paths `<class>/<file>` relative to the scanned root, grouped by label in label order.
    pub index: PathIndex,
}

fn is_hidden(name: &[u8]) -> bool {
    name.first() == Some(&b'.')
}

/// The metadata of `path` (following symbolic links) when it is a directory, else `MissingDir`.
pub(super) fn require_dir(path: &Path, expected: &str) -> Result<fs::Metadata, IndexError> {
    match fs::metadata(path) {
        Ok(m) if m.is_dir() => Ok(m),
        Ok(_) => Err(IndexError::MissingDir { path: path.to_path_buf(), expected: expected.to_string() }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Err(IndexError::MissingDir { path: path.to_path_buf(), expected: expected.to_string() })
        }
        Err(e) => Err(IndexError::io(path, e)),
    }
}

/// Lists the non-hidden entries of `dir` that are directories (`want_dirs`) or files.
/// Symbolic links are followed.
fn list_entries(dir: &Path, want_dirs: bool) -> Result<Vec<Vec<u8>>, IndexError> {
    let rd = fs::read_dir(dir).map_err(|e| IndexError::io(dir, e))?;
    let mut out = Vec::new();
    for entry in rd {
        let entry = entry.map_err(|e| IndexError::io(dir, e))?;
        let name = os_to_bytes(&entry.file_name());
        if is_hidden(&name) {
            continue;
        }
        let ft = entry.file_type().map_err(|e| IndexError::io(entry.path(), e))?;
        let is_dir = if ft.is_symlink() {
            // A dangling link is neither; it is skipped like any other non-file.
            match fs::metadata(entry.path()) {
                Ok(m) if m.is_dir() => true,
                Ok(m) if m.is_file() => false,
                _ => continue,
            }
        } else if ft.is_dir() {
            true
        } else if ft.is_file() {
            false
        } else {
            continue;
        };
        if is_dir == want_dirs {
            out.push(name);
        }
    }
    Ok(out)
}

/// The sorted names of the non-hidden sub-directories of `root` (files such as `README.txt`
/// are ignored).
///
/// # Errors
/// [`IndexError::MissingDir`] when `root` is not a directory, [`IndexError::Io`] on read errors.
pub fn list_class_dirs(root: &Path) -> Result<Vec<Vec<u8>>, IndexError> {
    require_dir(root, "a folder with one sub-folder per class")?;
    let mut dirs = list_entries(root, true)?;
    dirs.sort_unstable();
    Ok(dirs)
}

/// The class folders of a scan: `classes` when given (the root must exist), else the sorted
/// sub-directories of `root`.
pub(super) fn resolve_classes(root: &Path, classes: Option<Vec<Vec<u8>>>) -> Result<Vec<Vec<u8>>, IndexError> {
    match classes {
        Some(c) => {
            require_dir(root, "a folder with one sub-folder per class")?;
            Ok(c)
        }
        None => list_class_dirs(root),
    }
}

/// The files of one class folder `dir` (named `class` under the root) as `<class>/<file>` paths
/// in `order`, all labelled 0 (the caller labels them with [`PathIndex::extend_as`]).
pub(super) fn list_files(dir: &Path, class: &[u8], order: FileOrder) -> Result<PathIndex, IndexError> {
    let mut names = list_entries(dir, false)?;
    if order == FileOrder::Sorted {
        names.sort_unstable();
    }
    let mut idx = PathIndex::new();
    let mut rel = Vec::with_capacity(class.len() + 64);
    for name in &names {
        rel.clear();
        rel.extend_from_slice(class);
        rel.push(b'/');
        rel.extend_from_slice(name);
        idx.push(&rel, 0);
    }
    Ok(idx)
}

/// Lists every non-hidden file in each class folder of `root`, in parallel over classes.
///
/// `classes` fixes the class folders and their labels (label = position); `None` uses the
/// sorted sub-directories of `root`. Entries come grouped by label, files ordered by `order`.
///
/// # Errors
/// [`IndexError::MissingDir`] when `root` or a listed class folder is missing.
pub fn scan_class_folders(
    root: &Path,
    classes: Option<Vec<Vec<u8>>>,
    order: FileOrder,
) -> Result<ClassScan, IndexError> {
    let classes = resolve_classes(root, classes)?;
    let per_class: Vec<Result<PathIndex, IndexError>> = classes
        .par_iter()
        .map(|class| {
            let dir = root.join(bytes_to_path(class));
            require_dir(&dir, "a class folder")?;
            list_files(&dir, class, order)
        })
        .collect();
    let mut index = PathIndex::new();
    for (label, part) in per_class.into_iter().enumerate() {
        index.extend_as(&part?, label as i64);
    }
    Ok(ClassScan { classes, index })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(p: &Path) {
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, b"x").unwrap();
    }

    #[test]
    fn scan_is_sorted_and_skips_hidden_and_files_at_top() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        touch(&r.join("b/z.jpg"));
        touch(&r.join("b/a.jpg"));
        touch(&r.join("a/m.jpg"));
        touch(&r.join("a/.hidden"));
        touch(&r.join(".git/x"));
        touch(&r.join("README.txt"));
        fs::create_dir_all(r.join("a/nested")).unwrap();
        let s = scan_class_folders(r, None, FileOrder::Sorted).unwrap();
        assert_eq!(s.classes, vec![b"a".to_vec(), b"b".to_vec()]);
        let paths: Vec<&[u8]> = (0..s.index.len()).map(|i| s.index.path(i)).collect();
        assert_eq!(paths, vec![&b"a/m.jpg"[..], b"b/a.jpg", b"b/z.jpg"]);
        assert_eq!(s.index.labels, vec![0, 1, 1]);
    }

    #[test]
    fn explicit_classes_fix_labels_and_missing_ones_are_named() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        touch(&r.join("10/x.jpg"));
        touch(&r.join("2/y.jpg"));
        let s = scan_class_folders(r, Some(vec![b"2".to_vec(), b"10".to_vec()]), FileOrder::Sorted).unwrap();
        assert_eq!(s.index.labels, vec![0, 1]);
        assert_eq!(s.index.path(1), b"10/x.jpg");
        let err = scan_class_folders(r, Some(vec![b"3".to_vec()]), FileOrder::Sorted).unwrap_err();
        assert!(err.to_string().contains("/3: directory not found"), "{err}");
    }

    #[test]
    fn missing_root_is_named() {
        let err = list_class_dirs(Path::new("/nonexistent/mmlop-root")).unwrap_err();
        assert!(err.to_string().starts_with("/nonexistent/mmlop-root: directory not found"), "{err}");
    }
}
