"""Drift correction, consistency terms and the total loss (method.md §5, §6, §11)."""

import pytest
import torch
import torch.nn.functional as F

from mmlop.config import LossConfig
from mmlop.losses import l1_anchor, logit_kl, mmlop_loss
from mmlop.ops.drift_logits import uniform_drift_correction
from mmlop.ops.drift_logits import drift_corrected_logits

# Most checks run in float64, where assert_close's default (rtol 1e-7, atol 1e-7) is ~1e9 ulps of slack for a few
# dozen operations; float32 checks state their own bound.
pytestmark = pytest.mark.numerics  # compares floating-point paths: rerun under other CPU kernels (.ci/run)


def unit(*shape):
    return F.normalize(torch.randn(*shape, dtype=torch.float64), dim=-1)


def test_udc_corrected_residuals_have_zero_mean_and_unit_norm():
    g, g0 = unit(7, 16), unit(7, 16)
    out = uniform_drift_correction(g, g0)
    torch.testing.assert_close(out.norm(dim=-1), torch.ones(7, dtype=torch.float64))
    # Before renormalisation the corrected residuals sum to zero over the class set.
    corrected = g - (g - g0).mean(0, keepdim=True)
    torch.testing.assert_close((corrected - g0).sum(0), torch.zeros(16, dtype=torch.float64))
    torch.testing.assert_close(out, F.normalize(corrected, dim=-1))


def test_udc_with_one_class_returns_frozen_and_warns():
    g, g0 = unit(1, 8), unit(1, 8)
    with pytest.warns(UserWarning, match="fewer than 2 classes"):
        torch.testing.assert_close(uniform_drift_correction(g, g0), g0)


def test_udc_removes_a_drift_shared_by_all_classes():
    # Unit vectors g0_k on the circle where g0_k + d is also unit, so the prompted features g0_k + d are already
    # normalised and every class drifts by exactly d.
    d = torch.randn(8, dtype=torch.float64) * 0.3
    d_hat = d / d.norm()
    orth = torch.randn(5, 8, dtype=torch.float64)
    orth = F.normalize(orth - (orth @ d_hat)[:, None] * d_hat, dim=-1)
    a = -d.norm() / 2
    g0 = a * d_hat + (1 - a**2).sqrt() * orth
    torch.testing.assert_close((g0 + d).norm(dim=-1), torch.ones(5, dtype=torch.float64))
    torch.testing.assert_close(uniform_drift_correction(g0 + d, g0), g0)
    with pytest.raises(ValueError, match="must have the shape"):
        uniform_drift_correction(g0, g0[:3])


def test_symmetric_kl_is_zero_on_equal_logits_and_symmetric():
    a, b = torch.randn(4, 9) * 5, torch.randn(4, 9) * 5
    # float32 KL of 36 terms of size ~1: the two orders of summation differ by a few ulps (~1e-7 relative), so
    # rel 1e-6; KL(a, a) is a sum of exact zeros up to log-softmax rounding, so abs 1e-7.
    assert logit_kl(a, a).item() == pytest.approx(0.0, abs=1e-7)
    assert logit_kl(a, b).item() == pytest.approx(logit_kl(b, a).item(), rel=1e-6)
    one_way = (logit_kl(a, b, "zs_to_prompted") + logit_kl(a, b, "prompted_to_zs")) / 2
    assert logit_kl(a, b).item() == pytest.approx(one_way.item(), rel=1e-6)


def test_zs_to_prompted_matches_pytorch_kl_div():
    zp, z0 = torch.randn(6, 11) * 3, torch.randn(6, 11) * 3
    ref = F.kl_div(F.log_softmax(zp, -1), F.log_softmax(z0, -1), reduction="sum", log_target=True) / zp.numel()
    # Same float32 terms summed by another kernel: a few ulps of a sum of 66 terms, inside rel 1e-6.
    assert logit_kl(zp, z0, "zs_to_prompted").item() == pytest.approx(ref.item(), rel=1e-6)
    assert logit_kl(zp, z0, "zs_to_prompted", "batchmean").item() == pytest.approx(ref.item() * 11, rel=1e-6)
    assert logit_kl(zp, z0, "none").item() == 0.0


def test_kl_sends_no_gradient_to_zero_shot_logits():
    zp, z0 = torch.randn(3, 4, requires_grad=True), torch.randn(3, 4, requires_grad=True)
    logit_kl(zp, z0).backward()
    assert zp.grad is not None and z0.grad is None


def test_l1_reductions():
    a, b = torch.zeros(2, 3), torch.tensor([[1.0, 2.0, 3.0], [0.0, 0.0, 6.0]])
    assert l1_anchor(a, b).item() == pytest.approx(2.0)  # small integers: exact in float32, approx only for style
    assert l1_anchor(a, b, "sum_rows_mean").item() == pytest.approx(6.0)


def test_total_loss_is_the_weighted_sum_on_corrected_features():
    torch.manual_seed(0)
    img, txt, g0 = torch.randn(5, 16), torch.randn(3, 16), unit(3, 16).float()
    f0 = unit(5, 16).float()
    labels = torch.tensor([0, 1, 2, 0, 1])
    s = 100.0
    out = drift_corrected_logits(img, txt, g0, s)
    cfg = LossConfig()
    terms = mmlop_loss(out, labels, f0, g0, s, cfg)
    g_hat = uniform_drift_correction(txt, g0)
    f = F.normalize(img, dim=-1)
    # The fused op (float32) against the float32 formulas of losses.py: a few ulps apart on O(1) values, inside the
    # default float32 tolerance (rtol 1.3e-6, atol 1e-5); a wrong weight or term is off by O(1).
    torch.testing.assert_close(out.text, g_hat)
    ce = F.cross_entropy(s * f @ g_hat.t(), labels)
    text = (g_hat - g0).abs().mean()
    image = (f - f0).abs().mean()
    kl = logit_kl(s * f @ g_hat.t(), s * f0 @ g0.t())
    torch.testing.assert_close(terms.total, ce + 25 * text + 10 * image + kl)
    ce_only = mmlop_loss(out, labels, f0, g0, s, LossConfig.ce_only())
    torch.testing.assert_close(ce_only.total, ce)
    assert set(terms.as_floats()) == {"total", "ce", "text", "image", "logits"}
