//! Existence checks and path lookups over an index, in parallel.

use std::collections::HashMap;
use std::path::Path;

use rayon::prelude::*;

use super::bytes_to_path;

/// Positions of the `paths` (relative to `prefix`) that are not existing files, ascending.
/// Symbolic links are followed. All positions are returned, so a caller can report every
/// missing image at once.
pub fn missing_files(prefix: &Path, paths: &[&[u8]]) -> Vec<usize> {
    paths.par_iter().enumerate().filter(|(_, p)| !prefix.join(bytes_to_path(p)).is_file()).map(|(i, _)| i).collect()
}

/// For each needle, the position of an equal path in `haystack` (the first one when the
/// haystack repeats a path), or `-1` when absent.
pub fn lookup_paths(haystack: &[&[u8]], needles: &[&[u8]]) -> Vec<i64> {
    let mut pos: HashMap<&[u8], i64> = HashMap::with_capacity(haystack.len());
    for (i, p) in haystack.iter().enumerate().rev() {
        pos.insert(p, i as i64);
    }
    needles.par_iter().map(|n| pos.get(n).copied().unwrap_or(-1)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_missing_and_looks_up() {
        let t = tempfile::tempdir().unwrap();
        std::fs::write(t.path().join("a.jpg"), b"x").unwrap();
        std::fs::create_dir(t.path().join("d")).unwrap();
        let paths: Vec<&[u8]> = vec![b"a.jpg", b"b.jpg", b"d"];
        assert_eq!(missing_files(t.path(), &paths), vec![1, 2]);
        let hay: Vec<&[u8]> = vec![b"x", b"y", b"x"];
        let needles: Vec<&[u8]> = vec![b"x", b"z", b"y"];
        assert_eq!(lookup_paths(&hay, &needles), vec![0, -1, 1]);
    }
}
