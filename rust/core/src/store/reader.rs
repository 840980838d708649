//! Opening and reading a published store: the file is mapped read-only and never modified in place
//! (writers publish a new file by rename), so a mapped view stays valid for as long as it is held.

use std::fs::{self, File};
use std::io::Read;
use std::path::{Path, PathBuf};

use memmap2::Mmap;
use xxhash_rust::xxh3::xxh3_64;

use super::error::{Result, StoreError};
use super::format::{bucket_of, Header, Spec, HEADER_LEN};

/// Identity of the file a path points at, to notice that a writer has published a new one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct FileId(u64, u64);

impl FileId {
    #[cfg(unix)]
    fn of(meta: &fs::Metadata) -> FileId {
        use std::os::unix::fs::MetadataExt;
        FileId(meta.dev(), meta.ino())
    }

    #[cfg(not(unix))]
    fn of(meta: &fs::Metadata) -> FileId {
        let mtime = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos() as u64);
        FileId(meta.len(), mtime)
    }
}

/// A read-only, memory-mapped feature store.
pub struct Store {
    path: PathBuf,
    header: Header,
    map: Mmap,
    id: FileId,
}

impl Store {
    /// Opens the store at `path`.
    ///
    /// Always checks the header (magic, version, checksum, self-consistent offsets) and that the file
    /// length matches it, which catches truncation in O(1). With `verify`, also reads the whole file
    /// once to check the index and row checksums and the key order, which catches bit flips anywhere.
    pub fn open(path: impl AsRef<Path>, verify: bool) -> Result<Store> {
        let path = path.as_ref();
        let mut file = File::open(path).map_err(|e| StoreError::io(path, "open the store", e))?;
        let meta = file.metadata().map_err(|e| StoreError::io(path, "stat the store", e))?;
        let mut head = [0u8; HEADER_LEN];
        let got = read_up_to(&mut file, &mut head).map_err(|e| StoreError::io(path, "read the header", e))?;
        let header = Header::decode(&head[..got], path)?;
        if header.layout.file_len != meta.len() {
            return Err(StoreError::Length {
                path: path.to_path_buf(),
                expected: header.layout.file_len,
                actual: meta.len(),
            });
        }
        // SAFETY: the map is read-only and our writers never modify a published file (they rename a new
        // one over it). The length was checked against the header just above, and is checked again
        // against the map below, so every later access is in bounds of a file of the expected size.
        let map = unsafe { Mmap::map(&file) }.map_err(|e| StoreError::io(path, "memory-map the store", e))?;
        if map.len() as u64 != header.layout.file_len {
            return Err(StoreError::Length {
                path: path.to_path_buf(),
                expected: header.layout.file_len,
                actual: map.len() as u64,
            });
        }
        let store = Store { path: path.to_path_buf(), header, map, id: FileId::of(&meta) };
        if verify {
            store.verify()?;
        }
        Ok(store)
    }

    /// Reads every byte once: index and row checksums, and strictly increasing keys.
    pub fn verify(&self) -> Result<()> {
        let l = &self.header.layout;
        let index = &self.map[l.table_offset as usize..l.rows_offset as usize];
        if xxh3_64(index) != self.header.index_checksum {
            return Err(StoreError::corrupt(&self.path, "index (bucket table and keys) checksum mismatch"));
        }
        if xxh3_64(self.rows_bytes()) != self.header.rows_checksum {
            return Err(StoreError::corrupt(&self.path, "row data checksum mismatch"));
        }
        for i in 1..self.len() {
            if self.key(i - 1) >= self.key(i) {
                return Err(StoreError::corrupt(&self.path, format!("keys out of order at row {i}")));
            }
        }
        Ok(())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn spec(&self) -> &Spec {
        &self.header.spec
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.header.layout.n_rows as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The whole row block, `len() * spec().row_bytes()` bytes, 64-byte aligned; row i is key i's.
    pub fn rows_bytes(&self) -> &[u8] {
        &self.map[self.header.layout.rows_offset as usize..]
    }

    /// The sorted keys, 16 bytes each.
    pub fn keys_bytes(&self) -> &[u8] {
        let l = &self.header.layout;
        &self.map[l.keys_offset as usize..l.keys_offset as usize + self.len() * 16]
    }

    /// Whether `path` still names the file this store mapped (false once a writer published a new one
    /// or the file was removed).
    pub fn is_current(&self) -> bool {
        fs::metadata(&self.path).map(|m| FileId::of(&m) == self.id).unwrap_or(false)
    }

    #[inline]
    fn key(&self, i: usize) -> u128 {
        let at = self.header.layout.keys_offset as usize + i * 16;
        let mut k = [0u8; 16];
        k.copy_from_slice(&self.map[at..at + 16]);
        u128::from_be_bytes(k)
    }

    #[inline]
    fn table(&self, bucket: usize) -> usize {
        let at = self.header.layout.table_offset as usize + bucket * 8;
        let mut v = [0u8; 8];
        v.copy_from_slice(&self.map[at..at + 8]);
        // A damaged table (only caught by `verify`) may hold anything: clamp so it can at worst make a
        // lookup miss, never read out of bounds.
        (u64::from_le_bytes(v)).min(self.len() as u64) as usize
    }

    /// Row index of `key`, if present.
    pub fn find(&self, key: &[u8; 16]) -> Option<usize> {
        let k = u128::from_be_bytes(*key);
        let b = bucket_of(k, self.header.layout.bucket_bits);
        let (mut lo, mut hi) = (self.table(b), self.table(b + 1));
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match self.key(mid).cmp(&k) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return Some(mid),
            }
        }
        None
    }

    /// Row indices of many keys (`keys` is n*16 bytes); -1 where a key is missing.
    pub fn find_many(&self, keys: &[u8], out: &mut [i64]) -> Result<()> {
        self.check_keys(keys, out.len())?;
        for (k, o) in keys.chunks_exact(16).zip(out.iter_mut()) {
            *o = self.find(as_key(k)).map_or(-1, |i| i as i64);
        }
        Ok(())
    }

    /// Copies the rows of `keys` (n*16 bytes) into `out` (n rows), in key order, and sets `found`.
    /// Rows of missing keys are zero-filled. Returns how many keys were found.
    pub fn gather(&self, keys: &[u8], out: &mut [u8], found: &mut [bool]) -> Result<usize> {
        let n = found.len();
        let rb = self.spec().row_bytes();
        self.check_keys(keys, n)?;
        if out.len() != n * rb {
            return Err(StoreError::input(
                &self.path,
                format!("output holds {} bytes, {n} rows need {}", out.len(), n * rb),
            ));
        }
        let rows = self.rows_bytes();
        let mut hits = 0;
        let mut at = [0usize; GATHER_CHUNK];
        for ((keys, out), found) in
            keys.chunks(16 * GATHER_CHUNK).zip(out.chunks_mut(rb * GATHER_CHUNK)).zip(found.chunks_mut(GATHER_CHUNK))
        {
            let at = &mut at[..found.len()];
            self.find_chunk(keys, at);
            // Rows were prefetched by `find_chunk`, so these copies overlap their memory latency.
            for ((&i, dst), f) in at.iter().zip(out.chunks_exact_mut(rb)).zip(found.iter_mut()) {
                *f = i != NOT_FOUND;
                if *f {
                    dst.copy_from_slice(&rows[i * rb..(i + 1) * rb]);
                    hits += 1;
                } else {
                    dst.fill(0);
                }
            }
        }
        Ok(hits)
    }

    /// Looks up a chunk of keys in stages (bucket table, then keys, then rows), prefetching each stage
    /// for all keys before using it: random lookups in a large store are memory-latency bound, and this
    /// keeps many misses in flight instead of one chain of dependent misses per key.
    fn find_chunk(&self, keys: &[u8], at: &mut [usize]) {
        let l = &self.header.layout;
        let base = self.map.as_ptr();
        for (k, slot) in keys.chunks_exact(16).zip(at.iter_mut()) {
            let b = bucket_of(u128::from_be_bytes(*as_key(k)), l.bucket_bits);
            *slot = b;
            prefetch(base, l.table_offset as usize + b * 8);
        }
        for slot in at.iter_mut() {
            let lo = self.table(*slot);
            prefetch(base, l.keys_offset as usize + lo.min(self.len().saturating_sub(1)) * 16);
        }
        let rb = self.spec().row_bytes();
        for (k, slot) in keys.chunks_exact(16).zip(at.iter_mut()) {
            *slot = self.find(as_key(k)).unwrap_or(NOT_FOUND);
            if *slot != NOT_FOUND {
                // The whole row (up to 1 KiB): its lines then arrive in parallel with the next lookups.
                let row = l.rows_offset as usize + *slot * rb;
                for line in (0..rb.min(1024)).step_by(64) {
                    prefetch(base, row + line);
                }
            }
        }
    }

    fn check_keys(&self, keys: &[u8], n: usize) -> Result<()> {
        if keys.len() != n * 16 {
            return Err(StoreError::input(
                &self.path,
                format!("keys must be {n} x 16 bytes, got {} bytes", keys.len()),
            ));
        }
        Ok(())
    }
}

const GATHER_CHUNK: usize = 64;
const NOT_FOUND: usize = usize::MAX;

/// Hints the CPU to load the cache line at `base + offset`; callers keep `offset` inside the map.
#[inline(always)]
fn prefetch(base: *const u8, offset: usize) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is only a hint and cannot fault; the address is inside the mapped file.
    #[allow(unused_unsafe)]
    unsafe {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        _mm_prefetch::<_MM_HINT_T0>(base.wrapping_add(offset).cast::<i8>());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (base, offset);
}

#[inline]
pub(crate) fn as_key(chunk: &[u8]) -> &[u8; 16] {
    // Callers pass `chunks_exact(16)` items, so this conversion cannot fail.
    chunk.try_into().expect("16-byte chunk")
}

/// Like `read_exact`, but a short file is not an error: returns how many bytes were read.
fn read_up_to(file: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match file.read(&mut buf[got..])? {
            0 => break,
            n => got += n,
        }
    }
    Ok(got)
}
