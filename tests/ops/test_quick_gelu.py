"""QuickGELU: the Triton op (interpreter or CUDA) and the torch path of the same autograd.Function against the
float64 reference, on values and gradients, across dtypes and odd shapes."""

import pytest
import torch

from mmlop.ops.quick_gelu import QuickGELUFunction, quick_gelu, quick_gelu_reference

# Normwise relative error allowed on outputs and gradients against float64: float32 differs by a few ulps of
# exp (2^-23 each, so 1e-6 is loose); half types add one rounding of the stored result (2^-11 fp16, 2^-8 bf16).
REL = {torch.float32: 1e-6, torch.float16: 2e-3, torch.bfloat16: 1.6e-2}
DTYPES = [pytest.param(torch.float32, id="fp32"), pytest.param(torch.float16, id="fp16"),
          pytest.param(torch.bfloat16, id="bf16")]
# Odd sizes: empty, one element, under one block, a block and a bit, the ViT-B/16 MLP width over a few tokens.
SHAPES = [(0,), (1,), (7,), (1025,), (3, 5, 77), (2, 9, 3072)]


def assert_close_rel(actual, expected, rel, what):
    assert actual.shape == expected.shape, what
    err = (actual.double() - expected.double()).abs().max().item() if actual.numel() else 0.0
    scale = expected.double().abs().max().item() if expected.numel() else 0.0
    assert err <= rel * scale + 1e-30, f"{what}: max error {err:.3g} vs max magnitude {scale:.3g}"


def sample(shape, dtype, device, seed=0):
    g = torch.Generator().manual_seed(seed)
    # Spread over the sigmoid's active range and its tails (|1.702 x| up to ~17).
    return (torch.randn(shape, generator=g) * 3).to(dtype).to(device).requires_grad_()


def value_and_grad(fn, x, seed=1):
    y = fn(x)
    g = torch.Generator().manual_seed(seed)
    dy = torch.randn(y.shape, generator=g).to(y.dtype).to(y.device)
    (dx,) = torch.autograd.grad(y, [x], dy) if x.numel() else (torch.zeros_like(x),)
    return y, dx, dy


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("dtype", DTYPES)
def test_triton_matches_reference(device, dtype, shape):
    x = sample(shape, dtype, device)
    y, dx, dy = value_and_grad(quick_gelu, x)
    x64 = x.detach().double().requires_grad_()
    y_ref = quick_gelu_reference(x64)
    (dx_ref,) = torch.autograd.grad(y_ref, [x64], dy.double()) if x.numel() else (torch.zeros_like(x64),)
    assert y.dtype == dx.dtype == dtype and y.device == device
    assert_close_rel(y.cpu(), y_ref.cpu(), REL[dtype], "y")
    assert_close_rel(dx.cpu(), dx_ref.cpu(), REL[dtype], "dx")


@pytest.mark.parametrize("dtype", DTYPES)
def test_torch_path_forward_is_the_reference_bit_for_bit_and_gradient_is_close(dtype):
    x = sample((4, 33, 130), dtype, "cpu")
    y, dx, dy = value_and_grad(lambda t: QuickGELUFunction.apply(t, False), x)
    assert torch.equal(y, quick_gelu_reference(x.detach()))
    x64 = x.detach().double().requires_grad_()
    (dx_ref,) = torch.autograd.grad(quick_gelu_reference(x64), [x64], dy.double())
    assert dx.dtype == dtype
    assert_close_rel(dx, dx_ref, REL[dtype], "dx")


def test_non_contiguous_input(device):
    x = sample((40, 70), torch.float32, device).detach().t().requires_grad_()  # (70, 40), strides (1, 70)
    y, dx, dy = value_and_grad(quick_gelu, x)
    x64 = x.detach().double().requires_grad_()
    (dx_ref,) = torch.autograd.grad(quick_gelu_reference(x64), [x64], dy.double())
    assert_close_rel(y.cpu(), quick_gelu_reference(x64).cpu(), REL[torch.float32], "y")
    assert_close_rel(dx.cpu(), dx_ref.cpu(), REL[torch.float32], "dx")


def _saved(fn, x):
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        fn(x)
    return saved


@pytest.mark.parametrize("use_kernel", [False, True])
def test_only_the_input_is_saved_for_backward(use_kernel):
    x = sample((8, 64), torch.float32, "cpu")
    saved = _saved(lambda t: QuickGELUFunction.apply(t, use_kernel), x)
    assert len(saved) == 1 and saved[0].data_ptr() == x.data_ptr()
    assert len(_saved(quick_gelu_reference, x)) >= 2  # the plain expression keeps the sigmoid as well


def test_reference_gradcheck_float64_and_function_torch_path_gradcheck():
    x = torch.randn(3, 7, dtype=torch.float64, requires_grad=True) * 2
    x = x.detach().requires_grad_()
    assert torch.autograd.gradcheck(quick_gelu_reference, (x,))
    assert torch.autograd.gradcheck(lambda t: QuickGELUFunction.apply(t, False), (x,))
    assert torch.autograd.gradcheck(quick_gelu, (x,))  # float64 takes the torch path


def test_reference_switch_skips_triton(monkeypatch):
    calls = []
    real = QuickGELUFunction.apply
    monkeypatch.setattr(QuickGELUFunction, "apply", lambda x, k: calls.append(k) or real(x, k))
    x = sample((5,), torch.float32, "cpu")
    quick_gelu(x)  # the interpreter is on in tests, so the default CPU path is Triton
    monkeypatch.setenv("MMLOP_OPS", "reference")
    quick_gelu(x)
    assert calls == [True, False]


@pytest.mark.parametrize("bad", [torch.arange(4), [1.0, 2.0]], ids=["int-tensor", "list"])
def test_non_float_input_is_rejected(bad):
    for fn in (quick_gelu, quick_gelu_reference):
        with pytest.raises(ValueError, match="floating-point tensor"):
            fn(bad)
