"""Drift-corrected logits. Placeholder reference implementation; the fused op lands with the kernels change."""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor


class DriftLogits(NamedTuple):
    logits: Tensor
    image: Tensor
    text: Tensor


def drift_corrected_logits_reference(image_features: Tensor, text_features: Tensor, frozen_text_features: Tensor,
                                     logit_scale: float | Tensor, correct: bool = True,
                                     eps: float = 1e-12) -> DriftLogits:
    f = F.normalize(image_features.float(), dim=-1, eps=eps)
    gp = F.normalize(text_features.float(), dim=-1, eps=eps)
    if correct:
        g0 = F.normalize(frozen_text_features.float(), dim=-1, eps=eps)
        gp = F.normalize(gp - (gp - g0).mean(dim=0, keepdim=True), dim=-1, eps=eps)
    s = logit_scale.detach().float() if torch.is_tensor(logit_scale) else float(logit_scale)
    return DriftLogits(s * f @ gp.t(), f, gp)


drift_corrected_logits = drift_corrected_logits_reference
