"""mmlop: Multi-Modal Low-Rank Prompting (MMLoP) for few-shot adaptation of open_clip CLIP models.

The public API is listed in ``__all__``; everything else is reached through submodules.
"""

from importlib.metadata import PackageNotFoundError, version as _pkg_version

try:
    __version__ = _pkg_version("mmlop")
except PackageNotFoundError:  # running from a source tree without installing
    __version__ = "0.0.0+source"

__all__ = ["__version__"]
