"""Test configuration: offline, CPU, Triton interpreter.

TRITON_INTERPRET must be set before anything imports triton (``import open_clip`` does), so it is set here,
at the top of the root conftest, before any test module is imported.
"""

import os

os.environ.setdefault("TRITON_INTERPRET", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
# The built-in world suite is generated under MMLOP_HOME; keep it out of the user's home during tests.
os.environ.setdefault("MMLOP_HOME", __import__("tempfile").mkdtemp(prefix="mmlop-test-home-"))

import torch  # noqa: E402

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))

import open_clip  # noqa: E402  (after TRITON_INTERPRET is set)
import pytest  # noqa: E402

from mmlop.model import base_from_model  # noqa: E402

from tiny_models import make_tiny_clip  # noqa: E402


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
