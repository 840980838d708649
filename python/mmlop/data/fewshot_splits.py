"""Where a run's few-shot subset comes from (protocol §2.2.4): a reference pickle, our JSON split file (a draw
saved once and reused, so every run with the same K and seed trains on the same images), or a fresh draw; and
writing our split file atomically.

Only ``split_fewshot/`` (or a user ``cache_dir``) is ever written; reference pickles are only read.
"""

from __future__ import annotations

import json
import os
import random
import warnings
from collections.abc import Sequence

import numpy as np

from mmlop._io import atomic_write_bytes
from mmlop.data.errors import DatasetError
from mmlop.data.fewshot import VAL_SHOTS_CAP, fewshot_indices
from mmlop.data.items import Items
from mmlop.data.pickle_compat import read_reference_pickle, reroot
from mmlop.data.readers import RawDataset

__all__ = ["FEWSHOT_SOURCES", "SPLIT_FILE_FORMAT", "resolve_fewshot", "split_file_path", "write_split_file"]

FEWSHOT_SOURCES = ("auto", "reference_pickle", "own", "resample")
SPLIT_FILE_FORMAT = "mmlop-fewshot/1"


def split_file_path(raw: RawDataset, k: int, seed: int, cache_dir: str | None) -> str | None:
    """Our JSON split file, or None when there is nowhere to keep one (custom data without ``cache_dir``)."""
    name = f"shot_{k}-seed_{seed}.json"
    if cache_dir is not None:
        return os.path.join(cache_dir, raw.cache_name or raw.key, name)
    if raw.dataset_dir is not None:
        return os.path.join(raw.dataset_dir, "split_fewshot", name)
    return None


def _select(
    raw: RawDataset, source: str, rows: dict[str, Sequence[tuple[str, int, str]]], k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Positions of stored ``(rel_path, label, classname)`` rows in the current splits, after checking each."""
    out = []
    for split, cap in (("train", k), ("val", min(k, VAL_SHOTS_CAP))):
        items: Items = getattr(raw, split)
        entries = rows.get(split, [])
        if split == "val" and entries and not raw.sample_val:
            raise DatasetError(f"{source}: has a 'val' list, but {raw.key} has no sampled val split")
        if split == "val" and raw.sample_val and "val" not in rows:
            raise DatasetError(f"{source}: no 'val' list; expected few-shot 'train' and 'val' lists")
        query = Items.from_pairs("", [r[0] for r in entries], [r[1] for r in entries])
        pos = items.positions_of(query)
        for i, (rel, label, name) in enumerate(entries):
            if pos[i] < 0:
                raise DatasetError(f"{source}: entry {i} of {split!r}: {rel} is not in the current {split} split")
            if items.labels[pos[i]] != label or raw.classnames[label] != name:
                raise DatasetError(
                    f"{source}: entry {i} of {split!r}: ({rel}, {label}, {name!r}) differs from the split's "
                    f"({items.labels[pos[i]]}, {raw.classnames[items.labels[pos[i]]]!r})"
                )
        counts = np.bincount(query.labels, minlength=1) if len(query) else np.zeros(1, dtype=np.int64)
        if counts.max() > cap:
            raise DatasetError(f"{source}: label {int(counts.argmax())} has {int(counts.max())} {split} items; expected at most {cap}")
        out.append(pos)
    return out[0], out[1]


def _from_reference_pickle(raw: RawDataset, path: str, k: int) -> tuple[np.ndarray, np.ndarray]:
    data = read_reference_pickle(path, ("train", "val"))
    rows = {}
    for split, records in data.items():
        rows[split] = []
        for i, r in enumerate(records):
            rel = reroot(r.impath, raw.prefix)
            if rel is None:
                raise DatasetError(f"{path}: entry {i} of {split!r}: {r.impath} does not contain '{raw.prefix}/'")
            rows[split].append((rel, r.label, r.classname))
    return _select(raw, path, rows, k)


def _from_own_split_file(raw: RawDataset, path: str, k: int, seed: int) -> tuple[np.ndarray, np.ndarray, str]:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except json.JSONDecodeError as e:
        raise DatasetError(f"{path}: line {e.lineno}, column {e.colno}: malformed JSON: {e.msg}") from None
    expected = {"format": SPLIT_FILE_FORMAT, "dataset": raw.key, "num_shots": k, "seed": seed, "split_sha256": raw.split_sha256}
    if not isinstance(data, dict):
        raise DatasetError(f"{path}: expected a {SPLIT_FILE_FORMAT} object")
    for field, want in expected.items():
        if data.get(field) != want:
            raise DatasetError(f"{path}: {field} is {data.get(field)!r}; expected {want!r} (stale or foreign cache)")
    rows = {}
    for split in ("train", "val"):
        entries = data.get(split)
        if not isinstance(entries, list) or not all(
            isinstance(e, list) and len(e) == 3 and isinstance(e[0], str) and type(e[1]) is int and isinstance(e[2], str)
            for e in entries
        ):
            raise DatasetError(f"{path}: {split!r} must be a list of [rel_path, label, classname]")
        if entries or raw.sample_val or split == "train":
            rows[split] = [tuple(e) for e in entries]
    train, val = _select(raw, path, rows, k)
    return train, val, str(data.get("source"))


def write_split_file(
    raw: RawDataset, path: str, k: int, seed: int, source: str, train_idx: np.ndarray, val_idx: np.ndarray
) -> bool:
    """Writes our JSON split file atomically (:func:`mmlop._io.atomic_write_bytes`). Returns False, with a warning, if the
    folder is not writable."""

    def rows(items: Items, idx: np.ndarray) -> list:
        return [[items.rel_path(i), int(items.labels[i]), raw.classnames[items.labels[i]]] for i in idx.tolist()]

    data = {
        "format": SPLIT_FILE_FORMAT, "dataset": raw.key, "num_shots": k, "seed": seed, "source": source,
        "split_sha256": raw.split_sha256, "train": rows(raw.train, train_idx), "val": rows(raw.val, val_idx),
    }
    try:
        atomic_write_bytes(path, json.dumps(data, indent=1).encode("utf-8"))
        return True
    except OSError as e:
        warnings.warn(f"{path}: cannot write the few-shot cache ({e}); pass cache_dir= "
                      "(mmlop train --cache-dir) to keep it elsewhere", stacklevel=3)
        return False


def resolve_fewshot(
    raw: RawDataset, k: int, seed: int, source: str = "auto", cache_dir: str | None = None
) -> tuple[np.ndarray, np.ndarray, dict]:
    """Chooses the few-shot subset for ``(k, seed)``.

    ``auto``: a valid reference pickle, else our JSON split file, else a fresh draw (then saved as one).
    ``reference_pickle``: the reference pickle or an error. ``own``: our cache, else a fresh draw (cached).
    ``resample``: a fresh draw, neither read from nor written to any cache.

    Args:
        raw: The full splits.
        k: Shots per class (>= 1).
        seed: Run seed.
        source: One of :data:`FEWSHOT_SOURCES`.
        cache_dir: Folder for our cache instead of ``<dataset>/split_fewshot`` (for read-only roots).

    Returns:
        ``(train positions, val positions, provenance)``; provenance holds ``fewshot_source`` and ``fewshot_cache``.

    Raises:
        DatasetError: With ``reference_pickle``, when the pickle is missing or refused.
    """
    if source not in FEWSHOT_SOURCES:
        raise ValueError(f"fewshot_source must be one of {FEWSHOT_SOURCES}, got {source!r}")
    own = split_file_path(raw, k, seed, cache_dir)
    if source in ("auto", "reference_pickle"):
        pkl = os.path.join(raw.dataset_dir, "split_fewshot", f"shot_{k}-seed_{seed}.pkl") if raw.dataset_dir else None
        if pkl is not None and os.path.isfile(pkl):
            try:
                train, val = _from_reference_pickle(raw, pkl, k)
            except DatasetError as e:
                if source == "reference_pickle":
                    raise
                warnings.warn(f"{e}; not using it", stacklevel=2)
            else:
                if own is not None and not os.path.exists(own):
                    write_split_file(raw, own, k, seed, "reference_pickle", train, val)
                return train, val, {"fewshot_source": "reference_pickle", "fewshot_cache": pkl}
        elif source == "reference_pickle":
            raise DatasetError(
                f"{pkl or raw.key}: reference few-shot pickle not found; expected the reference cache "
                f"split_fewshot/shot_{k}-seed_{seed}.pkl (fewshot_source='reference_pickle')"
            )
    if source in ("auto", "own") and own is not None and os.path.isfile(own):
        try:
            train, val, origin = _from_own_split_file(raw, own, k, seed)
            return train, val, {"fewshot_source": "own_cache", "fewshot_cache": own, "fewshot_origin": origin}
        except DatasetError as e:
            warnings.warn(f"{e}; drawing a new subset", stacklevel=2)
    rng = random.Random(seed)  # train first, then val, from one stream (protocol §2.1)
    train = fewshot_indices(raw.train.labels, k, rng)
    val = fewshot_indices(raw.val.labels, min(k, VAL_SHOTS_CAP), rng) if raw.sample_val and len(raw.val) else np.zeros(0, np.int64)
    written = source != "resample" and own is not None and write_split_file(raw, own, k, seed, "sampled", train, val)
    return train, val, {"fewshot_source": "sampled", "fewshot_cache": own if written else None}
