"""Drift-corrected cosine logits: Uniform Drift Correction of the text features and the scaled logits (method §5).

    f    = normalize(image_features)                          (B, D)
    gp   = normalize(text_features), g0 = normalize(frozen)    (C, D)
    rbar = mean_k (gp_k - g0_k)                               (D,)    only when correct=True
    ghat = normalize(gp - rbar)   (ghat = gp when correct=False)
    logits = s * f @ ghat.T                                    (B, C)

with normalize(x) = x / max(||x||_2, eps) like ``F.normalize``. The op returns ``f`` and ``ghat`` as well so the
consistency loss (method §6) reuses them instead of normalising twice; gradients flow from all three outputs to
``image_features`` and ``text_features`` (through rbar too). ``frozen_text_features`` and ``logit_scale`` get
no gradient. Outputs are float32 whatever the input float dtype.

``drift_corrected_logits_reference`` is the pure-torch definition, ``DriftLogitsFunction`` runs the Triton
kernels of :mod:`mmlop.kernels.drift_logits` (two launches forward, two backward) and
``drift_corrected_logits`` dispatches between them (see :mod:`mmlop.ops._dispatch`).
"""

from __future__ import annotations

import warnings
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from mmlop.ops._dispatch import use_triton

__all__ = ["DriftLogits", "DriftLogitsFunction", "drift_corrected_logits", "drift_corrected_logits_reference",
           "uniform_drift_correction"]

# Fixed launch configuration (no autotuning: it needs a GPU at import time and several configs fail under the
# interpreter). Chosen for correctness on any size and enough programs at C = 1000 (63 class blocks), not tuned
# on a GPU: none was available when these kernels were written.
_ROWS = 64  # rows per program in the row-wise passes (norms, partial sums, final Jacobians)
_BLOCK_C = 16  # classes per program in the logits / dG passes (tl.dot side >= 16)
_BLOCK_B = 32  # batch rows per tl.dot tile
_BLOCK_D = 128  # feature chunk
_BLOCK_CI = 64  # class chunk of the dF = dZ ghat reduction
_BLOCK_P = 16  # partial-sum rows reduced at once


class DriftLogits(NamedTuple):
    """Outputs of the drift-corrected logits op.

    Attributes:
        logits: (B, C) float32, ``s * image @ text.T``.
        image: (B, D) float32, the L2-normalised prompted image features f_p.
        text: (C, D) float32, the drift-corrected renormalised text features ghat (the normalised prompted text
            features when ``correct=False``).
    """

    logits: Tensor
    image: Tensor
    text: Tensor


def _check(image_features: Tensor, text_features: Tensor, frozen_text_features: Tensor, logit_scale) -> None:
    for name, t in (("image_features", image_features), ("text_features", text_features),
                    ("frozen_text_features", frozen_text_features)):
        if not isinstance(t, Tensor) or t.dim() != 2 or not t.is_floating_point():
            got = f"{tuple(t.shape)} {t.dtype}" if isinstance(t, Tensor) else type(t).__name__
            raise ValueError(f"{name} must be a 2-D floating-point tensor, got {got}")
    if text_features.shape != frozen_text_features.shape:
        raise ValueError(
            f"frozen_text_features {tuple(frozen_text_features.shape)} must have the shape of text_features "
            f"{tuple(text_features.shape)} (C, D): one frozen feature per class"
        )
    if image_features.shape[1] != text_features.shape[1]:
        raise ValueError(
            f"image_features {tuple(image_features.shape)} and text_features {tuple(text_features.shape)} must "
            "share the embedding size D"
        )
    if text_features.shape[0] == 0:
        raise ValueError("text_features has no classes (C = 0)")
    if isinstance(logit_scale, Tensor) and logit_scale.numel() != 1:
        raise ValueError(f"logit_scale must be a float or a one-element tensor, got shape {tuple(logit_scale.shape)}")


def _compute_dtype(t: Tensor) -> torch.dtype:
    # float32 for half types and float32, float64 stays float64 (gradcheck on the reference).
    return torch.promote_types(t.dtype, torch.float32)


def drift_corrected_logits_reference(
    image_features: Tensor,
    text_features: Tensor,
    frozen_text_features: Tensor,
    logit_scale: float | Tensor,
    correct: bool = True,
    eps: float = 1e-12,
) -> DriftLogits:
    """Pure-torch drift-corrected logits (the definition the kernels are tested against).

    Args:
        image_features: (B, D) raw prompted image features, any float dtype.
        text_features: (C, D) raw prompted text features.
        frozen_text_features: (C, D) frozen text features (normalised here again; no gradient).
        logit_scale: s = exp(logit_scale parameter), a float or a one-element tensor; no gradient.
        correct: apply Uniform Drift Correction; False gives plain cosine logits.
        eps: lower bound on every norm, as in ``F.normalize``.

    Returns:
        :class:`DriftLogits` in float32 (float64 when the inputs are float64).

    Raises:
        ValueError: on tensors that are not 2-D floats or whose shapes do not fit together.
    """
    _check(image_features, text_features, frozen_text_features, logit_scale)
    f = F.normalize(image_features.to(_compute_dtype(image_features)), dim=-1, eps=eps)  # (B, D)
    g = _corrected_text(text_features, frozen_text_features, correct, eps)  # (C, D)
    s = logit_scale.detach().reshape(()).to(f.dtype) if isinstance(logit_scale, Tensor) else float(logit_scale)
    logits = s * f @ g.to(f.dtype).T  # (B, C)
    return DriftLogits(logits, f, g)


def _corrected_text(text_features: Tensor, frozen_text_features: Tensor, correct: bool, eps: float) -> Tensor:
    """ghat (C, D) of the reference: normalised prompted text, minus the mean drift from g0 when ``correct``."""
    g = F.normalize(text_features.to(_compute_dtype(text_features)), dim=-1, eps=eps)  # (C, D)
    if correct:
        g0 = F.normalize(frozen_text_features.detach().to(g.dtype), dim=-1, eps=eps)  # (C, D)
        drift = (g - g0).mean(dim=0, keepdim=True)  # (1, D)
        g = F.normalize(g - drift, dim=-1, eps=eps)
    return g


def uniform_drift_correction(text: Tensor, frozen_text: Tensor, eps: float = 1e-12) -> Tensor:
    """Remove the drift shared by all classes from prompted text features (UDC), the text half of the op.

    ``r_k = g_k - g0_k``, ``r_bar = mean_k r_k``, ``g_hat_k = normalize(g_k - r_bar)``: exactly the ``text``
    output of :func:`drift_corrected_logits` (the same reference code), for a classifier that corrects its text
    weights once and scores many image batches against them. The mean runs over the class set given, so results
    depend on which classes are scored together; with one class, ``g_hat = g0``.

    Args:
        text: (C, D) prompted text features (normalised inside).
        frozen_text: (C, D) frozen zero-shot text features of the same classes (normalised inside; no gradient).
        eps: lower bound on every norm, as in ``F.normalize``.

    Returns:
        (C, D) corrected, unit-norm float32 features (float64 for float64 input); gradients flow to ``text``
        through the mean.

    Raises:
        ValueError: if the shapes differ or are not (C, D) floats with C >= 1.
    """
    _check(text, text, frozen_text, 1.0)
    if text.shape[0] < 2:
        warnings.warn("drift correction over fewer than 2 classes cancels the text prompts entirely", stacklevel=2)
    return _corrected_text(text, frozen_text, True, eps)


class DriftLogitsFunction(torch.autograd.Function):
    """Triton forward and backward of :func:`drift_corrected_logits_reference`.

    ``apply(image_features, text_features, frozen_text_features, logit_scale, correct, eps)`` returns
    ``(logits, image, text)`` as in :class:`DriftLogits`. Forward: two launches (row statistics and drift
    partial sums; then drift, corrected features and logits). Backward: two launches (dG / dF products and the
    corrected-feature Jacobian; then the drift mean and the normalisation Jacobians).
    """

    @staticmethod
    def forward(ctx: Any, image_features, text_features, frozen_text_features, logit_scale, correct: bool,
                eps: float):  # noqa: D102
        import triton

        from mmlop.kernels.drift_logits import drift_logits_fwd_kernel, drift_stats_kernel

        img = image_features.contiguous()
        txt = text_features.contiguous()
        frz = frozen_text_features.detach().contiguous()
        (B, D), C = img.shape, txt.shape[0]
        dev = img.device
        f32 = dict(device=dev, dtype=torch.float32)
        f = torch.empty(B, D, **f32)
        ghat = torch.empty(C, D, **f32)
        logits = torch.empty(B, C, **f32)
        norm_t = torch.empty(C, **f32)
        norm_i = torch.empty(B, **f32)
        norm_h = torch.empty(C, **f32)
        n_text = triton.cdiv(C, _ROWS)
        partial = torch.empty(n_text, D, **f32)  # (groups of _ROWS classes, D)
        scale_ptr, scale_val, from_ptr = _scale_args(logit_scale, norm_t)
        drift_stats_kernel[(n_text + triton.cdiv(B, _ROWS),)](
            txt, frz, img, f, norm_t, norm_i, partial, C, B, D, eps, n_text,
            CORRECT=correct, BLOCK_ROWS=_ROWS, BLOCK_D=_BLOCK_D,
        )
        drift_logits_fwd_kernel[(triton.cdiv(C, _BLOCK_C), triton.cdiv(B, _BLOCK_B))](
            txt, norm_t, partial, f, ghat, norm_h, logits, scale_ptr, scale_val, C, B, D, n_text, 1.0 / C, eps,
            CORRECT=correct, SCALE_FROM_PTR=from_ptr, BLOCK_C=_BLOCK_C, BLOCK_B=_BLOCK_B, BLOCK_D=_BLOCK_D,
            BLOCK_P=_BLOCK_P,
        )
        ctx.save_for_backward(txt, f, ghat, norm_t, norm_h, norm_i)
        ctx.scale = (scale_ptr, scale_val, from_ptr)
        ctx.correct, ctx.eps = correct, eps
        ctx.dtypes = (img.dtype, txt.dtype)
        ctx.set_materialize_grads(False)
        return logits, f, ghat

    @staticmethod
    def backward(ctx: Any, d_logits, d_image, d_text):  # noqa: D102
        import triton

        from mmlop.kernels.drift_logits import drift_bwd_finish_kernel, drift_bwd_rows_kernel

        txt, f, ghat, norm_t, norm_h, norm_i = ctx.saved_tensors
        need_img, need_txt = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        (B, D), C = f.shape, ghat.shape[0]
        f32 = dict(device=f.device, dtype=torch.float32)
        dz = d_logits.float().contiguous() if d_logits is not None else torch.zeros(B, C, **f32)
        dfo = d_image.float().contiguous() if d_image is not None else None
        dgo = d_text.float().contiguous() if d_text is not None else None
        n_text = triton.cdiv(C, _BLOCK_C) if need_txt else 0
        n_d = triton.cdiv(D, _BLOCK_D)
        n_img = triton.cdiv(B, _BLOCK_B) * n_d if need_img else 0
        dh = torch.empty(C, D, **f32) if need_txt else None
        dpartial = torch.empty(max(n_text, 1), D, **f32)
        df = torch.empty(B, D, **f32) if need_img else None
        scale_ptr, scale_val, from_ptr = ctx.scale
        if n_text + n_img:
            drift_bwd_rows_kernel[(n_text + n_img,)](
                dz, f, ghat, norm_h, _or(dgo, f), _or(dfo, f), _or(dh, f), dpartial, _or(df, f),
                scale_ptr, scale_val, C, B, D, ctx.eps, n_text, n_d,
                CORRECT=ctx.correct, HAS_DG_OUT=dgo is not None, HAS_DF_OUT=dfo is not None,
                SCALE_FROM_PTR=from_ptr, BLOCK_C=_BLOCK_C, BLOCK_B=_BLOCK_B, BLOCK_D=_BLOCK_D, BLOCK_CI=_BLOCK_CI,
            )
        d_img = torch.empty(B, D, device=f.device, dtype=ctx.dtypes[0]) if need_img else None
        d_txt = torch.empty(C, D, device=f.device, dtype=ctx.dtypes[1]) if need_txt else None
        n_text_rows = triton.cdiv(C, _ROWS) if need_txt else 0
        n_img_rows = triton.cdiv(B, _ROWS) if need_img else 0
        if n_text_rows + n_img_rows:
            drift_bwd_finish_kernel[(n_text_rows + n_img_rows,)](
                txt, norm_t, _or(dh, f), dpartial, _or(d_txt, f), f, norm_i, _or(df, f), _or(d_img, f),
                C, B, D, n_text, 1.0 / C, ctx.eps, n_text_rows,
                CORRECT=ctx.correct, BLOCK_ROWS=_ROWS, BLOCK_D=_BLOCK_D, BLOCK_P=_BLOCK_P,
            )
        return d_img, d_txt, None, None, None, None


def _or(t: Tensor | None, fallback: Tensor) -> Tensor:
    return fallback if t is None else t


def _scale_args(logit_scale: float | Tensor, placeholder: Tensor) -> tuple[Tensor, float, bool]:
    # A tensor scale is read on the device (no host sync); a Python float is passed by value.
    if isinstance(logit_scale, Tensor):
        return logit_scale.detach().reshape(1).to(device=placeholder.device, dtype=torch.float32), 0.0, True
    return placeholder, float(logit_scale), False


def drift_corrected_logits(
    image_features: Tensor,
    text_features: Tensor,
    frozen_text_features: Tensor,
    logit_scale: float | Tensor,
    correct: bool = True,
    eps: float = 1e-12,
) -> DriftLogits:
    """Drift-corrected scaled cosine logits, with the fused Triton op when it applies.

    Same arguments, results and errors as :func:`drift_corrected_logits_reference`; runs
    :class:`DriftLogitsFunction` when :func:`mmlop.ops._dispatch.use_triton` says so (CUDA tensors, or CPU tensors
    under ``TRITON_INTERPRET=1``; ``MMLOP_OPS=reference`` forces the reference; empty batches and float64 take the
    reference).

    Args:
        image_features: (B, D) raw prompted image features.
        text_features: (C, D) raw prompted text features.
        frozen_text_features: (C, D) frozen text features.
        logit_scale: s = exp(logit_scale parameter), a float or a one-element tensor.
        correct: apply Uniform Drift Correction.
        eps: lower bound on every norm.

    Returns:
        :class:`DriftLogits` (logits (B, C), image (B, D), text (C, D)), float32.

    Raises:
        ValueError: on tensors that are not 2-D floats or whose shapes do not fit together, or a bad
            ``MMLOP_OPS`` value.
    """
    _check(image_features, text_features, frozen_text_features, logit_scale)
    if image_features.shape[0] == 0 or image_features.shape[1] == 0 or not use_triton(
        image_features, text_features, frozen_text_features
    ):
        return drift_corrected_logits_reference(
            image_features, text_features, frozen_text_features, logit_scale, correct, eps
        )
    return DriftLogits(*DriftLogitsFunction.apply(
        image_features, text_features, frozen_text_features, logit_scale, bool(correct), float(eps)
    ))
