"""Builders of small fake dataset trees (real tiny PNG files) in every layout of protocol §1."""

from __future__ import annotations

import io
import json
import os

import pytest
from PIL import Image

from mmlop.data import DATASETS

# 1000 fake wnids; classnames.txt lists them in reverse so that file order differs from sorted order.
WNIDS = [f"n{i:08d}" for i in range(1000)]
WNID_NAMES = {w: f"class {i}" for i, w in enumerate(WNIDS)}


def _png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (6, 4), (200, 30, 90)).save(buf, format="PNG")
    return buf.getvalue()


PNG = _png()


def write_image(path: str) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(PNG)


def write_classnames(path: str, order: list[str]) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.writelines(f"{w} {WNID_NAMES[w]}\n" for w in order)


def make_split_json(root: str, cli_name: str, classes: list[str], sizes=(5, 3, 2), rel=None) -> dict:
    """A split-JSON dataset: ``sizes`` train/val/test images per class; returns the written split object."""
    spec = DATASETS[cli_name]
    rel = rel or (lambda split, c, cls, i: f"{cls}/{split}_{i}.png")
    split = {}
    for name, n in zip(("train", "val", "test"), sizes):
        split[name] = [[rel(name, c, cls, i), c, cls] for c, cls in enumerate(classes) for i in range(n)]
        for path, _, _ in split[name]:
            write_image(os.path.join(root, spec.prefix, path))
    with open(os.path.join(root, spec.folder, spec.split_file), "w") as f:
        json.dump(split, f, indent=4, separators=(",", ": "))
    return split


@pytest.fixture
def pets_root(tmp_path):
    """OxfordPets with 37 classes; train labels are interleaved so first-appearance order is not label order."""
    classes = [f"breed_{i:02d}" for i in range(37)]
    make_split_json(str(tmp_path), "oxford_pets", classes, sizes=(6, 3, 2))
    path = tmp_path / "oxford_pets" / "split_zhou_OxfordPets.json"
    split = json.loads(path.read_text())
    split["train"] = sorted(split["train"], key=lambda e: (int(e[0].split("_")[-1].split(".")[0]), -e[1]))
    path.write_text(json.dumps(split))
    return tmp_path


@pytest.fixture(scope="session")
def imagenet_family_root(tmp_path_factory):
    """ImageNet, -V2, -Sketch, -A and -R sharing one data root (built once)."""
    root = tmp_path_factory.mktemp("imagenet_root")
    order = list(reversed(WNIDS))
    for folder in ("imagenet", "imagenetv2", "imagenet-sketch", "imagenet-adversarial", "imagenet-rendition"):
        write_classnames(str(root / folder / "classnames.txt"), order if folder == "imagenet" else WNIDS)
    images = root / "imagenet" / "images"
    for i, w in enumerate(WNIDS):
        os.makedirs(images / "train" / w)
        os.makedirs(images / "val" / w)
        os.makedirs(root / "imagenetv2" / "imagenetv2-matched-frequency-format-val" / str(i))
    for i, w in enumerate(WNIDS[:6]):
        for j in range(4 + i):  # unequal class sizes
            write_image(str(images / "train" / w / f"{w}_{j:03d}.JPEG"))
        write_image(str(images / "val" / w / f"ILSVRC_val_{i:05d}.JPEG"))
    for i in (0, 10, 999):
        write_image(str(root / "imagenetv2" / "imagenetv2-matched-frequency-format-val" / str(i) / f"{i}a.jpeg"))
    for w in WNIDS[::7]:
        write_image(str(root / "imagenet-sketch" / "images" / w / "sketch_1.JPEG"))
    for folder, sub, wnids in (("imagenet-adversarial", "imagenet-a", WNIDS[3::5]), ("imagenet-rendition", "imagenet-r", WNIDS[1::5])):
        for w in wnids:
            write_image(str(root / folder / sub / w / "img_0.jpg"))
        (root / folder / sub / "README.txt").write_text("readme")
    return root


AIRCRAFT_VARIANTS = ["707-320", "A300B4", "F/A-18", "Cessna 172", "DC-10"]


@pytest.fixture
def aircraft_root(tmp_path):
    ds = tmp_path / "fgvc_aircraft"
    ds.mkdir()
    (ds / "variants.txt").write_text("".join(v + "\n" for v in AIRCRAFT_VARIANTS))
    n = 0
    for split, per in (("train", 3), ("val", 2), ("test", 2)):
        lines = []
        for v in AIRCRAFT_VARIANTS:
            for _ in range(per):
                n += 1
                lines.append(f"{n:07d} {v}\n")
                write_image(str(ds / "images" / f"{n:07d}.jpg"))
        (ds / f"images_variant_{split}.txt").write_text("".join(lines))
    return tmp_path
