"""Where mmlop keeps its own files (``$MMLOP_HOME``, default ``~/.cache/mmlop``) and how it names them."""

from __future__ import annotations

import os

__all__ = ["mmlop_home", "safe_filename"]


def mmlop_home() -> str:
    """mmlop's folder for generated data and caches: ``$MMLOP_HOME``, default ``~/.cache/mmlop``."""
    return os.environ.get("MMLOP_HOME") or os.path.join(os.path.expanduser("~"), ".cache", "mmlop")


def safe_filename(text: str, keep: str = "-_") -> str:
    """``text`` with every character but letters, digits and those in ``keep`` replaced by ``_``: a name that is
    one path component on every file system mmlop writes to (run folders, cache files)."""
    return "".join(c if c.isalnum() or c in keep else "_" for c in text)
