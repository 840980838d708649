"""Items: the compact (path, label) list handed over by the native index."""

import pickle

import numpy as np

from mmlop import _native
from mmlop.data import Items


def test_from_native_scan_and_subset(tmp_path):
    for cls, files in (("b", ("2.jpg", "10.jpg")), ("a", ("x.jpg",))):
        (tmp_path / cls).mkdir()
        for f in files:
            (tmp_path / cls / f).write_bytes(b"")
    classes, buf, offsets, labels = _native.scan_class_folders(str(tmp_path))
    assert classes == ["a", "b"] and isinstance(buf, bytes) and offsets.dtype == np.int64
    items = Items.from_index(str(tmp_path), buf, offsets, labels)
    assert items.rel_paths == ["a/x.jpg", "b/10.jpg", "b/2.jpg"]  # byte-sorted, like sorted() in Python
    assert items[2] == (str(tmp_path / "b" / "2.jpg"), 1)
    small = items.subset([2, 0])  # compacted copy
    assert small.rel_paths == ["b/2.jpg", "a/x.jpg"] and small.labels.tolist() == [1, 0]
    assert items.subset([2, 1, 0]).rel_paths == items.rel_paths[::-1]
    assert pickle.loads(pickle.dumps(small)) == small  # DataLoader workers receive it by pickling
    assert items.positions_of(Items.from_pairs("", ["b/2.jpg", "nope"], [0, 0])).tolist() == [2, -1]
    assert items.missing().tolist() == []
    assert Items.from_pairs(str(tmp_path), ["a/x.jpg", "gone.jpg"], [0, 0]).missing().tolist() == [1]


def test_digest_depends_on_content_not_buffer_layout():
    items = Items.from_pairs("r", ["p/1", "p/22", "p/3"], [0, 1, 1])
    assert items.subset([0, 1, 2]).digest() == items.digest()
    assert items.subset([1]).digest() == Items.from_pairs("r", ["p/22"], [1]).digest()
    assert items.with_labels([0, 1, 0]).digest() != items.digest()
    assert len(Items.empty()) == 0 and Items.empty().paths == []
