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
    # ln_1 sees each block's whole sequence on both paths (the pooled last block still takes keys from all).
    seen, handles = _record_seq_lengths([b.ln_1 for b in blocks])
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


LEAN_CASES = [pytest.param(c, q, id=f"{'custom' if c else 'clip'}-{'quickgelu' if q else 'gelu'}")
              for c in (False, True) for q in (True, False)]


def _features_and_grads(model, images, tokens):
    model.prompts.zero_grad(set_to_none=True)
    p_text, p_vision = model.prompt_tensors()
    img = model.encode_image(images, vision_prompts=p_vision)
    txt = model.encode_text(tokens, text_prompts=p_text)
    g = torch.Generator().manual_seed(3)
    ((img * torch.randn(img.shape, generator=g)).sum() + (txt * torch.randn(txt.shape, generator=g)).sum()).backward()
    return img.detach(), txt.detach(), {n: p.grad.clone() for n, p in model.prompts.named_parameters()}


@pytest.mark.parametrize("custom,quick", LEAN_CASES)
@pytest.mark.parametrize("depth", [1, 3])  # 3 = every block prompted, so the last block gets prompt slots too
def test_lean_blocks_equal_open_clip_blocks_to_fp32_rounding(tokenizer, custom, quick, depth):
    base = base_from_model(make_tiny_clip(custom_text=custom, quick_gelu=quick), tokenizer, "tiny")
    model = MMLoP(base, PromptConfig(depth=depth, init_std=0.5), generator=torch.Generator().manual_seed(0))
    images = torch.randn(3, 3, 32, 32)
    tokens = model.class_tokens(CLASSES)  # mixed end-of-text positions: the pooled rows need their own mask rows
    model.lean_blocks = False
    ref = _features_and_grads(model, images, tokens)
    model.lean_blocks = True
    got = _features_and_grads(model, images, tokens)
    # fp32 rounding only: the pooled rows are computed by (1, d) instead of (n, d) products.
    torch.testing.assert_close(got[0], ref[0], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(got[1], ref[1], rtol=1e-5, atol=1e-6)
    for name, g in ref[2].items():
        # Gradients sum rounding over every token: bound the error relative to the gradient's largest entry.
        err = (got[2][name] - g).abs().max().item()
        assert err <= 1e-5 * g.abs().max().item(), f"d{name}: {err:.3g} vs max {g.abs().max().item():.3g}"


@pytest.mark.parametrize("custom,quick", LEAN_CASES)
def test_lean_path_runs_pooled_last_block_and_fused_quick_gelu_only_with_prompts(tokenizer, monkeypatch, custom,
                                                                                 quick):
    from mmlop.model import towers

    calls = {"pooled": 0, "quick_gelu": 0}
    real_pooled, real_gelu = towers._pooled_block, towers.quick_gelu

    def pooled(*a):
        calls["pooled"] += 1
        return real_pooled(*a)

    def gelu(x):
        calls["quick_gelu"] += 1
        return real_gelu(x)

    monkeypatch.setattr(towers, "_pooled_block", pooled)
    monkeypatch.setattr(towers, "quick_gelu", gelu)
    base = base_from_model(make_tiny_clip(custom_text=custom, quick_gelu=quick), tokenizer, "tiny")
    model = MMLoP(base, PromptConfig(depth=2))
    images, tokens = torch.randn(2, 3, 32, 32), model.class_tokens(CLASSES)
    with torch.no_grad():
        assert torch.equal(model.encode_image(images, prompted=False), base.model.encode_image(images))
        assert calls == {"pooled": 0, "quick_gelu": 0}
        model.encode_image(images)
        model.encode_text(tokens)
    assert calls == {"pooled": 2, "quick_gelu": 6 if quick else 0}  # 3 blocks per tower, the last one pooled


@pytest.mark.parametrize("custom", [False, True])
def test_length_buckets_equal_single_truncation_in_class_order(tokenizer, custom):
    from mmlop.model.prompted import length_buckets

    base = base_from_model(make_tiny_clip(custom_text=custom, quick_gelu=True), tokenizer, "tiny")
    model = MMLoP(base, PromptConfig(depth=3, init_std=0.5), generator=torch.Generator().manual_seed(0))
    names = CLASSES + ["ox", "a b c", "cat", "sea lion"]
    tokens = model.class_tokens(names)
    eot = model.text_tower.eot_positions(tokens)
    for chunk in (0, 2):
        buckets = length_buckets(eot, chunk)
        assert sorted(torch.cat(buckets).tolist()) == list(range(len(names)))
        assert all(len(set(eot[b].tolist())) == 1 and (chunk == 0 or len(b) <= chunk) for b in buckets)
        with torch.no_grad():
            got = model.class_text_features(names, chunk_size=chunk)
            want = model.encode_text(tokens, truncate=True)
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)  # fp32 rounding: other product shapes
    assert len(length_buckets(eot)) == len(set(eot.tolist())) > 1


def test_only_the_first_text_blocks_are_recomputed_in_backward(tiny_base):
    model = MMLoP(tiny_base, PromptConfig(depth=3))
    model.checkpoint_text_blocks = 1
    blocks = model.text_tower.transformer.resblocks
    calls = [0] * len(blocks)
    handles = [b.ln_1.register_forward_hook(lambda m, a, o, i=i: calls.__setitem__(i, calls[i] + 1))
               for i, b in enumerate(blocks)]
    model.encode_text(model.class_tokens(CLASSES)).sum().backward()
    for h in handles:
        h.remove()
    assert calls == [2, 1, 1]  # block 0 ran again in backward; the others kept their activations
