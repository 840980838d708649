"""Frozen CLIP features for training, from the memory-mapped feature store when one is configured.

- Text: the template ensemble g0 of each class, keyed by (model fingerprint, class name, template set), so it is
  computed once and reused across seeds, protocols and runs.
- Images, with pre-enumerated views: each training image has ``views`` augmented views, view v of image i drawn
  from a seed derived from its cache key (path, size, mtime, transform, run seed, v). Their frozen features are
  computed once, before training, and the frozen image pass disappears from the training step.
"""

from __future__ import annotations

import os
import time
import warnings
from pathlib import Path
from typing import Callable, Sequence

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from mmlop.features import FeatureStore, image_key, model_fingerprint, text_key
from mmlop.errors import StoreError
from mmlop.model.prompted import MMLoP
from mmlop.model.teacher import frozen_text_features
from mmlop.training.batches import draw_seeded, key_seed


class FrozenFeatures:
    """Get-or-compute access to frozen features of one base model.

    Args:
        model: The prompted model whose frozen path produces the features.
        folder: Cache folder; None computes everything in memory (nothing is written).
    """

    def __init__(self, model: MMLoP, folder: str | Path | None):
        self.model = model
        self.folder = Path(folder) if folder else None
        self.fingerprint = model_fingerprint(model.clip) if self.folder else ""
        self._stores: dict[str, FeatureStore] = {}
        self.width = int(model.visual.output_dim)

    def _store(self, kind: str) -> FeatureStore:
        if kind not in self._stores:
            assert self.folder is not None
            self.folder.mkdir(parents=True, exist_ok=True)
            name = f"{kind}-{self.fingerprint.split(':')[-1][:16]}.store"
            path = self.folder / name
            try:
                store = FeatureStore(path, width=self.width, dtype="float32", fingerprint=self.fingerprint)
            except StoreError as e:
                # Only a cache: keep the damaged file for inspection, say so, and rebuild from the model.
                aside = path.with_name(f"{path.name}.damaged-{time.strftime('%Y%m%d-%H%M%S')}")
                os.replace(path, aside)
                warnings.warn(f"{path}: damaged feature cache ({e}); moved aside to {aside.name} and rebuilt; "
                              "delete it once inspected, and check the disk if this happens again", stacklevel=3)
                store = FeatureStore(path, width=self.width, dtype="float32", fingerprint=self.fingerprint)
            self._stores[kind] = store
        return self._stores[kind]

    def text(self, classnames: Sequence[str], templates: Sequence[str], template_set: str,
             average: str = "raw") -> Tensor:
        """(C, D) unit-norm g0 of ``classnames``; ``template_set`` names the template list in the cache key."""
        def compute(idx) -> Tensor:
            return frozen_text_features(self.model, [classnames[int(i)] for i in idx], templates, average=average)

        if self.folder is None:
            return compute(range(len(classnames)))
        keys = [text_key(self.fingerprint, c, f"{template_set}:{average}") for c in classnames]
        return self._store("text").get_or_compute(keys, compute)

    def image_view_keys(self, paths: Sequence[str], transform_id: str, seed: int, views: int) -> list[list[bytes]]:
        """Cache keys of every (image, view) pair; they also seed the views' augmentation."""
        tid = f"{transform_id}|run-seed={seed}"
        if not self.fingerprint:
            # The keys also seed the views' augmentation: a run must draw the same views with or without a cache.
            self.fingerprint = model_fingerprint(self.model.clip)
        return [[image_key(self.fingerprint, p, tid, v) for v in range(views)] for p in paths]

    def image_views(self, dataset: Dataset, keys: list[list[bytes]], *, batch_size: int, device: torch.device,
                    num_workers: int = 0) -> Tensor:
        """(N, V, D) frozen features of every pre-enumerated view, computing only the views not cached."""
        n, views = len(keys), len(keys[0]) if keys else 0
        flat = [k for row in keys for k in row]

        def compute(idx) -> Tensor:
            pairs = [(int(i) // views, int(i) % views) for i in idx]
            loader = DataLoader(ViewsOf(dataset, keys, pairs), batch_size=batch_size, num_workers=num_workers)
            out = []
            with torch.no_grad():
                for images, _ in loader:
                    out.append(self.model.encode_image(images.to(device), prompted=False, normalize=True)
                               .float().cpu())
            return torch.cat(out)

        if self.folder is None:
            rows = compute(range(len(flat)))
        else:
            rows = self._store("image").get_or_compute(flat, compute)
        return rows.view(n, views, -1)


class ViewsOf(Dataset):
    """Specific (image, view) pairs of a dataset, each augmented with the seed of its key."""

    def __init__(self, dataset: Dataset, keys: list[list[bytes]], pairs: list[tuple[int, int]]):
        self.dataset, self.keys, self.pairs = dataset, keys, pairs

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, j: int):
        i, v = self.pairs[j]
        return draw_seeded(self.dataset, i, key_seed(self.keys[i][v]))


def view_lookup(table: Tensor) -> Callable[[Tensor, Tensor], Tensor]:
    """A ``frozen_image_fn`` for :func:`mmlop.training.loop.fit` reading (N, V, D) precomputed view features."""
    def lookup(images: Tensor, keys: Tensor) -> Tensor:
        return table[keys[:, 1], keys[:, 2]]

    return lookup
