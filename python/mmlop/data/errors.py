"""The exception raised for missing, malformed or inconsistent datasets (defined in :mod:`mmlop.errors`).

Errors raised in Rust (scans, split files) and in Python (readers, caches, images) share this one type: the native
binding raises :class:`mmlop.errors.DatasetError` itself. It subclasses ``ValueError``.
"""

from mmlop.errors import DatasetError

__all__ = ["DatasetError"]
