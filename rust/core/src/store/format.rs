//! On-disk layout of a feature store file (format version 1), all integers little-endian.
//!
//! ```text
//! [0, 256)                 header (fields below, then an xxh3-64 of bytes [0, 248) at 248)
//! [256, keys_offset)       bucket table: 2^bucket_bits + 1 u64 row indices (see `bucket_of`)
//! [keys_offset, ..)        n 128-bit keys, 16 bytes each, strictly increasing (as big-endian integers)
//! [rows_offset, file_len)  n rows of `width` elements of `dtype`, row i belongs to key i;
//!                          rows_offset is 64-byte aligned so the mapped block is a valid numpy/torch array
//! ```
//!
//! The header records every offset and the file length, so a truncated file is caught on open by one
//! `stat`, without reading the body. Two more xxh3-64 checksums cover the index (table + keys) and the
//! rows; they are checked by a full verification (`Store::open(.., verify=true)` or `Store::verify`).
//! The bucket table makes a key lookup one table read plus a binary search over ~2-4 keys, and keeps
//! opening O(1): nothing is rebuilt in memory.

use std::path::Path;

use xxhash_rust::xxh3::xxh3_64;

use super::error::{Result, StoreError};

pub const MAGIC: [u8; 8] = *b"MMLOPFST";
pub const FORMAT_VERSION: u32 = 1;
pub const HEADER_LEN: usize = 256;
/// Longest base-model fingerprint the header can hold, in bytes of UTF-8.
pub const MAX_FINGERPRINT_LEN: usize = 128;
/// Widest row accepted; wider rows are almost surely a caller bug (CLIP widths are 512-1280).
pub const MAX_WIDTH: u32 = 1 << 20;
const MAX_BUCKET_BITS: u32 = 30;
const ROWS_ALIGN: u64 = 64;
const FINGERPRINT_AT: usize = 88;
const CHECKSUM_AT: usize = 248;

/// Element type of the rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dtype {
    F16,
    F32,
}

impl Dtype {
    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            Dtype::F16 => 2,
            Dtype::F32 => 4,
        }
    }

    /// The numpy/torch name: "float16" or "float32".
    pub fn name(self) -> &'static str {
        match self {
            Dtype::F16 => "float16",
            Dtype::F32 => "float32",
        }
    }

    /// Parses "float16"/"float32" (also "f16"/"f32"); `None` for anything else.
    pub fn parse(name: &str) -> Option<Dtype> {
        match name {
            "float16" | "f16" => Some(Dtype::F16),
            "float32" | "f32" => Some(Dtype::F32),
            _ => None,
        }
    }

    fn code(self) -> u32 {
        match self {
            Dtype::F16 => 1,
            Dtype::F32 => 2,
        }
    }

    fn from_code(code: u32) -> Option<Dtype> {
        match code {
            1 => Some(Dtype::F16),
            2 => Some(Dtype::F32),
            _ => None,
        }
    }
}

/// What a store holds, independent of how many rows: the caller states it, the file must match it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Spec {
    pub dtype: Dtype,
    pub width: u32,
    /// Identifies the frozen model the features came from (e.g. a sha256 of its weights).
    pub fingerprint: String,
}

impl Spec {
    /// Bytes per row.
    pub fn row_bytes(&self) -> usize {
        self.width as usize * self.dtype.size()
    }

    /// Rejects specs no file may hold; `path` only names the store in the error.
    pub fn validate(&self, path: &Path) -> Result<()> {
        if self.width == 0 || self.width > MAX_WIDTH {
            return Err(StoreError::input(path, format!("width must be in 1..={MAX_WIDTH}, got {}", self.width)));
        }
        if self.fingerprint.len() > MAX_FINGERPRINT_LEN {
            return Err(StoreError::input(
                path,
                format!("fingerprint must be at most {MAX_FINGERPRINT_LEN} bytes, got {}", self.fingerprint.len()),
            ));
        }
        Ok(())
    }

    /// Errors with `Mismatch` on the first field that differs from `expected`.
    pub fn check_matches(&self, expected: &Spec, path: &Path) -> Result<()> {
        let mismatch = |field, e: String, f: String| StoreError::Mismatch {
            path: path.to_path_buf(),
            field,
            expected: e,
            found: f,
        };
        if self.dtype != expected.dtype {
            return Err(mismatch("dtype", expected.dtype.name().into(), self.dtype.name().into()));
        }
        if self.width != expected.width {
            return Err(mismatch("width", expected.width.to_string(), self.width.to_string()));
        }
        if self.fingerprint != expected.fingerprint {
            return Err(mismatch(
                "fingerprint",
                format!("{:?}", expected.fingerprint),
                format!("{:?}", self.fingerprint),
            ));
        }
        Ok(())
    }
}

/// Byte offsets of every section; a pure function of (n_rows, spec) so a reader can recompute and
/// compare it with what the header claims.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    pub n_rows: u64,
    pub bucket_bits: u32,
    pub table_offset: u64,
    pub keys_offset: u64,
    pub rows_offset: u64,
    pub file_len: u64,
}

impl Layout {
    /// Layout for `n_rows` rows of `row_bytes` each, or `None` on arithmetic overflow.
    pub fn new(n_rows: u64, row_bytes: u64) -> Option<Layout> {
        Layout::with_bits(n_rows, row_bytes, bucket_bits_for(n_rows))
    }

    fn with_bits(n_rows: u64, row_bytes: u64, bucket_bits: u32) -> Option<Layout> {
        let table_offset = HEADER_LEN as u64;
        let table_len = ((1u64 << bucket_bits) + 1).checked_mul(8)?;
        let keys_offset = table_offset.checked_add(table_len)?;
        let keys_end = keys_offset.checked_add(n_rows.checked_mul(16)?)?;
        let rows_offset = keys_end.checked_next_multiple_of(ROWS_ALIGN)?;
        let file_len = rows_offset.checked_add(n_rows.checked_mul(row_bytes)?)?;
        Some(Layout { n_rows, bucket_bits, table_offset, keys_offset, rows_offset, file_len })
    }

    /// Number of entries in the bucket table.
    pub fn table_entries(&self) -> usize {
        (1usize << self.bucket_bits) + 1
    }
}

/// About two keys per bucket: the table costs 4 bytes per row next to the 16 of the key.
fn bucket_bits_for(n_rows: u64) -> u32 {
    if n_rows < 4 {
        return 0;
    }
    (63 - n_rows.leading_zeros() - 1).min(MAX_BUCKET_BITS)
}

/// The bucket a key falls in: its top `bits` bits.
#[inline]
pub fn bucket_of(key: u128, bits: u32) -> usize {
    if bits == 0 {
        0
    } else {
        (key >> (128 - bits)) as usize
    }
}

/// The decoded header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    pub spec: Spec,
    pub layout: Layout,
    pub index_checksum: u64,
    pub rows_checksum: u64,
}

impl Header {
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        let l = &self.layout;
        b[0..8].copy_from_slice(&MAGIC);
        b[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        b[12..16].copy_from_slice(&self.spec.dtype.code().to_le_bytes());
        b[16..20].copy_from_slice(&self.spec.width.to_le_bytes());
        b[20..24].copy_from_slice(&l.bucket_bits.to_le_bytes());
        for (at, v) in [
            (24, l.n_rows),
            (32, l.table_offset),
            (40, l.keys_offset),
            (48, l.rows_offset),
            (56, l.file_len),
            (64, self.index_checksum),
            (72, self.rows_checksum),
        ] {
            b[at..at + 8].copy_from_slice(&v.to_le_bytes());
        }
        let fp = self.spec.fingerprint.as_bytes();
        b[80..84].copy_from_slice(&(fp.len() as u32).to_le_bytes());
        b[FINGERPRINT_AT..FINGERPRINT_AT + fp.len()].copy_from_slice(fp);
        let sum = xxh3_64(&b[..CHECKSUM_AT]);
        b[CHECKSUM_AT..].copy_from_slice(&sum.to_le_bytes());
        b
    }

    /// Decodes and validates a header; every inconsistency is an error naming `path`, never a panic.
    pub fn decode(b: &[u8], path: &Path) -> Result<Header> {
        if b.len() < HEADER_LEN {
            return Err(StoreError::Length {
                path: path.to_path_buf(),
                expected: HEADER_LEN as u64,
                actual: b.len() as u64,
            });
        }
        if b[0..8] != MAGIC {
            return Err(StoreError::BadMagic {
                path: path.to_path_buf(),
                found: b[0..8].to_vec(),
                expected: MAGIC.to_vec(),
            });
        }
        let u32_at = |at: usize| u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
        let u64_at = |at: usize| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&b[at..at + 8]);
            u64::from_le_bytes(w)
        };
        if xxh3_64(&b[..CHECKSUM_AT]) != u64_at(CHECKSUM_AT) {
            return Err(StoreError::corrupt(path, "header checksum mismatch"));
        }
        let version = u32_at(8);
        if version != FORMAT_VERSION {
            return Err(StoreError::Version { path: path.to_path_buf(), found: version, supported: FORMAT_VERSION });
        }
        let dtype = Dtype::from_code(u32_at(12))
            .ok_or_else(|| StoreError::corrupt(path, format!("unknown dtype code {}", u32_at(12))))?;
        let fp_len = u32_at(80) as usize;
        if fp_len > MAX_FINGERPRINT_LEN {
            return Err(StoreError::corrupt(
                path,
                format!("fingerprint length {fp_len} exceeds {MAX_FINGERPRINT_LEN}"),
            ));
        }
        let fingerprint = std::str::from_utf8(&b[FINGERPRINT_AT..FINGERPRINT_AT + fp_len])
            .map_err(|_| StoreError::corrupt(path, "fingerprint is not UTF-8"))?
            .to_owned();
        let spec = Spec { dtype, width: u32_at(16), fingerprint };
        spec.validate(path).map_err(|e| StoreError::corrupt(path, format!("header holds an impossible spec ({e})")))?;
        let bucket_bits = u32_at(20);
        if bucket_bits > MAX_BUCKET_BITS {
            return Err(StoreError::corrupt(path, format!("bucket bits {bucket_bits} exceed {MAX_BUCKET_BITS}")));
        }
        let n_rows = u64_at(24);
        let claimed = Layout {
            n_rows,
            bucket_bits,
            table_offset: u64_at(32),
            keys_offset: u64_at(40),
            rows_offset: u64_at(48),
            file_len: u64_at(56),
        };
        let expected = Layout::with_bits(n_rows, spec.row_bytes() as u64, bucket_bits);
        if expected != Some(claimed) || bucket_bits != bucket_bits_for(n_rows) {
            return Err(StoreError::corrupt(
                path,
                format!("section offsets are inconsistent with {n_rows} rows of width {}", spec.width),
            ));
        }
        Ok(Header { spec, layout: claimed, index_checksum: u64_at(64), rows_checksum: u64_at(72) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(n: u64) -> Header {
        let spec = Spec { dtype: Dtype::F16, width: 7, fingerprint: "sha256:abc".into() };
        let layout = Layout::new(n, spec.row_bytes() as u64).unwrap();
        Header { spec, layout, index_checksum: 1, rows_checksum: 2 }
    }

    #[test]
    fn header_round_trips() {
        for n in [0, 1, 3, 4, 5, 1000, 1 << 20] {
            let h = header(n);
            assert_eq!(Header::decode(&h.encode(), Path::new("x")).unwrap(), h);
            assert_eq!(h.layout.rows_offset % ROWS_ALIGN, 0);
        }
    }

    #[test]
    fn every_header_bit_flip_is_caught() {
        let good = header(100).encode();
        for byte in 0..HEADER_LEN {
            for bit in 0..8 {
                let mut b = good;
                b[byte] ^= 1 << bit;
                assert!(Header::decode(&b, Path::new("x")).is_err(), "flip at {byte}:{bit} went unnoticed");
            }
        }
    }

    #[test]
    fn buckets_follow_key_order() {
        let bits = bucket_bits_for(1000);
        assert!(bits > 0);
        assert_eq!(bucket_of(0, bits), 0);
        assert_eq!(bucket_of(u128::MAX, bits), (1 << bits) - 1);
        assert!(bucket_of(1u128 << 127, bits) > bucket_of((1u128 << 127) - 1, bits));
    }
}
