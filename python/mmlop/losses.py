"""The MMLoP objective (method.md §6): the self-regulating consistency loss and the cross-entropy on drift-corrected
features. Drift correction itself (method.md §5) lives in :mod:`mmlop.ops.drift_logits` only.

All functions take L2-normalised features unless stated; the reductions are those the weights 25/10/1 assume.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from mmlop.config import LossConfig
from mmlop.ops.drift_logits import DriftLogits


def l1_anchor(features: Tensor, frozen: Tensor, reduction: str = "mean") -> Tensor:
    """L1 distance between prompted and frozen features: element mean (``mean``) or per-row L1 norm averaged over
    rows (``sum_rows_mean``)."""
    diff = (features - frozen.detach()).abs()
    if reduction == "mean":
        return diff.mean()
    if reduction == "sum_rows_mean":
        return diff.sum(dim=-1).mean()
    raise ValueError(f"l1 reduction {reduction!r}: expected 'mean' or 'sum_rows_mean'")


def _kl(log_a: Tensor, log_b: Tensor) -> Tensor:
    """Elementwise a * (log a - log b) with a = exp(log_a), summed over classes later."""
    return log_a.exp() * (log_a - log_b)


def logit_kl(prompted_logits: Tensor, zero_shot_logits: Tensor, mode: str = "symmetric", reduction: str = "numel",
             temperature: float = 1.0) -> Tensor:
    """KL agreement between prompted logits z_p and zero-shot logits z_0 (no gradient to z_0).

    Args:
        prompted_logits: (B, C) z_p = s * f_p @ g_hat.T.
        zero_shot_logits: (B, C) z_0 = s * f_0 @ g0.T.
        mode: ``symmetric`` = (KL(q||p) + KL(p||q)) / 2 (MMLoP; not Jensen-Shannon), ``zs_to_prompted`` = KL(q||p)
            (PromptSRC), ``prompted_to_zs`` = KL(p||q), ``none`` = 0. p = softmax(z_p), q = softmax(z_0).
        reduction: ``numel`` divides the sum over B x C by B * C; ``batchmean`` by B.
        temperature: applied to the already scaled logits.
    """
    if mode == "none":
        return prompted_logits.new_zeros(())
    log_p = F.log_softmax(prompted_logits.float() / temperature, dim=-1)
    log_q = F.log_softmax(zero_shot_logits.detach().float() / temperature, dim=-1)
    if mode == "zs_to_prompted":
        total = _kl(log_q, log_p).sum()
    elif mode == "prompted_to_zs":
        total = _kl(log_p, log_q).sum()
    elif mode == "symmetric":
        total = 0.5 * (_kl(log_q, log_p).sum() + _kl(log_p, log_q).sum())
    else:
        raise ValueError(f"kl mode {mode!r}: expected symmetric, zs_to_prompted, prompted_to_zs or none")
    if reduction == "numel":
        return total / prompted_logits.numel()
    if reduction == "batchmean":
        return total / prompted_logits.shape[0]
    raise ValueError(f"kl reduction {reduction!r}: expected 'numel' or 'batchmean'")


@dataclass
class LossTerms:
    """The total loss and its (unweighted) terms."""

    total: Tensor
    ce: Tensor
    text: Tensor
    image: Tensor
    logits: Tensor

    def as_floats(self) -> dict[str, float]:
        return {k: float(getattr(self, k).detach()) for k in ("total", "ce", "text", "image", "logits")}


def mmlop_loss(out: DriftLogits, labels: Tensor, frozen_image: Tensor, frozen_text: Tensor, logit_scale: float,
               config: LossConfig) -> LossTerms:
    """``L = CE(z_p, y) + λ1·L1(g_hat, g0) + λ2·L1(f_p, f_0) + λ3·KL(z_p, z_0)``.

    Args:
        out: Output of :func:`mmlop.ops.drift_logits.drift_corrected_logits`: logits z_p (B, C), normalised f_p
            (B, D) and corrected g_hat (C, D).
        labels: (B,) class indices into the class set.
        frozen_image: (B, D) normalised frozen image features f_0 of the same views.
        frozen_text: (C, D) normalised frozen text features g0 (the template ensemble).
        logit_scale: s.
        config: Weights, KL mode and reductions; ``consistency=False`` gives cross-entropy only.
    """
    ce = F.cross_entropy(out.logits, labels)
    zero = ce.new_zeros(())
    if not config.consistency:
        return LossTerms(ce, ce, zero, zero, zero)
    text = l1_anchor(out.text, frozen_text, config.l1_reduction)
    image = l1_anchor(out.image, frozen_image, config.l1_reduction)
    z0 = logit_scale * frozen_image.float() @ frozen_text.float().t()  # (B, C), uncorrected g0
    kl = logit_kl(out.logits, z0, config.kl_mode, config.kl_reduction, config.kl_temperature)
    total = ce + config.lambda_text * text + config.lambda_image * image + config.lambda_logits * kl
    return LossTerms(total, ce, text, image, kl)
