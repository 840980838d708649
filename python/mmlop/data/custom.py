"""Custom datasets: a folder per class, or a list of ``(path, label, classname)`` in CSV, JSON or JSONL.

Folder layouts:
  * ``<dir>/<class>/<image>``: every image is a training image (val and test are empty).
  * ``<dir>/{train,val,test}/<class>/<image>`` (``val``/``test`` optional): labels follow the sorted class
    folders of ``train/``; ``val``/``test`` may hold any subset of those classes.

List files (relative paths resolve against the list file's folder):
  * ``.json``: a CoOp split object ``{"train": [[path, label, classname], ...], "val": ..., "test": ...}``, or a
    list of rows.
  * ``.jsonl``: one row per line. ``.csv``: one row per line, optionally after a header
    ``path,label,classname[,split]``.
  A row is ``[path, label, classname]`` or ``[path, label, classname, split]``, or (JSON/JSONL) an object with
  those keys; ``split`` is ``train`` (default), ``val`` or ``test``.
"""

from __future__ import annotations

import csv
import json
import os

import numpy as np

from mmlop import _native
from mmlop.data.errors import DatasetError
from mmlop.data.items import Items
from mmlop.data.scan import scan_class_folders
from mmlop.data.readers import RawDataset, check_images_exist, sha256_files, sha256_listings

__all__ = ["read_custom", "LIST_SUFFIXES"]

LIST_SUFFIXES = (".csv", ".json", ".jsonl")
_SPLITS = ("train", "val", "test")
_FIELDS = ("path", "label", "classname", "split")


def _name_of(path: str) -> str:
    return os.path.splitext(os.path.basename(os.path.normpath(path)))[0]


def _read_folder(path: str) -> RawDataset:
    top = _native.list_class_dirs(path)
    layered = "train" in top and set(top) <= set(_SPLITS)
    if layered:
        classes = _native.list_class_dirs(os.path.join(path, "train"))
        label_of = {c: i for i, c in enumerate(classes)}
        splits = {}
        for split in _SPLITS:
            if split not in top:
                splits[split] = Items.empty(path)
                continue
            present = classes if split == "train" else _native.list_class_dirs(os.path.join(path, split))
            unknown = [c for c in present if c not in label_of]
            if unknown:
                raise DatasetError(
                    f"{os.path.join(path, split)}: class folders {unknown[:5]} have no folder in "
                    f"{os.path.join(path, 'train')}; expected the training classes only"
                )
            _, buf, offsets, labels = scan_class_folders(path, [f"{split}/{c}" for c in present])
            remap = [label_of[c] for c in present]
            splits[split] = Items.from_index(path, buf, offsets, [remap[i] for i in labels.tolist()])
    else:
        classes, buf, offsets, labels = scan_class_folders(path)
        splits = {"train": Items.from_index(path, buf, offsets, labels), "val": Items.empty(path), "test": Items.empty(path)}
    if not classes:
        raise DatasetError(f"{path}: no class folders; expected <class>/<image> or train/<class>/<image>")
    train_root = os.path.join(path, "train") if layered else path
    counts = np.bincount(splits["train"].labels, minlength=len(classes))
    empty = [classes[i] for i in np.flatnonzero(counts == 0).tolist()]
    if empty:
        raise DatasetError(f"{train_root}: class folder(s) {empty[:5]} ({len(empty)} in all) hold no files; expected "
                           "at least one image per class folder (remove empty folders, or they become classes)")
    digest = sha256_listings(*(splits[s] for s in _SPLITS))
    return RawDataset(_name_of(path), list(classes), splits["train"], splits["val"], splits["test"], digest)


def _row(where: str, row: object) -> tuple[str, object, object, str]:
    """Normalises one row to (path, label, classname, split) without judging the label yet."""
    if isinstance(row, dict):
        missing = [k for k in _FIELDS[:3] if k not in row]
        extra = [k for k in row if k not in _FIELDS]
        if missing or extra:
            raise DatasetError(f"{where}: expected keys path, label, classname[, split]; missing {missing}, unknown {extra}")
        row = [row[k] for k in _FIELDS if k in row]
    if not isinstance(row, (list, tuple)) or len(row) not in (3, 4):
        raise DatasetError(f"{where}: expected [path, label, classname] or [path, label, classname, split], got {row!r}")
    path, label, name, split = (*row, "train") if len(row) == 3 else row
    if not isinstance(path, str) or not path or not isinstance(name, str):
        raise DatasetError(f"{where}: expected a non-empty string path and a string class name, got {row!r}")
    if split not in _SPLITS:
        raise DatasetError(f"{where}: split {split!r} is not one of {_SPLITS}")
    return path, label, name, split


def _csv_header(path: str, first: list[str]) -> list[str] | None:
    """The column names when the first CSV row is a header (in any order), else None."""
    cells = [c.strip().lower() for c in first]
    if not set(cells) & set(_FIELDS):
        return None
    unknown = [c for c in cells if c not in _FIELDS]
    missing = [c for c in _FIELDS[:3] if c not in cells]
    repeated = sorted({c for c in cells if cells.count(c) > 1})
    if unknown or missing or repeated:
        raise DatasetError(f"{path}: line 1: header {','.join(first)!r} is invalid (missing {missing}, unknown "
                           f"{unknown}, repeated {repeated}); expected the columns path, label, classname[, split] "
                           "in any order")
    return cells


def _rows_from_file(path: str) -> list[tuple[str, tuple]]:
    """(location, row) pairs; locations name the file and line or entry."""
    suffix = os.path.splitext(path)[1].lower()
    # utf-8-sig: spreadsheet programs start CSV (and some JSON) files with a byte-order mark.
    with open(path, encoding="utf-8-sig", newline="") as f:
        if suffix == ".csv":
            rows = [(f"{path}: line {n}", r) for n, r in enumerate(csv.reader(f), 1) if r]
            columns = _csv_header(path, rows[0][1]) if rows else None
            if columns is None:
                return [(where, _row(where, [c.strip() for c in r])) for where, r in rows]
            out = []
            for where, r in rows[1:]:
                if len(r) != len(columns):
                    raise DatasetError(f"{where}: {len(r)} fields; expected {len(columns)} as in the header "
                                       f"{','.join(columns)}")
                out.append((where, _row(where, {k: c.strip() for k, c in zip(columns, r)})))
            return out
        out = []
        if suffix == ".jsonl":
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                where = f"{path}: line {n}"
                try:
                    out.append((where, _row(where, json.loads(line))))
                except json.JSONDecodeError as e:
                    raise DatasetError(f"{where}: malformed JSON ({e.msg} at column {e.colno}); expected one row per line") from None
            return out
        try:
            data = json.load(f)
        except json.JSONDecodeError as e:
            raise DatasetError(f"{path}: line {e.lineno}, column {e.colno}: malformed JSON: {e.msg}") from None
        if not isinstance(data, list):
            raise DatasetError(f"{path}: expected a list of rows or a {{'train', 'val', 'test'}} split object")
        return [(f"{path}: entry {i}", _row(f"{path}: entry {i}", r)) for i, r in enumerate(data)]


def _parse_label(where: str, label: object) -> int:
    if isinstance(label, bool):
        raise DatasetError(f"{where}: expected an integer label, got {label!r}")
    if isinstance(label, str):
        try:
            label = int(label)
        except ValueError:
            raise DatasetError(f"{where}: expected an integer label, got {label!r}") from None
    if not isinstance(label, int):
        raise DatasetError(f"{where}: expected an integer label, got {label!r}")
    if label < 0:
        raise DatasetError(f"{where}: label {label} is out of range; expected a label >= 0")
    return label


def _read_rows(path: str) -> RawDataset:
    entries: dict[str, tuple[list[str], list[int]]] = {s: ([], []) for s in _SPLITS}
    names: dict[int, tuple[str, str]] = {}
    last: dict[str, tuple[int, str]] = {}
    for where, (rel, label, name, split) in _rows_from_file(path):
        label = _parse_label(where, label)
        first = names.setdefault(label, (name, where))
        if first[0] != name:
            raise DatasetError(f"{where}: class name {name!r} for label {label} differs from {first[0]!r} given at {first[1]}")
        entries[split][0].append(rel)
        entries[split][1].append(label)
        last[split] = (label, where)
    train_labels = set(entries["train"][1])
    num_classes = max(train_labels, default=-1) + 1
    # Contiguous labels 0..C-1 need C distinct training labels: a larger label means a gap, found without
    # building anything sized by the label (a label of 10**9 once cost gigabytes).
    if num_classes > len(train_labels):
        gap = next(i for i in range(len(train_labels) + 1) if i not in train_labels)
        raise DatasetError(f"{path}: no training row with label {gap} (the largest label is {num_classes - 1}, "
                           f"with {len(train_labels)} distinct training labels); expected contiguous labels 0..C-1")
    for split in ("val", "test"):
        for rel, label in zip(*entries[split]):
            if label >= num_classes:
                raise DatasetError(
                    f"{path}: {split} row {rel!r}: label {label} is out of range; expected 0..{num_classes - 1} "
                    f"(the labels of the training rows)"
                )
    folder = os.path.dirname(os.path.abspath(path))
    splits = {s: Items.from_pairs(folder, *entries[s]) for s in _SPLITS}
    return RawDataset(_name_of(path), [names[i][0] for i in range(num_classes)], splits["train"], splits["val"],
                      splits["test"], "")


def _read_split_object(path: str) -> RawDataset:
    parts, classnames = _native.read_split_json(path)
    folder = os.path.dirname(os.path.abspath(path))
    splits = {s: Items.from_index(folder, *parts[s]) if s in parts else Items.empty(folder) for s in _SPLITS}
    return RawDataset(_name_of(path), classnames, splits["train"], splits["val"], splits["test"], "")


def _is_split_object(path: str) -> bool:
    with open(path, "rb") as f:
        head = f.read(4096).lstrip()
    return head.startswith(b"{")


def read_custom(path: str) -> RawDataset:
    """Reads a custom dataset folder or list file.

    Args:
        path: A folder (one sub-folder per class, optionally under ``train/``/``val/``/``test/``) or a
            ``.csv``/``.json``/``.jsonl`` list.

    Returns:
        The full splits; the key is the folder or file name.

    Raises:
        DatasetError: On a malformed row (naming file and line or entry), a label out of range, or missing images.
    """
    path = os.path.abspath(path)
    if os.path.isdir(path):
        return _read_folder(path)
    if not (os.path.isfile(path) and path.lower().endswith(LIST_SUFFIXES)):
        raise DatasetError(f"{path}: not found; expected a class-per-folder directory or a {'/'.join(LIST_SUFFIXES)} list")
    raw = _read_split_object(path) if path.lower().endswith(".json") and _is_split_object(path) else _read_rows(path)
    check_images_exist(path, {"train": raw.train, "val": raw.val, "test": raw.test})
    raw.split_sha256 = sha256_files(path)
    return raw
