"""The synthetic few-shot suite: datasets of generated images under a dataset-level shift.

Each dataset fixes some attributes per class (its shape, colour, pattern or a pair of them) and draws the
others at random, then applies its :class:`~mmlop.world.shift.Shift`. Base classes (the first
``ceil(C/2)`` labels, as in the protocol) carry a class-correlated cue in their train and val images only: a
fixed value of another attribute (position by default), with probability ``shortcut``. Test images never carry it, so a
method that latches onto the cue gains nothing on test, and a method that distorts the shared features to fit
it can lose on novel classes.

:func:`materialize_suite` writes each dataset as PNG files plus a CoOp-style split JSON.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from mmlop.world.generator import FAMILIES, IMAGE_SIZE, generate
from mmlop.world.shift import Shift, apply_shift

SUITE_VERSION = 1
MANIFEST = "manifest.json"
MANIFEST_FORMAT = "mmlop-world-suite/1"
SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class WorldClass:
    """One class: its name (words, as stored in the split file) and the attributes it fixes."""

    name: str
    attributes: tuple[tuple[str, str], ...]  # ((family, value name), ...)

    def fixed(self) -> dict[str, int]:
        """The class's attributes as generator labels."""
        return {fam: FAMILIES[fam].index(value) for fam, value in self.attributes}


@dataclass(frozen=True)
class WorldDatasetSpec:
    """A dataset of the suite.

    Attributes:
        name: dataset key (folder ``world_<name>``, split file ``split_world_<name>.json``).
        classes: classes in label order.
        shift: the dataset-level shift applied to every image.
        shortcut: probability that a base-class train/val image carries its class cue.
        cue: the family whose value the cue fixes (label modulo its size); not one the classes fix.
        template: prompt template the class names are written for.
        description: one line on the classes and the shift, for reports.
    """

    name: str
    classes: tuple[WorldClass, ...]
    shift: Shift
    shortcut: float = 0.6
    cue: str = "position"
    template: str = "a photo of a {}."
    description: str = ""

    def __post_init__(self) -> None:
        names = [c.name for c in self.classes]
        if len(set(names)) != len(names):
            raise ValueError(f"dataset {self.name!r}: duplicate class names in {names}")
        if any(self.cue == fam for c in self.classes for fam, _ in c.attributes) or self.cue not in FAMILIES:
            raise ValueError(f"dataset {self.name!r}: cue family {self.cue!r} must exist and not be a class axis")
        if not 0.0 <= self.shortcut <= 1.0:
            raise ValueError(f"dataset {self.name!r}: shortcut must be in [0, 1], got {self.shortcut}")

    @property
    def classnames(self) -> list[str]:
        return [c.name for c in self.classes]

    @property
    def num_base(self) -> int:
        """Number of base classes (``ceil(C/2)``, protocol §3)."""
        return math.ceil(len(self.classes) / 2)

    @property
    def folder(self) -> str:
        return f"world_{self.name}"

    @property
    def split_file(self) -> str:
        return f"split_world_{self.name}.json"


def _single(family: str, form: str) -> tuple[WorldClass, ...]:
    """One class per value of a family; ``form`` turns the value into a class name (``"{} shape"``)."""
    return tuple(WorldClass(form.format(v), ((family, v),)) for v in FAMILIES[family])


def _pairs(fam_a: str, values_a: list[str], fam_b: str, values_b: list[str], form: str) -> tuple[WorldClass, ...]:
    """A k x k grid of pairs ordered along diagonals, so that base and novel halves each use every value.

    ``form`` makes the class name from the two values (``"{} {}"`` gives ``"red star"``).
    """
    k = len(values_a)
    order = [(i, (i + d) % k) for d in range(k) for i in range(k)]
    return tuple(
        WorldClass(form.format(values_a[i], values_b[j]), ((fam_a, values_a[i]), (fam_b, values_b[j])))
        for i, j in order
    )


SUITE: dict[str, WorldDatasetSpec] = {
    spec.name: spec
    for spec in (
        WorldDatasetSpec(
            "shapes", _single("shape", "{}"),
            Shift(contrast=0.7, overlay=12.0, overlay_period=5.0, overlay_angle=30.0, brightness_jitter=0.15,
                  noise=8.0),
            description="12 shapes; low contrast under a fixed stripe texture",
        ),
        WorldDatasetSpec(
            "colours", _single("colour", "{} shape"),
            Shift(cast=(1.25, 1.0, 0.68), contrast=0.78, brightness_jitter=0.15, cast_jitter=0.08, noise=8.0),
            description="10 colours; a fixed warm colour cast",
        ),
        WorldDatasetSpec(
            "patterns", _single("pattern", "{} shape"),
            Shift(blur=1, contrast=0.7, cast=(0.9, 1.0, 1.1), brightness_jitter=0.15, noise=10.0),
            description="8 patterns; blurred, low contrast, slightly cool",
        ),
        WorldDatasetSpec(
            "colour_shapes",
            _pairs("colour", ["red", "blue", "yellow", "green"], "shape", ["circle", "star", "heart", "arrow"],
                   "{} {}"),
            Shift(cast=(0.8, 0.95, 1.2), overlay=18.0, overlay_period=7.0, overlay_angle=-45.0,
                  brightness_jitter=0.15, cast_jitter=0.06, noise=10.0),
            description="16 colour-shape pairs; a fixed cool cast and a diagonal texture",
        ),
        WorldDatasetSpec(
            "pattern_shapes",
            _pairs("pattern", ["striped", "dotted", "hollow", "checkered"], "shape",
                   ["square", "triangle", "cross", "crescent"], "{} {}"),
            Shift(cast=(1.1, 1.05, 0.85), contrast=0.65, overlay=14.0, overlay_period=4.0, overlay_angle=75.0,
                  brightness_jitter=0.15, noise=10.0),
            description="16 pattern-shape pairs; low contrast, yellowish, fine texture",
        ),
    )
}


def class_axes() -> set[str]:
    """Attribute families that some suite dataset uses as a class axis."""
    return {fam for spec in SUITE.values() for c in spec.classes for fam, _ in c.attributes}


def _stream(name: str, split: str, seed: int) -> int:
    """A stable 31-bit seed per (dataset, split, seed); ``hash()`` is salted per process, crc32 is not."""
    return zlib.crc32(f"world/{name}/{split}/{seed}".encode()) & 0x7FFFFFFF


def generate_split(spec: WorldDatasetSpec, split: str, seed: int, per_class: int) -> tuple[np.ndarray, np.ndarray]:
    """Images and labels of one split of a dataset, in memory.

    Args:
        spec: the dataset.
        split: ``"train"``, ``"val"`` or ``"test"`` (only train and val carry the base-class cue).
        seed: suite seed.
        per_class: images per class.

    Returns:
        ``(images, labels)``: (C * per_class, H, W, 3) uint8 and (C * per_class,) int64, class-major order.

    Raises:
        ValueError: unknown split or ``per_class`` < 1.
    """
    images, labels, _ = _generate_split_with_cue(spec, split, seed, per_class)
    return images, labels


def _generate_split_with_cue(
    spec: WorldDatasetSpec, split: str, seed: int, per_class: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`generate_split` plus a (N,) bool array telling which images carry their class cue."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
    if per_class < 1:
        raise ValueError(f"per_class must be >= 1, got {per_class}")
    stream = _stream(spec.name, split, seed)
    out, cues = [], []
    for label, cls in enumerate(spec.classes):
        idx = np.arange(label * 100_000, label * 100_000 + per_class)
        cue = np.zeros(per_class, bool)
        if split != "test" and label < spec.num_base:
            cue = np.array([np.random.default_rng([stream, int(i), 13]).random() < spec.shortcut for i in idx])
        images = np.empty((per_class, IMAGE_SIZE, IMAGE_SIZE, 3), np.uint8)
        for has_cue in (False, True):
            sel = cue == has_cue
            if not sel.any():
                continue
            fixed = cls.fixed()
            if has_cue:
                fixed[spec.cue] = label % len(FAMILIES[spec.cue])
            images[sel] = generate(stream, idx[sel], fixed)[0]
        out.append(apply_shift(images, spec.shift, stream, idx))
        cues.append(cue)
    labels = np.repeat(np.arange(len(spec.classes)), per_class)
    return np.concatenate(out), labels, np.concatenate(cues)


def _slug(name: str) -> str:
    return name.replace(" ", "_")


def _write_dataset(spec: WorldDatasetSpec, folder: Path, manifest: dict, counts: dict[str, int]) -> None:
    split_obj: dict[str, list] = {}
    for split in SPLITS:
        images, labels = generate_split(spec, split, manifest["seed"], counts[split])
        rows = []
        for i, (img, label) in enumerate(zip(images, labels)):
            cname = spec.classes[label].name
            rel = f"images/{split}/{label:02d}_{_slug(cname)}/{i:05d}.png"
            path = folder / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(img).save(path, compress_level=1)
            rows.append([rel, int(label), cname])
        split_obj[split] = rows
    with open(folder / spec.split_file, "w") as f:  # same writer settings as the reference (protocol §1.1)
        json.dump(split_obj, f, indent=4, separators=(",", ": "))
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")


def materialize_suite(
    root: Path,
    *,
    seed: int = 0,
    train_per_class: int = 20,
    val_per_class: int = 4,
    test_per_class: int = 50,
    names: list[str] | None = None,
) -> dict[str, Path]:
    """Write the suite's datasets as PNG images and CoOp-style split files under ``root``.

    Each dataset goes to ``root/world_<name>/`` with ``split_world_<name>.json`` (``{"train", "val",
    "test"}`` lists of ``[relative path, label, class name]``) and a ``manifest.json``. A folder whose
    manifest matches (format, version, seed, counts) is reused; one written by this function with other
    parameters is replaced; anything else is left alone and reported. Each dataset is built in a temporary
    folder and renamed into place.

    Args:
        root: data root.
        seed: suite seed (images are a pure function of it).
        train_per_class: train images per class (>= the number of shots you will sample).
        val_per_class: val images per class.
        test_per_class: test images per class.
        names: datasets to write (default: all of :data:`SUITE`).

    Returns:
        ``{name: dataset folder}``.

    Raises:
        KeyError: unknown dataset name.
        FileExistsError: a target folder exists and was not written by this function.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    counts = {"train": train_per_class, "val": val_per_class, "test": test_per_class}
    out: dict[str, Path] = {}
    for name in names or list(SUITE):
        if name not in SUITE:
            raise KeyError(f"unknown world dataset {name!r}; available: {sorted(SUITE)}")
        spec = SUITE[name]
        folder = root / spec.folder
        manifest = {"format": MANIFEST_FORMAT, "version": SUITE_VERSION, "dataset": name, "seed": seed,
                    "per_class": counts, "classnames": spec.classnames, "num_base": spec.num_base}
        existing = _read_manifest(folder)
        if existing == manifest and (folder / spec.split_file).is_file():
            out[name] = folder
            continue
        if folder.exists() and existing is None:
            raise FileExistsError(
                f"{folder}: exists but has no {MANIFEST} of format {MANIFEST_FORMAT}; refusing to replace it"
            )
        tmp = root / f".{spec.folder}.tmp-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        try:
            _write_dataset(spec, tmp, manifest, counts)
            if folder.exists():  # ours, with other parameters: move aside first so the swap is one rename
                old = root / f".{spec.folder}.old-{os.getpid()}"
                os.replace(folder, old)
                os.replace(tmp, folder)
                shutil.rmtree(old)
            else:
                os.replace(tmp, folder)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        out[name] = folder
    return out


def _read_manifest(folder: Path) -> dict | None:
    try:
        data = json.loads((folder / MANIFEST).read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) and data.get("format") == MANIFEST_FORMAT else None
