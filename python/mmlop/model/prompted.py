"""The MMLoP model: a frozen open_clip CLIP with trainable deep low-rank prompts in both towers."""

from __future__ import annotations

from typing import Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mmlop.config import PromptConfig
from mmlop.model import towers
from mmlop.model.factors import PromptFactors
from mmlop.model.factory import BaseCLIP

#: The placeholder word whose token positions the text prompts replace.
PLACEHOLDER = "X"


def class_prompt_text(classname: str, config: PromptConfig) -> str:
    """``"X X X X {name}."``: T placeholders, then the class name with underscores as spaces."""
    name = classname.replace("_", " ")
    return " ".join([PLACEHOLDER] * config.length) + " " + config.class_template.format(name)


class MMLoP(nn.Module):
    """A frozen open_clip model with deep prompts (method.md §2-3).

    Only ``self.prompts`` holds trainable parameters; the base stays frozen and in eval mode even when the module
    is put in training mode. With a depth-0 config (or ``prompted=False``) every encoder returns exactly what
    open_clip's ``encode_image``/``encode_text`` return.

    Args:
        base: The frozen base model (see :func:`mmlop.load_base`).
        config: Prompt configuration; defaults to MMLoP's (T = V = 4, rank 1, depth 9, shared U).
        generator: RNG for the prompt init.

    Raises:
        ValueError: if the depth exceeds a tower's number of blocks, or the tokenizer does not map the
            placeholder to one token.
    """

    def __init__(self, base: BaseCLIP, config: PromptConfig | None = None, *,
                 generator: torch.Generator | None = None):
        super().__init__()
        config = config or PromptConfig()
        self.base_info = base
        self.clip = base.model
        self.config = config
        self.text_tower = towers.TextTower.of(self.clip)
        self.visual = towers.check_vision_tower(self.clip)
        nt, nv = self.text_tower.layers, len(self.visual.transformer.resblocks)
        if config.text_depth > nt or config.vis_depth > nv:
            raise ValueError(f"prompt depth (text {config.text_depth}, vision {config.vis_depth}) exceeds the "
                             f"number of blocks of {base.name} (text {nt}, vision {nv})")
        for p in self.clip.parameters():
            p.requires_grad_(False)
        self._placeholder_id = self._single_token_id(PLACEHOLDER)
        ctx = self._ctx_init_embedding(config.ctx_init) if config.ctx_init else None
        self.prompts = PromptFactors(config, self.text_tower.width, int(self.visual.transformer.width),
                                     ctx_init_embedding=ctx, generator=generator)
        self.use_checkpoint = False
        self.truncate_text = True
        #: Prompted passes through the lean blocks (fused QuickGELU, pooled-token last block); see model/towers.py.
        self.lean_blocks = True
        #: Without ``use_checkpoint``, checkpoint the first this many text blocks while training (the lean
        #: default). Text blocks are the cheapest to recompute per byte saved (n <= 77 tokens, so no n^2 term):
        #: ViT-B/16 x 500 classes on a 2-core AMD EPYC, 6 of 12 text blocks: peak 4.03 vs 4.52 GiB, which brings
        #: the default under a quarter of the peers' 16.6 GiB (benchmarks/bench_train_step.py, mmlop-nockpt row).
        self.checkpoint_text_blocks = 6

    # nn.Module -----------------------------------------------------------------------------------------------
    def train(self, mode: bool = True) -> "MMLoP":
        super().train(mode)
        self.clip.eval()  # the base never trains: no dropout, frozen statistics
        return self

    def trainable_parameters(self) -> Iterator[nn.Parameter]:
        return (p for p in self.prompts.parameters() if p.requires_grad)

    def num_trainable_parameters(self) -> int:
        return sum(p.numel() for p in self.trainable_parameters())

    @property
    def logit_scale(self) -> float:
        """s = exp(logit_scale) of the base, frozen."""
        return float(self.clip.logit_scale.detach().exp().reshape(-1)[0])

    # Tokenisation --------------------------------------------------------------------------------------------
    def tokenize(self, texts: Sequence[str]) -> Tensor:
        """Token ids (N, context_length) of ``texts`` with the base's tokenizer, on the model's device."""
        return self.base_info.tokenizer(list(texts)).to(self.clip.logit_scale.device)

    def _single_token_id(self, word: str) -> int:
        ids = self.base_info.tokenizer([word])[0]
        eot = int(self.text_tower.eot_positions(ids[None])[0])
        body = ids[1:eot]
        if body.numel() != 1:
            raise ValueError(f"tokenizer of {self.base_info.name} splits the placeholder {word!r} into "
                             f"{body.numel()} tokens; text prompts need a one-token placeholder")
        return int(body[0])

    def _ctx_init_embedding(self, phrase: str) -> Tensor:
        ids = self.base_info.tokenizer([phrase])[0]
        t = self.config.length
        with torch.no_grad():
            return self.text_tower.token_embedding(ids[1:1 + t].to(self.clip.logit_scale.device)).float()

    def class_tokens(self, classnames: Sequence[str]) -> Tensor:
        """Token ids of ``"X X X X {name}."`` for each class, with placeholders checked at positions 1..T.

        Raises:
            ValueError: if a class name is so long that the prompt does not fit the context length.
        """
        tokens = self.tokenize([class_prompt_text(c, self.config) for c in classnames])  # (C, ctx)
        t = self.config.length
        ok = (tokens[:, 1:1 + t] == self._placeholder_id).all(dim=1)
        eot = self.text_tower.eot_positions(tokens)
        # The tokenizer truncates silently and puts EOT in the last slot: treat a full context as truncated.
        ok &= (eot > t) & (eot < tokens.shape[1] - 1)
        if not bool(ok.all()):
            bad = [classnames[i] for i in torch.nonzero(~ok).flatten().tolist()]
            raise ValueError(f"class prompt does not fit the text context ({self.text_tower.context_length} "
                             f"tokens) for {bad[:5]}")
        return tokens

    # Encoders ------------------------------------------------------------------------------------------------
    def prompt_tensors(self) -> tuple[Tensor | None, Tensor | None]:
        """Every layer's prompts, recomputed from the factors: ((L_t, T, d_t) | None, (L_v, V, d_v) | None)."""
        return self.prompts()

    def encode_image(self, images: Tensor, *, prompted: bool = True, normalize: bool = False,
                     vision_prompts: Tensor | None = None) -> Tensor:
        """Image features (B, D).

        Args:
            images: (B, 3, H, W) normalised images.
            prompted: False runs the frozen encoder (zero-shot features f_0).
            normalize: L2-normalise the output.
            vision_prompts: precomputed (L_v, V, d_v) prompts (from :meth:`prompt_tensors`), to expand once per step.
        """
        p = None
        if prompted and self.config.vis_depth > 0:
            p = vision_prompts if vision_prompts is not None else self.prompt_tensors()[1]
        x = towers.encode_image(self.visual, images, p, use_checkpoint=self.use_checkpoint, lean=self.lean_blocks)
        return F.normalize(x, dim=-1) if normalize else x

    def encode_text(self, tokens: Tensor, *, prompted: bool = True, normalize: bool = False,
                    text_prompts: Tensor | None = None, truncate: bool | None = None) -> Tensor:
        """Text features (C, D) of token ids; prompted tokens must come from :meth:`class_tokens`.

        Args:
            tokens: (C, context_length) ids.
            prompted: False runs the frozen encoder.
            normalize: L2-normalise the output.
            text_prompts: precomputed (L_t, T, d_t) prompts.
            truncate: run only up to the last end-of-text position (default: ``self.truncate_text``).
        """
        p = None
        if prompted and self.config.text_depth > 0:
            p = text_prompts if text_prompts is not None else self.prompt_tensors()[0]
        x = towers.encode_text(self.text_tower, tokens, p,
                               truncate=self.truncate_text if truncate is None else truncate,
                               use_checkpoint=self.use_checkpoint, lean=self.lean_blocks,
                               checkpoint_blocks=self.checkpoint_text_blocks)
        return F.normalize(x, dim=-1) if normalize else x

    def class_text_features(self, classnames: Sequence[str] | None = None, *, text_prompts: Tensor | None = None,
                            chunk_size: int = 0, tokens: Tensor | None = None) -> Tensor:
        """Raw prompted text features (C, D) of the class prompts, in length buckets.

        The classes are grouped by end-of-text position and each group is encoded truncated to its own length,
        so no pass runs padding tokens (exact like single truncation: the causal mask makes later tokens
        irrelevant to the pooled one). ImageNet's 1000 class names: 49 % fewer tokens than truncating all to the
        longest (benchmarks/bench_text_truncation.py).
        ``chunk_size`` further splits a group to bound activation memory; gradients still reach the prompts
        through every pass. The result is in the order of ``classnames`` (or ``tokens``).

        Args:
            classnames: The class names (ignored when ``tokens`` is given).
            text_prompts: Precomputed (L_t, T, d_t) prompts (default: expanded from the factors).
            chunk_size: Most classes per encoder pass (0 = a whole length group).
            tokens: (C, context_length) ids from :meth:`class_tokens`, to skip tokenisation.

        Returns:
            (C, D) projected, unnormalised features.

        Raises:
            ValueError: if neither ``classnames`` nor ``tokens`` is given, or a class prompt does not fit.
        """
        if tokens is None:
            if classnames is None:
                raise ValueError("class_text_features needs classnames or tokens")
            tokens = self.class_tokens(classnames)
        if text_prompts is None and self.config.text_depth > 0:
            text_prompts = self.prompt_tensors()[0]
        parts, order = [], []
        for idx in length_buckets(self.text_tower.eot_positions(tokens), chunk_size):
            parts.append(self.encode_text(tokens[idx], text_prompts=text_prompts, truncate=True))  # (c, D)
            order.append(idx)
        inverse = torch.argsort(torch.cat(order))
        return torch.cat(parts)[inverse]  # (C, D), back in the callers' class order


def length_buckets(eot: Tensor, chunk_size: int = 0) -> list[Tensor]:
    """Indices of the classes grouped by end-of-text position, shortest first, each group split into chunks.

    Args:
        eot: (C,) end-of-text position of each class prompt.
        chunk_size: Most indices per group (0 = no limit).

    Returns:
        (c,) index tensors that together hold every class once.
    """
    order = torch.argsort(eot, stable=True)
    lengths, counts = torch.unique_consecutive(eot[order], return_counts=True)
    groups = order.split(counts.tolist())
    if chunk_size > 0:
        groups = [c for g in groups for c in g.split(chunk_size)]
    return list(groups)
