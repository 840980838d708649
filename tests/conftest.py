"""Test configuration: offline, CPU, Triton interpreter.

TRITON_INTERPRET must be set before anything imports triton (``import open_clip`` does), so it is set here,
at the top of the root conftest, before any test module is imported.
"""

import os

os.environ.setdefault("TRITON_INTERPRET", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))

import open_clip  # noqa: E402  (after TRITON_INTERPRET is set)
import pytest  # noqa: E402

from mmlop.model import base_from_model  # noqa: E402

TINY_VISION = dict(image_size=32, patch_size=8, width=48, layers=3, head_width=16)
TINY_TEXT = dict(context_length=77, vocab_size=49408, width=32, heads=2, layers=3)


def make_tiny_clip(custom_text: bool = False, seed: int = 0, **vision_overrides):
    """A tiny randomly initialised open_clip model (no download): ViT 32 px / patch 8, 3 + 3 blocks."""
    torch.manual_seed(seed)
    cls = open_clip.model.CustomTextCLIP if custom_text else open_clip.model.CLIP
    return cls(embed_dim=24, vision_cfg={**TINY_VISION, **vision_overrides}, text_cfg=dict(TINY_TEXT))


@pytest.fixture(scope="session")
def tokenizer():
    return open_clip.get_tokenizer("ViT-B-16")


@pytest.fixture
def tiny_base(tokenizer):
    """A fresh frozen tiny base per test (tests may train prompts on it)."""
    return base_from_model(make_tiny_clip(), tokenizer, "tiny-test")


@pytest.fixture
def tiny_custom_base(tokenizer):
    return base_from_model(make_tiny_clip(custom_text=True), tokenizer, "tiny-test-custom")
