"""Prompted forward passes through the towers of an unmodified open_clip model (method.md §2).

The functions here run open_clip's own modules (embeddings, blocks, norms, projections) in open_clip's order,
inserting prompts between blocks; with no prompts they reproduce ``encode_image``/``encode_text`` bit for bit.
Everything (widths, depths, context length) is read from the model.

This is the one module that touches open_clip internals: ``VisionTransformer._embeds`` (patch embedding, class
token, positions, patch dropout, ln_pre) and ``VisionTransformer._pool`` (ln_post and class-token pooling). They
are private, so pyproject.toml pins ``open_clip_torch<3.4`` (tested with 3.3.0), and
``tests/model/test_open_clip_contract.py`` fails with a message naming them if an open_clip release changes them.

The prompted passes take a lean path (``lean=True``, the default) that computes the same function with less
work and memory, exact up to float32 rounding: the MLPs of QuickGELU models go through the fused op that keeps
only its input for backward, and the last block computes its query, attention output and MLP for the pooled
token alone (ViT-B/16: 1/201 of the last image block's MLP). open_clip's modules are called, never modified.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from open_clip.transformer import QuickGELU, ResidualAttentionBlock, VisionTransformer, text_global_pool
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from mmlop.errors import UnsupportedModelError
from mmlop.ops.quick_gelu import quick_gelu


@dataclass(frozen=True)
class TextTower:
    """The text tower's modules, found on ``CLIP`` itself or under ``CustomTextCLIP.text``."""

    token_embedding: nn.Embedding
    positional_embedding: Tensor
    transformer: nn.Module
    ln_final: nn.Module
    text_projection: Tensor | nn.Linear | None
    attn_mask: Tensor
    pool_type: str
    eos_id: int | None

    @classmethod
    def of(cls, model: nn.Module) -> "TextTower":
        """Locate and validate the text tower of an open_clip ``CLIP`` or ``CustomTextCLIP``.

        Raises:
            UnsupportedModelError: for towers without a causal mask, with a class embedding, or with a pooling
                other than the end-of-text token.
        """
        owner = model.text if hasattr(model, "text") and not hasattr(model, "token_embedding") else model
        kind = type(model).__name__
        for attr in ("token_embedding", "positional_embedding", "transformer", "ln_final"):
            if not hasattr(owner, attr):
                raise UnsupportedModelError(f"{kind}: text tower has no '{attr}'; only open_clip's native "
                                            "transformer text tower is supported (not HF text encoders)")
        if getattr(owner, "cls_emb", None) is not None:
            raise UnsupportedModelError(f"{kind}: text tower appends a class embedding (CoCa-style); not supported")
        mask = getattr(owner, "attn_mask", None)
        if mask is None:
            raise UnsupportedModelError(f"{kind}: text tower has no causal attention mask; deep text prompts need "
                                        "causal attention")
        pool = getattr(owner, "text_pool_type", getattr(owner, "pool_type", None))
        if pool not in ("argmax", "eos"):
            raise UnsupportedModelError(f"{kind}: text pooling {pool!r} is not supported: prompts must not be "
                                        "pooled, so only end-of-text pooling ('argmax' or 'eos') works")
        if getattr(owner, "use_pad_mask", False):
            raise UnsupportedModelError(f"{kind}: text tower uses a padding mask; not supported")
        eos = getattr(owner, "text_eos_id", getattr(owner, "eos_id", None))
        return cls(owner.token_embedding, owner.positional_embedding, owner.transformer, owner.ln_final,
                   getattr(owner, "text_projection", None), mask, pool, eos)

    @property
    def width(self) -> int:
        return int(self.token_embedding.embedding_dim)

    @property
    def layers(self) -> int:
        return len(self.transformer.resblocks)

    @property
    def context_length(self) -> int:
        return int(self.positional_embedding.shape[0])

    def eot_positions(self, tokens: Tensor) -> Tensor:
        """Index of the pooled (end-of-text) token of each sequence, as open_clip's pooling computes it."""
        if self.pool_type == "argmax":
            return tokens.argmax(dim=-1)
        return (tokens == self.eos_id).int().argmax(dim=-1)


def check_vision_tower(model: nn.Module) -> VisionTransformer:
    """Return ``model.visual`` after checking that vision prompts can be appended to it.

    Raises:
        UnsupportedModelError: for non-ViT towers, average or attention pooling.
    """
    visual = getattr(model, "visual", None)
    kind = type(visual).__name__
    if not isinstance(visual, VisionTransformer):
        raise UnsupportedModelError(f"image tower {kind} is not an open_clip VisionTransformer; vision prompts "
                                    "need a ViT (ResNet and timm towers are not supported)")
    if getattr(visual, "attn_pool", None) is not None or visual.pool_type != "tok":
        raise UnsupportedModelError(f"VisionTransformer pooling {visual.pool_type!r} (attn_pool="
                                    f"{visual.attn_pool is not None}) would mix prompt tokens into the feature; "
                                    "only class-token pooling ('tok') is supported")
    return visual


def _set_slots(x: Tensor, prompt: Tensor, start: int, seq_dim: int) -> Tensor:
    """Return x with ``prompt`` (P, d) written at sequence positions [start, start+P) of every batch element.

    Concatenation rather than in-place writes keeps autograd simple; ``start`` may be negative (from the end).
    """
    n = x.shape[seq_dim]
    p = prompt.shape[0]
    start = start % n
    batch_dim = 1 - seq_dim
    shape = [0, 0, prompt.shape[1]]
    shape[seq_dim], shape[batch_dim] = p, x.shape[batch_dim]
    slots = prompt.to(x.dtype).unsqueeze(batch_dim).expand(*shape)
    head = x.narrow(seq_dim, 0, start)
    tail = x.narrow(seq_dim, start + p, n - start - p)
    return torch.cat([head, slots, tail], dim=seq_dim)


def _mlp(mlp: nn.Module, h: Tensor) -> Tensor:
    # open_clip's QuickGELU keeps three hidden-sized tensors for backward; the fused op keeps one (ops/quick_gelu).
    if isinstance(getattr(mlp, "gelu", None), QuickGELU) and hasattr(mlp, "c_fc") and hasattr(mlp, "c_proj"):
        return mlp.c_proj(quick_gelu(mlp.c_fc(h)))
    return mlp(h)


def _lean_supported(block: nn.Module) -> bool:
    """Whether mmlop may run ``block`` itself: open_clip's plain pre-norm block with one fused qkv projection."""
    attn = getattr(block, "attn", None)
    return (type(block) is ResidualAttentionBlock and not hasattr(block, "ln_1_kv")
            and isinstance(attn, nn.MultiheadAttention) and attn._qkv_same_embed_dim
            and attn.in_proj_weight is not None)


def _attention(attn: nn.MultiheadAttention, h: Tensor, index: Tensor | None, pooled: bool,
               mask: Tensor | None) -> Tensor:
    """Self-attention of ``attn`` on the batch-first (B, n, d) input ``h``, for every query or the pooled one.

    nn.MultiheadAttention transposes a batch-first input to (n, B, d) and projects the strided view, which
    torch cannot fold into one GEMM: it runs a batched matmul over a weight expanded n times (ViT-B/16 on a
    2-core AMD EPYC: half of a bf16 step went to those copies, see benchmarks/bench_train_step.py's profile).
    Here the projections are single GEMMs on contiguous rows. ``mask`` is (n, n), or (B, n) with ``pooled``.
    """
    b, n, d = h.shape
    heads = attn.num_heads
    w, bias = attn.in_proj_weight, attn.in_proj_bias
    if pooled:
        h_p = h[:, 0] if index is None else h[torch.arange(b, device=h.device), index]  # (B, d)
        q = F.linear(h_p, w[:d], None if bias is None else bias[:d]).view(b, heads, 1, d // heads)  # (B, H, 1, d/H)
        kv = F.linear(h, w[d:], None if bias is None else bias[d:])  # (B, n, 2d)
        k, v = kv.view(b, n, 2, heads, d // heads).permute(2, 0, 3, 1, 4).unbind(0)  # (B, H, n, d/H) each
        mask = None if mask is None else mask[:, None, None, :]  # (B, 1, 1, n)
    else:
        qkv = F.linear(h, w, bias)  # (B, n, 3d)
        q, k, v = qkv.view(b, n, 3, heads, d // heads).permute(2, 0, 3, 1, 4).unbind(0)  # (B, H, n, d/H) each
    o = F.scaled_dot_product_attention(q, k, v, attn_mask=None if mask is None else mask.to(q.dtype))
    o = o.transpose(1, 2).reshape(b, -1, d)  # (B, n or 1, d)
    return attn.out_proj(o)


def _lean_block(block: nn.Module, x: Tensor, attn_mask: Tensor | None) -> Tensor:
    """open_clip's ``ResidualAttentionBlock.forward`` (batch first) with contiguous projections and the MLP
    through the fused QuickGELU: the same function up to float rounding."""
    x = x + block.ls_1(_attention(block.attn, block.ln_1(x), None, False, attn_mask))
    return x + block.ls_2(_mlp(block.mlp, block.ln_2(x)))


def _pooled_block(block: nn.Module, x: Tensor, index: Tensor | None, key_mask: Tensor | None) -> Tensor:
    """The last block for the pooled token alone: (B, n, d) -> (B, d), batch first.

    Keys and values come from every token; the query, the attention output, the residuals and the MLP only from
    the pooled token ``x[b, index[b]]`` (token 0 when ``index`` is None). Nothing else of the last block reaches
    the output, so this equals the full block at that token up to float rounding, at about 1/n of its MLP and
    projection cost. ``key_mask`` (B, n) is the additive attention mask of each pooled query's row, or None.
    """
    x_p = x[:, 0] if index is None else x[torch.arange(x.shape[0], device=x.device), index]  # (B, d)
    y = x_p + block.ls_1(_attention(block.attn, block.ln_1(x), index, True, key_mask)[:, 0])  # (B, d)
    return y + block.ls_2(_mlp(block.mlp, block.ln_2(y)))


def _run_block(fn: Callable[..., Tensor], x: Tensor, use_checkpoint: bool, *args) -> Tensor:
    if use_checkpoint and torch.is_grad_enabled():
        return checkpoint(fn, x, *args, use_reentrant=False)
    return fn(x, *args)


def _run_blocks(transformer: nn.Module, x: Tensor, mask: Tensor | None, prompts: Tensor | None, start: int,
                use_checkpoint: bool, last: Callable[[nn.Module, Tensor], Tensor] | None = None,
                checkpoint_first: int = 0) -> Tensor:
    """Run every residual block; before block i (1 <= i < L) the prompt slots are overwritten with prompt i.

    Blocks are checkpointed (recomputed in backward) with ``use_checkpoint``, else the first ``checkpoint_first``.

    With ``last`` the blocks are run through :func:`_lean_block` and the final block is ``last(block, x)`` on the
    batch-first sequence, whose result is returned as is (the pooled-token path); otherwise open_clip's own
    block modules run and the full (B, n, d) sequence is returned.
    """
    # The lean blocks run batch first whatever the transformer's own layout.
    batch_first = getattr(transformer, "batch_first", True) or last is not None
    seq_dim = 1 if batch_first else 0
    if not batch_first:
        x = x.transpose(0, 1)  # NLD -> LND, as open_clip's Transformer.forward does
    depth = 0 if prompts is None else prompts.shape[0]
    checkpointing = use_checkpoint or getattr(transformer, "grad_checkpointing", False)
    blocks = transformer.resblocks
    for i, block in enumerate(blocks):
        if 1 <= i < depth:
            x = _set_slots(x, prompts[i], start, seq_dim)
        ckpt = checkpointing or i < checkpoint_first
        if last is not None and i == len(blocks) - 1:
            return _run_block(functools.partial(last, block), x, ckpt)
        if last is not None:
            x = _run_block(functools.partial(_lean_block, block), x, ckpt, mask)
        else:
            x = _run_block(functools.partial(block, attn_mask=mask), x, ckpt)
    if not batch_first:
        x = x.transpose(0, 1)
    return x


def _lean_path(transformer: nn.Module, prompts: Tensor | None, lean: bool) -> bool:
    # The frozen encoders (no prompts) keep open_clip's exact modules, so they stay bit-identical to open_clip.
    if not lean or prompts is None or prompts.shape[0] == 0:
        return False
    return all(_lean_supported(b) for b in transformer.resblocks)


def encode_text(tower: TextTower, tokens: Tensor, prompts: Tensor | None = None, *, truncate: bool = True,
                use_checkpoint: bool = False, lean: bool = True, checkpoint_blocks: int = 0) -> Tensor:
    """Text features with deep prompts replacing the placeholder tokens 1..T (method.md §2.1).

    Args:
        tower: The text tower.
        tokens: (C, context_length) token ids whose positions 1..T hold placeholders when prompts are given.
        prompts: (L, T, d_t) prompts of layers 1..L, or None for the frozen encoder.
        truncate: Run only up to the longest end-of-text position of ``tokens``. Exact up to fp32 rounding:
            the causal mask makes every later token irrelevant to the pooled one.
        use_checkpoint: Gradient checkpointing of each block.
        lean: With prompts, run the blocks with the fused QuickGELU and the last block for the end-of-text token
            only (exact up to fp32 rounding). Without prompts open_clip's own blocks always run.
        checkpoint_blocks: Checkpoint only the first this many blocks (when ``use_checkpoint`` is False).

    Returns:
        (C, D) projected, unnormalised features.
    """
    if truncate:
        n = int(tower.eot_positions(tokens).max()) + 1
        tokens = tokens[:, :n]  # (C, n)
    n = tokens.shape[1]
    cast_dtype = tower.transformer.get_cast_dtype()
    x = tower.token_embedding(tokens).to(cast_dtype)  # (C, n, d_t)
    if prompts is not None and prompts.shape[0] > 0:
        # Layer-1 prompts go in before the positional embedding, so they receive positions 1..T.
        x = _set_slots(x, prompts[0], 1, 1)
    x = x + tower.positional_embedding[:n].to(cast_dtype)
    mask = tower.attn_mask if n == tower.attn_mask.shape[0] else tower.attn_mask[:n, :n]
    if _lean_path(tower.transformer, prompts, lean):
        eot = tower.eot_positions(tokens)  # (C,)
        # A row whose end-of-text token is the last position sees every key: no mask needed (length buckets).
        key_mask = None if bool((eot == n - 1).all()) else mask[eot]  # (C, n)
        x = _run_blocks(tower.transformer, x, mask, prompts, 1, use_checkpoint,
                        last=lambda block, h: _pooled_block(block, h, eot, key_mask),
                        checkpoint_first=checkpoint_blocks)  # (C, d_t)
        x = tower.ln_final(x)
    else:
        x = _run_blocks(tower.transformer, x, mask, prompts, 1, use_checkpoint, checkpoint_first=checkpoint_blocks)
        x = tower.ln_final(x)
        x = text_global_pool(x, tokens, tower.pool_type, eos_token_id=tower.eos_id)  # (C, d_t)
    proj = tower.text_projection
    if proj is not None:
        x = proj(x) if isinstance(proj, nn.Linear) else x @ proj
    return x


def encode_image(visual: VisionTransformer, images: Tensor, prompts: Tensor | None = None, *,
                 use_checkpoint: bool = False, lean: bool = True) -> Tensor:
    """Image features with deep prompts appended after the patch tokens (method.md §2.2).

    Args:
        visual: An open_clip VisionTransformer with class-token pooling.
        images: (B, 3, H, W) normalised images.
        prompts: (L, V, d_v) prompts of layers 1..L, or None for the frozen encoder.
        use_checkpoint: Gradient checkpointing of each block.
        lean: With prompts, run the blocks with the fused QuickGELU and the last block for the class token only
            (exact up to fp32 rounding). Without prompts open_clip's own blocks always run.

    Returns:
        (B, D) projected, unnormalised features.
    """
    x = visual._embeds(images)  # (B, 1+M, d_v): patches, CLS, positions, patch dropout, ln_pre
    if prompts is not None and prompts.shape[0] > 0:
        p1 = visual.ln_pre(prompts[0].to(x.dtype))  # no positional embedding for vision prompts
        x = torch.cat([x, p1.unsqueeze(0).expand(x.shape[0], -1, -1)], dim=1)  # (B, 1+M+V, d_v)
    v = 0 if prompts is None else prompts.shape[1]
    if _lean_path(visual.transformer, prompts, lean):
        cls = _run_blocks(visual.transformer, x, None, prompts, -v if v else 0, use_checkpoint,
                          last=lambda block, h: _pooled_block(block, h, None, None))  # (B, d_v)
        pooled = visual.ln_post(cls)  # 'tok' pooling: ln_post of token 0, before or after pooling alike
    else:
        x = _run_blocks(visual.transformer, x, None, prompts, -v if v else 0, use_checkpoint)
        pooled, _ = visual._pool(x)  # ln_post + token 0 (CLS); prompt tokens are not pooled
    if visual.proj is not None:
        pooled = pooled @ visual.proj
    return pooled
