"""The trainable prompt factors (method.md §3).

Per prompted layer l, low-rank prompts are ``P_t = U_t V_t`` (T x d_t) and ``P_v = U_v V_v`` (V x d_v); with a
shared up-projection ``U_t`` and ``U_v`` are one tensor. Full-rank prompts are stored directly. The products
are recomputed on every forward call through :func:`mmlop.ops.prompt_expand.expand_prompts` (fused on GPU), so
gradients always reach the factors.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from mmlop.config import PromptConfig
from mmlop.ops.prompt_expand import expand_prompts


class PromptFactors(nn.Module):
    """All trainable tensors of one prompt configuration, in fp32.

    Parameter names (also the keys of the saved safetensors file):

    - low rank, shared U: ``up`` (L, T, r), ``text`` (L, r, d_t), ``vision`` (L, r, d_v)
    - low rank, independent: ``up_text`` (L_t, T, r), ``up_vision`` (L_v, V, r), ``text``, ``vision``
    - full rank: ``text`` (L_t, T, d_t), ``vision`` (L_v, V, d_v)

    A modality with depth 0 has no tensors.

    Args:
        config: The prompt configuration.
        text_width: d_t, width of the text transformer.
        vision_width: d_v, width of the vision transformer.
        ctx_init_embedding: for ``config.ctx_init``, the (T, d_t) token embeddings of the init phrase.
        generator: RNG for the N(0, std^2) init (reproducible prompts for a seed).
    """

    def __init__(self, config: PromptConfig, text_width: int, vision_width: int, *,
                 ctx_init_embedding: Tensor | None = None, generator: torch.Generator | None = None):
        super().__init__()
        self.config = config
        self.text_width, self.vision_width = text_width, vision_width
        c, r, std = config, config.rank, config.init_std

        def param(*shape: int) -> nn.Parameter:
            return nn.Parameter(torch.randn(*shape, generator=generator, dtype=torch.float32) * std)

        lt, lv, t, v = c.text_depth, c.vis_depth, c.length, c.vis_length
        if r is None:
            if lt:
                self.text = param(lt, t, text_width)
                if ctx_init_embedding is not None:
                    if tuple(ctx_init_embedding.shape) != (t, text_width):
                        raise ValueError(f"ctx_init_embedding has shape {tuple(ctx_init_embedding.shape)}, "
                                         f"expected ({t}, {text_width})")
                    with torch.no_grad():
                        self.text[0].copy_(ctx_init_embedding.float())
            if lv:
                self.vision = param(lv, v, vision_width)
            return
        if c.is_shared:
            self.up = param(lt, t, r)
        else:
            if lt:
                self.up_text = param(lt, t, r)
            if lv:
                self.up_vision = param(lv, v, r)
        if lt:
            self.text = param(lt, r, text_width)
        if lv:
            self.vision = param(lv, r, vision_width)

    def forward(self) -> tuple[Tensor | None, Tensor | None]:
        """Expand the factors into every layer's prompts.

        Returns:
            ``(p_text, p_vision)``: (L_t, T, d_t) and (L_v, V, d_v) fp32 tensors, or None for a modality
            without prompts.
        """
        u_text, u_vision = self.up_projections()
        return expand_prompts(u_text, getattr(self, "text", None), u_vision, getattr(self, "vision", None))

    def up_projections(self) -> tuple[Tensor | None, Tensor | None]:
        """``(U_t, U_v)``: the one shared tensor twice, each modality's own, or None for a full-rank or absent
        modality. The configuration decides sharing here; the ops read it from ``U_v is U_t``."""
        if self.config.rank is None:
            return None, None
        if self.config.is_shared:
            return self.up, self.up
        return getattr(self, "up_text", None), getattr(self, "up_vision", None)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())
