"""Microbenchmarks of the fused ops: eager reference vs Triton vs ``torch.compile`` of the reference.

Run (see benchmarks/README-ops.md):

    PYTHONPATH=python pytest benchmarks/test_bench_ops.py --benchmark-enable \
        --benchmark-json=benchmarks/results/ops-<device>.json

Sizes come from the real model configurations: ViT-B/16 (d_t=512, d_v=768, D=512) and ViT-L/14 (768/1024/768),
the MMLoP default prompts (L=9, T=4, r=1, shared U), B=32 images and C=100 or 1000 classes; QuickGELU on one
block's MLP hidden activation (text: C classes x 10 tokens x 2048; image: 32 x 201 x 3072). Triton cases need
CUDA and are skipped without it (this file is outside tests/, so the interpreter is not switched on); the
``torch.compile`` cases are skipped where compilation fails. Every row carries the device, torch and triton
versions and sizes in ``extra_info``; pytest-benchmark adds the commit and machine.
"""

from __future__ import annotations

import importlib.metadata
import os

import pytest
import torch

from mmlop.ops.drift_logits import DriftLogitsFunction, drift_corrected_logits_reference
from mmlop.ops.prompt_expand import ExpandPromptsFunction, expand_prompts_reference
from mmlop.ops.quick_gelu import QuickGELUFunction, quick_gelu_reference

if os.environ.get("TRITON_INTERPRET") == "1":
    pytest.skip("benchmarks must not run under the Triton interpreter", allow_module_level=True)

torch.set_num_threads(max(1, min(4, os.cpu_count() or 1)))

MODELS = {
    "ViT-B-16": dict(d_t=512, d_v=768, D=512),
    "ViT-L-14": dict(d_t=768, d_v=1024, D=768),
}
L, T, R, B = 9, 4, 1, 32
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
IMPLS = ["reference", "triton", "compiled"]


def _version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "absent"


def _info(benchmark, **sizes) -> None:
    benchmark.extra_info.update(
        device=torch.cuda.get_device_name() if DEVICE == "cuda" else f"cpu ({os.cpu_count()} cores, "
        f"{torch.get_num_threads()} threads)",
        torch=torch.__version__, triton=_version("triton"), **sizes,
    )


def _sync() -> None:
    if DEVICE == "cuda":
        torch.cuda.synchronize()


_COMPILED: dict[str, object] = {}


def _impl(name: str, reference, function):
    """The callable for one implementation; skips what cannot run here."""
    if name == "reference":
        return reference
    if name == "triton":
        if DEVICE != "cuda":
            pytest.skip("Triton cases need CUDA")
        return function
    key = reference.__name__
    if key not in _COMPILED:
        try:
            _COMPILED[key] = torch.compile(reference, dynamic=False)
        except Exception as exc:  # noqa: BLE001 - any failure means "not available here"
            pytest.skip(f"torch.compile unavailable: {exc}")
    return _COMPILED[key]


def _run_or_skip_compile(name, fn):
    # torch.compile fails lazily, on the first call.
    if name != "compiled":
        return fn()
    try:
        return fn()
    except Exception as exc:  # noqa: BLE001
        pytest.skip(f"torch.compile failed here: {type(exc).__name__}: {str(exc)[:200]}")


# ---------------------------------------------------------------- prompt expansion


def _prompt_factors(model: str):
    g = torch.Generator().manual_seed(0)
    sizes = MODELS[model]

    def p(*shape):
        return (torch.randn(*shape, generator=g) * 0.05).to(DEVICE).requires_grad_()

    return p(L, T, R), p(L, R, sizes["d_t"]), p(L, R, sizes["d_v"])


def _expand_triton(u, v_t, u_again, v_v):
    return ExpandPromptsFunction.apply(u, v_t, u_again, v_v, True)


@pytest.mark.parametrize("model", list(MODELS))
@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("backward", [False, True], ids=["fwd", "fwd+bwd"])
def test_prompt_expand(benchmark, model, impl, backward):
    u, v_t, v_v = _prompt_factors(model)
    fn = _impl(impl, expand_prompts_reference, _expand_triton)
    w_t = torch.randn(L, T, MODELS[model]["d_t"], device=DEVICE)
    w_v = torch.randn(L, T, MODELS[model]["d_v"], device=DEVICE)

    def step():
        p_t, p_v = fn(u, v_t, u, v_v)
        if backward:
            torch.autograd.grad((p_t * w_t).sum() + (p_v * w_v).sum(), (u, v_t, v_v))
        _sync()

    _run_or_skip_compile(impl, step)  # warm-up: compiles, and checks the path works
    _info(benchmark, op="prompt_expand", impl=impl, model=model, L=L, T=T, r=R, backward=backward)
    benchmark(step)


@pytest.mark.skipif(DEVICE != "cuda", reason="the empty-launch baseline needs CUDA")
def test_empty_triton_launch(benchmark):
    """Baseline for the prompt-expansion target (within 2x of an empty kernel launch)."""
    import triton
    import triton.language as tl

    @triton.jit
    def _empty(x_ptr):
        pass

    x = torch.empty(1, device=DEVICE)

    def step():
        _empty[(1,)](x)
        _sync()

    step()
    _info(benchmark, op="empty_launch", impl="triton")
    benchmark(step)


# ---------------------------------------------------------------- drift-corrected logits


def _drift_inputs(model: str, C: int):
    g = torch.Generator().manual_seed(0)
    D = MODELS[model]["D"]
    frozen = torch.randn(C, D, generator=g)
    text = frozen + 0.1 * torch.randn(C, D, generator=g)
    image = torch.randn(B, D, generator=g)
    return image.to(DEVICE).requires_grad_(), text.to(DEVICE).requires_grad_(), frozen.to(DEVICE)


def _drift_triton(image, text, frozen, scale):
    return DriftLogitsFunction.apply(image, text, frozen, scale, True, 1e-12)


@pytest.mark.parametrize("model", list(MODELS))
@pytest.mark.parametrize("C", [100, 1000])
@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("backward", [False, True], ids=["fwd", "fwd+bwd"])
def test_drift_logits(benchmark, model, C, impl, backward):
    image, text, frozen = _drift_inputs(model, C)
    fn = _impl(impl, drift_corrected_logits_reference, _drift_triton)
    D = MODELS[model]["D"]
    w_z = torch.randn(B, C, device=DEVICE)
    w_f = torch.randn(B, D, device=DEVICE)
    w_g = torch.randn(C, D, device=DEVICE)

    def step():
        logits, f, g = fn(image, text, frozen, 100.0)
        if backward:  # the training loss differentiates through all three outputs
            torch.autograd.grad((logits * w_z).sum() + (f * w_f).sum() + (g * w_g).sum(), (image, text))
        _sync()

    _run_or_skip_compile(impl, step)
    _info(benchmark, op="drift_logits", impl=impl, model=model, B=B, C=C, D=D, backward=backward)
    benchmark(step)


# ---------------------------------------------------------------- QuickGELU


QUICK_GELU_SITES = {
    "text-C100": (100, 10, 2048),  # ViT-B/16 text MLP at the mean bucketed prompt length (9.5 tokens)
    "text-C1000": (1000, 10, 2048),
    "image-B32": (B, 201, 3072),  # ViT-B/16 image MLP with 4 vision prompts
}


def _quick_gelu_triton(x):
    return QuickGELUFunction.apply(x, True)


@pytest.mark.parametrize("site", list(QUICK_GELU_SITES))
@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("backward", [False, True], ids=["fwd", "fwd+bwd"])
def test_quick_gelu(benchmark, site, impl, backward):
    shape = QUICK_GELU_SITES[site]
    x = torch.randn(*shape, device=DEVICE).requires_grad_()
    dy = torch.randn(*shape, device=DEVICE)
    fn = _impl(impl, quick_gelu_reference, _quick_gelu_triton)

    def step():
        y = fn(x)
        if backward:
            torch.autograd.grad(y, (x,), dy)
        _sync()

    _run_or_skip_compile(impl, step)
    _info(benchmark, op="quick_gelu", impl=impl, site=site, shape=list(shape), backward=backward)
    benchmark(step)
