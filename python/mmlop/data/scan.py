"""Class-folder scans (``<root>/<class>/<file>``) through the persistent listing cache.

Listing ImageNet's 1.28M files costs seconds, and tens of seconds on a network file system, every time a run
starts. The native scan keeps each class folder's listing in a cache file and reuses it while the folder's
inode and timestamps are unchanged, so an unchanged tree costs one ``stat`` per class folder, and a changed one
re-reads only the folders that changed. Folders changed in the last few seconds are always read afresh
(file-system timestamps are coarse). The result is always the listing of the tree as it is now.

The cache lives in ``$MMLOP_INDEX_CACHE`` when set, else ``$MMLOP_HOME/index`` (default
``~/.cache/mmlop/index``); ``MMLOP_INDEX_CACHE=off`` turns it off. Nothing is ever written into a data folder.
"""

from __future__ import annotations

import hashlib
import logging
import os
import warnings

import numpy as np

from mmlop import _native
from mmlop.paths import mmlop_home, safe_filename

__all__ = ["listing_cache_dir", "scan_class_folders"]

_log = logging.getLogger(__name__)

#: Folders whose mtime or ctime lies within this many seconds before a scan are never cached: longer than
#: the coarsest common timestamp granularity (2 s, FAT) so that a change in the same tick is never missed.
RACY_WINDOW_S = 3.0
_OFF = ("off", "0", "false", "no", "none")


def listing_cache_dir() -> str | None:
    """The listing cache folder, or None when ``MMLOP_INDEX_CACHE`` turns the cache off."""
    env = os.environ.get("MMLOP_INDEX_CACHE")
    if env is not None and env.strip().lower() in _OFF:
        return None
    return env or os.path.join(mmlop_home(), "index")


def _cache_file(folder: str, root: str, sort_files: bool) -> str:
    order = "sorted" if sort_files else "fs"
    digest = hashlib.sha256(os.fsencode(root)).hexdigest()[:20]
    name = safe_filename(os.path.basename(root))[:40]
    return os.path.join(folder, f"{name}-{digest}-{order}.idx")


def scan_class_folders(
    root: str, classes: list[str] | None = None, sort_files: bool = True
) -> tuple[list[str], bytes, np.ndarray, np.ndarray]:
    """Lists ``root/<class>/<file>``, reusing cached listings of unchanged class folders.

    Args:
        root: The folder holding the class folders.
        classes: Class folders (relative to ``root``, e.g. ``train/n01440764``) in label order; None uses the
            sorted non-hidden sub-folders of ``root``.
        sort_files: Byte-sorted file names (deterministic) or the file system's ``readdir`` order.

    Returns:
        ``(classes, path_buffer, offsets, labels)`` exactly as :func:`mmlop._native.scan_class_folders`.

    Raises:
        DatasetError: ``root`` or a class folder is missing. A cache that cannot be read or written is never an
            error: it is replaced, or skipped with a warning.
    """
    folder = listing_cache_dir()
    if folder is None:
        return _native.scan_class_folders(root, classes, sort_files=sort_files)
    root = os.path.abspath(root)
    path = _cache_file(folder, root, sort_files)
    names, buf, offsets, labels, report = _native.scan_class_folders_cached(
        root, path, classes, sort_files=sort_files, racy_window_s=RACY_WINDOW_S
    )
    if report["invalid"]:
        _log.info("%s: listing cache not used (%s); rewritten", path, report["invalid"])
    if report["write_error"]:
        warnings.warn(f"{report['write_error']}; set MMLOP_INDEX_CACHE to a writable folder, or to 'off'",
                      stacklevel=2)
    _log.debug("%s: %d class folders reused, %d listed", root, report["reused"], report["listed"])
    return names, buf, offsets, labels
