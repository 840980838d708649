"""The learning-rate schedule: constant warm-up epochs, then a per-epoch cosine over ``epochs`` (Dassl's)."""

import math

import pytest

from mmlop.training.config import OptimConfig
from mmlop.training.schedule import epoch_lr

# Values at known angles of the cosine: both sides are a few float64 operations, so rel 1e-12 is ~1e4 ulps of slack
# while a one-epoch shift of the schedule moves every value by more than 1e-3 relative.
EXACT = 1e-12


def test_warmup_epoch_then_the_base_lr_then_cosine_at_known_epochs():
    cfg = OptimConfig(epochs=30, lr=0.0025)
    assert (cfg.warmup_epochs, cfg.warmup_lr) == (1, 1e-5)
    lrs = [epoch_lr(cfg, e) for e in range(30)]
    assert lrs[0] == 1e-5  # the warm-up value itself, not a ramp
    assert lrs[1] == 0.0025  # cos(0) = 1: the base lr on the first epoch after warm-up
    # lr_e = lr/2 * (1 + cos(pi * (e - 1) / 30)): 1/3, 1/2 and 2/3 of the half-turn at epochs 11, 16 and 21.
    assert lrs[11] == pytest.approx(0.0025 * 0.75, rel=EXACT)
    assert lrs[16] == pytest.approx(0.0025 * 0.5, rel=EXACT)
    assert lrs[21] == pytest.approx(0.0025 * 0.25, rel=EXACT)
    assert lrs[29] == pytest.approx(0.0025 / 2 * (1 + math.cos(math.pi * 28 / 30)), rel=EXACT)
    assert all(a > b for a, b in zip(lrs[1:], lrs[2:]))  # strictly decreasing after warm-up
    assert lrs[-1] > 0  # the cosine spans `epochs`, so the last epoch stops short of zero


def test_without_warmup_the_cosine_starts_at_epoch_zero():
    cfg = OptimConfig(epochs=4, lr=0.1, warmup_epochs=0)
    assert [epoch_lr(cfg, e) for e in range(4)] == pytest.approx(
        [0.1, 0.05 * (1 + math.cos(math.pi / 4)), 0.05, 0.05 * (1 + math.cos(3 * math.pi / 4))], rel=EXACT)


def test_longer_warmup_holds_the_warmup_lr_for_each_warmup_epoch():
    cfg = OptimConfig(epochs=10, lr=0.01, warmup_epochs=3, warmup_lr=2e-4)
    assert [epoch_lr(cfg, e) for e in range(4)] == [2e-4, 2e-4, 2e-4, 0.01]
