"""The exception raised for missing, malformed or inconsistent datasets.

It is defined by the native extension so that errors raised in Rust (scans, split files) and in Python
(readers, caches, images) share one type. It subclasses ``ValueError``.
"""

from mmlop._native import DatasetError

__all__ = ["DatasetError"]
