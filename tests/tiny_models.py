"""Tiny open_clip models built in-process for tests (no downloads)."""

import open_clip
import torch

TINY_VISION = dict(image_size=32, patch_size=8, width=48, layers=3, head_width=16)
TINY_TEXT = dict(context_length=77, vocab_size=49408, width=32, heads=2, layers=3)


def make_tiny_clip(custom_text: bool = False, seed: int = 0, quick_gelu: bool = False, **vision_overrides):
    """A tiny randomly initialised open_clip model (no download): ViT 32 px / patch 8, 3 + 3 blocks; with
    ``quick_gelu`` its MLPs use QuickGELU, as OpenAI's weights need."""
    torch.manual_seed(seed)
    cls = open_clip.model.CustomTextCLIP if custom_text else open_clip.model.CLIP
    return cls(embed_dim=24, vision_cfg={**TINY_VISION, **vision_overrides}, text_cfg=dict(TINY_TEXT),
               quick_gelu=quick_gelu)
