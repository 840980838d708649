"""The class-folder scan through the persistent listing cache (mmlop.data.scan)."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest

from mmlop import _native
from mmlop.data import DatasetError
from mmlop.data.scan import listing_cache_dir, scan_class_folders


def _tree(root, files):
    for f in files:
        p = root / f
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"x")
    return str(root)


def _same(a, b):
    assert a[0] == b[0]
    assert a[1] == b[1]
    np.testing.assert_array_equal(a[2], b[2])
    np.testing.assert_array_equal(a[3], b[3])


def test_cached_scan_equals_the_plain_scan_and_sees_changes_at_once(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("MMLOP_INDEX_CACHE", str(cache))
    root = _tree(tmp_path / "data", ["b/2.jpg", "a/1.jpg", "a/.hidden", "c/3.jpg"])
    for sort_files in (True, False):
        _same(scan_class_folders(root, sort_files=sort_files), _native.scan_class_folders(root, sort_files=sort_files))
    # Changed a moment ago, so within the racy window: a cache must not hide the new file.
    (tmp_path / "data" / "a" / "0.jpg").write_bytes(b"x")
    os.remove(tmp_path / "data" / "c" / "3.jpg")
    got = scan_class_folders(root)
    _same(got, _native.scan_class_folders(root))
    assert _native.scan_class_folders(root)[1] == b"a/0.jpga/1.jpgb/2.jpg"
    classes = ["c", "a"]
    _same(scan_class_folders(root, classes), _native.scan_class_folders(root, classes))
    assert not any(name.endswith(".idx") for name in os.listdir(root)), "the cache never goes into a data folder"


def test_unchanged_folders_are_reused_and_changed_ones_listed(tmp_path):
    root = _tree(tmp_path / "data", ["a/1.jpg", "b/2.jpg", "c/3.jpg"])
    time.sleep(0.06)  # older than the 20 ms window below
    cache = str(tmp_path / "index.idx")

    def scan():
        *result, report = _native.scan_class_folders_cached(root, cache, racy_window_s=0.02)
        _same(result, _native.scan_class_folders(root))
        return report

    assert (scan()["listed"], scan()["reused"]) == (3, 3)
    (tmp_path / "data" / "b" / "9.jpg").write_bytes(b"x")
    report = scan()
    assert (report["reused"], report["listed"], report["written"], report["invalid"]) == (2, 1, True, None)


def test_a_corrupt_cache_file_is_replaced(tmp_path):
    root = _tree(tmp_path / "data", ["a/1.jpg"])
    cache = tmp_path / "index.idx"
    cache.write_bytes(b"MMLOPIDX" + b"\0" * 100)
    *result, report = _native.scan_class_folders_cached(root, str(cache), racy_window_s=0.0)
    assert "header checksum mismatch" in report["invalid"] and report["written"]
    _same(result, _native.scan_class_folders(root))
    assert cache.read_bytes().startswith(b"MMLOPIDX")


def test_unwritable_cache_warns_and_still_scans(tmp_path, monkeypatch):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    monkeypatch.setenv("MMLOP_INDEX_CACHE", str(blocker))
    # A zero window makes every folder cacheable at once, so the scan tries to write.
    monkeypatch.setattr("mmlop.data.scan.RACY_WINDOW_S", 0.0)
    root = _tree(tmp_path / "data", ["a/1.jpg"])
    with pytest.warns(UserWarning, match=r"not-a-folder/.*cannot write the index cache.*set MMLOP_INDEX_CACHE"):
        result = scan_class_folders(root)
    _same(result, _native.scan_class_folders(root))


def test_cache_off_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("MMLOP_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("MMLOP_INDEX_CACHE", "off")
    assert listing_cache_dir() is None
    root = _tree(tmp_path / "data", ["a/1.jpg"])
    assert scan_class_folders(root)[1] == b"a/1.jpg"
    assert not (tmp_path / "home").exists()
    monkeypatch.delenv("MMLOP_INDEX_CACHE")
    assert listing_cache_dir() == str(tmp_path / "home" / "index")


def test_missing_folders_and_bad_window_are_clear_errors(tmp_path, monkeypatch):
    monkeypatch.setenv("MMLOP_INDEX_CACHE", str(tmp_path / "cache"))
    root = _tree(tmp_path / "data", ["a/1.jpg"])
    with pytest.raises(DatasetError, match=r"/data/zz: directory not found; expected a class folder"):
        scan_class_folders(root, ["zz"])
    with pytest.raises(DatasetError, match=r"/nowhere: directory not found"):
        scan_class_folders(str(tmp_path / "nowhere"))
    with pytest.raises(ValueError, match="racy_window_s must be a finite number >= 0, got -1"):
        _native.scan_class_folders_cached(root, str(tmp_path / "c.idx"), racy_window_s=-1.0)
