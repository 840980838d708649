use std::fs;
use std::path::{Path, PathBuf};

use super::*;

struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
        let dir = std::env::temp_dir().join(format!("mmlop-store-{tag}-{}-{nanos}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn spec(width: u32, dtype: Dtype) -> Spec {
    Spec { dtype, width, fingerprint: "test-model".into() }
}

/// A deterministic spread of keys (splitmix64 twice) and rows whose bytes encode their key index.
fn key(i: u64) -> [u8; 16] {
    let mix = |mut z: u64| {
        z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    (((mix(i) as u128) << 64) | mix(i ^ 0xdead_beef) as u128).to_be_bytes()
}

fn batch(range: std::ops::Range<u64>, rb: usize) -> (Vec<u8>, Vec<u8>) {
    let keys: Vec<u8> = range.clone().flat_map(key).collect();
    let rows: Vec<u8> = range.flat_map(|i| (0..rb).map(move |j| (i as usize * 31 + j) as u8)).collect();
    (keys, rows)
}

fn gather_all(store: &Store, keys: &[u8]) -> (Vec<u8>, Vec<bool>) {
    let n = keys.len() / 16;
    let mut out = vec![0u8; n * store.spec().row_bytes()];
    let mut found = vec![false; n];
    store.gather(keys, &mut out, &mut found).unwrap();
    (out, found)
}

#[test]
fn round_trip_and_merge() {
    let dir = TempDir::new("rt");
    for (width, dtype) in [(1, Dtype::F16), (3, Dtype::F32), (512, Dtype::F16), (1024, Dtype::F32)] {
        let path = dir.0.join(format!("s{width}.mmfs"));
        let sp = spec(width, dtype);
        let rb = sp.row_bytes();
        let (k1, r1) = batch(0..50, rb);
        let rep = merge(&path, &sp, &k1, &r1).unwrap();
        assert_eq!(rep, MergeReport { added: 50, total: 50, published: true });
        // Overlapping second batch: 25 old keys (with other rows, which must be ignored) + 25 new.
        let (k2, mut r2) = batch(25..75, rb);
        r2.iter_mut().for_each(|b| *b = !*b);
        assert_eq!(merge(&path, &sp, &k2, &r2).unwrap().added, 25);
        let store = Store::open(&path, true).unwrap();
        assert_eq!(store.len(), 75);
        let (k_all, r_all) = batch(0..75, rb);
        let (out, found) = gather_all(&store, &k_all);
        assert!(found.iter().all(|&f| f));
        assert_eq!(out[..50 * rb], r_all[..50 * rb]);
        assert_eq!(out[50 * rb..], r2[25 * rb..]);
        let (k_miss, _) = batch(1000..1003, rb);
        let (out, found) = gather_all(&store, &k_miss);
        assert_eq!(found, vec![false; 3]);
        assert!(out.iter().all(|&b| b == 0));
        assert!(!merge(&path, &sp, &k1, &r1).unwrap().published);
    }
}

#[test]
fn lookups_hit_every_key_across_bucket_sizes() {
    let dir = TempDir::new("buckets");
    let sp = spec(2, Dtype::F16);
    for n in [0u64, 1, 3, 4, 5, 17, 1000, 5000] {
        let path = dir.0.join(format!("n{n}.mmfs"));
        let (k, r) = batch(0..n, sp.row_bytes());
        merge(&path, &sp, &k, &r).unwrap();
        let store = Store::open(&path, true).unwrap();
        assert_eq!(store.len() as u64, n);
        for i in 0..n {
            assert!(store.find(&key(i)).is_some(), "n={n}: key {i} not found");
        }
        assert_eq!(store.find(&key(n + 1)), None);
        assert_eq!(store.find(&[0u8; 16]), None);
        assert_eq!(store.find(&[0xffu8; 16]), None);
        let (out, _) = gather_all(&store, &k);
        assert_eq!(out, r);
    }
}

#[test]
fn duplicate_input_keys_keep_the_first_row() {
    let dir = TempDir::new("dup");
    let path = dir.0.join("d.mmfs");
    let sp = spec(1, Dtype::F16);
    let keys: Vec<u8> = [key(1), key(2), key(1)].concat();
    let rows = vec![1, 1, 2, 2, 3, 3];
    assert_eq!(merge(&path, &sp, &keys, &rows).unwrap().added, 2);
    let store = Store::open(&path, false).unwrap();
    assert_eq!(gather_all(&store, &key(1)).0, vec![1, 1]);
}

#[test]
fn spec_mismatch_and_bad_input_name_the_file() {
    let dir = TempDir::new("mismatch");
    let path = dir.0.join("m.mmfs");
    let sp = spec(4, Dtype::F32);
    let (k, r) = batch(0..3, sp.row_bytes());
    merge(&path, &sp, &k, &r).unwrap();
    for other in [spec(4, Dtype::F16), spec(5, Dtype::F32), Spec { fingerprint: "other".into(), ..sp.clone() }] {
        let (k2, r2) = batch(5..6, other.row_bytes());
        let err = merge(&path, &other, &k2, &r2).unwrap_err();
        assert!(matches!(err, StoreError::Mismatch { .. }), "{err}");
        assert!(err.to_string().contains("m.mmfs"), "{err}");
    }
    let err = merge(&path, &sp, &k, &r[1..]).unwrap_err();
    assert!(matches!(err, StoreError::Input { .. }) && err.to_string().contains("m.mmfs"), "{err}");
    assert!(merge(&path, &spec(0, Dtype::F32), &[], &[]).is_err());
}

fn write_sample(dir: &Path) -> (PathBuf, Vec<u8>) {
    let path = dir.join("c.mmfs");
    let sp = spec(8, Dtype::F16);
    let (k, r) = batch(0..40, sp.row_bytes());
    merge(&path, &sp, &k, &r).unwrap();
    let bytes = fs::read(&path).unwrap();
    (path, bytes)
}

#[test]
fn truncation_is_caught_without_verification() {
    let dir = TempDir::new("trunc");
    let (path, bytes) = write_sample(&dir.0);
    for len in [0, 7, 100, 256, 300, bytes.len() - 1] {
        fs::write(&path, &bytes[..len]).unwrap();
        let err = Store::open(&path, false).err().expect("truncated file opened");
        assert!(err.to_string().contains("c.mmfs"), "{err}");
    }
}

#[test]
fn every_body_bit_flip_is_caught_by_verification() {
    let dir = TempDir::new("flip");
    let (path, bytes) = write_sample(&dir.0);
    for at in (0..bytes.len()).step_by(7) {
        let mut bad = bytes.clone();
        bad[at] ^= 0x10;
        fs::write(&path, &bad).unwrap();
        let err = Store::open(&path, true).err().unwrap_or_else(|| panic!("flip at byte {at} went unnoticed"));
        assert!(err.to_string().contains("c.mmfs"), "{err}");
    }
}

#[test]
fn not_a_store_is_rejected() {
    let dir = TempDir::new("magic");
    let path = dir.0.join("x.npy");
    fs::write(&path, vec![b'x'; 4096]).unwrap();
    assert!(matches!(Store::open(&path, false), Err(StoreError::BadMagic { .. })));
    let missing = Store::open(dir.0.join("none.mmfs"), false).err().unwrap();
    assert!(matches!(missing, StoreError::Io { .. }) && missing.to_string().contains("none.mmfs"));
}

#[test]
fn readers_keep_their_file_across_a_publish() {
    let dir = TempDir::new("publish");
    let path = dir.0.join("p.mmfs");
    let sp = spec(2, Dtype::F32);
    let (k, r) = batch(0..10, sp.row_bytes());
    merge(&path, &sp, &k, &r).unwrap();
    let before = Store::open(&path, false).unwrap();
    let (k2, r2) = batch(10..20, sp.row_bytes());
    merge(&path, &sp, &k2, &r2).unwrap();
    assert!(!before.is_current());
    assert_eq!(before.len(), 10);
    assert_eq!(gather_all(&before, &k).0, r);
    let after = Store::open(&path, true).unwrap();
    assert!(after.is_current());
    assert_eq!(after.len(), 20);
    let leftovers: Vec<_> = fs::read_dir(&dir.0).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(leftovers.len(), 2, "temporary files left behind: {leftovers:?}");
    // store + lock
}
