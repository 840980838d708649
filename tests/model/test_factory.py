import json

import pytest
import torch

from mmlop.model import MMLoP, QuickGeluMismatchError, load_base
from mmlop.model.factory import resolve_quick_gelu


def test_openai_weights_get_quick_gelu_and_refuse_plain_gelu():
    assert resolve_quick_gelu("ViT-B-16", "openai", None) is True
    assert resolve_quick_gelu("ViT-B-16-quickgelu", "openai", None) is True
    with pytest.raises(QuickGeluMismatchError, match="trained with QuickGELU.*ViT-B-16-quickgelu"):
        resolve_quick_gelu("ViT-B-16", "openai", False)


def test_laion_weights_use_gelu():
    assert resolve_quick_gelu("ViT-B-16", "laion2b_s34b_b88k", None) is False
    with pytest.raises(QuickGeluMismatchError, match="trained with GELU"):
        resolve_quick_gelu("ViT-B-16", "laion2b_s34b_b88k", True)


def test_random_init_follows_the_config():
    assert resolve_quick_gelu("ViT-B-16", None, None) is False
    assert resolve_quick_gelu("ViT-B-16-quickgelu", None, None) is True


def test_load_base_from_a_custom_json_config(tmp_path):
    cfg = {"embed_dim": 16, "quick_gelu": True,
           "vision_cfg": {"image_size": 32, "patch_size": 16, "width": 32, "layers": 2, "head_width": 16},
           "text_cfg": {"context_length": 32, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 2}}
    path = tmp_path / "my-tiny.json"
    path.write_text(json.dumps(cfg))
    base = load_base(str(path))
    info = base.describe()
    assert info["model"] == str(path) and info["text_width"] == 32 and info["context_length"] == 32
    assert base.quick_gelu and all(not p.requires_grad for p in base.model.parameters())
    model = MMLoP(base, __import__("mmlop.config", fromlist=["PromptConfig"]).PromptConfig(depth=2))
    assert model.encode_text(model.class_tokens(["cat", "dog"])).shape == (2, 16)
    assert model.encode_image(torch.randn(1, 3, 32, 32)).shape == (1, 16)


def test_bad_model_names_are_explained(tmp_path):
    with pytest.raises(ValueError, match="unknown model 'ViT-Q-99'"):
        load_base("ViT-Q-99")
    with pytest.raises(FileNotFoundError, match="missing.json: file not found; expected an open_clip model JSON"):
        load_base(str(tmp_path / "missing.json"))
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"embed_dim": 8}))
    with pytest.raises(ValueError, match=r"lacks \['vision_cfg', 'text_cfg'\]"):
        load_base(str(bad))
