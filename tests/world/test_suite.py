"""The suite materialises as valid CoOp-style splits, deterministically, atomically and idempotently."""

import json
import math

import numpy as np
import pytest
from PIL import Image

from mmlop.world.suite import MANIFEST, SUITE, _generate_split_with_cue, generate_split, materialize_suite

FIRST = next(iter(SUITE))
SMALL = dict(train_per_class=3, val_per_class=1, test_per_class=2)


@pytest.fixture(scope="module")
def suite_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("world")
    return root, materialize_suite(root, seed=0, **SMALL)


def test_specs_have_word_classes_and_protocol_halves():
    assert len(SUITE) >= 5
    for name, spec in SUITE.items():
        assert spec.name == name
        assert len(spec.classes) >= 8
        assert spec.num_base == math.ceil(len(spec.classes) / 2)
        for cname in spec.classnames:
            assert all(word.isalpha() for word in cname.split()), cname


def test_split_files_are_valid(suite_root):
    root, folders = suite_root
    assert set(folders) == set(SUITE)
    for name, folder in folders.items():
        spec = SUITE[name]
        split = json.loads((folder / spec.split_file).read_text())
        assert set(split) == {"train", "val", "test"}
        for part, per_class in (("train", 3), ("val", 1), ("test", 2)):
            rows = split[part]
            assert len(rows) == per_class * len(spec.classes)
            labels = sorted({label for _, label, _ in rows})
            assert labels == list(range(len(spec.classes)))  # contiguous 0..C-1
            for rel, label, cname in rows:
                assert cname == spec.classnames[label]
                assert not rel.startswith("/")
                with Image.open(folder / rel) as im:
                    assert im.size == (48, 48) and im.mode == "RGB"


def test_pngs_equal_the_in_memory_split(suite_root):
    root, folders = suite_root
    spec = SUITE["colour_shapes"]
    images, labels = generate_split(spec, "test", 0, 2)
    rows = json.loads((folders[spec.name] / spec.split_file).read_text())["test"]
    for (rel, label, _), img, lab in zip(rows, images, labels):
        assert label == lab
        np.testing.assert_array_equal(np.asarray(Image.open(folders[spec.name] / rel)), img)


def test_reuse_when_unchanged_and_replace_when_parameters_change(suite_root):
    root, folders = suite_root
    split_file = folders[FIRST] / SUITE[FIRST].split_file
    before = split_file.stat().st_mtime_ns
    materialize_suite(root, seed=0, names=[FIRST], **SMALL)
    assert split_file.stat().st_mtime_ns == before
    materialize_suite(root, seed=1, names=[FIRST], **SMALL)
    assert json.loads((folders[FIRST] / MANIFEST).read_text())["seed"] == 1
    assert not [p for p in root.iterdir() if p.name.startswith(".")]  # no temporary folders left


def test_refuses_to_replace_a_foreign_folder(tmp_path):
    folder = tmp_path / SUITE[FIRST].folder
    folder.mkdir()
    (folder / "mine.txt").write_text("user data")
    with pytest.raises(FileExistsError, match=SUITE[FIRST].folder):
        materialize_suite(tmp_path, names=[FIRST], **SMALL)
    assert (folder / "mine.txt").read_text() == "user data"


def test_class_cue_only_in_base_train_and_val():
    spec = SUITE[FIRST]
    labels = None
    for split in ("train", "val", "test"):
        _, labels, cue = _generate_split_with_cue(spec, split, 0, 60)
        base = labels < spec.num_base
        if split == "test":
            assert not cue.any()
        else:
            assert not cue[~base].any()
            assert abs(cue[base].mean() - spec.shortcut) < 0.1


def test_bad_split_or_count_raises():
    with pytest.raises(ValueError, match="holdout"):
        generate_split(SUITE[FIRST], "holdout", 0, 2)
    with pytest.raises(ValueError, match="per_class"):
        generate_split(SUITE[FIRST], "test", 0, 0)
