"""The installed package's version (``0.0.0+source`` when run from a source tree that was never installed)."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

__all__ = ["__version__"]

try:
    __version__ = version("mmlop")
except PackageNotFoundError:  # running from a source tree without installing
    __version__ = "0.0.0+source"
