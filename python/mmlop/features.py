"""The frozen-feature store: frozen CLIP features computed once, then read from a memory-mapped file.

A store file holds fixed-width float16 or float32 rows addressed by 16-byte content keys, for one
frozen base model. The keys say what a row is the feature *of*:

- :func:`text_key` - (model fingerprint, class name, template set): the frozen text ensemble of a class.
- :func:`image_key` - (model fingerprint, image file identity (resolved path, size, mtime_ns),
  transform id, view id): the frozen image feature of one view of one image. Rewriting or touching the
  image changes its key, so stale rows are simply never found again.

:class:`FeatureStore` wraps the native store (``mmlop._native.Store``): reads are memory-mapped and
cheap to open; :meth:`FeatureStore.get_or_compute` calls the model only for the keys that are missing
and publishes the new rows atomically (a new file is written, fsynced and renamed over the old one, under
a writer lock), so several processes can read while one writes. Each write rewrites the file, so fill
the cache in large batches (it is meant to be filled once and read many times).

For training with pre-enumerated augmented views, the training code draws view ``v`` of an image from a
generator seeded by that view's own key, ``image_key(fp, path, transform_id, v)`` (see
:mod:`mmlop.training.batches`): the same view is then reproducible in any run, and its frozen image feature
is the row stored under the same key.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Union

import numpy as np
import torch

from mmlop._native import Store
from mmlop._native import merge as _merge
from mmlop.errors import StoreError

__all__ = [
    "FeatureStore",
    "StoreError",
    "image_key",
    "model_fingerprint",
    "stack_keys",
    "text_key",
]

KEY_BYTES = 16
_DTYPES = {"float16": torch.float16, "float32": torch.float32}

KeysLike = Union[bytes, Sequence[bytes], np.ndarray]


def stack_keys(keys: KeysLike) -> np.ndarray:
    """Turns keys into the ``(N, 16)`` uint8 C-contiguous array the native store takes.

    Args:
        keys: one 16-byte key, a sequence of 16-byte keys, or an ``(N, 16)`` uint8 array.

    Returns:
        An ``(N, 16)`` uint8 array (the input itself when it already qualifies).

    Raises:
        ValueError: if a key is not 16 bytes or the array has the wrong shape or dtype.
    """
    if isinstance(keys, (bytes, bytearray)):
        keys = [bytes(keys)]
    if isinstance(keys, np.ndarray):
        if keys.dtype != np.uint8 or keys.ndim != 2 or keys.shape[1] != KEY_BYTES:
            raise ValueError(f"keys array must be (N, 16) uint8, got {keys.shape} {keys.dtype}")
        return np.ascontiguousarray(keys)
    keys = list(keys)
    for i, k in enumerate(keys):
        if not isinstance(k, (bytes, bytearray)) or len(k) != KEY_BYTES:
            raise ValueError(f"key {i} must be {KEY_BYTES} bytes, got {type(k).__name__} of length {len(k)}")
    return np.frombuffer(b"".join(keys), dtype=np.uint8).reshape(len(keys), KEY_BYTES).copy()


class FeatureStore:
    """A cache of fixed-width feature rows for one frozen model, in one file.

    Args:
        path: the store file; created on the first write (its directory must exist).
        width: features per row (e.g. the CLIP embedding width, 512 for ViT-B/16).
        dtype: ``"float16"`` (half the disk and page cache) or ``"float32"`` (bit-exact features).
        fingerprint: identifies the frozen model the rows come from (see :func:`model_fingerprint`);
            stored in the header and checked on every open.
        verify: check every checksum when opening (reads the file once). Without it, opening is O(1)
            and still catches truncation and a damaged header, but not a flipped bit in the body.

    Raises:
        StoreError: if the file exists but is corrupt, truncated, or was made for another dtype, width
            or fingerprint. The message names the file.
    """

    def __init__(self, path: str | os.PathLike, *, width: int, dtype: str = "float16", fingerprint: str,
                 verify: bool = True) -> None:
        if dtype not in _DTYPES:
            raise ValueError(f"dtype must be one of {sorted(_DTYPES)}, got {dtype!r}")
        if not isinstance(width, int) or width < 1:
            raise ValueError(f"width must be a positive int, got {width!r}")
        self.path = Path(path)
        self.width = width
        self.dtype = dtype
        self.fingerprint = fingerprint
        self._verify = verify
        self._store: Store | None = None
        self.refresh()

    def refresh(self) -> None:
        """Reopens the file if a writer has published a new version since it was opened."""
        if self._store is not None and self._store.is_current():
            return
        if not self.path.exists():
            self._store = None
            return
        self._store = Store(self.path, verify=self._verify, dtype=self.dtype, width=self.width,
                            fingerprint=self.fingerprint)

    def __len__(self) -> int:
        return 0 if self._store is None else len(self._store)

    def __repr__(self) -> str:
        return f"FeatureStore({str(self.path)!r}, rows={len(self)}, width={self.width}, dtype={self.dtype})"

    @property
    def rows(self) -> np.ndarray:
        """All rows as a read-only ``(len, width)`` array mapped from the file (no copy), in stored order.

        Pair it with :meth:`find` to index rows by position without a copy of the whole block. The array
        keeps the mapped file alive; it does not see rows published after it was taken.
        """
        if self._store is None:
            return np.zeros((0, self.width), dtype=self.dtype)
        return self._store.rows

    @property
    def keys(self) -> np.ndarray:
        """All keys as a read-only ``(len, 16)`` uint8 array mapped from the file; ``keys[i]`` is the key of
        ``rows[i]`` (sorted order)."""
        if self._store is None:
            return np.zeros((0, KEY_BYTES), dtype=np.uint8)
        return self._store.keys

    def find(self, keys: KeysLike) -> np.ndarray:
        """Positions of ``keys`` in :attr:`rows`, as an ``(N,)`` int64 array with -1 for missing keys."""
        k = stack_keys(keys)
        if self._store is None:
            return np.full(len(k), -1, dtype=np.int64)
        return self._store.find(k)

    def get(self, keys: KeysLike, out: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Gathers rows by key, from the file as last opened (see :meth:`refresh`).

        Args:
            keys: N keys (see :func:`stack_keys`).
            out: optional ``(N, width)`` contiguous CPU tensor of the store dtype to write into (e.g. a
                reused, pinned batch buffer), which saves allocating and faulting in a new one per batch.

        Returns:
            ``(rows, found)``: the ``(N, width)`` rows in the order of ``keys`` (zeros where missing), in
            ``out`` or a new tensor, and an ``(N,)`` bool tensor marking the keys that were present.

        Raises:
            TypeError, ValueError: if ``out`` has the wrong dtype, shape or layout.
        """
        k = stack_keys(keys)
        if self._store is None:
            rows = torch.zeros(len(k), self.width, dtype=_DTYPES[self.dtype]) if out is None else out.zero_()
            return rows, torch.zeros(len(k), dtype=torch.bool)
        if out is None:
            rows, found = self._store.gather(k)
            return torch.from_numpy(rows), torch.from_numpy(found)
        if out.device.type != "cpu" or out.dtype != _DTYPES[self.dtype]:
            raise TypeError(f"out must be a CPU {self.dtype} tensor, got {out.device} {out.dtype}")
        _, found = self._store.gather(k, out.numpy())
        return out, torch.from_numpy(found)

    def put(self, keys: KeysLike, rows: torch.Tensor | np.ndarray) -> int:
        """Adds rows under keys and publishes the new file atomically.

        Keys already stored keep their row (a key names content, so the rows are taken to be equal); within
        ``keys`` the first occurrence wins.

        Args:
            keys: N keys.
            rows: ``(N, width)`` tensor or array, converted to the store dtype.

        Returns:
            The number of keys that were new.

        Raises:
            ValueError: if ``rows`` does not have shape ``(N, width)``.
            StoreError: if the file on disk is corrupt or was made for another model, or a write fails.
        """
        k = stack_keys(keys)
        values = self._to_numpy(rows)
        if values.shape != (len(k), self.width):
            raise ValueError(f"rows must have shape ({len(k)}, {self.width}) for {len(k)} keys, got {tuple(values.shape)}")
        added, _, _ = _merge(self.path, k, values, dtype=self.dtype, width=self.width, fingerprint=self.fingerprint)
        self.refresh()
        return added

    def get_or_compute(self, keys: KeysLike,
                       compute: Callable[[np.ndarray], torch.Tensor | np.ndarray]) -> torch.Tensor:
        """Returns the rows of ``keys``, computing and storing only the missing ones.

        Args:
            keys: N keys.
            compute: called at most once, with the int64 indices (into ``keys``) of the distinct missing
                keys (the first position of each), in increasing order; returns an ``(M, width)`` tensor or
                array of their features. Not called when every key is cached.

        Returns:
            An ``(N, width)`` CPU tensor of the store dtype, in the order of ``keys``. Computed rows are
            returned as stored (rounded to float16 in a float16 store), so a later read returns the same.

        Raises:
            ValueError: if ``compute`` returns the wrong shape.
            StoreError: as for :meth:`put`.
        """
        k = stack_keys(keys)
        self.refresh()
        rows, found = self.get(k)
        missing = np.flatnonzero(~found.numpy())
        if len(missing) == 0:
            return rows
        _, first = np.unique(k[missing], axis=0, return_index=True)
        todo = missing[np.sort(first)]
        values = self._to_numpy(compute(todo))
        if values.shape != (len(todo), self.width):
            raise ValueError(f"compute returned shape {tuple(values.shape)} for {len(todo)} missing keys, "
                             f"expected ({len(todo)}, {self.width})")
        self.put(k[todo], values)
        # Fill every missing position (duplicates included) from the freshly computed rows.
        position = {k[i].tobytes(): j for j, i in enumerate(todo)}
        fill = np.fromiter((position[k[i].tobytes()] for i in missing), dtype=np.int64, count=len(missing))
        rows[torch.from_numpy(missing)] = torch.from_numpy(values[fill])
        return rows

    def _to_numpy(self, rows: torch.Tensor | np.ndarray) -> np.ndarray:
        if isinstance(rows, torch.Tensor):
            return rows.detach().to("cpu", _DTYPES[self.dtype]).contiguous().numpy()
        return np.ascontiguousarray(rows, dtype=self.dtype)


def model_fingerprint(model: torch.nn.Module) -> str:
    """A stable identity of a model's architecture and weights, for cache keys and store headers.

    SHA-256 over the model class, then every ``state_dict`` entry in name order (name, dtype, shape and
    raw bytes). It changes when any weight or buffer changes; it is independent of device and of parameter
    registration order. Hashing runs at roughly 1-2 GB/s, so about half a second for ViT-B/16: compute it
    once per run. Pass the frozen base model, not one with trainable prompts attached.

    Args:
        model: the frozen model.

    Returns:
        ``"sha256:<64 hex digits>"``.
    """
    h = hashlib.sha256()
    cls = type(model)
    h.update(f"{cls.__module__}.{cls.__qualname__}\n".encode())
    for name, tensor in sorted(model.state_dict().items()):
        t = tensor.detach().to("cpu").contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}\n".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy())
    return "sha256:" + h.hexdigest()


def _digest(tag: str, *parts: object, size: int = KEY_BYTES) -> bytes:
    # Length-prefixed fields, so ("ab", "c") and ("a", "bc") differ; the tag separates key kinds.
    h = hashlib.blake2b(digest_size=size, person=tag.encode())
    for part in parts:
        b = str(part).encode()
        h.update(len(b).to_bytes(8, "little"))
        h.update(b)
    return h.digest()


def text_key(fingerprint: str, classname: str, template_set: str) -> bytes:
    """Key of the frozen text feature of one class.

    Args:
        fingerprint: the base model's fingerprint.
        classname: the class name as given to the templates.
        template_set: names the template list (e.g. ``"imagenet_templates_60"``); use a new name, or a
            digest of the templates, when their content changes.

    Returns:
        16 bytes.
    """
    return _digest("mmlop.text.v1", fingerprint, classname, template_set)


def image_key(fingerprint: str, path: str | os.PathLike, transform_id: str, view_id: int) -> bytes:
    """Key of the frozen image feature of one view of one image file.

    The image is identified by its resolved path, size and modification time (ns), so rewriting or
    touching the file gives a new key; its bytes are not read.

    Args:
        fingerprint: the base model's fingerprint.
        path: the image file.
        transform_id: names the preprocessing/augmentation pipeline (and its parameters).
        view_id: which view of the image (0 for the deterministic evaluation view).

    Returns:
        16 bytes.

    Raises:
        FileNotFoundError: if the image does not exist.
    """
    resolved = Path(path).resolve()
    st = os.stat(resolved)
    return _digest("mmlop.image.v1", fingerprint, resolved, st.st_size, st.st_mtime_ns, transform_id, int(view_id))
