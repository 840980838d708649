//! A persistent cache of class-folder listings, so that re-indexing an unchanged tree costs one
//! `stat` per class folder instead of reading every directory again.
//!
//! A class folder's listing is reused only when the folder's identity and timestamps (device,
//! inode, mtime and ctime, following symbolic links) equal those recorded when it was listed.
//! Creating, deleting or renaming an entry updates both timestamps of the folder that holds it, so
//! any change to which files a folder holds forces that folder, and only that folder, to be listed
//! again. Changes *inside* files (new pixels) do not matter to an index.
//!
//! Timestamps have a granularity (a kernel tick on Linux, 2 s on FAT), so a folder changed in the
//! same tick as it was listed could keep its timestamps. A listing is therefore only cached when
//! both of the folder's timestamps lie at least `racy_window` before the scan started; a
//! younger folder is listed afresh every time until it has aged.
//!
//! The cache is ours alone and never holds user data: a missing, truncated, corrupt or foreign file
//! is reported and replaced, never an error. Files are published with `crate::atomic` (temporary file, fsync, rename).
//!
//! File layout (format version 1, integers little-endian):
//!
//! ```text
//! [0, 64)   header: magic "MMLOPIDX", u32 version, u8 file order, 3 pad bytes, u64 entry count,
//!           u64 root length, u64 body length, u64 xxh3-64 of the body, u64 reserved,
//!           u64 xxh3-64 of bytes [0, 56)
//! body:     root bytes, then per class folder:
//!           u64 name length, name bytes, u64 dev, u64 ino, i64 mtime_ns, i64 ctime_ns,
//!           u64 file count n, u64 path bytes, n x u32 path lengths, path bytes
//!           (paths are `<class>/<file>`, as in the index)
//! ```

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rayon::prelude::*;
use xxhash_rust::xxh3::xxh3_64;

use super::scan::{list_files, require_dir, resolve_classes, ClassScan, FileOrder};
use super::{bytes_to_path, IndexError, PathIndex};
use crate::atomic::write_atomic;

const MAGIC: [u8; 8] = *b"MMLOPIDX";
const VERSION: u32 = 1;
const HEADER_LEN: usize = 64;

/// Where the cache lives and how old a folder must be before its listing is trusted.
#[derive(Debug, Clone)]
pub struct CacheOptions {
    /// The cache file (one per scanned root and file order; the caller chooses the name).
    pub path: PathBuf,
    /// Folders whose mtime or ctime is this close to the scan's start are not cached.
    pub racy_window: Duration,
}

/// What a cached scan did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheReport {
    /// Class folders whose cached listing was reused.
    pub reused: usize,
    /// Class folders listed from the file system (new, changed, or too recently changed).
    pub listed: usize,
    /// Why the existing cache file could not be used at all (`None` when it was read, or absent).
    pub invalid: Option<String>,
    /// Whether a new cache file was written.
    pub written: bool,
    /// Why writing the cache file failed (`None` on success or when nothing needed writing).
    pub write_error: Option<String>,
}

/// The identity and timestamps of a folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    dev: u64,
    ino: u64,
    mtime_ns: i64,
    ctime_ns: i64,
}

#[cfg(unix)]
fn stamp_of(meta: &fs::Metadata) -> Stamp {
    use std::os::unix::fs::MetadataExt;
    Stamp {
        dev: meta.dev(),
        ino: meta.ino(),
        mtime_ns: meta.mtime().saturating_mul(1_000_000_000).saturating_add(meta.mtime_nsec()),
        ctime_ns: meta.ctime().saturating_mul(1_000_000_000).saturating_add(meta.ctime_nsec()),
    }
}

#[cfg(not(unix))]
fn stamp_of(meta: &fs::Metadata) -> Stamp {
    let ns = |t: std::io::Result<SystemTime>| {
        t.ok().and_then(|t| t.duration_since(UNIX_EPOCH).ok()).map_or(i64::MAX, |d| d.as_nanos() as i64)
    };
    // No inode or ctime here: the modification time alone, and the creation time in ctime's place.
    Stamp { dev: 0, ino: 0, mtime_ns: ns(meta.modified()), ctime_ns: ns(meta.created()) }
}

/// One cached class folder: its stamp and its paths (`<class>/<file>`), labels not included.
struct Entry {
    stamp: Stamp,
    paths: PathIndex,
}

/// One class folder of a scan.
struct Folder<'a> {
    /// Its listing: borrowed from the cache when reused, else listed now.
    paths: Cow<'a, PathIndex>,
    /// Its stamp, when the listing may be cached (the folder is older than the racy window).
    stamp: Option<Stamp>,
    /// Whether it was listed from the file system.
    listed: bool,
}

/// A parsed cache file.
struct CacheFile {
    root: Vec<u8>,
    order: FileOrder,
    entries: HashMap<Vec<u8>, Entry>,
}

fn order_code(order: FileOrder) -> u8 {
    match order {
        FileOrder::Sorted => 0,
        FileOrder::Filesystem => 1,
    }
}

struct Cursor<'a> {
    buf: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.buf.len());
        let end =
            end.ok_or_else(|| format!("body ends at byte {} but {n} more are needed at {}", self.buf.len(), self.at))?;
        let s = &self.buf[self.at..end];
        self.at = end;
        Ok(s)
    }

    fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().unwrap()))
    }

    fn len(&mut self) -> Result<usize, String> {
        let v = self.u64()?;
        usize::try_from(v).ok().filter(|&n| n <= self.buf.len()).ok_or_else(|| format!("length {v} exceeds the body"))
    }
}

fn read_cache(path: &Path) -> Result<Option<CacheFile>, String> {
    let data = match fs::read(path) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read: {e}")),
    };
    if data.len() < HEADER_LEN || data[..8] != MAGIC {
        return Err("not an mmlop index cache (bad magic or shorter than its header)".into());
    }
    let u64_at = |at: usize| u64::from_le_bytes(data[at..at + 8].try_into().unwrap());
    if xxh3_64(&data[..56]) != u64_at(56) {
        return Err("header checksum mismatch".into());
    }
    let version = u32::from_le_bytes(data[8..12].try_into().unwrap());
    if version != VERSION {
        return Err(format!("format version {version}, expected {VERSION}"));
    }
    let order = match data[12] {
        0 => FileOrder::Sorted,
        1 => FileOrder::Filesystem,
        c => return Err(format!("unknown file order code {c}")),
    };
    let (n_entries, root_len, body_len) = (u64_at(16), u64_at(24), u64_at(32));
    let body = &data[HEADER_LEN..];
    if body.len() as u64 != body_len {
        return Err(format!("body is {} bytes, header says {body_len} (truncated?)", body.len()));
    }
    if xxh3_64(body) != u64_at(40) {
        return Err("body checksum mismatch".into());
    }
    let mut c = Cursor { buf: body, at: 0 };
    let root = c.take(usize::try_from(root_len).map_err(|_| "root length overflows".to_string())?)?.to_vec();
    let mut entries = HashMap::new();
    for _ in 0..n_entries {
        let name_len = c.len()?;
        let name = c.take(name_len)?.to_vec();
        let stamp = Stamp { dev: c.u64()?, ino: c.u64()?, mtime_ns: c.u64()? as i64, ctime_ns: c.u64()? as i64 };
        let n = c.len()?;
        let bytes = c.len()?;
        let lens = c.take(n.checked_mul(4).ok_or("file count overflows")?)?;
        let buf = c.take(bytes)?;
        let mut paths = PathIndex { buf: buf.to_vec(), offsets: Vec::with_capacity(n + 1), labels: vec![0; n] };
        let mut end = 0i64;
        paths.offsets.push(0);
        for l in lens.chunks_exact(4) {
            end += u32::from_le_bytes(l.try_into().unwrap()) as i64;
            paths.offsets.push(end);
        }
        if end as usize != bytes {
            return Err(format!(
                "entry {:?}: path lengths sum to {end}, expected {bytes}",
                String::from_utf8_lossy(&name)
            ));
        }
        entries.insert(name, Entry { stamp, paths });
    }
    if c.at != body.len() {
        return Err(format!("{} unexpected bytes after the last entry", body.len() - c.at));
    }
    Ok(Some(CacheFile { root, order, entries }))
}

fn encode(root: &[u8], order: FileOrder, entries: &[(&[u8], Stamp, &PathIndex)]) -> Vec<u8> {
    let mut body = Vec::with_capacity(
        root.len() + entries.iter().map(|(n, _, p)| n.len() + 56 + p.buf.len() + 4 * p.len()).sum::<usize>(),
    );
    body.extend_from_slice(root);
    for (name, stamp, paths) in entries {
        body.extend_from_slice(&(name.len() as u64).to_le_bytes());
        body.extend_from_slice(name);
        for v in [stamp.dev, stamp.ino, stamp.mtime_ns as u64, stamp.ctime_ns as u64] {
            body.extend_from_slice(&v.to_le_bytes());
        }
        body.extend_from_slice(&(paths.len() as u64).to_le_bytes());
        body.extend_from_slice(&(paths.buf.len() as u64).to_le_bytes());
        for w in paths.offsets.windows(2) {
            body.extend_from_slice(&((w[1] - w[0]) as u32).to_le_bytes());
        }
        body.extend_from_slice(&paths.buf);
    }
    let mut out = Vec::with_capacity(HEADER_LEN + body.len());
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.extend_from_slice(&[order_code(order), 0, 0, 0]);
    for v in [entries.len() as u64, root.len() as u64, body.len() as u64, xxh3_64(&body), 0] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    let head = xxh3_64(&out[..56]);
    out.extend_from_slice(&head.to_le_bytes());
    out.extend_from_slice(&body);
    out
}

fn now_ns() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as i64)
}

/// [`scan_class_folders`](super::scan_class_folders) with a persistent cache of the per-folder
/// listings: the result is identical to an uncached scan of the tree as it is now.
///
/// Only the class folders of this scan are listed or reused; entries of other class folders in
/// the cache file (for example `val/<wnid>` beside `train/<wnid>` under one root) are kept.
///
/// # Errors
/// The same as the uncached scan. Problems with the cache file itself are never errors: they are
/// reported in [`CacheReport::invalid`] and [`CacheReport::write_error`].
pub fn scan_class_folders_cached(
    root: &Path,
    classes: Option<Vec<Vec<u8>>>,
    order: FileOrder,
    opts: &CacheOptions,
) -> Result<(ClassScan, CacheReport), IndexError> {
    let started = now_ns();
    let classes = resolve_classes(root, classes)?;
    let root_bytes = super::os_to_bytes(root.as_os_str());
    let (cached, invalid) = match read_cache(&opts.path) {
        Ok(Some(f)) if f.root == root_bytes && f.order == order => (f.entries, None),
        Ok(Some(f)) => {
            let why = format!("it indexes {:?} ({:?} order)", String::from_utf8_lossy(&f.root), f.order);
            (HashMap::new(), Some(why))
        }
        Ok(None) => (HashMap::new(), None),
        Err(why) => (HashMap::new(), Some(why)),
    };
    let racy_before = started.saturating_sub(opts.racy_window.as_nanos().min(i64::MAX as u128) as i64);
    let per_class: Vec<Result<Folder, IndexError>> = classes
        .par_iter()
        .map(|class| {
            let dir = root.join(bytes_to_path(class));
            // The stamp is taken before the listing, so a change during the listing shows next time.
            let stamp = stamp_of(&require_dir(&dir, "a class folder")?);
            let settled = stamp.mtime_ns < racy_before && stamp.ctime_ns < racy_before;
            match cached.get(class.as_slice()) {
                Some(e) if e.stamp == stamp && settled => {
                    Ok(Folder { paths: Cow::Borrowed(&e.paths), stamp: Some(stamp), listed: false })
                }
                _ => {
                    let paths = list_files(&dir, class, order)?;
                    Ok(Folder { paths: Cow::Owned(paths), stamp: settled.then_some(stamp), listed: true })
                }
            }
        })
        .collect();
    let folders = per_class.into_iter().collect::<Result<Vec<Folder>, IndexError>>()?;
    let mut index = PathIndex::new();
    let (mut listed, mut changed) = (0, invalid.is_some());
    for (label, (folder, class)) in folders.iter().zip(&classes).enumerate() {
        index.extend_as(&folder.paths, label as i64);
        listed += folder.listed as usize;
        // A new or updated entry to store, or a stale one to drop.
        changed |= folder.listed && (folder.stamp.is_some() || cached.contains_key(class.as_slice()));
    }
    let reused = classes.len() - listed;
    let mut report = CacheReport { reused, listed, invalid, written: false, write_error: None };
    if changed {
        // This scan's cacheable folders, then the cached entries of folders it did not visit.
        let mut entries: Vec<(&[u8], Stamp, &PathIndex)> = (classes.iter().zip(&folders))
            .filter_map(|(class, f)| f.stamp.map(|stamp| (class.as_slice(), stamp, f.paths.as_ref())))
            .collect();
        let visited: HashSet<&[u8]> = classes.iter().map(|c| c.as_slice()).collect();
        let mut others: Vec<(&[u8], Stamp, &PathIndex)> = (cached.iter())
            .filter(|(k, _)| !visited.contains(k.as_slice()))
            .map(|(k, e)| (k.as_slice(), e.stamp, &e.paths))
            .collect();
        others.sort_unstable_by(|a, b| a.0.cmp(b.0));
        entries.extend(others);
        match write_atomic(&opts.path, &encode(&root_bytes, order, &entries)) {
            Ok(()) => report.written = true,
            Err(e) => report.write_error = Some(format!("{}: cannot write the index cache: {e}", opts.path.display())),
        }
    }
    Ok((ClassScan { classes, index }, report))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::scan_class_folders;

    fn touch(p: &Path) {
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, b"x").unwrap();
    }

    /// A tree whose folders are settled for a 20 ms window (timestamps are one kernel tick coarse).
    fn tree(files: &[&str]) -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap();
        for f in files {
            touch(&t.path().join("data").join(f));
        }
        std::thread::sleep(Duration::from_millis(60));
        t
    }

    fn opts(t: &tempfile::TempDir) -> CacheOptions {
        CacheOptions { path: t.path().join("cache/index.bin"), racy_window: Duration::from_millis(20) }
    }

    fn scan(t: &tempfile::TempDir, classes: Option<&[&str]>) -> (ClassScan, CacheReport) {
        let classes = classes.map(|c| c.iter().map(|s| s.as_bytes().to_vec()).collect::<Vec<_>>());
        let root = t.path().join("data");
        let (got, report) = scan_class_folders_cached(&root, classes.clone(), FileOrder::Sorted, &opts(t)).unwrap();
        // Whatever the cache did, the result is the uncached scan of the tree as it is now.
        assert_eq!(got, scan_class_folders(&root, classes, FileOrder::Sorted).unwrap());
        (got, report)
    }

    #[test]
    fn second_scan_reuses_every_folder_and_writes_nothing() {
        let t = tree(&["a/1.jpg", "a/2.jpg", "b/3.jpg", "c/.hidden"]);
        let (first, r1) = scan(&t, None);
        assert_eq!((r1.reused, r1.listed, r1.written, r1.invalid.clone()), (0, 3, true, None));
        let written = fs::metadata(t.path().join("cache/index.bin")).unwrap().modified().unwrap();
        let (second, r2) = scan(&t, None);
        assert_eq!((r2.reused, r2.listed, r2.written), (3, 0, false));
        assert_eq!(first, second);
        assert_eq!(fs::metadata(t.path().join("cache/index.bin")).unwrap().modified().unwrap(), written);
    }

    #[test]
    fn added_removed_and_renamed_files_relist_only_their_folder() {
        let t = tree(&["a/1.jpg", "b/2.jpg", "c/3.jpg", "d/4.jpg"]);
        scan(&t, None);
        let d = t.path().join("data");
        touch(&d.join("a/0.jpg"));
        fs::remove_file(d.join("b/2.jpg")).unwrap();
        fs::rename(d.join("c/3.jpg"), d.join("c/9.jpg")).unwrap();
        let (s, r) = scan(&t, None);
        assert_eq!((r.reused, r.listed), (1, 3));
        let paths: Vec<&[u8]> = (0..s.index.len()).map(|i| s.index.path(i)).collect();
        assert_eq!(paths, vec![&b"a/0.jpg"[..], b"a/1.jpg", b"c/9.jpg", b"d/4.jpg"]);
        assert_eq!(s.index.labels, vec![0, 0, 2, 3]);
    }

    #[test]
    fn a_replaced_class_folder_is_listed_again() {
        let t = tree(&["a/1.jpg", "b/2.jpg"]);
        scan(&t, None);
        let d = t.path().join("data");
        fs::rename(d.join("a"), d.join("old-a")).unwrap();
        touch(&d.join("a/5.jpg"));
        fs::remove_dir_all(d.join("old-a")).unwrap();
        let (s, r) = scan(&t, None);
        // The new `a` is another inode; `b` is untouched.
        assert_eq!((r.reused, r.listed), (1, 1));
        assert_eq!(s.index.path(0), b"a/5.jpg");
    }

    #[test]
    fn recently_changed_folders_are_never_trusted() {
        let t = tree(&["a/1.jpg", "b/2.jpg"]);
        let root = t.path().join("data");
        // A window far longer than the tree's age: every folder is too young to cache.
        let wide = CacheOptions { path: t.path().join("wide.bin"), racy_window: Duration::from_secs(3600) };
        let (_, r1) = scan_class_folders_cached(&root, None, FileOrder::Sorted, &wide).unwrap();
        let (_, r2) = scan_class_folders_cached(&root, None, FileOrder::Sorted, &wide).unwrap();
        assert_eq!((r1.listed, r1.written, r2.listed, r2.reused), (2, false, 2, 0));
    }

    #[test]
    fn other_class_lists_under_one_root_share_the_file() {
        let t = tree(&["train/a/1.jpg", "train/b/2.jpg", "val/a/3.jpg", "val/b/4.jpg"]);
        let (train, r1) = scan(&t, Some(&["train/a", "train/b"]));
        let (_, r2) = scan(&t, Some(&["val/a", "val/b"]));
        assert_eq!((r1.listed, r2.listed), (2, 2));
        let (train2, r3) = scan(&t, Some(&["train/a", "train/b"]));
        let (_, r4) = scan(&t, Some(&["val/b", "val/a"]));
        assert_eq!((r3.reused, r4.reused, r4.written), (2, 2, false));
        assert_eq!(train, train2);
    }

    #[test]
    fn corrupt_truncated_or_foreign_files_are_reported_and_replaced() {
        let t = tree(&["a/1.jpg", "b/2.jpg"]);
        let path = t.path().join("cache/index.bin");
        scan(&t, None);
        let good = fs::read(&path).unwrap();
        let mut flipped = good.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (flipped, "body checksum mismatch"),
            (good[..good.len() - 3].to_vec(), "truncated"),
            (b"not a cache".to_vec(), "bad magic"),
        ];
        for (bytes, why) in cases {
            fs::write(&path, bytes).unwrap();
            let (_, r) = scan(&t, None);
            assert!(r.invalid.as_deref().unwrap_or("").contains(why), "{why}: {r:?}");
            assert_eq!((r.listed, r.written), (2, true));
            assert_eq!(fs::read(&path).unwrap(), good);
        }
        // A cache of another root (say, a copied cache folder) is not used for this one.
        let other = tree(&["x/1.jpg"]);
        fs::copy(&path, other.path().join("index.bin")).unwrap();
        let o = CacheOptions { path: other.path().join("index.bin"), racy_window: Duration::from_millis(20) };
        let (s, r) = scan_class_folders_cached(&other.path().join("data"), None, FileOrder::Sorted, &o).unwrap();
        assert!(r.invalid.unwrap().contains("it indexes"));
        assert_eq!(s.index.path(0), b"x/1.jpg");
    }

    #[test]
    fn an_unwritable_cache_is_reported_not_raised() {
        let t = tree(&["a/1.jpg"]);
        fs::write(t.path().join("file"), b"").unwrap();
        let o = CacheOptions { path: t.path().join("file/index.bin"), racy_window: Duration::from_millis(20) };
        let (s, r) = scan_class_folders_cached(&t.path().join("data"), None, FileOrder::Sorted, &o).unwrap();
        assert_eq!(s.index.len(), 1);
        assert!(r.write_error.unwrap().contains("file/index.bin: cannot write the index cache"));
    }

    #[test]
    fn missing_class_folders_are_still_errors() {
        let t = tree(&["a/1.jpg"]);
        let err =
            scan_class_folders_cached(&t.path().join("data"), Some(vec![b"zz".to_vec()]), FileOrder::Sorted, &opts(&t))
                .unwrap_err();
        assert!(err.to_string().contains("/zz: directory not found; expected a class folder"), "{err}");
    }
}
