"""Type stub of the mmlop._native extension (Rust, pyo3)."""

import os

import numpy as np
import numpy.typing as npt
from os import PathLike
from pathlib import Path

from mmlop.errors import MmlopError

__version__: str

# ---- index (rust/python/src/index.rs; owner: data layer) -------------------------------------------

from mmlop.errors import DatasetError as DatasetError  # raised by the index functions; defined in Python

def list_class_dirs(root: str | os.PathLike[str]) -> list[str]:
    """Sorted names of the non-hidden sub-directories of ``root``. Raises DatasetError if it is missing."""

def scan_class_folders(
    root: str | os.PathLike[str], classes: list[str] | None = None, sort_files: bool = True
) -> tuple[list[str], bytes, npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Lists ``root/<class>/<file>`` in parallel. ``classes`` fixes folders and labels (default: sorted
    sub-directories). Returns ``(classes, path_buffer, offsets (n + 1), labels)``; paths are
    ``<class>/<file>`` relative to ``root``, grouped by label, files byte-sorted or in readdir order."""

def scan_class_folders_cached(
    root: str | os.PathLike[str],
    cache: str | os.PathLike[str],
    classes: list[str] | None = None,
    sort_files: bool = True,
    racy_window_s: float = 3.0,
) -> tuple[list[str], bytes, npt.NDArray[np.int64], npt.NDArray[np.int64], dict[str, object]]:
    """``scan_class_folders`` through the listing cache file ``cache``: a class folder whose device, inode,
    mtime and ctime are unchanged, and older than ``racy_window_s``, is not read again. The fifth element
    reports ``reused``, ``listed`` (folder counts), ``invalid`` (why an unusable cache file was replaced),
    ``written`` and ``write_error``; cache problems are never raised."""

def read_split_json(
    path: str | os.PathLike[str],
) -> tuple[dict[str, tuple[bytes, npt.NDArray[np.int64], npt.NDArray[np.int64]]], list[str]]:
    """Parses a CoOp split file. Returns ``({split: (path_buffer, offsets, labels)}, classnames)``."""

def missing_files(
    prefix: str | os.PathLike[str], buf: bytes, starts: npt.NDArray[np.int64], ends: npt.NDArray[np.int64]
) -> npt.NDArray[np.int64]:
    """Ascending positions of the paths ``buf[starts[i]:ends[i]]`` under ``prefix`` that are not files."""

def lookup_paths(
    buf: bytes,
    starts: npt.NDArray[np.int64],
    ends: npt.NDArray[np.int64],
    query_buf: bytes,
    query_starts: npt.NDArray[np.int64],
    query_ends: npt.NDArray[np.int64],
) -> npt.NDArray[np.int64]:
    """For each query path, its first position among the indexed paths, or -1."""

# ---- end of index --------------------------------------------------------------------------------

# ---- store ----


from mmlop.errors import StoreError as StoreError  # raised by the store; defined in Python

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
# ---- end of store ----
