"""QuickGELU, ``x * sigmoid(1.702 x)``, the activation of OpenAI's CLIP weights, as one op that keeps only its input.

Autograd on the plain expression keeps three tensors of the MLP's hidden size per block (``x``, the sigmoid
and, for the projection after it, the product); :class:`QuickGELUFunction` keeps ``x`` alone and recomputes
the sigmoid in backward. That is one hidden-sized tensor less per block (ViT-B/16 image block at batch 16:
3216 x 3072 floats = 40 MB): 0.61 GiB less peak memory in the ViT-B/16 x 500 classes train step on a 2-core
AMD EPYC (4.03 vs 4.64 GiB, ``benchmarks/bench_train_step.py`` rows mmlop and mmlop-unfused).

``quick_gelu_reference`` is the definition (open_clip's ``QuickGELU``); ``QuickGELUFunction`` runs the Triton
kernels of :mod:`mmlop.kernels.quick_gelu` on CUDA (and under ``TRITON_INTERPRET=1``) or, elsewhere, the same
expression in torch; ``quick_gelu`` dispatches (see :mod:`mmlop.ops._dispatch`).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from mmlop.ops._dispatch import use_triton

__all__ = ["QuickGELUFunction", "quick_gelu", "quick_gelu_reference"]

# Elements per program: an elementwise op is bandwidth-bound and 1024 float32 per program is Triton's usual
# choice for such ops; not tuned on a GPU (none was available).
_BLOCK = 1024


def _check(x: Tensor) -> None:
    if not isinstance(x, Tensor) or not x.is_floating_point():
        kind = x.dtype if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(f"quick_gelu expects a floating-point tensor, got {kind}")


def quick_gelu_reference(x: Tensor) -> Tensor:
    """``x * sigmoid(1.702 x)`` in plain torch, exactly as open_clip's ``QuickGELU`` computes it.

    Args:
        x: a floating-point tensor of any shape.

    Returns:
        A tensor of the shape and dtype of ``x``.

    Raises:
        ValueError: if ``x`` is not a floating-point tensor.
    """
    _check(x)
    return x * torch.sigmoid(1.702 * x)


def _backward_torch(x: Tensor, dy: Tensor) -> Tensor:
    # dx = dy * s * (1 + 1.702 x (1 - s)) in float32, written in place to keep the transients at three.
    xf = x.float()
    t = xf * 1.702
    s = torch.sigmoid(t)
    dx = torch.sub(1.0, s)
    dx.mul_(t).add_(1.0).mul_(s).mul_(dy)
    return dx.to(dy.dtype)


class QuickGELUFunction(torch.autograd.Function):
    """QuickGELU that saves only its input and recomputes ``sigmoid(1.702 x)`` in backward.

    ``apply(x, use_kernel)``: with ``use_kernel`` the forward and backward run the Triton kernels (CUDA or the
    interpreter); otherwise the same math in torch, whose forward is bit-identical to
    :func:`quick_gelu_reference`. The backward computes in float32 and returns the gradient in ``x``'s dtype.
    """

    @staticmethod
    def forward(ctx: Any, x: Tensor, use_kernel: bool) -> Tensor:  # noqa: D102
        ctx.use_kernel = use_kernel
        ctx.save_for_backward(x)
        if not use_kernel:
            return x * torch.sigmoid(1.702 * x)
        from mmlop.kernels.quick_gelu import quick_gelu_fwd_kernel

        xc = x.contiguous()
        y = torch.empty_like(xc)
        n = xc.numel()
        if n:
            quick_gelu_fwd_kernel[(-(-n // _BLOCK),)](xc, y, n, BLOCK=_BLOCK)
        return y

    @staticmethod
    def backward(ctx: Any, dy: Tensor):  # noqa: D102
        (x,) = ctx.saved_tensors
        if not ctx.use_kernel:
            return _backward_torch(x, dy), None
        from mmlop.kernels.quick_gelu import quick_gelu_bwd_kernel

        xc, dyc = x.contiguous(), dy.contiguous()
        dx = torch.empty_like(xc)
        n = xc.numel()
        if n:
            quick_gelu_bwd_kernel[(-(-n // _BLOCK),)](xc, dyc, dx, n, BLOCK=_BLOCK)
        return dx, None


def quick_gelu(x: Tensor) -> Tensor:
    """QuickGELU through :class:`QuickGELUFunction`, with the Triton kernels where they apply.

    Same values as :func:`quick_gelu_reference` (bit for bit on the torch path); the backward keeps only ``x``.

    Args:
        x: a floating-point tensor of any shape.

    Returns:
        A tensor of the shape and dtype of ``x``.

    Raises:
        ValueError: if ``x`` is not a floating-point tensor, or ``MMLOP_OPS`` holds an unknown value.
    """
    _check(x)
    return QuickGELUFunction.apply(x, use_triton(x))
