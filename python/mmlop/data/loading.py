"""``load_dataset``: read a dataset, take the run's few-shot subset, apply the base/novel split."""

from __future__ import annotations

import os

import numpy as np

from mmlop.data.catalog import DATASETS, registered_reader
from mmlop.data.custom import LIST_SUFFIXES, read_custom
from mmlop.data.errors import DatasetError
from mmlop.data.fewshot_splits import FEWSHOT_SOURCES, resolve_fewshot
from mmlop.data.readers import RawDataset, check_duplicates, check_images_exist, read_builtin, sha256_listings
from mmlop.data.splits import SUBSAMPLES, DatasetSplits, subsample_classes

__all__ = ["load_dataset"]

IMAGENET_FILE_ORDERS = ("sorted", "filesystem")


def _from_registered(name: str, splits: DatasetSplits) -> RawDataset:
    if not isinstance(splits, DatasetSplits):
        raise DatasetError(f"reader registered as {name!r} returned {type(splits).__name__}; expected DatasetSplits")
    # A reader's lists are checked like a split file's, so a missing test image fails now, not after training.
    check_images_exist(f"reader registered as {name!r}", {"train": splits.train, "val": splits.val, "test": splits.test})
    digest = sha256_listings(splits.train, splits.val, splits.test)
    return RawDataset(splits.key, list(splits.classnames), splits.train, splits.val, splits.test, digest,
                      template=splits.template, cache_name=name)


def _read(name: str, root: str, imagenet_file_order: str) -> RawDataset:
    if name in DATASETS:
        return read_builtin(DATASETS[name], root, imagenet_file_order)
    reader = registered_reader(name)
    if reader is not None:
        return _from_registered(name, reader(root))
    for candidate in (name, os.path.join(root, name)):
        if os.path.isdir(candidate) or (os.path.isfile(candidate) and candidate.lower().endswith(LIST_SUFFIXES)):
            return read_custom(candidate)
    raise DatasetError(
        f"{name}: unknown dataset; expected one of {sorted(DATASETS)}, a registered name, a class-per-folder "
        f"directory, or a {'/'.join(LIST_SUFFIXES)} list (looked in '.' and {root})"
    )


def load_dataset(
    name: str,
    root: str | os.PathLike,
    *,
    num_shots: int = 16,
    seed: int = 1,
    subsample: str = "all",
    fewshot_source: str = "auto",
    cache_dir: str | os.PathLike | None = None,
    imagenet_file_order: str = "sorted",
    allow_duplicates: bool = False,
    allow_train_test_overlap: bool = False,
) -> DatasetSplits:
    """Loads a dataset with the reference protocol's few-shot subset and class split.

    Args:
        name: A built-in CLI name (``imagenet``, ``oxford_pets``, ..., ``imagenet_r``), a name added with
            :func:`~mmlop.data.catalog.register_dataset`, or a path to a custom dataset (class-per-folder
            directory or ``.csv``/``.json``/``.jsonl`` list).
        root: Data root holding the dataset folders.
        num_shots: Training images per class; ``< 1`` uses the full training set.
        seed: Run seed of the few-shot draw.
        subsample: ``all``, ``base`` (first ceil(C/2) classes) or ``new`` (the rest), relabelled from 0.
        fewshot_source: ``auto``, ``reference_pickle``, ``own`` or ``resample`` (see ``resolve_fewshot``).
        cache_dir: Where to keep our few-shot JSON caches instead of ``<dataset>/split_fewshot``.
        imagenet_file_order: ``sorted`` (deterministic, default) or ``filesystem`` (the reference's order).
        allow_duplicates: Accept an image listed twice in one split (refused by default: it would be weighted
            twice in training, or counted twice in accuracy).
        allow_train_test_overlap: Accept test images that are also training images (refused by default: the
            accuracy would measure memorisation).

    Returns:
        The splits, class names, template and provenance.

    Raises:
        DatasetError: For a missing root, split file or image, a malformed file, or a refused cache.
        ValueError: For an invalid option value.
    """
    if subsample not in SUBSAMPLES:
        raise DatasetError(f"subsample must be one of {SUBSAMPLES}, got {subsample!r}")
    if fewshot_source not in FEWSHOT_SOURCES:
        raise DatasetError(f"fewshot_source must be one of {FEWSHOT_SOURCES}, got {fewshot_source!r}")
    if imagenet_file_order not in IMAGENET_FILE_ORDERS:
        raise DatasetError(f"imagenet_file_order must be one of {IMAGENET_FILE_ORDERS}, got {imagenet_file_order!r}")
    root = os.fspath(root)
    raw = _read(name, root, imagenet_file_order)
    check_duplicates(raw, allow_duplicates=allow_duplicates, allow_train_test_overlap=allow_train_test_overlap)
    provenance: dict = {"split_sha256": raw.split_sha256, "seed": seed, "num_shots": num_shots, "subsample": subsample}
    train, val = raw.train, raw.val
    if raw.test_only:
        provenance["fewshot_source"] = "none"
    elif num_shots < 1:
        provenance["fewshot_source"] = "full"
    else:
        cache = None if cache_dir is None else os.fspath(cache_dir)
        train_idx, val_idx, info = resolve_fewshot(raw, num_shots, seed, fewshot_source, cache)
        provenance.update(info)
        train = raw.train.subset(train_idx)
        val = raw.val.subset(val_idx) if raw.sample_val else raw.val.subset(np.zeros(0, np.int64))
    if raw.test_only:
        classnames = raw.classnames
        if subsample != "all":
            raise DatasetError(f"{raw.key} is a test-only target; subsample must be 'all', got {subsample!r}")
        test = raw.test
    else:
        train, val, test, classnames = subsample_classes(train, val, raw.test, raw.classnames, subsample)
    return DatasetSplits(raw.key, classnames, train, val, test, raw.template, provenance)
