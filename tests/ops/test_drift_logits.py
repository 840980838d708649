"""Drift-corrected logits: the Triton op (interpreter) against the reference, the UDC invariants of method §5,
and the reference's own gradients."""

import pytest
import torch
import torch.nn.functional as F

from mmlop.ops.drift_logits import DriftLogits, DriftLogitsFunction, drift_corrected_logits, drift_corrected_logits_reference
from tolerances import assert_close_rel

pytestmark = pytest.mark.numerics  # compares floating-point paths: rerun under other CPU kernels (.ci/run)

# Normwise relative error allowed: outputs are float32 computed from the same (exactly upcast) inputs as the
# float32 reference, so only the summation order differs; input gradients are stored in the input dtype.
OUT_REL = 1e-5
GRAD_REL = {torch.float32: 1e-5, torch.float16: 2e-3, torch.bfloat16: 1.6e-2}


def features(B, C, D, dtype, seed=0, device="cpu"):
    g = torch.Generator().manual_seed(seed)
    frozen = torch.randn(C, D, generator=g)
    # prompted text = frozen + a shared drift + class-specific noise, so the correction has something to remove
    text = frozen + 0.3 * torch.randn(1, D, generator=g) + 0.1 * torch.randn(C, D, generator=g)
    image = torch.randn(B, D, generator=g) * 3.0
    return (image.to(dtype).to(device).requires_grad_(), text.to(dtype).to(device).requires_grad_(),
            frozen.to(dtype).to(device))


def run(fn, image, text, frozen, scale, correct, out_grads, seed=1):
    out = fn(image, text, frozen, scale, correct)
    g = torch.Generator().manual_seed(seed)
    dev = out.logits.device
    loss = (out.logits * torch.randn(out.logits.shape, generator=g).to(dev)).sum()
    if out_grads:  # the consistency loss also differentiates through the returned features
        loss = loss + (out.image * torch.randn(out.image.shape, generator=g).to(dev)).sum()
        loss = loss + (out.text * torch.randn(out.text.shape, generator=g).to(dev)).sum()
    leaves = [t for t in (image, text) if t.requires_grad]
    return out, torch.autograd.grad(loss, leaves)


def compare(B, C, D, dtype, correct=True, scale=100.0, out_grads=True, device="cpu"):
    image, text, frozen = features(B, C, D, dtype, device=device)
    scale = scale.to(device) if isinstance(scale, torch.Tensor) else scale
    out, grads = run(drift_corrected_logits, image, text, frozen, scale, correct, out_grads)
    up = [t.detach().float().requires_grad_(t.requires_grad) for t in (image, text)]
    ref, ref_grads = run(drift_corrected_logits_reference, *up, frozen.float(), scale, correct, out_grads)
    assert isinstance(out, DriftLogits)
    for name in DriftLogits._fields:
        a, r = getattr(out, name), getattr(ref, name)
        assert a.dtype == torch.float32, name
        assert_close_rel(a, r, OUT_REL, name)
    for name, a, r in zip(("d_image", "d_text"), grads, ref_grads):
        assert a.dtype == dtype, name
        assert_close_rel(a, r, GRAD_REL[dtype], name)


@pytest.mark.parametrize(
    "B,C,D,dtype,correct,scale,out_grads",
    [
        pytest.param(3, 1, 512, torch.float32, True, 100.0, True, id="C1-D512"),
        pytest.param(5, 37, 512, torch.float32, True, 100.0, True, id="C37-D512"),
        pytest.param(5, 37, 512, torch.float32, True, torch.tensor(100.0), False, id="C37-tensor-scale-logits-only"),
        pytest.param(33, 37, 768, torch.float16, True, 100.0, True, id="C37-D768-fp16-B33"),
        pytest.param(4, 37, 1024, torch.bfloat16, True, 50.0, True, id="C37-D1024-bf16"),
        pytest.param(7, 37, 768, torch.float32, False, 100.0, True, id="uncorrected-D768"),
        pytest.param(2, 100, 300, torch.float16, False, 100.0, False, id="uncorrected-fp16-logits-only"),
        pytest.param(6, 130, 96, torch.float32, True, 100.0, True, id="C130-three-row-groups"),
        pytest.param(32, 1000, 1024, torch.float32, True, 100.0, True, id="C1000-D1024", marks=pytest.mark.slow),
        pytest.param(8, 1000, 512, torch.float16, True, 100.0, True, id="C1000-D512-fp16", marks=pytest.mark.slow),
    ],
)
def test_triton_matches_reference(device, B, C, D, dtype, correct, scale, out_grads):
    compare(B, C, D, dtype, correct, scale, out_grads, device=device)


def test_gradient_only_for_the_text_side():
    image, text, frozen = features(4, 37, 64, torch.float32)
    image = image.detach()
    out, (d_text,) = run(drift_corrected_logits, image, text, frozen, 100.0, True, True)
    ref, (ref_d_text,) = run(drift_corrected_logits_reference, image, text, frozen, 100.0, True, True)
    assert_close_rel(d_text, ref_d_text, 1e-5, "d_text")  # float32 vs float32, summation order only: GRAD_REL


@pytest.fixture(params=["triton", "reference"])
def op(request):
    return drift_corrected_logits if request.param == "triton" else drift_corrected_logits_reference


def test_udc_corrected_residuals_sum_to_zero_before_renormalisation(op):
    image, text, frozen = features(3, 37, 512, torch.float32)
    out = op(image, text, frozen, 100.0)
    gp = F.normalize(text.detach().double(), dim=-1)
    g0 = F.normalize(frozen.double(), dim=-1)
    h_norm = (gp - (gp - g0).mean(0)).norm(dim=-1, keepdim=True)  # ||g_p - rbar||, independently in float64
    corrected_residuals = out.text.double() * h_norm - g0  # (ghat_k before renormalisation) - g0_k
    # out.text is float32 (unit entries rounded at 2^-24 ~ 6e-8); a sum over 37 classes of such errors stays < 1e-5.
    assert corrected_residuals.sum(0).abs().max().item() < 1e-5
    # A norm over 512 float32 entries, each rounded once: relative error ~ 512 * 6e-8 / sqrt(512) ~ 1.4e-6 worst case
    # (random signs give far less); 1e-6 holds with the ~1e-7 seen, and the bound is about rounding, not ordering.
    assert (out.text.double().norm(dim=-1) - 1).abs().max().item() < 1e-6  # unit norm


def test_udc_single_class_returns_frozen_feature(op):
    image, text, frozen = features(3, 1, 512, torch.float32)
    out = op(image, text, frozen, 100.0)
    # One class: ghat is normalize(g0) up to a few float32 roundings (6e-8 each), far below 1e-6.
    assert_close_rel(out.text, F.normalize(frozen, dim=-1), 1e-6, "ghat")


def test_udc_uniform_drift_returns_frozen_features(op):
    # Unit g0_k = -v/2 + w_k with w_k orthogonal to v and |w_k|^2 = 1 - |v|^2/4: then g0_k + v is unit too, so
    # normalize(text_k) - g0_k = v for every class, and the correction must remove it entirely.
    g = torch.Generator().manual_seed(3)
    C, D = 37, 512
    v = torch.randn(D, generator=g, dtype=torch.float64)
    v = 0.4 * v / v.norm()
    w = torch.randn(C, D, generator=g, dtype=torch.float64)
    w = w - (w @ v)[:, None] * v / (v @ v)
    w = w / w.norm(dim=-1, keepdim=True) * (1 - (v @ v) / 4).sqrt()
    g0 = -v / 2 + w
    text = (g0 + v) * 2.5  # any positive scale: the op normalises
    out = op(torch.randn(4, D), text.float(), g0.float(), 100.0)
    # float32 inputs rounded from float64 (6e-8) and a mean over 37 classes: OUT_REL, as for the op against its reference.
    assert_close_rel(out.text, g0.float(), 1e-5, "ghat")


def test_uncorrected_text_is_the_normalised_prompted_features(op):
    image, text, frozen = features(3, 37, 96, torch.float32)
    out = op(image, text, frozen, 20.0, correct=False)
    # Without correction both sides are one float32 normalisation (or one 96-term dot product) of the same inputs: a
    # few ulps (2^-24 ~ 6e-8 each) apart, so 1e-6 relative to the largest entry.
    assert_close_rel(out.text, F.normalize(text.detach(), dim=-1), 1e-6, "gp")
    assert_close_rel(out.logits, 20.0 * out.image @ out.text.T, 1e-6, "logits")


@pytest.mark.parametrize("correct", [True, False])
def test_reference_gradcheck_float64(correct):
    image, text, frozen = features(3, 4, 5, torch.float64)
    assert torch.autograd.gradcheck(
        lambda i, t: tuple(drift_corrected_logits_reference(i, t, frozen, 7.0, correct)), (image, text)
    )


def test_reference_switch_and_float64_skip_triton(monkeypatch):
    def boom(*a, **k):
        raise AssertionError("the Triton op ran")

    monkeypatch.setattr(DriftLogitsFunction, "apply", boom)
    image, text, frozen = features(3, 5, 16, torch.float32)
    with pytest.raises(AssertionError, match="Triton op ran"):
        drift_corrected_logits(image, text, frozen, 100.0)  # the interpreter is on in tests: Triton by default
    drift_corrected_logits(image.double(), text.double(), frozen.double(), 100.0)  # float64 -> reference
    monkeypatch.setenv("MMLOP_OPS", "reference")
    out = drift_corrected_logits(image, text, frozen, 100.0)
    ref = drift_corrected_logits_reference(image, text, frozen, 100.0)
    assert torch.equal(out.logits, ref.logits)  # the switch runs the reference itself: the same code, bit for bit


@pytest.mark.parametrize(
    "shapes,match",
    [
        (((4, 8), (5, 8), (6, 8)), "frozen_text_features"),
        (((4, 7), (5, 8), (5, 8)), "embedding size D"),
        (((4, 8, 1), (5, 8), (5, 8)), "image_features must be a 2-D"),
        (((4, 8), (0, 8), (0, 8)), "C = 0"),
    ],
)
def test_bad_shapes_raise_with_names(shapes, match):
    tensors = [torch.zeros(s) for s in shapes]
    for fn in (drift_corrected_logits, drift_corrected_logits_reference):
        with pytest.raises(ValueError, match=match):
            fn(*tensors, 100.0)
    with pytest.raises(ValueError, match="logit_scale"):
        drift_corrected_logits(torch.zeros(2, 3), torch.zeros(4, 3), torch.zeros(4, 3), torch.ones(2))


def test_uniform_drift_correction_is_exactly_the_ops_text_output():
    """The classifier's text-only correction and the op's ghat are one rule (the same reference code)."""
    from mmlop.ops.drift_logits import uniform_drift_correction

    image, text, frozen = features(3, 7, 16, torch.float32)
    assert torch.equal(uniform_drift_correction(text, frozen),
                       drift_corrected_logits_reference(image, text, frozen, 10.0).text)
    with pytest.warns(UserWarning, match="fewer than 2 classes"):
        torch.testing.assert_close(uniform_drift_correction(text[:1], frozen[:1]), F.normalize(frozen[:1], dim=-1))
