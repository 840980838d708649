"""Base/novel class split and relabelling (protocol §3)."""

import numpy as np
import pytest

from mmlop.data import Items, load_dataset, subsample_classes


def test_pets_37_classes_split_19_18_and_relabel(pets_root):
    full = load_dataset("oxford_pets", pets_root, num_shots=16, seed=1, fewshot_source="resample")
    base = load_dataset("oxford_pets", pets_root, num_shots=16, seed=1, subsample="base", fewshot_source="resample")
    new = load_dataset("oxford_pets", pets_root, num_shots=16, seed=1, subsample="new", fewshot_source="resample")
    assert (len(base.classnames), len(new.classnames)) == (19, 18)
    assert base.classnames == full.classnames[:19] and new.classnames == full.classnames[19:]
    for ds, offset in ((base, 0), (new, 19)):
        for name in ("train", "val", "test"):
            items, ref = getattr(ds, name), getattr(full, name)
            keep = (ref.labels >= offset) & (ref.labels < offset + len(ds.classnames))
            assert items.paths == [p for p, k in zip(ref.paths, keep) if k]  # order kept
            assert items.labels.tolist() == (ref.labels[keep] - offset).tolist()
    # base shots are the same images as in the all-class run (sampling happens before the split)
    assert set(base.train.paths) <= set(full.train.paths)


def test_classes_come_from_the_fewshot_train_labels_not_names():
    train = Items.from_pairs("", ["a", "b", "c", "d", "e"], [4, 0, 2, 0, 4])
    test = Items.from_pairs("", ["t1", "t2", "t3", "t4"], [1, 2, 4, 3])
    names = ["zero", "one", "two", "three", "four"]
    tr, va, te, cn = subsample_classes(train, Items.empty(), test, names, "base")
    assert cn == ["zero", "two"] and tr.rel_paths == ["b", "c", "d"] and tr.labels.tolist() == [0, 1, 0]
    assert te.rel_paths == ["t2"] and te.labels.tolist() == [1] and len(va) == 0
    tr, _, te, cn = subsample_classes(train, Items.empty(), test, names, "new")
    assert cn == ["four"] and tr.labels.tolist() == [0, 0] and te.rel_paths == ["t3"]
    assert subsample_classes(train, Items.empty(), test, names, "all")[3] is names
    with pytest.raises(ValueError, match="subsample must be one of"):
        subsample_classes(train, Items.empty(), test, names, "novel")
    assert np.array_equal(train.labels, [4, 0, 2, 0, 4])  # inputs untouched
