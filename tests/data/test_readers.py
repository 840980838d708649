"""Readers for every built-in layout (protocol §1): paths, labels, class names, keys, templates."""

import os

import numpy as np
import pytest
from conftest import AIRCRAFT_VARIANTS, WNID_NAMES, WNIDS, make_split_json

from mmlop.data import DATASETS, DatasetError, load_dataset

JSON_DATASETS = sorted(n for n, s in DATASETS.items() if s.layout == "split_json")

# Relative paths in the style each published split stores them.
REL_STYLE = {
    "stanford_cars": lambda split, c, cls, i: f"cars_{'test' if split == 'test' else 'train'}/{c:03d}{i:02d}{split[:2]}.jpg",
    "sun397": lambda split, c, cls, i: f"{cls[0]}/{cls}/sun_{split}{i}.jpg",
}


@pytest.mark.parametrize("cli_name", JSON_DATASETS)
def test_split_json_datasets_read_as_stored(tmp_path, cli_name):
    spec = DATASETS[cli_name]
    classes = ["apple_pie", "b_class", "Sea or Lake"]
    split = make_split_json(str(tmp_path), cli_name, classes, rel=REL_STYLE.get(cli_name))
    ds = load_dataset(cli_name, tmp_path, num_shots=0)
    assert ds.key == spec.key
    assert ds.classnames == classes  # as stored, underscores kept
    assert ds.template is not None and "{}" in ds.template
    prefix = os.path.join(str(tmp_path), spec.prefix)
    for name in ("train", "val", "test"):
        items = getattr(ds, name)
        assert items.paths == [os.path.join(prefix, e[0]) for e in split[name]]  # file order kept
        assert items.labels.tolist() == [e[1] for e in split[name]]
        assert all(os.path.isfile(p) for p in items.paths)
    assert ds.provenance["fewshot_source"] == "full"


def test_stanford_cars_prefix_is_the_folder_itself(tmp_path):
    make_split_json(str(tmp_path), "stanford_cars", ["2000 AM General Hummer SUV"], rel=REL_STYLE["stanford_cars"])
    ds = load_dataset("stanford_cars", tmp_path, num_shots=0)
    assert ds.train[0][0] == os.path.join(str(tmp_path), "stanford_cars", "cars_train", "00000tr.jpg")
    assert ds.template == "a photo of a {}."


def test_imagenet_sorted_wnid_labels_and_classnames_txt(imagenet_family_root):
    ds = load_dataset("imagenet", imagenet_family_root, num_shots=0)
    assert ds.key == "ImageNet" and len(ds.classnames) == 1000
    # classnames.txt lists wnids in reverse, but labels follow sorted wnid folders
    assert ds.classnames[:3] == [WNID_NAMES[w] for w in WNIDS[:3]]
    prefix = os.path.join(str(imagenet_family_root), "imagenet", "images")
    assert ds.train[0] == (os.path.join(prefix, "train", WNIDS[0], f"{WNIDS[0]}_000.JPEG"), 0)
    assert ds.train.labels.tolist() == sum(([i] * (4 + i) for i in range(6)), [])
    rels = [os.path.relpath(p, prefix) for p in ds.train.paths]
    assert rels == sorted(rels)  # sorted file order within and across classes
    assert len(ds.test) == 6 and ds.test[5][0].endswith(f"val/{WNIDS[5]}/ILSVRC_val_00005.JPEG")
    assert len(ds.val) == 0


def test_imagenet_filesystem_order_matches_listdir(imagenet_family_root):
    ds = load_dataset("imagenet", imagenet_family_root, num_shots=0, imagenet_file_order="filesystem")
    train_dir = os.path.join(str(imagenet_family_root), "imagenet", "images", "train")
    expected = [os.path.join(train_dir, w, f) for w in WNIDS[:6] for f in os.listdir(os.path.join(train_dir, w))]
    assert ds.train.paths == expected


def test_imagenetv2_numeric_folders(imagenet_family_root):
    ds = load_dataset("imagenetv2", imagenet_family_root)
    assert ds.key == "ImageNetV2" and len(ds.train) == 0 and len(ds.val) == 0
    assert ds.test.labels.tolist() == [0, 10, 999]  # folder "10" is label 10, not sorted-string position
    assert ds.classnames[10] == WNID_NAMES[WNIDS[10]]
    assert ds.provenance["fewshot_source"] == "none"


def test_imagenet_sketch_folders(imagenet_family_root):
    ds = load_dataset("imagenet_sketch", imagenet_family_root)
    wnids = WNIDS[::7]
    assert ds.classnames == [WNID_NAMES[w] for w in wnids]
    assert ds.test.labels.tolist() == list(range(len(wnids)))


@pytest.mark.parametrize("cli_name,wnids", [("imagenet_a", WNIDS[3::5]), ("imagenet_r", WNIDS[1::5])])
def test_imagenet_a_r_relabelled_to_200_sorted_wnids(imagenet_family_root, cli_name, wnids):
    ds = load_dataset(cli_name, imagenet_family_root)
    assert len(ds.classnames) == 200  # README.txt ignored, 200 folders relabelled 0..199
    assert ds.classnames == [WNID_NAMES[w] for w in sorted(wnids)]
    assert ds.test.labels.tolist() == list(range(200))
    assert ds.test[7][0].endswith(f"/{sorted(wnids)[7]}/img_0.jpg")


def test_fgvc_aircraft_txt_splits(aircraft_root):
    ds = load_dataset("fgvc_aircraft", aircraft_root, num_shots=0)
    assert ds.key == "FGVCAircraft" and ds.classnames == AIRCRAFT_VARIANTS
    assert (len(ds.train), len(ds.val), len(ds.test)) == (15, 10, 10)
    assert ds.train[6] == (os.path.join(str(aircraft_root), "fgvc_aircraft", "images", "0000007.jpg"), 2)  # "F/A-18"
    assert ds.train.labels.tolist() == list(np.repeat(np.arange(5), 3))
    assert ds.template == "a photo of a {}, a type of aircraft."


def test_fgvc_aircraft_unknown_variant_names_line(aircraft_root):
    path = aircraft_root / "fgvc_aircraft" / "images_variant_val.txt"
    path.write_text(path.read_text() + "0000099 Concorde\n")
    with pytest.raises(DatasetError, match=r"images_variant_val.txt: line 11: variant 'Concorde' is not listed"):
        load_dataset("fgvc_aircraft", aircraft_root, num_shots=0)
