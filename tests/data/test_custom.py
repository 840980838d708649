"""Custom datasets: class folders, CoOp-style JSON splits, CSV/JSONL lists and registered readers."""

import json
import os

import pytest
from conftest import write_image

from mmlop.data import DatasetError, DatasetSplits, Items, load_dataset, register_dataset


def test_flat_class_folders_are_a_training_set(tmp_path):
    for cls, n in (("zebra", 3), ("ant", 2)):
        for i in range(n):
            write_image(str(tmp_path / "pets" / cls / f"{i}.png"))
    ds = load_dataset(str(tmp_path / "pets"), tmp_path, num_shots=2, seed=1, fewshot_source="resample")
    assert ds.key == "pets" and ds.classnames == ["ant", "zebra"] and ds.template is None
    assert sorted(ds.train.labels.tolist()) == [0, 0, 1, 1] and len(ds.test) == 0


def test_split_folders_and_relative_name(tmp_path):
    base = tmp_path / "birds"
    for split, classes in (("train", ("crow", "owl")), ("test", ("owl",))):
        for cls in classes:
            write_image(str(base / split / cls / "a.png"))
    ds = load_dataset("birds", tmp_path, num_shots=0)  # resolved against the root
    assert ds.classnames == ["crow", "owl"]
    assert ds.test.paths == [str(base / "test" / "owl" / "a.png")] and ds.test.labels.tolist() == [1]
    write_image(str(base / "test" / "eagle" / "a.png"))
    with pytest.raises(DatasetError, match=r"birds/test: class folders \['eagle'\] have no folder in"):
        load_dataset(str(base), tmp_path)


def test_coop_style_json_split(tmp_path):
    write_image(str(tmp_path / "imgs" / "a.png"))
    write_image(str(tmp_path / "imgs" / "b.png"))
    (tmp_path / "mine.json").write_text(json.dumps({"train": [["imgs/a.png", 0, "c_a"]], "test": [["imgs/b.png", 0, "c_a"]]}))
    ds = load_dataset(str(tmp_path / "mine.json"), tmp_path, num_shots=1)
    assert ds.key == "mine" and ds.classnames == ["c_a"] and ds.test.paths == [str(tmp_path / "imgs" / "b.png")]
    assert ds.provenance["fewshot_cache"] is None  # custom data gets a cache only with cache_dir


def test_csv_and_jsonl_lists(tmp_path):
    for name in ("a.png", "b.png", "c.png"):
        write_image(str(tmp_path / name))
    absolute = str(tmp_path / "c.png")
    (tmp_path / "list.csv").write_text(f"path,label,classname,split\na.png,0,cat,train\nb.png,1,dog,train\n{absolute},1,dog,test\n")
    ds = load_dataset(str(tmp_path / "list.csv"), tmp_path, num_shots=0)
    assert ds.classnames == ["cat", "dog"] and ds.train.paths == [str(tmp_path / "a.png"), str(tmp_path / "b.png")]
    assert ds.test.paths == [absolute]
    (tmp_path / "list.jsonl").write_text('["a.png", 0, "cat"]\n{"path": "b.png", "label": 1, "classname": "dog", "split": "val"}\n["b.png", 1, "dog"]\n')
    ds = load_dataset(str(tmp_path / "list.jsonl"), tmp_path, num_shots=0)
    assert len(ds.train) == 2 and ds.val.labels.tolist() == [1]


@pytest.mark.parametrize(
    "name,text,match",
    [
        ("l.jsonl", '["a.png", 0, "cat"]\n["a.png", 0, "cat"\n', r"l.jsonl: line 2: malformed JSON"),
        ("l.jsonl", '["a.png", 0, "cat"]\n["a.png", 0, "dog"]\n', r"l.jsonl: line 2: class name 'dog' for label 0 differs from 'cat' given at .*line 1"),
        ("l.csv", "a.png,0,cat\na.png,x,cat\n", r"l.csv: line 2: expected an integer label, got 'x'"),
        ("l.csv", "a.png,0,cat\na.png,-1,cat\n", r"l.csv: line 2: label -1 is out of range"),
        ("l.csv", "a.png,0,cat\na.png,3,cat,test\n", r"l.csv: test row 'a.png': label 3 is out of range; expected 0..0"),
        ("l.csv", "a.png,0,cat\nmissing.png,0,cat\n", r"l.csv: 1 listed image\(s\) not found(.|\n)*entry 1 of 'train': missing.png"),
        ("l.json", '[["a.png", 0, "cat"], ["a.png", 0]]', r"l.json: entry 1: expected \[path, label, classname\]"),
    ],
)
def test_list_errors_name_file_and_line(tmp_path, name, text, match):
    write_image(str(tmp_path / "a.png"))
    (tmp_path / name).write_text(text)
    with pytest.raises(DatasetError, match=match):
        load_dataset(str(tmp_path / name), tmp_path, num_shots=0)


def test_registered_reader(tmp_path):
    write_image(str(tmp_path / "x.png"))

    def reader(root):
        items = Items.from_pairs(root, ["x.png"] * 3, [0, 1, 1])
        return DatasetSplits("Mine", ["a", "b"], items, Items.empty(), items, "a photo of {}.")

    register_dataset("mine_registered", reader)
    # One image stands for every entry here, which the duplicate checks would refuse; this test is about the registry.
    ds = load_dataset("mine_registered", str(tmp_path), num_shots=1, cache_dir=tmp_path / "cache", subsample="new",
                      allow_duplicates=True, allow_train_test_overlap=True)
    assert ds.key == "Mine" and ds.classnames == ["b"] and ds.template == "a photo of {}."
    assert os.path.isfile(tmp_path / "cache" / "mine_registered" / "shot_1-seed_1.json")
    with pytest.raises(ValueError, match="is a built-in dataset"):
        register_dataset("imagenet", reader)
