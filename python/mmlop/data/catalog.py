"""The built-in datasets (protocol §1) and the registry of user readers.

Each built-in entry records where its files live under the data root and which layout reader parses it. The
CLI name is the reference ``configs/datasets/<name>.yaml`` name; the key is the reference class name, which is
also the key of its hand-written prompt template in ``coop_custom_templates``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mmlop.data.splits import DatasetSplits

__all__ = ["DatasetSpec", "DATASETS", "register_dataset"]

LAYOUTS = ("split_json", "imagenet", "fgvc_aircraft", "imagenetv2", "wnid_folders")


@dataclass(frozen=True)
class DatasetSpec:
    """Where a built-in dataset lives and how it is read.

    Attributes:
        key: Reference class name, e.g. ``"OxfordPets"``.
        folder: Dataset folder under the data root; the few-shot caches go in ``<folder>/split_fewshot``.
        prefix: Folder (relative to the root) the split's relative image paths are joined onto.
        layout: One of ``split_json``, ``imagenet``, ``fgvc_aircraft``, ``imagenetv2``, ``wnid_folders``.
        split_file: The split JSON inside ``folder`` (``split_json`` layout only).
        test_only: Whether the whole dataset is a test set (domain-generalization targets).
    """

    key: str
    folder: str
    prefix: str
    layout: str
    split_file: str | None = None
    test_only: bool = False

    def __post_init__(self) -> None:
        if self.layout not in LAYOUTS:
            raise ValueError(f"DatasetSpec {self.key}: layout {self.layout!r} is not one of {LAYOUTS}")
        if (self.layout == "split_json") != (self.split_file is not None):
            raise ValueError(f"DatasetSpec {self.key}: split_file is required exactly for the split_json layout")


def _json_split(key: str, folder: str, images: str | None, split_name: str | None = None) -> DatasetSpec:
    prefix = f"{folder}/{images}" if images else folder
    return DatasetSpec(key, folder, prefix, "split_json", f"split_zhou_{split_name or key}.json")


def _dg(key: str, folder: str, images: str, layout: str = "wnid_folders") -> DatasetSpec:
    return DatasetSpec(key, folder, f"{folder}/{images}", layout, test_only=True)


#: CLI name -> built-in dataset (protocol §1 table).
DATASETS: dict[str, DatasetSpec] = {
    "imagenet": DatasetSpec("ImageNet", "imagenet", "imagenet/images", "imagenet"),
    "caltech101": _json_split("Caltech101", "caltech-101", "101_ObjectCategories"),
    "oxford_pets": _json_split("OxfordPets", "oxford_pets", "images"),
    "stanford_cars": _json_split("StanfordCars", "stanford_cars", None),
    "oxford_flowers": _json_split("OxfordFlowers", "oxford_flowers", "jpg"),
    "food101": _json_split("Food101", "food-101", "images"),
    "fgvc_aircraft": DatasetSpec("FGVCAircraft", "fgvc_aircraft", "fgvc_aircraft/images", "fgvc_aircraft"),
    "sun397": _json_split("SUN397", "sun397", "SUN397"),
    "dtd": _json_split("DescribableTextures", "dtd", "images"),
    "eurosat": _json_split("EuroSAT", "eurosat", "2750"),
    "ucf101": _json_split("UCF101", "ucf101", "UCF-101-midframes"),
    "imagenetv2": _dg("ImageNetV2", "imagenetv2", "imagenetv2-matched-frequency-format-val", "imagenetv2"),
    "imagenet_sketch": _dg("ImageNetSketch", "imagenet-sketch", "images"),
    "imagenet_a": _dg("ImageNetA", "imagenet-adversarial", "imagenet-a"),
    "imagenet_r": _dg("ImageNetR", "imagenet-rendition", "imagenet-r"),
}

#: User-registered readers: name -> reader(root) returning an unsampled DatasetSplits.
_REGISTERED: dict[str, Callable[[str], DatasetSplits]] = {}


def register_dataset(name: str, reader_fn: Callable[[str], DatasetSplits]) -> None:
    """Adds a dataset that ``load_dataset(name, root)`` reads with ``reader_fn(root)``.

    The reader returns a :class:`~mmlop.data.splits.DatasetSplits` holding the full (unsampled) splits with
    labels ``0..C-1``; ``load_dataset`` then applies few-shot sampling and the base/novel subset to it.

    Args:
        name: The name to load it by; must not shadow a built-in name.
        reader_fn: Callable taking the data root.

    Raises:
        ValueError: If ``name`` is a built-in name or ``reader_fn`` is not callable.
    """
    if name in DATASETS:
        raise ValueError(f"register_dataset: {name!r} is a built-in dataset; choose another name")
    if not callable(reader_fn):
        raise ValueError(f"register_dataset: reader_fn for {name!r} must be callable, got {type(reader_fn).__name__}")
    _REGISTERED[name] = reader_fn


def registered_reader(name: str) -> Callable[[str], DatasetSplits] | None:
    """The reader registered under ``name``, if any (the built-in world's names register on the first miss)."""
    if name not in _REGISTERED:
        from mmlop._builtins import ensure_registered

        ensure_registered()
    return _REGISTERED.get(name)
