"""Deterministic batches and augmented views.

Every random choice is a function of (seed, epoch, index): the epoch's shuffle order, and the augmentation of each
sample. So a run gives the same views whatever the number of DataLoader workers or data-parallel ranks, and a
resumed run continues exactly where an uninterrupted one would be.
"""

from __future__ import annotations

import hashlib
from typing import Iterator

import torch
from torch.utils.data import Dataset, Sampler


def mix_seed(*parts: int) -> int:
    """A 63-bit seed derived from integers (stable across processes and Python versions)."""
    h = hashlib.blake2b(b"|".join(str(int(p)).encode() for p in parts), digest_size=8).digest()
    return int.from_bytes(h, "little") & ((1 << 63) - 1)


class EpochBatchSampler(Sampler[list[tuple[int, int]]]):
    """Yields this rank's share of every global batch of one epoch, as ``(epoch, index)`` pairs.

    The global order is ``randperm(n)`` seeded by (seed, epoch); the last partial batch is dropped when there is at
    least one full batch. Rank r of W takes elements r, r+W, ... of each global batch.
    """

    def __init__(self, n: int, batch_size: int, seed: int, epoch: int, *, rank: int = 0, world_size: int = 1,
                 max_steps: int = 0):
        if batch_size % world_size:
            raise ValueError(f"global batch size {batch_size} is not divisible by the {world_size} processes")
        self.n, self.batch_size, self.seed, self.epoch = n, batch_size, seed, epoch
        self.rank, self.world, self.max_steps = rank, world_size, max_steps

    def _global_batches(self) -> list[list[int]]:
        g = torch.Generator().manual_seed(mix_seed(self.seed, self.epoch, 0x5EED))
        order = torch.randperm(self.n, generator=g).tolist()
        b = self.batch_size
        drop_last = self.n >= b
        batches = [order[i:i + b] for i in range(0, self.n, b) if not drop_last or i + b <= self.n]
        return batches[: self.max_steps] if self.max_steps else batches

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        for batch in self._global_batches():
            yield [(self.epoch, i) for i in batch[self.rank::self.world]]

    def __len__(self) -> int:
        return len(self._global_batches())


def key_seed(key: bytes) -> int:
    """A 63-bit augmentation seed taken from a feature-store key (the seed of a pre-enumerated view)."""
    return int.from_bytes(key[:8], "little") >> 1


def draw_seeded(dataset: Dataset, i: int, seed: int):
    """``dataset[i]`` with its random augmentation drawn from ``seed``; the global torch RNG is left untouched.

    The one way mmlop draws an augmented view: :class:`SeededViews` (training) and the view pre-enumeration of
    :mod:`mmlop.training.frozen` both call it, so a view and its stored frozen feature always agree.
    """
    with torch.random.fork_rng(devices=[]):
        # The CPU generator alone: torch.manual_seed would also queue CUDA/XPU seeding with a stack trace.
        torch.default_generator.manual_seed(seed)
        return dataset[i]


class SeededViews(Dataset):
    """Wraps an image dataset so that its augmentation is a function of (seed, epoch, index).

    Without views, item ``(epoch, i)`` is augmented with a generator seeded by (seed, epoch, i). With
    pre-enumerated views (``view_keys[i]`` holds the cache keys of image i's views), epoch e shows view
    ``v = mix_seed(seed, e, i) % views`` of image i, augmented with the seed of its key, so its frozen features can
    come from the cache. The global torch RNG is left untouched. Items are ``(image, label, key)`` with
    ``key = tensor([epoch, i, v])`` (v = -1 without views).
    """

    def __init__(self, dataset: Dataset, seed: int, view_keys: list[list[bytes]] | None = None):
        self.dataset, self.seed, self.view_keys = dataset, seed, view_keys

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def view_of(self, epoch: int, i: int) -> int:
        return -1 if not self.view_keys else mix_seed(self.seed, epoch, i, 0x7E) % len(self.view_keys[i])

    def __getitem__(self, key: tuple[int, int]):
        epoch, i = key
        v = self.view_of(epoch, i)
        seed = mix_seed(self.seed, epoch, i) if v < 0 else key_seed(self.view_keys[i][v])
        image, label = draw_seeded(self.dataset, i, seed)
        return image, label, torch.tensor([epoch, i, v])
