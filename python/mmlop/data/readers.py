"""Readers for the built-in dataset layouts (protocol §1): split JSON, ImageNet, FGVCAircraft and the
domain-generalization targets. Each returns a :class:`RawDataset`: the full splits before few-shot sampling."""

from __future__ import annotations

import hashlib
import os
import warnings
from dataclasses import dataclass

import numpy as np

from mmlop import _native
from mmlop.data.catalog import DatasetSpec
from mmlop.templates import dataset_template
from mmlop.data.errors import DatasetError
from mmlop.data.items import Items
from mmlop.data.scan import scan_class_folders
from mmlop.data.pickle_compat import read_reference_pickle, reroot

__all__ = ["RawDataset", "read_builtin", "check_duplicates", "check_images_exist", "read_classnames_txt", "sha256_files", "sha256_listings"]

SPLIT_HELP = (
    "the published CoOp split files are linked from https://github.com/KaiyangZhou/CoOp (DATASETS.md, "
    "issue 29) and https://github.com/muzairkhattak/multimodal-prompt-learning/issues/58"
)
IMAGENET_CLASSES = 1000
_MAX_LISTED = 100


@dataclass
class RawDataset:
    """A dataset's full splits, before few-shot sampling and the base/novel subset.

    Attributes:
        key: Dataset key (template key for built-ins, the name for custom datasets).
        classnames: Class names by dataset-level label.
        train, val, test: Full splits (``val`` may be empty).
        split_sha256: Hash of the split file(s) or of the listing; stamps the few-shot cache.
        template: Hand-written zero-shot template, or None.
        dataset_dir: Folder whose ``split_fewshot/`` holds caches (built-ins only).
        cache_name: Folder name used under a user ``cache_dir``.
        prefix: Path prefix (relative to the data root) that locates images inside reference pickles.
        sample_val: Whether few-shot sampling also draws the val split (not for ImageNet).
        test_only: Whether the dataset is only a test set (DG targets).
    """

    key: str
    classnames: list[str]
    train: Items
    val: Items
    test: Items
    split_sha256: str
    template: str | None = None
    dataset_dir: str | None = None
    cache_name: str | None = None
    prefix: str | None = None
    sample_val: bool = True
    test_only: bool = False


def sha256_files(*paths: str) -> str:
    """SHA-256 identifying the contents of the given files, in order."""
    h = hashlib.sha256()
    for p in paths:
        with open(p, "rb") as f:
            h.update(hashlib.sha256(f.read()).digest())
    return h.hexdigest()


def sha256_listings(*items: Items) -> str:
    """SHA-256 identifying folder listings (paths and labels, in order)."""
    return hashlib.sha256("".join(i.digest() for i in items).encode()).hexdigest()


def check_images_exist(source: str, splits: dict[str, Items]) -> None:
    """Raises one error naming every listed image that is not a file.

    Args:
        source: The list the images come from (named in the message).
        splits: Split name -> items to check.

    Raises:
        DatasetError: Listing each missing image (the message shows the first 100; the error's ``missing``
            attribute holds all full paths).
    """
    for name, items in splits.items():
        outside = items.outside_root()
        if len(outside):
            i = int(outside[0])
            raise DatasetError(f"{source}: entry {i} of {name!r}: {items.rel_path(i)!r} lies outside {items.root} "
                               f"({len(outside)} such entries); expected paths inside the dataset folder (or "
                               "absolute paths)")
    lines, missing = [], []
    for name, items in splits.items():
        for i in items.missing().tolist():
            missing.append(items[i][0])
            lines.append(f"  entry {i} of {name!r}: {items.rel_path(i)}")
    if not missing:
        return
    roots = sorted({items.root for items in splits.values()})
    more = f"\n  ... and {len(lines) - _MAX_LISTED} more" if len(lines) > _MAX_LISTED else ""
    err = DatasetError(
        f"{source}: {len(missing)} listed image(s) not found under {', '.join(roots)}; expected every listed "
        f"image to exist:\n" + "\n".join(lines[:_MAX_LISTED]) + more
    )
    err.missing = missing
    raise err


def _full(items: Items, root: str) -> Items:
    """``items`` with paths relative to ``root`` (for comparing lists stored under different roots)."""
    if items.root == root:
        return items
    rels = [os.path.relpath(p, root) if root else p for p in items.paths]
    return Items.from_pairs(root, rels, items.labels)


def check_duplicates(raw: RawDataset, *, allow_duplicates: bool = False, allow_train_test_overlap: bool = False) -> None:
    """Refuses an image listed twice in one split, or a test image that is also a training image.

    Args:
        raw: The dataset's full splits.
        allow_duplicates: Accept repeated entries within a split.
        allow_train_test_overlap: Accept test images that are also training images.

    Raises:
        DatasetError: Naming the first repeated image and its two positions, or the first shared image; the
            message names the option that accepts it.
    """
    splits = {"train": raw.train, "val": raw.val, "test": raw.test}
    if not allow_duplicates:
        for name, items in splits.items():
            pos = items.positions_of(items)  # a repeated path finds one position for both of its entries
            bad = np.flatnonzero(pos != np.arange(len(items)))
            if len(bad):
                i = int(bad[0])
                j = int(pos[i])
                a, b = sorted((i, j))
                raise DatasetError(
                    f"{raw.key}: {items.rel_path(i)!r} is listed twice in {name!r} (entries {a} and {b}; "
                    f"{len(bad)} repeated entries in all); expected each image once (allow_duplicates=True accepts it)")
    if not allow_train_test_overlap and len(raw.train) and len(raw.test):
        root = os.path.commonpath([raw.train.root, raw.test.root]) if raw.train.root and raw.test.root else ""
        train, test = _full(raw.train, root), _full(raw.test, root)
        shared = np.flatnonzero(train.positions_of(test) >= 0)
        if len(shared):
            i = int(shared[0])
            raise DatasetError(
                f"{raw.key}: test entry {i} {test.rel_path(i)!r} is also a training image ({len(shared)} test images "
                f"in all); expected disjoint train and test splits (allow_train_test_overlap=True accepts it)")


def _require_dir(path: str, expected: str) -> None:
    if not os.path.isdir(path):
        raise DatasetError(f"{path}: directory not found; expected {expected}")


def read_classnames_txt(path: str) -> dict[str, str]:
    """Reads ``classnames.txt``: one ``<wnid> <class name>`` per line, in file order.

    Raises:
        DatasetError: If the file is missing, a line has no name, or a wnid repeats.
    """
    if not os.path.isfile(path):
        raise DatasetError(f"{path}: file not found; expected one '<wnid> <class name>' line per class")
    names: dict[str, str] = {}
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            parts = line.strip().split(" ")
            if len(parts) < 2 or not parts[0]:
                raise DatasetError(f"{path}: line {n}: expected '<wnid> <class name>', got {line.rstrip()!r}")
            if parts[0] in names:
                raise DatasetError(f"{path}: line {n}: wnid {parts[0]} appears twice; expected one line per class")
            names[parts[0]] = " ".join(parts[1:])
    return names


def _imagenet_classnames(spec: DatasetSpec, root: str) -> tuple[str, dict[str, str]]:
    path = os.path.join(root, spec.folder, "classnames.txt")
    names = read_classnames_txt(path)
    if len(names) != IMAGENET_CLASSES:
        raise DatasetError(f"{path}: {len(names)} classes; expected {IMAGENET_CLASSES} '<wnid> <class name>' lines")
    return path, names


def _read_split_json(spec: DatasetSpec, root: str) -> RawDataset:
    path = os.path.join(root, spec.folder, spec.split_file)
    if not os.path.isfile(path):
        raise DatasetError(f"{path}: split file not found; expected {spec.split_file} ({SPLIT_HELP})")
    parts, classnames = _native.read_split_json(path)
    for name in ("train", "val", "test"):
        if name not in parts:
            raise DatasetError(f"{path}: no {name!r} list; expected the keys 'train', 'val' and 'test'")
    prefix = os.path.join(root, spec.prefix)
    splits = {name: Items.from_index(prefix, *parts[name]) for name in ("train", "val", "test")}
    check_images_exist(path, splits)
    return RawDataset(spec.key, classnames, splits["train"], splits["val"], splits["test"], sha256_files(path))


def _check_wnid_folders(folder: str, wnids: list[str], classnames_path: str) -> None:
    _require_dir(folder, f"{IMAGENET_CLASSES} wnid class folders")
    found = _native.list_class_dirs(folder)
    if found != wnids:
        missing = sorted(set(wnids) - set(found))
        extra = sorted(set(found) - set(wnids))
        raise DatasetError(
            f"{folder}: {len(found)} class folders; expected {len(wnids)} folders named by the wnids of "
            f"{classnames_path}; missing {len(missing)} {missing[:5]}, unexpected {len(extra)} {extra[:5]}"
        )


def _read_imagenet(spec: DatasetSpec, root: str, file_order: str) -> RawDataset:
    classnames_path, names = _imagenet_classnames(spec, root)
    wnids = sorted(names)
    prefix = os.path.join(root, spec.prefix)
    listings = {}
    for split, folder in (("train", "train"), ("test", "val")):
        _check_wnid_folders(os.path.join(prefix, folder), wnids, classnames_path)
        classes = [f"{folder}/{w}" for w in wnids]
        _, buf, offsets, labels = scan_class_folders(prefix, classes, sort_files=True)
        listings[split] = Items.from_index(prefix, buf, offsets, labels)
    classnames = [names[w] for w in wnids]
    if file_order == "filesystem":
        listings = _reference_imagenet_order(spec, root, prefix, wnids, classnames, listings)
    return RawDataset(
        spec.key, classnames, listings["train"], Items.empty(prefix), listings["test"],
        sha256_listings(listings["train"], listings["test"]), sample_val=False,
    )


def _reference_imagenet_order(
    spec: DatasetSpec, root: str, prefix: str, wnids: list[str], classnames: list[str], sorted_listings: dict
) -> dict[str, Items]:
    """The reference's file order: ``preprocessed.pkl`` when it matches the folders, else ``os.listdir`` order."""
    pkl = os.path.join(root, spec.folder, "preprocessed.pkl")
    if os.path.isfile(pkl):
        try:
            return _order_from_preprocessed(pkl, spec.prefix, classnames, sorted_listings)
        except DatasetError as e:
            warnings.warn(f"{e}; using the file-system order instead", stacklevel=3)
    out = {}
    for split, folder in (("train", "train"), ("test", "val")):
        classes = [f"{folder}/{w}" for w in wnids]
        _, buf, offsets, labels = scan_class_folders(prefix, classes, sort_files=False)
        out[split] = Items.from_index(prefix, buf, offsets, labels)
    return out


def _order_from_preprocessed(pkl: str, prefix: str, classnames: list[str], listings: dict) -> dict[str, Items]:
    data = read_reference_pickle(pkl, ("train", "test"))
    out = {}
    for split, items in listings.items():
        records = data.get(split, [])
        rels = [reroot(r.impath, prefix) for r in records]
        if None in rels:
            i = rels.index(None)
            raise DatasetError(f"{pkl}: entry {i} of {split!r}: {records[i].impath} does not contain '{prefix}/'")
        pos = items.positions_of(Items.from_pairs("", rels, [r.label for r in records]))
        if len(pos) != len(items) or np.any(pos < 0) or len(np.unique(pos)) != len(pos):
            raise DatasetError(f"{pkl}: the {split!r} listing does not match the image folders (stale listing)")
        bad = [i for i, r in enumerate(records) if r.label != items.labels[pos[i]] or r.classname != classnames[r.label]]
        if bad:
            raise DatasetError(f"{pkl}: entry {bad[0]} of {split!r}: label or class name differs from the folders")
        out[split] = items.subset(pos)
    return out


def _read_aircraft(spec: DatasetSpec, root: str) -> RawDataset:
    ds = os.path.join(root, spec.folder)
    variants = os.path.join(ds, "variants.txt")
    if not os.path.isfile(variants):
        raise DatasetError(f"{variants}: file not found; expected one variant name per line (fgvc-aircraft-2013b data/)")
    with open(variants, encoding="utf-8") as f:
        classnames = [line.strip() for line in f]
    for n, name in enumerate(classnames, 1):
        if not name:
            raise DatasetError(f"{variants}: line {n} is empty; expected a variant name")
    label_of = {name: i for i, name in enumerate(classnames)}
    prefix = os.path.join(root, spec.prefix)
    files, splits = [variants], {}
    for split in ("train", "val", "test"):
        path = os.path.join(ds, f"images_variant_{split}.txt")
        if not os.path.isfile(path):
            raise DatasetError(f"{path}: split file not found; expected '<image id> <variant>' lines")
        files.append(path)
        rels, labels = [], []
        with open(path, encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                parts = line.strip().split(" ")
                name = " ".join(parts[1:])
                if len(parts) < 2 or not parts[0]:
                    raise DatasetError(f"{path}: line {n}: expected '<image id> <variant>', got {line.rstrip()!r}")
                if name not in label_of:
                    raise DatasetError(f"{path}: line {n}: variant {name!r} is not listed in {variants}")
                rels.append(parts[0] + ".jpg")
                labels.append(label_of[name])
        splits[split] = Items.from_pairs(prefix, rels, labels)
    check_images_exist(os.path.join(ds, "images_variant_*.txt"), splits)
    return RawDataset(spec.key, classnames, splits["train"], splits["val"], splits["test"], sha256_files(*files))


def _read_dg(spec: DatasetSpec, root: str) -> RawDataset:
    classnames_path, names = _imagenet_classnames(spec, root)
    prefix = os.path.join(root, spec.prefix)
    _require_dir(prefix, f"the {spec.key} class folders")
    if spec.layout == "imagenetv2":
        # Folder i holds class i: the i-th line of classnames.txt (which is in sorted-wnid order).
        folders = [str(i) for i in range(len(names))]
        classnames = list(names.values())
    else:
        folders = _native.list_class_dirs(prefix)
        unknown = [w for w in folders if w not in names]
        if unknown:
            raise DatasetError(
                f"{prefix}: class folders {unknown[:5]} ({len(unknown)} in all) are not wnids of {classnames_path}; "
                f"expected wnid folders only"
            )
        classnames = [names[w] for w in folders]
    _, buf, offsets, labels = scan_class_folders(prefix, folders, sort_files=True)
    test = Items.from_index(prefix, buf, offsets, labels)
    empty = Items.empty(prefix)
    return RawDataset(spec.key, classnames, empty, empty, test, sha256_listings(test), test_only=True)


def read_builtin(spec: DatasetSpec, root: str, imagenet_file_order: str = "sorted") -> RawDataset:
    """Reads a built-in dataset from the data root.

    Args:
        spec: The dataset's catalog entry.
        root: The data root holding the dataset folders.
        imagenet_file_order: ``sorted`` (default, deterministic) or ``filesystem`` (the reference's order:
            ``imagenet/preprocessed.pkl`` when present, else ``os.listdir`` order).

    Returns:
        The full splits.

    Raises:
        DatasetError: If the root, folder, split file or any listed image is missing or malformed.
    """
    _require_dir(root, "the data root holding the dataset folders (imagenet/, oxford_pets/, ...)")
    ds = os.path.join(root, spec.folder)
    _require_dir(ds, f"the {spec.key} dataset folder '{spec.folder}/' under the data root")
    if spec.layout == "split_json":
        raw = _read_split_json(spec, root)
    elif spec.layout == "imagenet":
        raw = _read_imagenet(spec, root, imagenet_file_order)
    elif spec.layout == "fgvc_aircraft":
        raw = _read_aircraft(spec, root)
    else:
        raw = _read_dg(spec, root)
    raw.template = dataset_template(spec.key)
    raw.dataset_dir, raw.cache_name, raw.prefix = ds, spec.folder, spec.prefix
    return raw
