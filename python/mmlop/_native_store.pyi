# Stub of the store part of mmlop._native (rust/python/src/store.rs); merged into _native.pyi.
from os import PathLike
from pathlib import Path

import numpy as np
import numpy.typing as npt

class StoreError(Exception):
    """A feature store file is missing, corrupt, truncated, or holds other rows than expected.

    The message names the file.
    """

class Store:
    """A read-only, memory-mapped feature store file."""

    def __init__(
        self,
        path: str | PathLike[str],
        *,
        verify: bool = True,
        dtype: str | None = None,
        width: int | None = None,
        fingerprint: str | None = None,
    ) -> None:
        """Opens `path`; `verify` checks every checksum (one full read). Given dtype/width/fingerprint
        must match the header. Raises StoreError."""
    @property
    def path(self) -> Path: ...
    @property
    def dtype(self) -> str:
        """'float16' or 'float32'."""
    @property
    def width(self) -> int: ...
    @property
    def fingerprint(self) -> str: ...
    @property
    def rows(self) -> np.ndarray:
        """Read-only (len, width) view of the mapped rows (no copy), in stored (sorted-key) order."""
    @property
    def keys(self) -> npt.NDArray[np.uint8]:
        """Read-only (len, 16) view of the mapped sorted keys; keys[i] is the key of rows[i]."""
    def __len__(self) -> int: ...
    def is_current(self) -> bool:
        """Whether the path still names the mapped file (False after a writer published a new one)."""
    def verify(self) -> None:
        """Checks every checksum and the key order. Raises StoreError."""
    def find(self, keys: npt.NDArray[np.uint8]) -> npt.NDArray[np.int64]:
        """Row index of each (n, 16) uint8 key, -1 where missing."""
    def gather(
        self, keys: npt.NDArray[np.uint8], out: np.ndarray | None = None
    ) -> tuple[np.ndarray, npt.NDArray[np.bool_]]:
        """(rows, found): the rows in key order (zeros where missing), written into `out` (a writeable
        C-contiguous (n, width) array of the store dtype) or a new array, and a bool mask."""

def merge(
    path: str | PathLike[str],
    keys: npt.NDArray[np.uint8],
    rows: np.ndarray,
    *,
    dtype: str,
    width: int,
    fingerprint: str,
) -> tuple[int, int, bool]:
    """Adds rows under keys to the store (created if missing) and publishes it atomically
    (temporary file, fsync, rename) under a writer lock. Returns (added, total, published).
    Raises StoreError, TypeError (rows not of the store dtype), ValueError (shapes)."""
