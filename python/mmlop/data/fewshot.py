"""Few-shot sampling exactly as the reference protocol draws it (protocol §2.1).

Labels are visited in order of first appearance in the split; each class keeps ``rng.sample(group, k)`` or the
whole group when it has fewer than ``k`` items. ``random.sample`` only looks at the group's length, so drawing
positions gives the same subset as drawing the items themselves.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import TypeVar, overload

import numpy as np

from mmlop.data.items import Items

__all__ = ["fewshot_indices", "sample_fewshot", "VAL_SHOTS_CAP"]

#: The validation split keeps ``min(k, 4)`` items per class.
VAL_SHOTS_CAP = 4

T = TypeVar("T")


def fewshot_indices(labels: np.ndarray | Sequence[int], k: int, rng: random.Random) -> np.ndarray:
    """Positions of the few-shot subset, in the reference's output order.

    Args:
        labels: Label of each item, in split-file order.
        k: Shots per class (>= 1).
        rng: The run's ``random.Random(seed)``; it is advanced exactly as the reference advances it.

    Returns:
        int64 positions into ``labels``.

    Raises:
        ValueError: If ``k < 1`` (the full set is used without sampling then).
    """
    if k < 1:
        raise ValueError(f"k must be >= 1 for sampling, got {k}; k < 1 means the full set, unsampled")
    groups: dict[int, list[int]] = {}  # insertion order = first appearance, as in the reference
    for i, label in enumerate(np.asarray(labels).tolist()):
        groups.setdefault(label, []).append(i)
    out: list[int] = []
    for group in groups.values():
        out += rng.sample(group, k) if len(group) >= k else group
    return np.asarray(out, dtype=np.int64)


@overload
def sample_fewshot(items: Items, k: int, rng: random.Random) -> Items: ...
@overload
def sample_fewshot(items: Sequence[tuple[T, int]], k: int, rng: random.Random) -> list[tuple[T, int]]: ...
def sample_fewshot(items, k, rng):
    """Draws ``k`` items per class (all of a class with fewer), reference-compatible.

    Args:
        items: An :class:`Items` list or a sequence of ``(path, label)`` pairs, in split-file order.
        k: Shots per class (>= 1).
        rng: ``random.Random(seed)``; draw train first, then val with ``min(k, 4)``, from the same rng.

    Returns:
        The subset, of the same kind as ``items``.

    Raises:
        ValueError: If ``k < 1``.
    """
    if isinstance(items, Items):
        return items.subset(fewshot_indices(items.labels, k, rng))
    idx = fewshot_indices([label for _, label in items], k, rng)
    return [items[i] for i in idx.tolist()]
