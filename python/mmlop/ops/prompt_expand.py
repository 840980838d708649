"""Prompt expansion: every prompted layer's text and vision prompts from their low-rank factors (method §3).

    P_t^(l) = U_t^(l) V_t^(l)    (T x r)(r x d_t)
    P_v^(l) = U_v^(l) V_v^(l)    (V x r)(r x d_v)

Every function here takes the factors in one order, ``(u_text, v_text, u_vision, v_vision)`` (each product's
factors as written, text first), from :class:`mmlop.model.factors.PromptFactors` down to the kernel launch. With a
shared up-projection the caller passes the same tensor as ``u_text`` and ``u_vision``; :func:`expand_prompts` reads
that (``u_vision is u_text``) once and hands the decision down; the gradient is the sum of both modalities'
contributions. A modality whose ``u`` is None is full rank: its ``v`` already is the
prompt and is returned unchanged. A modality whose ``v`` is None (e.g. CoOp has no vision prompts) returns None.

``expand_prompts_reference`` is the pure-torch definition, ``ExpandPromptsFunction`` runs the Triton kernels of
:mod:`mmlop.kernels.prompt_expand` (one launch for both modalities forward, one backward) and
``expand_prompts`` dispatches between them (see :mod:`mmlop.ops._dispatch`).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from mmlop.ops._dispatch import use_triton

__all__ = ["ExpandPromptsFunction", "expand_prompts", "expand_prompts_reference"]

# Column tile of the forward kernel and the D step of the backward loop. 128 float32 columns x up to 16 prompt
# tokens keeps a tile at <= 2048 registers' worth per program; not tuned on a GPU (none was available).
_BLOCK_D = 128


def _check_pair(name: str, u: Tensor | None, v: Tensor | None) -> None:
    if v is None:
        if u is not None:
            raise ValueError(f"u_{name} is given but v_{name} is None: a low-rank prompt needs both factors")
        return
    if u is None:
        if v.dim() != 3:
            raise ValueError(f"v_{name} (full-rank prompt) must have shape (L, T, d), got {tuple(v.shape)}")
        return
    if u.dim() != 3 or v.dim() != 3:
        raise ValueError(f"u_{name} must be (L, T, r) and v_{name} (L, r, d); got {tuple(u.shape)} and {tuple(v.shape)}")
    if u.shape[0] != v.shape[0] or u.shape[2] != v.shape[1]:
        raise ValueError(
            f"u_{name} {tuple(u.shape)} and v_{name} {tuple(v.shape)} do not match: expected u (L, T, r) and v (L, r, d)"
            " with the same depth L and rank r"
        )
    if u.device != v.device:
        raise ValueError(f"u_{name} is on {u.device} but v_{name} is on {v.device}")
    if not (u.is_floating_point() and v.is_floating_point()):
        raise ValueError(f"u_{name} and v_{name} must be floating point, got {u.dtype} and {v.dtype}")


def _check(u_text: Tensor | None, v_text: Tensor | None, u_vision: Tensor | None, v_vision: Tensor | None) -> None:
    _check_pair("text", u_text, v_text)
    _check_pair("vision", u_vision, v_vision)


def expand_prompts_reference(
    u_text: Tensor | None = None,
    v_text: Tensor | None = None,
    u_vision: Tensor | None = None,
    v_vision: Tensor | None = None,
) -> tuple[Tensor | None, Tensor | None]:
    """Pure-torch prompt expansion (the definition the kernels are tested against).

    Args:
        u_text: text up-projection (L_t, T, r), or None for full rank.
        v_text: text factors (L_t, r, d_t), or the full-rank text prompts (L_t, T, d_t) when ``u_text`` is None,
            or None for no text prompts.
        u_vision: vision up-projection (L_v, V, r), or None; pass the same tensor as ``u_text`` to share it.
        v_vision: vision factors (L_v, r, d_v), or full-rank vision prompts (L_v, V, d_v), or None.

    Returns:
        ``(P_text, P_vision)``: (L_t, T, d_t) and (L_v, V, d_v), in the promoted dtype of the factors; None for
        an absent modality.

    Raises:
        ValueError: on shapes, devices or dtypes that do not fit together.
    """
    _check(u_text, v_text, u_vision, v_vision)
    p_text = v_text if u_text is None else torch.matmul(u_text, v_text)  # (L, T, d_t)
    p_vision = v_vision if u_vision is None else torch.matmul(u_vision, v_vision)  # (L, V, d_v)
    return p_text, p_vision


def _placeholder(*tensors: Tensor | None) -> Tensor:
    return next(t for t in tensors if t is not None)


class ExpandPromptsFunction(torch.autograd.Function):
    """Low-rank prompt expansion of both modalities with Triton forward and backward.

    ``apply(u_text, v_text, u_vision, v_vision, shared)``: each (u, v) pair is either both tensors or both None
    (full-rank modalities are handled by :func:`expand_prompts`, not here). ``shared=True`` says ``u_vision`` is
    ``u_text`` (decided by the caller); its gradient is summed inside the backward kernel and returned once, for
    ``u_text``.
    Returns ``(P_text, P_vision)`` with None for an absent modality.
    """

    @staticmethod
    def forward(ctx: Any, u_text, v_text, u_vision, v_vision, shared: bool):  # noqa: D102
        from mmlop.kernels.prompt_expand import expand_fwd_kernel
        import triton

        u_t = None if u_text is None else u_text.contiguous()
        v_t = None if v_text is None else v_text.contiguous()
        u_v = None if u_vision is None else u_vision.contiguous()
        v_v = None if v_vision is None else v_vision.contiguous()
        ref = _placeholder(u_t, u_v)
        p_t = p_v = None
        if u_t is not None:
            p_t = torch.empty(u_t.shape[0], u_t.shape[1], v_t.shape[2], device=ref.device,
                              dtype=torch.promote_types(u_t.dtype, v_t.dtype))  # (L_t, T, d_t)
        if u_v is not None:
            p_v = torch.empty(u_v.shape[0], u_v.shape[1], v_v.shape[2], device=ref.device,
                              dtype=torch.promote_types(u_v.dtype, v_v.dtype))  # (L_v, V, d_v)
        dims = _dims(u_t, v_t, u_v, v_v)
        n_blocks_t = triton.cdiv(dims["D_T"], _BLOCK_D) if p_t is not None else 0
        n_blocks_v = triton.cdiv(dims["D_V"], _BLOCK_D) if p_v is not None else 0
        grid = (max(dims["L_T"], dims["L_V"]), n_blocks_t + n_blocks_v)
        if grid[0] > 0 and grid[1] > 0:
            ph = _placeholder(p_t, p_v)
            expand_fwd_kernel[grid](
                _or(u_t, ref), _or(v_t, ref), _or(p_t, ph), _or(u_v, ref), _or(v_v, ref), _or(p_v, ph),
                dims["L_T"], dims["T_T"], dims["D_T"], dims["L_V"], dims["T_V"], dims["D_V"], n_blocks_t,
                R_T=dims["R_T"], R_V=dims["R_V"], BLOCK_T=dims["BLOCK_T"], BLOCK_D=_BLOCK_D,
            )
        ctx.shared = shared
        ctx.save_for_backward(u_t, v_t, u_v, v_v)
        return p_t, p_v

    @staticmethod
    def backward(ctx: Any, dp_text, dp_vision):  # noqa: D102
        from mmlop.kernels.prompt_expand import expand_bwd_kernel

        u_t, v_t, u_v, v_v = ctx.saved_tensors
        has_t, has_v = u_t is not None, u_v is not None
        dims = _dims(u_t, v_t, u_v, v_v)
        ref = _placeholder(u_t, u_v)
        # Autograd materialises a missing output gradient as zeros, so both are tensors when present.
        dp_t = dp_text.contiguous() if has_t else None
        dp_v = dp_vision.contiguous() if has_v else None
        du_t = torch.empty_like(u_t) if has_t else None
        dv_t = torch.empty_like(v_t) if has_t else None
        du_v = torch.empty_like(u_v) if has_v and not ctx.shared else None
        dv_v = torch.empty_like(v_v) if has_v else None
        if ctx.shared:
            grid = (dims["L_T"],)
        else:
            grid = (max(dims["L_T"], dims["L_V"]), 2)
        if grid[0] > 0:
            expand_bwd_kernel[grid](
                _or(u_t, ref), _or(v_t, ref), _or(dp_t, ref), _or(du_t, ref), _or(dv_t, ref),
                _or(u_v, ref), _or(v_v, ref), _or(dp_v, ref), _or(du_v, ref), _or(dv_v, ref),
                dims["L_T"], dims["T_T"], dims["D_T"], dims["L_V"], dims["T_V"], dims["D_V"],
                HAS_T=has_t, HAS_V=has_v, SHARED=ctx.shared, R_T=dims["R_T"], R_V=dims["R_V"],
                BLOCK_T=dims["BLOCK_T"], BLOCK_R=dims["BLOCK_R"], BLOCK_D=_BLOCK_D,
            )
        return du_t, dv_t, du_v, dv_v, None


def _or(t: Tensor | None, fallback: Tensor) -> Tensor:
    return fallback if t is None else t


def _next_pow2(n: int, floor: int = 1) -> int:
    return max(floor, 1 << max(0, n - 1).bit_length())


def _dims(u_t: Tensor | None, v_t: Tensor | None, u_v: Tensor | None, v_v: Tensor | None) -> dict[str, int]:
    L_t, T_t, R_t = u_t.shape if u_t is not None else (0, 0, 1)
    L_v, T_v, R_v = u_v.shape if u_v is not None else (0, 0, 1)
    return {
        "L_T": L_t, "T_T": T_t, "R_T": R_t, "D_T": v_t.shape[2] if v_t is not None else 0,
        "L_V": L_v, "T_V": T_v, "R_V": R_v, "D_V": v_v.shape[2] if v_v is not None else 0,
        "BLOCK_T": _next_pow2(max(T_t, T_v)), "BLOCK_R": _next_pow2(max(R_t, R_v)),
    }


def expand_prompts(
    u_text: Tensor | None = None,
    v_text: Tensor | None = None,
    u_vision: Tensor | None = None,
    v_vision: Tensor | None = None,
) -> tuple[Tensor | None, Tensor | None]:
    """Expand every layer's text and vision prompts, with the fused Triton op when it applies.

    Same arguments, results and errors as :func:`expand_prompts_reference`. The low-rank modalities go through
    :class:`ExpandPromptsFunction` (one kernel launch for both, forward and backward) when
    :func:`mmlop.ops._dispatch.use_triton` says so; full-rank modalities are returned as given.

    Args:
        u_text: text up-projection (L_t, T, r) or None.
        v_text: text factors (L_t, r, d_t), full-rank text prompts (L_t, T, d_t), or None.
        u_vision: vision up-projection (L_v, V, r) or None; the same object as ``u_text`` when shared.
        v_vision: vision factors (L_v, r, d_v), full-rank vision prompts (L_v, V, d_v), or None.

    Returns:
        ``(P_text, P_vision)``, None for an absent modality.

    Raises:
        ValueError: on shapes, devices or dtypes that do not fit together, or a bad ``MMLOP_OPS`` value.
    """
    _check(u_text, v_text, u_vision, v_vision)
    low_t = u_text is not None
    low_v = u_vision is not None
    if not (low_t or low_v) or not use_triton(u_text, v_text if low_t else None, u_vision, v_vision if low_v else None):
        return expand_prompts_reference(u_text, v_text, u_vision, v_vision)
    shared = low_t and u_vision is u_text  # the one place sharing is read; the op and the kernel follow the flag
    p_t, p_v = ExpandPromptsFunction.apply(
        u_text, v_text if low_t else None, u_vision, v_vision if low_v else None, shared,
    )
    return (p_t if low_t else v_text), (p_v if low_v else v_vision)
