"""Mixed precision: bf16 autocast on the CPU for the encoders, float32 prompt factors and losses."""

import pytest
import torch

from mmlop.config import LossConfig, PromptConfig
from mmlop.model import MMLoP
from mmlop.training.loop import TrainStep, autocast_context

CLASSES = ["cat", "dog", "red panda", "sea lion", "a rather long class name"]


def test_bf16_autocast_on_cpu_and_fp16_refused():
    with autocast_context(torch.device("cpu"), "amp_bf16"):
        assert torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == torch.bfloat16
    with autocast_context(torch.device("cpu"), "fp32"):
        assert not torch.is_autocast_enabled("cpu")
    with pytest.raises(ValueError, match="'amp_fp16' needs CUDA.*amp_bf16 or fp32"):
        autocast_context(torch.device("cpu"), "amp_fp16")
    with pytest.raises(ValueError, match="precision 'fp8'"):
        autocast_context(torch.device("cpu"), "fp8")


def _step_grads(model, images, labels, precision):
    g0 = torch.nn.functional.normalize(torch.randn(len(CLASSES), 24, generator=torch.Generator().manual_seed(1)), dim=-1)
    step = TrainStep(model, model.class_tokens(CLASSES), g0, LossConfig())
    with torch.no_grad():
        f0 = model.encode_image(images, prompted=False, normalize=True)
    model.prompts.zero_grad(set_to_none=True)
    with autocast_context(torch.device("cpu"), precision):
        terms = step(images, labels, f0)
    terms.total.backward()
    return terms, {n: p.grad for n, p in model.prompts.named_parameters()}


@pytest.mark.parametrize("quick", [False, True])
def test_cpu_bf16_step_keeps_losses_and_prompt_gradients_float32(tokenizer, quick):
    from mmlop.model import base_from_model
    from tiny_models import make_tiny_clip

    base = base_from_model(make_tiny_clip(quick_gelu=quick), tokenizer, "tiny")
    model = MMLoP(base, PromptConfig(depth=3, init_std=0.5), generator=torch.Generator().manual_seed(0))
    images, labels = torch.randn(4, 3, 32, 32), torch.tensor([0, 1, 2, 3])
    ref, ref_grads = _step_grads(model, images, labels, "fp32")
    got, grads = _step_grads(model, images, labels, "amp_bf16")
    assert got.total.dtype == torch.float32 and all(g.dtype == torch.float32 for g in grads.values())
    assert all(p.dtype == torch.float32 for p in model.prompts.parameters())
    assert got.total.item() != ref.total.item()  # the encoders did run in bf16
    # bf16 keeps 8 mantissa bits (2^-8 relative per rounding) through 3 + 3 blocks: a few percent of the loss.
    assert abs(got.total.item() - ref.total.item()) <= 0.05 * abs(ref.total.item())
    for name, g in ref_grads.items():
        cos = torch.nn.functional.cosine_similarity(grads[name].flatten(), g.flatten(), dim=0)
        assert cos > 0.95, f"{name}: bf16 gradient direction off (cosine {cos:.3f})"
