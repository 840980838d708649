"""The restricted reader of reference pickles (protocol §2.2): Datum records only, never foreign code."""

import os
import pickle
import sys
import types

import pytest

from mmlop.data import DatasetError
from mmlop.data.pickle_compat import Record, read_reference_pickle, reroot

DATUM_MODULE = "dassl.data.datasets.base_dataset"


def make_datum_pickle(path, data):
    """Pickles ``{split: [(impath, label, classname), ...]}`` as Dassl Datum objects, like the reference.

    A stand-in ``Datum`` class lives in ``sys.modules`` only while pickling, so the reader cannot import it.
    """
    names = ["dassl", "dassl.data", "dassl.data.datasets", DATUM_MODULE]
    mods = {n: types.ModuleType(n) for n in names}

    class Datum:
        def __init__(self, impath, label, classname):
            self._impath, self._label, self._domain, self._classname = impath, label, 0, classname

    Datum.__module__, Datum.__qualname__ = DATUM_MODULE, "Datum"
    mods[DATUM_MODULE].Datum = Datum
    sys.modules.update(mods)
    try:
        obj = {k: [Datum(*r) for r in rows] for k, rows in data.items()}
        with open(path, "wb") as f:
            pickle.dump(obj, f, protocol=pickle.HIGHEST_PROTOCOL)
    finally:
        for n in names:
            del sys.modules[n]


def test_reads_datum_records_without_dassl(tmp_path):
    path = tmp_path / "shot_1-seed_1.pkl"
    make_datum_pickle(path, {"train": [("/x/oxford_pets/images/a.jpg", 3, "abyssinian")], "val": []})
    assert "dassl" not in sys.modules
    data = read_reference_pickle(str(path), ("train", "val"))
    assert data == {"train": [Record("/x/oxford_pets/images/a.jpg", 3, "abyssinian")], "val": []}
    assert "dassl" not in sys.modules


class RunsCode:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_pickle_that_runs_code_is_refused_without_running(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pkl"
    with open(path, "wb") as f:
        pickle.dump({"train": [RunsCode(marker)]}, f)
    with pytest.raises(DatasetError, match=r"evil.pkl: refused reference pickle: global (posix|os)\.system is not allowed"):
        read_reference_pickle(str(path), ("train", "val"))
    assert not marker.exists()
    # Sanity: the same file really would run code under a plain pickle.load.
    with open(path, "rb") as f:
        pickle.load(f)
    assert marker.exists()


def test_datum_global_cannot_be_called_with_arguments(tmp_path):
    # Hand-written protocol-0 opcodes: GLOBAL Datum, MARK, STRING, TUPLE, REDUCE -> Datum("touch ...").
    path = tmp_path / "sneaky.pkl"
    path.write_bytes(f"c{DATUM_MODULE}\nDatum\n(S'touch {tmp_path}/pwned'\ntR.".encode())
    with pytest.raises(DatasetError, match="sneaky.pkl: refused reference pickle"):
        read_reference_pickle(str(path), ("train", "val"))
    assert not (tmp_path / "pwned").exists()


@pytest.mark.parametrize(
    "obj,match",
    [
        ([1, 2], "expected a dict with keys"),
        ({"train": [1]}, "entry 0 of 'train' is a int, expected a Datum record"),
        ({"train": [], "other": []}, "expected a dict with keys"),
    ],
)
def test_structure_is_validated(tmp_path, obj, match):
    path = tmp_path / "bad.pkl"
    path.write_bytes(pickle.dumps(obj))
    with pytest.raises(DatasetError, match=match):
        read_reference_pickle(str(path), ("train", "val"))


def test_field_types_and_size_cap(tmp_path):
    path = tmp_path / "types.pkl"
    make_datum_pickle(path, {"train": [("/x/a.jpg", True, "c")]})
    with pytest.raises(DatasetError, match="Datum field _label must be int, got bool"):
        read_reference_pickle(str(path), ("train",))
    make_datum_pickle(path, {"train": [("/x/a.jpg", 1, "c")]})
    with pytest.raises(DatasetError, match="exceeds the 10-byte limit"):
        read_reference_pickle(str(path), ("train",), max_bytes=10)
    with pytest.raises(DatasetError, match="truncated.pkl: refused"):
        (tmp_path / "truncated.pkl").write_bytes(path.read_bytes()[:-5])
        read_reference_pickle(str(tmp_path / "truncated.pkl"), ("train",))


def test_reroot():
    assert reroot("/old/data/oxford_pets/images/Abyssinian_1.jpg", "oxford_pets/images") == "Abyssinian_1.jpg"
    assert reroot("/d/stanford_cars/cars_train/00001.jpg", "stanford_cars") == "cars_train/00001.jpg"
    assert reroot("C:\\data\\dtd\\images\\banded\\x.jpg", "dtd/images") == "banded/x.jpg"
    assert reroot("/d/other/x.jpg", "dtd/images") is None
