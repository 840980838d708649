//! Publishing rows: merge the current file with new rows into a temporary file, fsync it, and rename it
//! over the old one. Readers hold either the old or the new file, never a partial one. An exclusive
//! advisory lock on a sidecar `<name>.lock` file serialises writers, so concurrent merges do not lose
//! each other's rows; readers take no lock.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::Path;

use xxhash_rust::xxh3::Xxh3;

use super::error::{Result, StoreError};
use super::format::{bucket_of, Header, Layout, Spec};
use super::reader::{as_key, Store};
use crate::atomic::AtomicFile;

/// What a merge did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MergeReport {
    /// Keys that were not in the store before (duplicates in the input counted once).
    pub added: usize,
    /// Rows in the store afterwards.
    pub total: usize,
    /// Whether a new file was published (false when every key was already present).
    pub published: bool,
}

/// Adds `rows` under `keys` (n*16 bytes, n rows of `spec.row_bytes()`) to the store at `path`,
/// creating it if needed. Keys already present keep their stored row, and within `keys` the first
/// occurrence wins: a key names content, so equal keys are taken to mean equal rows.
///
/// The existing file is fully verified before its rows are carried over, so corruption is never
/// propagated. Errors with `Mismatch` when the existing store holds a different dtype, width or
/// fingerprint. Cost: one read of the old file and one write of the new one, so batch the writes.
pub fn merge(path: impl AsRef<Path>, spec: &Spec, keys: &[u8], rows: &[u8]) -> Result<MergeReport> {
    let path = path.as_ref();
    spec.validate(path)?;
    let rb = spec.row_bytes();
    if keys.len() % 16 != 0 {
        return Err(StoreError::input(path, format!("keys must be a multiple of 16 bytes, got {}", keys.len())));
    }
    let n_new = keys.len() / 16;
    if rows.len() != n_new * rb {
        return Err(StoreError::input(
            path,
            format!(
                "{n_new} keys need {} row bytes ({} x {}), got {}",
                n_new * rb,
                spec.width,
                spec.dtype.name(),
                rows.len()
            ),
        ));
    }
    let _lock = WriterLock::acquire(path)?;
    let old = match Store::open(path, true) {
        Ok(store) => Some(store),
        Err(StoreError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e),
    };
    if let Some(old) = &old {
        old.spec().check_matches(spec, path)?;
    }
    let key_at = |bytes: &[u8], i: usize| u128::from_be_bytes(*as_key(&bytes[i * 16..i * 16 + 16]));

    // New keys in order, first occurrence of each kept (the sort is stable).
    let mut fresh: Vec<usize> = (0..n_new).collect();
    fresh.sort_by_key(|&i| key_at(keys, i));
    fresh.dedup_by_key(|i| key_at(keys, *i));

    let old_keys = old.as_ref().map_or(&[][..], |s| s.keys_bytes());
    let n_old = old_keys.len() / 16;
    let mut order = Vec::with_capacity(n_old + fresh.len());
    let (mut a, mut b) = (0, 0);
    while a < n_old || b < fresh.len() {
        let take_old = b == fresh.len() || (a < n_old && key_at(old_keys, a) <= key_at(keys, fresh[b]));
        if take_old {
            if b < fresh.len() && key_at(old_keys, a) == key_at(keys, fresh[b]) {
                b += 1; // already stored: keep the stored row
            }
            order.push(Src::Old(a));
            a += 1;
        } else {
            order.push(Src::New(fresh[b]));
            b += 1;
        }
    }
    let added = order.len() - n_old;
    if old.is_some() && added == 0 {
        return Ok(MergeReport { added: 0, total: n_old, published: false });
    }

    let layout = Layout::new(order.len() as u64, rb as u64)
        .ok_or_else(|| StoreError::input(path, format!("{} rows of {rb} bytes overflow the file size", order.len())))?;
    let old_rows = old.as_ref().map_or(&[][..], |s| s.rows_bytes());
    let key_of = |s: Src| match s {
        Src::Old(i) => &old_keys[i * 16..i * 16 + 16],
        Src::New(i) => &keys[i * 16..i * 16 + 16],
    };
    let row_of = |s: Src| match s {
        Src::Old(i) => &old_rows[i * rb..(i + 1) * rb],
        Src::New(i) => &rows[i * rb..(i + 1) * rb],
    };

    let mut tmp = AtomicFile::create(path)?;
    let tmp_path = tmp.path().to_path_buf();
    let tp = tmp_path.as_path();
    let io = move |op: &'static str| move |e| StoreError::io(tp, op, e);
    let mut out = HashingWriter::new(tmp.file().try_clone().map_err(io("duplicate the temporary file handle"))?);
    out.put(&[0u8; super::format::HEADER_LEN]).map_err(io("write the temporary file"))?;
    out.reset();

    // Bucket table: entry j is the first row whose key falls in bucket >= j.
    let mut next_row = 0usize;
    for bucket in 0..layout.table_entries() {
        while next_row < order.len()
            && bucket_of(u128::from_be_bytes(*as_key(key_of(order[next_row]))), layout.bucket_bits) < bucket
        {
            next_row += 1;
        }
        out.put(&(next_row as u64).to_le_bytes()).map_err(io("write the temporary file"))?;
    }
    for &s in &order {
        out.put(key_of(s)).map_err(io("write the temporary file"))?;
    }
    let pad = (layout.rows_offset - layout.keys_offset - 16 * layout.n_rows) as usize;
    out.put(&vec![0u8; pad]).map_err(io("write the temporary file"))?;
    let index_checksum = out.reset();
    for &s in &order {
        out.put(row_of(s)).map_err(io("write the temporary file"))?;
    }
    let rows_checksum = out.reset();
    let mut file = out.into_inner().map_err(io("flush the temporary file"))?;

    let header = Header { spec: spec.clone(), layout, index_checksum, rows_checksum };
    file.seek(SeekFrom::Start(0)).map_err(io("seek the temporary file"))?;
    file.write_all(&header.encode()).map_err(io("write the temporary file header"))?;
    drop(file);
    drop(old); // unmap before the rename replaces the file
    tmp.publish()?; // fsync, rename, fsync the folder
    Ok(MergeReport { added, total: order.len(), published: true })
}

#[derive(Clone, Copy)]
enum Src {
    Old(usize),
    New(usize),
}

/// Buffered writer that checksums what it writes, one section at a time.
struct HashingWriter {
    inner: BufWriter<File>,
    hasher: Xxh3,
}

impl HashingWriter {
    fn new(file: File) -> Self {
        HashingWriter { inner: BufWriter::with_capacity(1 << 20, file), hasher: Xxh3::new() }
    }

    fn put(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.hasher.update(bytes);
        self.inner.write_all(bytes)
    }

    /// Checksum of the bytes since the last reset.
    fn reset(&mut self) -> u64 {
        let sum = self.hasher.digest();
        self.hasher.reset();
        sum
    }

    fn into_inner(self) -> std::io::Result<File> {
        self.inner.into_inner().map_err(|e| e.into_error())
    }
}

fn file_name(path: &Path) -> Result<String> {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| StoreError::input(path, "the store path must name a file"))
}

/// Exclusive advisory lock on `<store>.lock`, held for the duration of a merge. The lock file is left
/// in place: deleting it would let two writers lock two different inodes.
struct WriterLock {
    file: File,
}

impl WriterLock {
    fn acquire(store: &Path) -> Result<WriterLock> {
        let lock_path = store.with_file_name(format!("{}.lock", file_name(store)?));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .map_err(|e| StoreError::io(&lock_path, "open the writer lock file", e))?;
        fs4::FileExt::lock(&file).map_err(|e| StoreError::io(&lock_path, "lock the writer lock file", e))?;
        Ok(WriterLock { file })
    }
}

impl Drop for WriterLock {
    fn drop(&mut self) {
        let _ = fs4::FileExt::unlock(&self.file);
    }
}
