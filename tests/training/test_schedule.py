import pytest

from mmlop.training.config import OptimConfig
from mmlop.training.schedule import epoch_lr


def test_warmup_then_cosine():
    cfg = OptimConfig(epochs=30)
    lrs = [epoch_lr(cfg, e) for e in range(30)]
    assert lrs[0] == 1e-5
    assert lrs[1] == pytest.approx(0.0025)
    assert all(a > b for a, b in zip(lrs[1:], lrs[2:]))
    assert lrs[-1] > 0
