"""Prompt expansion: every layer's text and vision prompts from their factors.

Placeholder reference implementation; the fused Triton op lands with the kernels change.
"""

from __future__ import annotations

from torch import Tensor


def expand_prompts_reference(v_text: Tensor | None, v_vision: Tensor | None, u_text: Tensor | None = None,
                             u_vision: Tensor | None = None) -> tuple[Tensor | None, Tensor | None]:
    """P = U @ V per layer for each modality; a modality without U is full rank (P = V)."""
    p_text = v_text if (v_text is None or u_text is None) else u_text @ v_text
    p_vision = v_vision if (v_vision is None or u_vision is None) else u_vision @ v_vision
    return p_text, p_vision


expand_prompts = expand_prompts_reference
