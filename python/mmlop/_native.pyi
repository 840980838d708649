"""Type stub of the mmlop._native extension (Rust, pyo3)."""

import os

import numpy as np
import numpy.typing as npt

__version__: str

# ---- index (rust/python/src/index.rs; owner: data layer) -------------------------------------------

class DatasetError(ValueError):
    """A dataset is missing, malformed or inconsistent; the message names the file and what was expected."""

def list_class_dirs(root: str | os.PathLike[str]) -> list[str]:
    """Sorted names of the non-hidden sub-directories of ``root``. Raises DatasetError if it is missing."""

def scan_class_folders(
    root: str | os.PathLike[str], classes: list[str] | None = None, sort_files: bool = True
) -> tuple[list[str], bytes, npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Lists ``root/<class>/<file>`` in parallel. ``classes`` fixes folders and labels (default: sorted
    sub-directories). Returns ``(classes, path_buffer, offsets (n + 1), labels)``; paths are
    ``<class>/<file>`` relative to ``root``, grouped by label, files byte-sorted or in readdir order."""

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
