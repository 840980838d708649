"""Every bad-input error names the file (and line or entry) and says what was expected."""

import json
import os
import shutil

import pytest
from conftest import make_split_json

from mmlop.data import DatasetError, load_dataset


def test_missing_root(tmp_path):
    with pytest.raises(DatasetError, match=r"/nope: directory not found; expected the data root"):
        load_dataset("oxford_pets", tmp_path / "nope")


def test_missing_dataset_folder_and_split_file(tmp_path):
    with pytest.raises(DatasetError, match=r"/dtd: directory not found; expected the DescribableTextures dataset folder"):
        load_dataset("dtd", tmp_path)
    (tmp_path / "dtd").mkdir()
    with pytest.raises(DatasetError, match=r"dtd/split_zhou_DescribableTextures.json: split file not found.*CoOp"):
        load_dataset("dtd", tmp_path)


def test_all_missing_images_in_one_error(tmp_path):
    make_split_json(str(tmp_path), "eurosat", ["Annual Crop Land", "Sea or Lake"])
    gone = ["Annual Crop Land/train_1.png", "Sea or Lake/val_2.png", "Sea or Lake/test_0.png"]
    for rel in gone:
        os.remove(tmp_path / "eurosat" / "2750" / rel)
    with pytest.raises(DatasetError) as info:
        load_dataset("eurosat", tmp_path)
    msg = str(info.value)
    assert "split_zhou_EuroSAT.json: 3 listed image(s) not found" in msg
    assert "entry 1 of 'train': Annual Crop Land/train_1.png" in msg
    assert "entry 5 of 'val': Sea or Lake/val_2.png" in msg and "entry 2 of 'test': Sea or Lake/test_0.png" in msg
    assert len(info.value.missing) == 3


@pytest.mark.parametrize(
    "edit,match",
    [
        (lambda s: s["test"].append(["x/t.png", 7, "x"]), r"entry 4 of \"test\": label 7 is out of range; expected 0..2"),
        (lambda s: s["train"].__setitem__(1, ["a/b.png", "0", "a"]), r"entry 1 of \"train\": expected an integer label"),
        (lambda s: s.pop("val"), r"no 'val' list"),
    ],
)
def test_split_file_content_errors(tmp_path, edit, match):
    split = make_split_json(str(tmp_path), "food101", ["apple_pie", "baklava"], sizes=(2, 2, 2))
    edit(split)
    (tmp_path / "food-101" / "split_zhou_Food101.json").write_text(json.dumps(split))
    with pytest.raises(DatasetError, match="split_zhou_Food101.json: " + match):
        load_dataset("food101", tmp_path)


def test_malformed_json_names_line(tmp_path):
    make_split_json(str(tmp_path), "ucf101", ["Apply_Eye_Makeup"], sizes=(1, 1, 1))
    path = tmp_path / "ucf101" / "split_zhou_UCF101.json"
    path.write_text(path.read_text().replace("]\n    ],\n    \"val\"", "]\n    ,\n    \"val\""))
    with pytest.raises(DatasetError, match=r"split_zhou_UCF101.json: line \d+, column \d+: malformed JSON"):
        load_dataset("ucf101", tmp_path)


@pytest.fixture
def small_imagenet(imagenet_family_root, tmp_path):
    root = tmp_path / "root"
    shutil.copytree(imagenet_family_root / "imagenet", root / "imagenet")
    return root


def test_imagenet_needs_1000_folders_matching_classnames(small_imagenet):
    train = small_imagenet / "imagenet" / "images" / "train"
    wnid = sorted(os.listdir(train))[-1]
    os.rename(train / wnid, train / "n99999999")
    with pytest.raises(DatasetError, match=rf"images/train: 1000 class folders; expected 1000 folders named by the wnids of .*classnames.txt; missing 1 \['{wnid}'\], unexpected 1 \['n99999999'\]"):
        load_dataset("imagenet", small_imagenet)
    shutil.rmtree(train / "n99999999")
    with pytest.raises(DatasetError, match=r"images/train: 999 class folders"):
        load_dataset("imagenet", small_imagenet)


def test_imagenet_flat_val_is_explained(small_imagenet):
    val = small_imagenet / "imagenet" / "images" / "val"
    shutil.rmtree(val)
    val.mkdir()
    (val / "ILSVRC2012_val_00000001.JPEG").write_bytes(b"")
    with pytest.raises(DatasetError, match=r"images/val: 0 class folders; expected 1000 folders"):
        load_dataset("imagenet", small_imagenet)


def test_imagenet_classnames_txt_errors(small_imagenet):
    path = small_imagenet / "imagenet" / "classnames.txt"
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:10]) + "\n")
    with pytest.raises(DatasetError, match=r"classnames.txt: 10 classes; expected 1000"):
        load_dataset("imagenet", small_imagenet)
    path.write_text("\n".join(lines[:3] + ["n123"] + lines[3:]) + "\n")
    with pytest.raises(DatasetError, match=r"classnames.txt: line 4: expected '<wnid> <class name>'"):
        load_dataset("imagenet", small_imagenet)
    path.unlink()
    with pytest.raises(DatasetError, match=r"imagenet/classnames.txt: file not found"):
        load_dataset("imagenet", small_imagenet)


def test_unknown_name_and_bad_options(tmp_path):
    with pytest.raises(DatasetError, match=r"no_such_set: unknown dataset; expected one of \['caltech101'"):
        load_dataset("no_such_set", tmp_path)
    with pytest.raises(ValueError, match="subsample must be one of"):
        load_dataset("oxford_pets", tmp_path, subsample="novel")
    with pytest.raises(ValueError, match="fewshot_source must be one of"):
        load_dataset("oxford_pets", tmp_path, fewshot_source="pickle")
