"""Where mmlop keeps its own files: ``$MMLOP_HOME``, default ``~/.cache/mmlop``."""

from __future__ import annotations

import os

__all__ = ["mmlop_home"]


def mmlop_home() -> str:
    """mmlop's folder for generated data and caches: ``$MMLOP_HOME``, default ``~/.cache/mmlop``."""
    return os.environ.get("MMLOP_HOME") or os.path.join(os.path.expanduser("~"), ".cache", "mmlop")
