"""Bad dataset input (issue 13, class 3): checked before anything is allocated, sampled or trained; each refusal
names the file and the entry, and leaves every file on disk as it was."""

import json
import os

import pytest
from checksums import tree_sha256
from conftest import write_image

from mmlop.data import DatasetError, load_dataset
from mmlop.errors import MmlopError


def _images(root, names):
    for n in names:
        write_image(os.path.join(root, n))


def _csv(tmp_path, text, images=("a.png", "b.png", "c.png", "d.png")):
    _images(tmp_path, images)
    path = tmp_path / "list.csv"
    path.write_text(text)
    return path


def _split_json(tmp_path, obj, images=("a.png", "b.png", "c.png", "d.png")):
    _images(tmp_path, images)
    path = tmp_path / "split.json"
    path.write_text(json.dumps(obj))
    return path


def _folder(tmp_path, files, empty=()):
    root = tmp_path / "ds"
    _images(root, files)
    for e in empty:
        (root / e).mkdir(parents=True)
    return root


# (builder, fragment of the message); each builder returns the dataset path to load.
CASES = {
    "split label 10**18 (once aborted the process in the Rust index)": (
        lambda t: _split_json(t, {"train": [["a.png", 0, "x"], ["b.png", 10**18, "y"]]}),
        'entry 1 of "train": expected a label below 2, the number of training entries'),
    "split negative label": (
        lambda t: _split_json(t, {"train": [["a.png", -1, "x"]]}), "label -1 is out of range"),
    "split test label beyond the training classes": (
        lambda t: _split_json(t, {"train": [["a.png", 0, "x"]], "test": [["b.png", 5, "y"]]}),
        'entry 0 of "test": label 5 is out of range; expected 0..1'),
    "split label gap": (
        lambda t: _split_json(t, {"train": [["a.png", 0, "x"], ["b.png", 2, "z"], ["c.png", 2, "z"]]}),
        "no entry with label 1"),
    "split string label": (
        lambda t: _split_json(t, {"train": [["a.png", "0", "x"]]}), 'entry 0 of "train": expected an integer label'),
    "split unknown key": (
        lambda t: _split_json(t, {"train": [["a.png", 0, "x"]], "holdout": []}), 'key "holdout"'),
    "split duplicate entry": (
        lambda t: _split_json(t, {"train": [["a.png", 0, "x"], ["b.png", 1, "y"], ["a.png", 0, "x"]]}),
        "'a.png' is listed twice in 'train' (entries 0 and 2"),
    "split test image that is also a training image": (
        lambda t: _split_json(t, {"train": [["a.png", 0, "x"], ["b.png", 1, "y"]], "test": [["b.png", 1, "y"]]}),
        "test entry 0 'b.png' is also a training image"),
    "split path outside the dataset folder": (
        lambda t: (_images(t.parent, ["outside.png"]),
                   _split_json(t, {"train": [["a.png", 0, "x"]], "test": [["../outside.png", 0, "x"]]}))[1],
        "entry 0 of 'test': '../outside.png' lies outside"),
    "split missing test image (once failed after training)": (
        lambda t: _split_json(t, {"train": [["a.png", 0, "x"]], "test": [["gone.png", 0, "x"]]}),
        "1 listed image(s) not found"),
    "csv label 10**9 (once cost gigabytes)": (
        lambda t: _csv(t, "a.png,0,x\nb.png,1000000000,y\n"), "no training row with label 1 (the largest label is 1000000000"),
    "csv non-integer label": (lambda t: _csv(t, "a.png,zero,x\n"), "line 1: expected an integer label, got 'zero'"),
    "csv negative label": (lambda t: _csv(t, "a.png,-3,x\n"), "line 1: label -3 is out of range"),
    "csv unknown split": (lambda t: _csv(t, "a.png,0,x,holdout\n"), "line 1: split 'holdout' is not one of"),
    "csv two names for one label": (lambda t: _csv(t, "a.png,0,x\nb.png,0,y\n"), "line 2: class name 'y' for label 0"),
    "csv header with an unknown column": (
        lambda t: _csv(t, "path,label,classname,weight\na.png,0,x,1\n"), "unknown ['weight']"),
    "csv header without the label column": (lambda t: _csv(t, "path,classname\na.png,x\n"), "missing ['label']"),
    "csv header with a repeated column": (
        lambda t: _csv(t, "path,label,label,classname\na.png,0,0,x\n"), "repeated ['label']"),
    "csv row shorter than its header": (
        lambda t: _csv(t, "classname,path,label\nx,a.png\n"), "line 2: 2 fields; expected 3 as in the header"),
    "csv duplicate row": (lambda t: _csv(t, "a.png,0,x\nb.png,1,y\na.png,0,x\n"), "'a.png' is listed twice in 'train'"),
    "csv test row that is a training row": (
        lambda t: _csv(t, "a.png,0,x\nb.png,1,y\nb.png,1,y,test\n"), "test entry 0 'b.png' is also a training image"),
    "jsonl malformed line": (
        lambda t: (_images(t, ["a.png"]), (t / "l.jsonl").write_text('["a.png", 0, "x"]\n{oops\n'), t / "l.jsonl")[2],
        "l.jsonl: line 2: malformed JSON"),
    "json row object with an unknown key": (
        lambda t: (_images(t, ["a.png"]), (t / "rows.json").write_text('[{"path": "a.png", "label": 0, '
                                                                          '"classname": "x", "weight": 2}]'),
                   t / "rows.json")[2], "entry 0: expected keys path, label, classname[, split]"),
    "json bool label": (
        lambda t: (_images(t, ["a.png"]), (t / "rows.json").write_text('[["a.png", true, "x"]]'), t / "rows.json")[2],
        "entry 0: expected an integer label, got True"),
    "empty class folder (once a phantom class)": (
        lambda t: _folder(t, ["cat/1.png", "dog/1.png"], empty=["emu"]), "class folder(s) ['emu'] (1 in all) hold no files"),
    "empty class folder under train/": (
        lambda t: _folder(t, ["train/cat/1.png", "test/cat/2.png"], empty=["train/emu"]), "train: class folder(s) ['emu']"),
    "test class folder unknown to train/": (
        lambda t: _folder(t, ["train/cat/1.png", "test/cow/2.png"]), "class folders ['cow'] have no folder in"),
    "folder without class folders": (lambda t: _folder(t, [], empty=["."]), "no class folders"),
    "not a dataset at all": (lambda t: t / "nothing-here", "unknown dataset"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_dataset_input_is_refused_with_file_and_entry_and_nothing_changes(tmp_path, case):
    build, fragment = CASES[case]
    folder = tmp_path / "data"
    folder.mkdir()
    path = build(folder)
    before = tree_sha256(tmp_path)
    with pytest.raises(DatasetError) as e:
        load_dataset(str(path), "", num_shots=1, cache_dir=tmp_path / "cache")
    assert fragment in str(e.value)
    assert isinstance(e.value, MmlopError) and isinstance(e.value, ValueError)
    assert tree_sha256(tmp_path) == before  # nothing written (no few-shot cache either), nothing changed


def test_duplicates_and_overlap_are_accepted_when_asked(tmp_path):
    path = _csv(tmp_path, "a.png,0,x\nb.png,1,y\na.png,0,x\nb.png,1,y,test\n")
    ds = load_dataset(str(path), "", num_shots=0, allow_duplicates=True, allow_train_test_overlap=True)
    assert len(ds.train) == 3 and len(ds.test) == 1
    with pytest.raises(DatasetError, match="allow_train_test_overlap=True accepts it"):
        load_dataset(str(path), "", num_shots=0, allow_duplicates=True)


def test_csv_header_in_any_order_with_a_byte_order_mark(tmp_path):
    _images(tmp_path, ["a.png", "b.png"])
    path = tmp_path / "list.csv"
    path.write_bytes("\ufeffsplit,classname,label,path\ntrain,x,0,a.png\ntest,x,0,b.png\n".encode())
    ds = load_dataset(str(path), "", num_shots=0)
    assert ds.classnames == ["x"] and ds.train.rel_paths == ["a.png"] and ds.test.rel_paths == ["b.png"]
    plain = tmp_path / "plain.csv"
    plain.write_bytes(b"\xef\xbb\xbfa.png,0,x\n")  # a BOM before a header-less first row
    assert load_dataset(str(plain), "", num_shots=0).train.rel_paths == ["a.png"]


def test_absolute_paths_stay_allowed_by_design(tmp_path):
    img = tmp_path / "elsewhere" / "a.png"
    write_image(str(img))
    path = tmp_path / "list" / "l.csv"
    path.parent.mkdir()
    path.write_text(f"{img},0,x\n")
    assert load_dataset(str(path), "", num_shots=0).train.paths == [str(img)]


def test_a_registered_reader_listing_a_missing_image_is_refused_up_front(tmp_path):
    from mmlop.data import DatasetSplits, Items, register_dataset

    write_image(str(tmp_path / "a.png"))

    def reader(root):
        return DatasetSplits("Listed", ["x"], Items.from_pairs(root, ["a.png"], [0]), Items.empty(root),
                             Items.from_pairs(root, ["missing.png"], [0]))

    register_dataset("bad_input_listed", reader)
    with pytest.raises(DatasetError, match="reader registered as 'bad_input_listed': 1 listed image"):
        load_dataset("bad_input_listed", str(tmp_path), num_shots=0)
