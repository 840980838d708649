"""The loaded dataset (:class:`DatasetSplits`) and the base/novel class split (protocol §3)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from mmlop.data.errors import DatasetError
from mmlop.data.items import Items

__all__ = ["DatasetSplits", "SUBSAMPLES", "subsample_classes"]

SUBSAMPLES = ("all", "base", "new")


@dataclass
class DatasetSplits:
    """A dataset ready for training and evaluation.

    Attributes:
        key: Dataset key, e.g. ``"OxfordPets"`` (the ``coop_custom_templates`` key), or the custom name.
        classnames: Class names by label, as stored (underscores kept).
        train: Training items (few-shot subset when sampled).
        val: Validation items; may be empty.
        test: Test items (never sampled).
        template: The hand-written zero-shot template, e.g. ``"a photo of a {}, a type of pet."``, or None.
        provenance: ``fewshot_source``, ``split_sha256``, ``seed``, ``num_shots`` and ``subsample``.
    """

    key: str
    classnames: list[str]
    train: Items
    val: Items
    test: Items
    template: str | None = None
    provenance: dict = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        """Number of classes."""
        return len(self.classnames)


def subsample_classes(
    train: Items, val: Items, test: Items, classnames: list[str], subsample: str
) -> tuple[Items, Items, Items, list[str]]:
    """Keeps the base or novel half of the classes and relabels them (protocol §3).

    The classes are the labels of the (few-shot) training list, sorted ascending; base is the first
    ``ceil(n/2)``, novel the rest (37 classes -> 19 / 18). Kept labels become ``0..m-1`` in ascending order.

    Args:
        train: Few-shot training items, labelled at dataset level.
        val: Validation items.
        test: Test items.
        classnames: Dataset-level class names by label.
        subsample: ``"all"`` (unchanged), ``"base"`` or ``"new"``.

    Returns:
        ``(train, val, test, classnames)`` filtered and relabelled; the class list is rebuilt from the
        relabelled training labels.

    Raises:
        ValueError: If ``subsample`` is unknown or a training label has no class name.
    """
    if subsample not in SUBSAMPLES:
        raise DatasetError(f"subsample must be one of {SUBSAMPLES}, got {subsample!r}")
    if subsample == "all":
        return train, val, test, classnames
    labels = np.unique(train.labels)  # sorted ascending
    if len(labels) and labels[-1] >= len(classnames):
        raise DatasetError(f"training label {labels[-1]} has no class name ({len(classnames)} class names)")
    m = math.ceil(len(labels) / 2)
    selected = labels[:m] if subsample == "base" else labels[m:]
    relabel = np.full(len(classnames), -1, dtype=np.int64)
    relabel[selected] = np.arange(len(selected))

    def keep(items: Items) -> Items:
        # Evaluation labels may exceed the training range only in malformed data; they are dropped.
        in_range = items.labels < len(relabel)
        new = np.full(len(items), -1, dtype=np.int64)
        new[in_range] = relabel[items.labels[in_range]]
        idx = np.flatnonzero(new >= 0)
        return items.subset(idx).with_labels(new[idx])

    return keep(train), keep(val), keep(test), [classnames[i] for i in selected.tolist()]
