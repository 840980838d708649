"""Prompt expansion: the Triton op (interpreter) against the pure-torch reference, and the reference itself."""

import pytest
import torch

from mmlop.ops.prompt_expand import ExpandPromptsFunction, expand_prompts, expand_prompts_reference
from tolerances import assert_close_rel

pytestmark = pytest.mark.numerics  # compares floating-point paths: rerun under other CPU kernels (.ci/run)

# Normwise relative error allowed on outputs and gradients: float32 accumulates in a different order than the
# reference; half types add one rounding of the stored result (2^-11 for fp16, 2^-8 for bf16).
REL = {torch.float32: 1e-5, torch.float16: 2e-3, torch.bfloat16: 1.6e-2}


def make(mode, L, T, V, r_t, r_v, d_t, d_v, dtype, seed=0, device="cpu"):
    """Factors for one configuration; mode in shared / independent / text_lowrank / full / text_only."""
    g = torch.Generator().manual_seed(seed)

    def p(*shape):
        return (torch.randn(*shape, generator=g) * 0.5).to(dtype).to(device).requires_grad_()

    if mode == "shared":
        u = p(L, T, r_t)
        return dict(v_text=p(L, r_t, d_t), v_vision=p(L, r_t, d_v), u_text=u, u_vision=u)
    if mode == "independent":
        return dict(v_text=p(L, r_t, d_t), v_vision=p(L, r_v, d_v), u_text=p(L, T, r_t), u_vision=p(L, V, r_v))
    if mode == "text_lowrank":
        return dict(v_text=p(L, r_t, d_t), v_vision=p(L, V, d_v), u_text=p(L, T, r_t), u_vision=None)
    if mode == "vision_lowrank_only":
        return dict(v_text=None, v_vision=p(L, r_v, d_v), u_text=None, u_vision=p(L, V, r_v))
    if mode == "full":
        return dict(v_text=p(L, T, d_t), v_vision=p(L, V, d_v), u_text=None, u_vision=None)
    raise ValueError(mode)


def leaves(args):
    out = {}
    for name, t in args.items():
        if t is not None and all(t is not o for o in out.values()):
            out[name] = t
    return out


def run(fn, args, seed=1):
    """Outputs and the gradients of a random linear functional of both prompts w.r.t. every distinct leaf."""
    p_t, p_v = fn(**args)
    g = torch.Generator().manual_seed(seed)
    loss = 0.0
    for p in (p_t, p_v):
        if p is not None:
            loss = loss + (p.float() * torch.randn(p.shape, generator=g).to(p.device)).sum()
    ls = leaves(args)
    grads = torch.autograd.grad(loss, list(ls.values()))
    return (p_t, p_v), dict(zip(ls, grads))


def upcast(args):
    out, seen = {}, {}
    for name, t in args.items():
        if t is None:
            out[name] = None
        elif id(t) in seen:
            out[name] = seen[id(t)]
        else:
            out[name] = seen[id(t)] = t.detach().float().requires_grad_()
    return out


CASES = [
    # mode, L, T, V, r_t, r_v, d_t, d_v
    pytest.param("shared", 9, 4, 4, 1, 1, 512, 768, id="vitb16-default"),
    pytest.param("shared", 1, 1, 1, 1, 1, 37, 50, id="depth1-odd-widths"),
    pytest.param("shared", 3, 5, 5, 3, 3, 100, 130, id="rank3-T5"),
    pytest.param("shared", 2, 4, 4, 1, 1, 768, 1024, id="vitl14-widths"),
    pytest.param("independent", 9, 4, 4, 1, 1, 512, 768, id="independent-vitb16"),
    pytest.param("independent", 5, 7, 3, 2, 5, 96, 200, id="independent-T!=V-r_t!=r_v"),
    pytest.param("text_lowrank", 4, 4, 4, 2, 2, 512, 768, id="text-lowrank-vision-full"),
    pytest.param("vision_lowrank_only", 2, 4, 6, 1, 4, 512, 300, id="vision-only"),
]


DTYPES = [pytest.param(torch.float32, id="fp32"), pytest.param(torch.float16, id="fp16"),
          pytest.param(torch.bfloat16, id="bf16")]
# The largest configuration (depth 12, 16 tokens, rank 8) unrolls 8 rank steps per tile and is the slowest in
# the interpreter, so it runs in float32 only and at modest widths; every other case covers the half types.
MATRIX = [pytest.param(*c.values, d.values[0], id=f"{d.id}-{c.id}") for c in CASES for d in DTYPES] + [
    pytest.param("shared", 12, 16, 16, 8, 8, 130, 200, torch.float32, id="fp32-depth12-T16-rank8",
                 marks=pytest.mark.slow),
]


@pytest.mark.parametrize("mode,L,T,V,r_t,r_v,d_t,d_v,dtype", MATRIX)
def test_triton_matches_reference(device, mode, L, T, V, r_t, r_v, d_t, d_v, dtype):
    args = make(mode, L, T, V, r_t, r_v, d_t, d_v, dtype, device=device)
    outs, grads = run(expand_prompts, args)
    ref_outs, ref_grads = run(expand_prompts_reference, upcast(args))  # exact upcast of the same values
    for name, o, r in zip(("P_text", "P_vision"), outs, ref_outs):
        assert (o is None) == (r is None), name
        if o is not None:
            assert o.dtype == dtype, name
            assert_close_rel(o, r, REL[dtype], name)
    assert grads.keys() == ref_grads.keys()
    for name in grads:
        assert grads[name].dtype == dtype, name
        assert_close_rel(grads[name], ref_grads[name], REL[dtype], f"d{name}")


def test_shared_u_gradient_sums_both_modalities():
    args = make("shared", 3, 4, 4, 2, 2, 40, 60, torch.float32)
    _, grads = run(expand_prompts, args)
    u = args["u_text"]
    gt, gv = torch.randn(3, 4, 40), torch.randn(3, 4, 60)
    p_t, p_v = expand_prompts(**args)
    (du,) = torch.autograd.grad((p_t * gt).sum() + (p_v * gv).sum(), [u])
    expected = gt @ args["v_text"].detach().transpose(1, 2) + gv @ args["v_vision"].detach().transpose(1, 2)
    assert_close_rel(du, expected, 1e-5, "dU")  # float32 sums in another order: REL[float32]


def test_low_rank_launches_one_kernel_forward_and_backward(monkeypatch):
    import mmlop.kernels.prompt_expand as kernels

    launches = []

    class Spy:
        def __init__(self, kernel, name):
            self.kernel, self.name = kernel, name

        def __getitem__(self, grid):
            launches.append((self.name, grid))
            return self.kernel[grid]

    monkeypatch.setattr(kernels, "expand_fwd_kernel", Spy(kernels.expand_fwd_kernel, "fwd"))
    monkeypatch.setattr(kernels, "expand_bwd_kernel", Spy(kernels.expand_bwd_kernel, "bwd"))
    for mode in ("shared", "independent"):
        launches.clear()
        run(expand_prompts, make(mode, 9, 4, 4, 1, 1, 512, 768, torch.float32))
        assert [name for name, _ in launches] == ["fwd", "bwd"], mode


def test_full_rank_and_absent_modalities_pass_through():
    args = make("full", 3, 4, 2, 1, 1, 16, 24, torch.float32)
    p_t, p_v = expand_prompts(**args)
    assert p_t is args["v_text"] and p_v is args["v_vision"]
    p_t, p_v = expand_prompts(None, args["v_text"])
    assert p_t is args["v_text"] and p_v is None
    assert expand_prompts(None, None) == (None, None)


@pytest.mark.parametrize("mode", ["shared", "independent", "text_lowrank"])
def test_reference_gradcheck_float64(mode):
    args = make(mode, 2, 3, 2, 2, 1, 5, 4, torch.float64)
    names = list(leaves(args))

    def fn(*tensors):
        call = dict(args)
        lookup = dict(zip(names, tensors))
        for name in call:
            if call[name] is not None:
                # keep the shared object shared
                src = next(n for n in names if args[n] is args[name])
                call[name] = lookup[src]
        return tuple(p for p in expand_prompts_reference(**call) if p is not None)

    assert torch.autograd.gradcheck(fn, tuple(args[n] for n in names))


def test_reference_switch_skips_triton(monkeypatch):
    def boom(*a, **k):
        raise AssertionError("the Triton op ran although MMLOP_OPS=reference")

    args = make("shared", 2, 4, 4, 1, 1, 16, 24, torch.float32)
    monkeypatch.setattr(ExpandPromptsFunction, "apply", boom)
    with pytest.raises(AssertionError, match="Triton op ran"):
        expand_prompts(**args)  # the interpreter is on in tests, so the default path is Triton
    monkeypatch.setenv("MMLOP_OPS", "reference")
    p_t, _ = expand_prompts(**args)
    assert torch.equal(p_t, args["u_text"] @ args["v_text"])  # rank 1: one product per entry, rounded once


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(v_text=torch.zeros(2, 1, 8), v_vision=None, u_text=torch.zeros(3, 4, 1)), "same depth"),
        (dict(v_text=torch.zeros(2, 2, 8), v_vision=None, u_text=torch.zeros(2, 4, 1)), "rank"),
        (dict(v_text=torch.zeros(2, 8), v_vision=None, u_text=torch.zeros(2, 4, 1)), r"u_text must be \(L, T, r\)"),
        (dict(v_text=None, v_vision=None, u_text=torch.zeros(2, 4, 1)), "u_text is given but v_text is None"),
        (dict(v_text=torch.zeros(2, 8), v_vision=None), "full-rank"),
        (dict(v_text=None, v_vision=torch.zeros(2, 1, 8, dtype=torch.long), u_vision=torch.zeros(2, 4, 1)),
         "floating point"),
    ],
)
def test_bad_shapes_raise_with_names(kwargs, match):
    for fn in (expand_prompts, expand_prompts_reference):
        with pytest.raises(ValueError, match=match):
            fn(**kwargs)

