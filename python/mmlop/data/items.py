"""A compact list of ``(image path, label)`` pairs.

Paths live in one ``bytes`` buffer addressed by start/end offsets and labels in one int64 array, so ImageNet's
1.28M training images cost a few tens of megabytes and no per-item Python objects until a path is asked for.
Paths are stored relative to a root (the dataset's path prefix); absolute stored paths stay absolute.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator, Sequence

import numpy as np

from mmlop import _native

__all__ = ["Items"]


def _as_int64(a: np.ndarray | Sequence[int], name: str) -> np.ndarray:
    arr = np.ascontiguousarray(a, dtype=np.int64)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    return arr


class Items:
    """An immutable sequence of ``(path, label)`` with paths ``os.path.join(root, relative_path)``.

    Args:
        root: Folder the relative paths are joined onto ('' keeps them as stored).
        buf: Concatenated path bytes (file-system encoding).
        starts: Start offset of each path in ``buf``.
        ends: End offset of each path in ``buf``.
        labels: Label of each path.

    Raises:
        ValueError: If the arrays disagree in length.
    """

    __slots__ = ("root", "_buf", "_starts", "_ends", "_labels", "_paths")

    def __init__(self, root: str, buf: bytes, starts: np.ndarray, ends: np.ndarray, labels: np.ndarray) -> None:
        self.root = os.fspath(root)
        self._buf = bytes(buf)
        self._starts = _as_int64(starts, "starts")
        self._ends = _as_int64(ends, "ends")
        self._labels = _as_int64(labels, "labels")
        if not len(self._starts) == len(self._ends) == len(self._labels):
            raise ValueError(
                f"starts, ends and labels must have one entry per item, got "
                f"{len(self._starts)}, {len(self._ends)} and {len(self._labels)}"
            )
        self._labels.setflags(write=False)
        self._paths: list[str] | None = None

    @classmethod
    def from_index(cls, root: str, buf: bytes, offsets: np.ndarray, labels: np.ndarray) -> Items:
        """Builds items from a native index (``len + 1`` offsets)."""
        offsets = _as_int64(offsets, "offsets")
        return cls(root, buf, offsets[:-1], offsets[1:], labels)

    @classmethod
    def from_pairs(cls, root: str, rel_paths: Sequence[str], labels: Sequence[int] | np.ndarray) -> Items:
        """Builds items from relative path strings and labels."""
        encoded = [os.fsencode(p) for p in rel_paths]
        lengths = np.fromiter((len(b) for b in encoded), dtype=np.int64, count=len(encoded))
        ends = np.cumsum(lengths, dtype=np.int64)
        return cls(root, b"".join(encoded), ends - lengths, ends, np.asarray(labels, dtype=np.int64))

    @classmethod
    def empty(cls, root: str = "") -> Items:
        """An empty list."""
        z = np.zeros(0, dtype=np.int64)
        return cls(root, b"", z, z, z)

    def __len__(self) -> int:
        return len(self._labels)

    def __getitem__(self, i: int) -> tuple[str, int]:
        return os.path.join(self.root, self.rel_path(i)), int(self._labels[i])

    def __iter__(self) -> Iterator[tuple[str, int]]:
        for i in range(len(self)):
            yield self[i]

    def __repr__(self) -> str:
        return f"Items(n={len(self)}, classes={len(np.unique(self._labels))}, root={self.root!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Items):
            return NotImplemented
        return self.root == other.root and self.rel_paths == other.rel_paths and np.array_equal(
            self._labels, other._labels
        )

    def rel_path(self, i: int) -> str:
        """The i-th path as stored, relative to ``root``."""
        return os.fsdecode(self._buf[self._starts[i] : self._ends[i]])

    @property
    def rel_paths(self) -> list[str]:
        """All paths as stored, relative to ``root``."""
        buf = self._buf
        return [os.fsdecode(buf[s:e]) for s, e in zip(self._starts.tolist(), self._ends.tolist())]

    @property
    def paths(self) -> list[str]:
        """All full paths (built on first access, then kept)."""
        if self._paths is None:
            self._paths = [os.path.join(self.root, p) for p in self.rel_paths]
        return self._paths

    @property
    def labels(self) -> np.ndarray:
        """Labels as a read-only int64 array."""
        return self._labels

    def subset(self, indices: np.ndarray | Sequence[int]) -> Items:
        """The items at ``indices``, in that order.

        A small subset (a few-shot draw from ImageNet) gets its own compact buffer, so DataLoader workers
        do not receive the whole listing.
        """
        idx = _as_int64(indices, "indices")
        picked = Items(self.root, self._buf, self._starts[idx], self._ends[idx], self._labels[idx])
        return picked if 2 * len(idx) > len(self) else picked._compact()

    def _compact(self) -> Items:
        """The same items with a buffer holding exactly their paths, back to back."""
        lengths = self._ends - self._starts
        ends = np.cumsum(lengths, dtype=np.int64)
        starts = ends - lengths
        if np.array_equal(starts, self._starts) and len(self._buf) == (int(ends[-1]) if len(ends) else 0):
            return self
        gather = np.repeat(self._starts - starts, lengths) + np.arange(int(ends[-1]) if len(ends) else 0)
        buf = np.frombuffer(self._buf, dtype=np.uint8)[gather].tobytes()
        return Items(self.root, buf, starts, ends, self._labels)

    def with_labels(self, labels: np.ndarray | Sequence[int]) -> Items:
        """The same paths with new labels."""
        return Items(self.root, self._buf, self._starts, self._ends, np.asarray(labels, dtype=np.int64))

    def missing(self) -> np.ndarray:
        """Positions (ascending) of the items whose file does not exist; checked in parallel natively."""
        return _native.missing_files(self.root, self._buf, self._starts, self._ends)

    def outside_root(self) -> np.ndarray:
        """Positions (ascending) of relative paths that climb out of ``root`` (``../x``); absolute ones are kept."""
        if b".." not in self._buf:  # the common case, without building one string per item
            return np.zeros(0, dtype=np.int64)
        bad = [i for i, rel in enumerate(self.rel_paths)
               if not os.path.isabs(rel) and os.path.normpath(rel).split(os.sep)[0] == ".."]
        return np.asarray(bad, dtype=np.int64)

    def positions_of(self, queries: Items) -> np.ndarray:
        """For each query's relative path, its position in these items, or -1 (native hash lookup)."""
        return _native.lookup_paths(
            self._buf, self._starts, self._ends, queries._buf, queries._starts, queries._ends
        )

    def digest(self) -> str:
        """SHA-256 over the relative paths and labels, in order (identifies a listing)."""
        c = self._compact()
        h = hashlib.sha256(c._buf)
        h.update((c._ends - c._starts).tobytes())
        h.update(c._labels.tobytes())
        return h.hexdigest()
