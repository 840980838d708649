"""Learning-rate schedule: constant warm-up epochs, then cosine over the remaining epochs, stepped per epoch."""

from __future__ import annotations

import math

from mmlop.training.config import OptimConfig


def epoch_lr(cfg: OptimConfig, epoch: int) -> float:
    """Learning rate of a 0-based epoch.

    Warm-up epochs use ``warmup_lr``; afterwards ``0.5 * lr * (1 + cos(pi * (e - w) / E))`` for e >= w, the Dassl
    behaviour the paper's recipe inherits (epoch 0 at 1e-5, epoch 1 at the base lr, decreasing after).
    """
    if epoch < cfg.warmup_epochs:
        return cfg.warmup_lr
    return 0.5 * cfg.lr * (1.0 + math.cos(math.pi * (epoch - cfg.warmup_epochs) / max(1, cfg.epochs)))
