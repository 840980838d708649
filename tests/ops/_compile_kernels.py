"""Compile every Triton kernel of mmlop for an sm_90 GPU without needing one (run as a script, not collected).

Run in a process without ``TRITON_INTERPRET`` (the interpreter replaces ``triton.jit``): Triton lowers each kernel
through ttir, ttgir, llir and ptx to a cubin with its bundled ptxas, so shape, type and control-flow errors that
the interpreter tolerates (e.g. a variable with different shapes in the two branches of an ``if``) fail here.
Prints one line per compiled kernel variant.
"""

import os
import sys

if os.environ.get("TRITON_INTERPRET") == "1":
    sys.exit("run without TRITON_INTERPRET=1")

import triton  # noqa: E402
from triton.backends.compiler import GPUTarget  # noqa: E402
from triton.compiler import ASTSource  # noqa: E402

from mmlop.kernels import drift_logits as dl  # noqa: E402
from mmlop.kernels import prompt_expand as pe  # noqa: E402
from mmlop.kernels import quick_gelu as qg  # noqa: E402
from mmlop.ops import drift_logits as dl_ops  # noqa: E402
from mmlop.ops import prompt_expand as pe_ops  # noqa: E402
from mmlop.ops import quick_gelu as qg_ops  # noqa: E402

TARGET = GPUTarget("cuda", 90, 32)
F32 = "*fp32"


def compile_kernel(fn, pointers: dict[str, str], scalars: dict[str, str], constexprs: dict[str, object]) -> None:
    signature = {**pointers, **scalars, **{name: "constexpr" for name in constexprs}}
    order = list(fn.arg_names)
    missing = set(order) ^ set(signature)
    if missing:
        raise SystemExit(f"{fn.__name__}: signature mismatch on {sorted(missing)}")
    kernel = triton.compile(ASTSource(fn=fn, signature={n: signature[n] for n in order}, constexprs=constexprs),
                            target=TARGET)
    assert "cubin" in kernel.asm, fn.__name__
    print(f"{fn.__name__} {constexprs} ok")


def main() -> None:
    i32, f32 = "i32", "fp32"
    blocks = dict(BLOCK_C=dl_ops._BLOCK_C, BLOCK_B=dl_ops._BLOCK_B, BLOCK_D=dl_ops._BLOCK_D)
    compile_kernel(
        dl.drift_stats_kernel,
        dict(txt_ptr="*fp16", frz_ptr=F32, img_ptr="*bf16", f_ptr=F32, norm_t_ptr=F32, norm_i_ptr=F32, partial_ptr=F32),
        dict(C=i32, B=i32, D=i32, eps=f32, N_TEXT_PROGS=i32),
        dict(CORRECT=True, BLOCK_ROWS=dl_ops._ROWS, BLOCK_D=dl_ops._BLOCK_D),
    )
    for correct in (True, False):
        compile_kernel(
            dl.drift_logits_fwd_kernel,
            dict(txt_ptr="*fp16", norm_t_ptr=F32, partial_ptr=F32, f_ptr=F32, ghat_ptr=F32, norm_h_ptr=F32,
                 logits_ptr=F32, scale_ptr=F32),
            dict(scale_val=f32, C=i32, B=i32, D=i32, n_partials=i32, inv_c=f32, eps=f32),
            dict(CORRECT=correct, SCALE_FROM_PTR=correct, BLOCK_P=dl_ops._BLOCK_P, **blocks),
        )
        compile_kernel(
            dl.drift_bwd_rows_kernel,
            dict(dz_ptr=F32, f_ptr=F32, ghat_ptr=F32, norm_h_ptr=F32, dgo_ptr=F32, dfo_ptr=F32, dh_ptr=F32,
                 dpartial_ptr=F32, df_ptr=F32, scale_ptr=F32),
            dict(scale_val=f32, C=i32, B=i32, D=i32, eps=f32, N_TEXT_PROGS=i32, N_D_BLOCKS=i32),
            dict(CORRECT=correct, HAS_DG_OUT=correct, HAS_DF_OUT=not correct, SCALE_FROM_PTR=False,
                 BLOCK_CI=dl_ops._BLOCK_CI, **blocks),
        )
        compile_kernel(
            dl.drift_bwd_finish_kernel,
            dict(txt_ptr="*bf16", norm_t_ptr=F32, dh_ptr=F32, dpartial_ptr=F32, dtxt_ptr="*bf16", f_ptr=F32,
                 norm_i_ptr=F32, df_ptr=F32, dimg_ptr="*fp16"),
            dict(C=i32, B=i32, D=i32, n_partials=i32, inv_c=f32, eps=f32, N_TEXT_PROGS=i32),
            dict(CORRECT=correct, BLOCK_ROWS=dl_ops._ROWS, BLOCK_D=dl_ops._BLOCK_D, BLOCK_P=dl_ops._BLOCK_P),
        )
    dims = dict(L_T=i32, T_T=i32, D_T=i32, L_V=i32, T_V=i32, D_V=i32)
    compile_kernel(
        pe.expand_fwd_kernel,
        dict(ut_ptr=F32, vt_ptr=F32, pt_ptr=F32, uv_ptr=F32, vv_ptr=F32, pv_ptr="*fp16"),
        dict(N_BLOCKS_T=i32, **dims),
        dict(R_T=1, R_V=3, BLOCK_T=4, BLOCK_D=pe_ops._BLOCK_D),
    )
    for shared in (True, False):
        compile_kernel(
            pe.expand_bwd_kernel,
            dict(ut_ptr=F32, vt_ptr=F32, dpt_ptr=F32, dut_ptr=F32, dvt_ptr=F32,
                 uv_ptr=F32, vv_ptr=F32, dpv_ptr=F32, duv_ptr=F32, dvv_ptr=F32),
            dims,
            dict(HAS_T=True, HAS_V=True, SHARED=shared, R_T=2, R_V=2, BLOCK_T=16, BLOCK_R=2,
                 BLOCK_D=pe_ops._BLOCK_D),
        )
    compile_kernel(qg.quick_gelu_fwd_kernel, dict(x_ptr=F32, y_ptr=F32), dict(N=i32), dict(BLOCK=qg_ops._BLOCK))
    compile_kernel(qg.quick_gelu_bwd_kernel, dict(x_ptr="*bf16", dy_ptr="*bf16", dx_ptr="*bf16"), dict(N=i32),
                   dict(BLOCK=qg_ops._BLOCK))


if __name__ == "__main__":
    main()
