"""Mixed precision on the CPU: the training step and the evaluation under ``torch.autocast("cpu", torch.bfloat16)``.

The amp path otherwise only runs on CUDA; this exercises the same code on any machine. What must hold: the prompt
factors, their gradients and the losses stay float32; the fused drift-correction op receives bf16 features from
the towers; results are finite and close to float32 within bounds set by bf16's unit roundoff u = 2^-8 ~ 3.9e-3.
"""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import TensorDataset

from fit_worker import CLASSES, fixed_batch, make_model
from mmlop.config import LossConfig
from mmlop.ops import drift_logits, prompt_expand
from mmlop.training import evaluate
from mmlop.training.evaluate import EvalConfig, accuracy
from mmlop.training.loop import TrainStep

pytestmark = pytest.mark.numerics

U_BF16 = 2.0 ** -8


def bf16_autocast():
    return torch.autocast("cpu", dtype=torch.bfloat16)


@pytest.fixture
def op_inputs(monkeypatch):
    """The dtypes of the tensors each fused op is called with, per call: {"prompt_expand": [...], "drift": [...]}."""
    seen: dict[str, list[list[torch.dtype]]] = {"prompt_expand": [], "drift": []}
    for name, module in (("prompt_expand", prompt_expand), ("drift", drift_logits)):
        real = module.use_triton

        def spy(*tensors, _real=real, _name=name):
            seen[_name].append([t.dtype for t in tensors if t is not None])
            return _real(*tensors)

        monkeypatch.setattr(module, "use_triton", spy)
    return seen


def _one_step(amp: bool):
    """One TrainStep forward, backward and SGD step on a fixed batch; the loss terms, gradients and new factors."""
    model, g0, images, labels, f0 = fixed_batch()
    step = TrainStep(model, model.class_tokens(CLASSES), g0, LossConfig())
    opt = torch.optim.SGD(list(model.trainable_parameters()), lr=0.05, momentum=0.9)
    with bf16_autocast() if amp else torch.autocast("cpu", enabled=False):
        terms = step(images, labels, f0)
    opt.zero_grad(set_to_none=True)
    terms.total.backward()
    grads = {k: p.grad.clone() for k, p in model.prompts.named_parameters()}
    opt.step()
    return terms, grads, dict(model.prompts.named_parameters())


def test_training_step_under_bf16_autocast(op_inputs):
    terms, grads, factors = _one_step(amp=True)
    # The towers run in bf16, but TrainStep hands their features to the drift op as float32 with autocast off (the
    # losses are float32 on every path, the CPU reference included); the prompt expansion runs on the float32 factors.
    assert op_inputs["drift"] and all(d == [torch.float32] * 3 for d in op_inputs["drift"]), op_inputs["drift"]
    assert op_inputs["prompt_expand"] and all(set(d) == {torch.float32} for d in op_inputs["prompt_expand"])
    for name in terms.as_floats():
        value = getattr(terms, name)
        assert value.dtype == torch.float32 and torch.isfinite(value), name
    for name, p in factors.items():
        assert p.dtype == torch.float32 and grads[name].dtype == torch.float32, name
        assert torch.isfinite(p).all() and torch.isfinite(grads[name]).all(), name

    ref_terms, ref_grads, _ = _one_step(amp=False)
    # Loss: bf16 rounds the activations of each of the 3 + 3 blocks and the final features; ~5 such roundings of
    # u each reach the loss, so 5u ~ 2e-2 relative (measured 1.4e-3 on an AMD EPYC).
    assert abs(terms.total.item() - ref_terms.total.item()) <= 5 * U_BF16 * abs(ref_terms.total.item())
    # Gradients go back through every bf16 product of both towers (~20 roundings on the longest path), so entries move
    # by up to ~25u (measured 0.12 of the largest entry on `up`); the bound is on the direction: cosine >= 1 - 8u
    # ~ 0.969 (measured >= 0.9969).
    for name in grads:
        cos = torch.nn.functional.cosine_similarity(grads[name].flatten(), ref_grads[name].flatten(), dim=0)
        assert cos >= 1 - 8 * U_BF16, (name, cos.item())


def test_evaluation_under_bf16_autocast(op_inputs, monkeypatch):
    model = make_model()
    g = torch.Generator().manual_seed(11)
    images = torch.randn(24, 3, 32, 32, generator=g)
    from mmlop.inference import Classifier

    clf = Classifier(model, CLASSES)
    with torch.no_grad():  # in the batches accuracy() will use, so that the same kernels see the same shapes
        ref_logits = torch.cat([clf.logits(x) for x in images.split(8)])
        with bf16_autocast():
            amp_logits = torch.cat([clf.logits(x) for x in images.split(8)])
    assert ref_logits.dtype == torch.float32 and torch.isfinite(amp_logits).all()
    # Logits are s * cos(f, w) with |cos| <= 1: the bf16 image pass perturbs the unit feature f by a few u in norm,
    # and the final product rounds to bf16 once more, so the error is bounded by s * 8u (measured 0.07 = s * 1.2u).
    s = model.logit_scale
    err = (amp_logits.float() - ref_logits).abs().max().item()
    assert err <= 8 * U_BF16 * s, (err, s)

    # accuracy() with the autocast factory, against labels set to the float32 predictions: with every logit moved by
    # at most err, an image whose float32 top-2 margin exceeds 2 * err cannot change its prediction.
    labels = ref_logits.argmax(dim=-1)
    top2 = ref_logits.topk(2, dim=-1).values
    safe = int(((top2[:, 0] - top2[:, 1]) > 2 * err).sum())
    data = TensorDataset(images, labels)
    fp32 = accuracy(model, data, labels.tolist(), CLASSES, EvalConfig(batch_size=8))
    # The evaluation loop's autocast as bf16 on this CPU (autocast_context enables amp on CUDA only).
    monkeypatch.setattr(evaluate, "autocast_context", lambda device, precision: bf16_autocast())
    amp = accuracy(model, data, labels.tolist(), CLASSES, EvalConfig(batch_size=8, precision="amp_bf16"))
    assert fp32["accuracy"] == 100.0
    assert amp["total"] == 24 and amp["correct"] >= safe, (amp, safe)
    assert safe >= 8, "the margin check must cover a good part of the set to mean anything (15 of 24 here)"
