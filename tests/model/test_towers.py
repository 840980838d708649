"""Prompted towers: exact identity without prompts, slot placement, truncation, supported towers."""

import pytest
import torch

from tiny_models import make_tiny_clip
from mmlop.config import PromptConfig
from mmlop.model import MMLoP, UnsupportedModelError, base_from_model
from tolerances import assert_close_rel

CLASSES = ["cat", "dog", "red_panda", "a rather long class name with many words"]


@pytest.mark.parametrize("custom", [False, True])
def test_without_prompts_encoders_equal_open_clip_exactly(tokenizer, custom):
    base = base_from_model(make_tiny_clip(custom_text=custom), tokenizer, "tiny")
    for cfg in (PromptConfig.zero_shot(), PromptConfig(depth=2)):
        model = MMLoP(base, cfg)
        images = torch.randn(3, 3, 32, 32)
        tokens = tokenizer(["a photo of a cat.", "a dog", "x"])
        assert torch.equal(model.encode_image(images, prompted=False), base.model.encode_image(images))
        assert torch.equal(model.encode_text(tokens, prompted=False, truncate=False), base.model.encode_text(tokens))
        # A depth-0 model gives the frozen output even on the prompted path.
        if cfg.depth == 0:
            assert torch.equal(model.encode_image(images), base.model.encode_image(images))


@pytest.mark.parametrize("prompted", [False, True])
@pytest.mark.numerics
def test_text_truncation_equals_full_context_to_fp32_rounding(tiny_base, prompted):
    model = MMLoP(tiny_base, PromptConfig(depth=3, init_std=0.5))
    tokens = model.class_tokens(CLASSES)
    full = model.encode_text(tokens, prompted=prompted, truncate=False)
    short = model.encode_text(tokens, prompted=prompted, truncate=True)
    # A shorter sequence changes the attention/GEMM shapes, so only summation order differs, through 3 float32 blocks
    # of one forward pass: 1e-5 relative to the largest entry (measured ~1e-7).
    assert_close_rel(short, full, 1e-5, "truncated text features")
    assert not torch.equal(model.encode_text(tokens, prompted=True), model.encode_text(tokens, prompted=False))


def test_text_placeholders_sit_at_positions_1_to_T_and_eot_is_unchanged(tiny_base):
    for t in (1, 4, 8):
        model = MMLoP(tiny_base, PromptConfig(length=t, depth=1))
        tokens = model.class_tokens(CLASSES)
        x_id = tiny_base.tokenizer(["X"])[0, 1]
        assert (tokens[:, 1:1 + t] == x_id).all()
        assert (tokens[:, 1 + t] != x_id).all()
        plain = tiny_base.tokenizer([c.replace("_", " ") + "." for c in CLASSES])
        assert torch.equal(tokens.argmax(-1), plain.argmax(-1) + t)


def _record_seq_lengths(blocks):
    seen = []
    handles = [b.register_forward_pre_hook(lambda m, args: seen.append(args[0].shape[1])) for b in blocks]
    return seen, handles


def test_vision_sequence_carries_prompts_through_every_block(tiny_base):
    model = MMLoP(tiny_base, PromptConfig(depth=2, length=3))
    blocks = model.visual.transformer.resblocks
    seen, handles = _record_seq_lengths(blocks)
    model.encode_image(torch.randn(2, 3, 32, 32))
    for h in handles:
        h.remove()
    m = (32 // 8) ** 2
    assert seen == [1 + m + 3] * len(blocks)


def test_only_layers_up_to_depth_are_prompted(tiny_base):
    """Changing the prompt of a layer l <= L changes the output; the sequence beyond L is carried as is."""
    torch.manual_seed(0)
    model = MMLoP(tiny_base, PromptConfig(depth=2, init_std=0.5))
    images = torch.randn(2, 3, 32, 32)
    tokens = model.class_tokens(CLASSES)
    ref_i, ref_t = model.encode_image(images), model.encode_text(tokens)
    for layer in range(2):
        with torch.no_grad():
            saved = model.prompts.text[layer].clone(), model.prompts.vision[layer].clone()
            model.prompts.text[layer].add_(torch.randn_like(saved[0]))
            model.prompts.vision[layer].add_(torch.randn_like(saved[1]))  # not a constant: ln_pre removes shifts
        assert not torch.allclose(model.encode_image(images), ref_i)
        assert not torch.allclose(model.encode_text(tokens), ref_t)
        with torch.no_grad():
            model.prompts.text[layer].copy_(saved[0])
            model.prompts.vision[layer].copy_(saved[1])
    # A deeper model whose extra layer's prompt is replaced shows that replacement happens before block L-1 only.
    deep = MMLoP(tiny_base, PromptConfig(depth=3, init_std=0.5))
    p_text, p_vision = deep.prompt_tensors()
    a = deep.encode_image(images, vision_prompts=p_vision)
    b = deep.encode_image(images, vision_prompts=p_vision[:2])  # depth 2: slot values carried into block 2
    assert not torch.allclose(a, b)


def test_depth_beyond_tower_is_rejected(tiny_base):
    with pytest.raises(ValueError, match="exceeds the number of blocks"):
        MMLoP(tiny_base, PromptConfig(depth=4))


def test_unsupported_towers_are_rejected(tokenizer):
    with pytest.raises(UnsupportedModelError, match="class-token pooling"):
        base_from_model(make_tiny_clip(pool_type="avg"), tokenizer, "tiny-avg")
    model = make_tiny_clip()
    model.text_pool_type = "last"
    with pytest.raises(UnsupportedModelError, match="pooling 'last'"):
        base_from_model(model, tokenizer, "tiny-last")


def test_class_prompt_that_does_not_fit_is_reported(tiny_base):
    model = MMLoP(tiny_base, PromptConfig(depth=1))
    with pytest.raises(ValueError, match="does not fit the text context"):
        model.class_tokens(["word " * 80])
