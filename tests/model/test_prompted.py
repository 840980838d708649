"""The prompted model: frozen base, gradients, parameter counts on real architectures, init variants."""

import open_clip
import pytest
import torch

from mmlop.config import LossConfig, PromptConfig
from mmlop.model import MMLoP, base_from_model
from mmlop.model.factors import PromptFactors
from mmlop.model.teacher import frozen_text_features
from mmlop.training.loop import TrainStep
from tolerances import assert_close_rel

CLASSES = ["cat", "dog", "bird", "fish"]


def training_step(model, images, labels, classnames, opt):
    g0 = frozen_text_features(model, classnames, ["a photo of a {}.", "a {}."])
    step = TrainStep(model, model.class_tokens(classnames), g0, LossConfig())
    with torch.no_grad():
        f0 = model.encode_image(images, prompted=False, normalize=True)
    loss = step(images, labels, f0)
    opt.zero_grad()
    loss.total.backward()
    opt.step()
    return loss


def test_training_step_leaves_base_bit_identical_and_moves_prompts(tiny_base):
    model = MMLoP(tiny_base, PromptConfig(depth=3))
    before = {k: v.clone() for k, v in tiny_base.model.state_dict().items()}
    prompts_before = {k: v.clone() for k, v in model.prompts.state_dict().items()}
    assert all(not p.requires_grad for p in tiny_base.model.parameters())
    opt = torch.optim.SGD(model.trainable_parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    model.train()
    assert not tiny_base.model.training  # the base never leaves eval mode
    images, labels = torch.randn(4, 3, 32, 32), torch.tensor([0, 1, 2, 3])
    for _ in range(2):
        training_step(model, images, labels, CLASSES, opt)
    after = tiny_base.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert all(p.grad is None for p in tiny_base.model.parameters())
    assert all(not torch.equal(prompts_before[k], v) for k, v in model.prompts.state_dict().items())


@pytest.mark.parametrize("config", [PromptConfig(depth=3), PromptConfig(depth=3, shared_up=False),
                                    PromptConfig(depth=3, rank=None, shared_up=False), PromptConfig(depth=2, rank=2)])
def test_gradients_reach_every_factor_of_every_layer(tiny_base, config):
    model = MMLoP(tiny_base, config)
    images, labels = torch.randn(4, 3, 32, 32), torch.tensor([0, 1, 2, 3])
    training_step(model, images, labels, CLASSES, torch.optim.SGD(model.trainable_parameters(), lr=0.0))
    for name, p in model.prompts.named_parameters():
        assert p.grad is not None, name
        per_layer = p.grad.flatten(1).abs().sum(dim=1)
        assert (per_layer > 0).all(), f"{name}: layers without gradient {per_layer}"


def test_shared_up_projection_is_one_tensor_used_by_both_modalities(tiny_base):
    model = MMLoP(tiny_base, PromptConfig(depth=2))
    names = dict(model.prompts.named_parameters())
    assert set(names) == {"up", "text", "vision"}
    p_text, p_vision = model.prompt_tensors()
    # Rank 1: every entry is one float32 product on both paths, rounded once, so they are equal bit for bit.
    assert torch.equal(p_text, names["up"] @ names["text"])
    assert torch.equal(p_vision, names["up"] @ names["vision"])


def test_init_matches_the_spec_distribution():
    torch.manual_seed(0)
    factors = PromptFactors(PromptConfig(), 512, 768)
    for p in factors.parameters():
        assert p.dtype == torch.float32
        assert abs(p.std().item() - 0.05) < 0.01 and abs(p.mean().item()) < 0.01


def test_ivlp_text_layer_one_starts_from_a_photo_of_a(tiny_base):
    model = MMLoP(tiny_base, PromptConfig.ivlp(depth=2))
    ids = tiny_base.tokenizer(["a photo of a"])[0, 1:5]
    expected = tiny_base.model.token_embedding(ids)
    assert torch.equal(model.prompts.text[0], expected)
    # A sample std of 3 * 4 * 48 = 576 normal draws: its standard error is ~3 %, so 30 % is a 10-sigma band.
    assert model.prompts.vision.std().item() == pytest.approx(0.02, rel=0.3)


def test_coop_has_text_prompts_only(tiny_base):
    model = MMLoP(tiny_base, PromptConfig.coop(16))
    p_text, p_vision = model.prompt_tensors()
    assert p_vision is None and p_text.shape == (1, 16, 32)
    images = torch.randn(2, 3, 32, 32)
    assert torch.equal(model.encode_image(images), tiny_base.model.encode_image(images))


@pytest.mark.slow
def test_vit_b16_parameter_counts_and_identity():
    """The real ViT-B/16 architecture (random weights, no download)."""
    torch.manual_seed(0)
    clip = open_clip.create_model("ViT-B-16")
    base = base_from_model(clip, open_clip.get_tokenizer("ViT-B-16"), "ViT-B-16")
    model = MMLoP(base)
    assert model.num_trainable_parameters() == 11_556
    assert sum(p.numel() for p in model.parameters() if p.requires_grad) == 11_556
    assert MMLoP(base, PromptConfig.ivlp()).num_trainable_parameters() == 46_080
    assert MMLoP(base, PromptConfig(depth=3)).num_trainable_parameters() == 3_852
    images = torch.randn(1, 3, 224, 224)
    tokens = base.tokenizer(["a photo of a dog."])
    with torch.no_grad():
        assert torch.equal(model.encode_image(images, prompted=False), clip.encode_image(images))
        assert torch.equal(model.encode_text(tokens, prompted=False, truncate=False), clip.encode_text(tokens))


def test_widths_come_from_the_model_config():
    """ViT-L/14 widths read from open_clip's config (no 400M-parameter model built)."""
    cfg = open_clip.get_model_config("ViT-L-14")
    factors = PromptFactors(PromptConfig(), cfg["text_cfg"]["width"], cfg["vision_cfg"]["width"])
    assert factors.num_parameters() == 16_164


@pytest.mark.numerics
def test_gradient_checkpointing_and_text_chunks_give_the_same_gradients(tiny_base):
    images, labels = torch.randn(4, 3, 32, 32), torch.tensor([0, 1, 2, 3])
    grads = []
    # (all blocks checkpointed, first text blocks checkpointed, classes per text pass)
    for checkpointing, first, chunk in ((False, 0, 0), (True, 0, 0), (False, 1, 0), (False, 0, 3)):
        model = MMLoP(tiny_base, PromptConfig(depth=3), generator=torch.Generator().manual_seed(0))
        model.use_checkpoint, model.checkpoint_text_blocks = checkpointing, first
        g0 = frozen_text_features(model, CLASSES, ["a photo of a {}."])
        step = TrainStep(model, model.class_tokens(CLASSES), g0, LossConfig(), text_chunk=chunk)
        with torch.no_grad():
            f0 = model.encode_image(images, prompted=False, normalize=True)
        step(images, labels, f0).total.backward()
        grads.append({n: p.grad.clone() for n, p in model.prompts.named_parameters()})
    for other in grads[1:]:
        for name, g in grads[0].items():
            # Checkpointing recomputes the same ops; chunks change the text GEMM shapes, so summation order only, in
            # one forward/backward (no optimiser step to amplify it): 1e-5 relative to the largest entry.
            assert_close_rel(other[name], g, 1e-5, name)
