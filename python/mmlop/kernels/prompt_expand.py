"""Triton kernels for low-rank prompt expansion, P^(l) = U^(l) V^(l), for the text and vision towers at once.

Shapes (all tensors contiguous, row-major):
    U_t (L_t, T, R_T), V_t (L_t, R_T, D_T) -> P_t (L_t, T, D_T)
    U_v (L_v, V, R_V), V_v (L_v, R_V, D_V) -> P_v (L_v, V, D_V)
With a shared up-projection U_t and U_v are the same tensor (so L_t = L_v, T = V, R_T = R_V).

The rank is tiny (1 in the paper, at most 8 in the ablations), so the products are written as R rank-1 outer
products accumulated in float32 registers instead of ``tl.dot``: a dot would need every block dimension padded
to 16, i.e. 16x the work at rank 1, for a product that is memory-bound anyway. R is a ``tl.constexpr`` so the
loop unrolls. Loads are upcast to float32 before any arithmetic (the interpreter computes bf16 products
wrongly otherwise); stores cast to the destination's dtype.
"""

import triton
import triton.language as tl


@triton.jit
def _outer_product_tile(u_ptr, v_ptr, p_ptr, layer, col_block, T, D,
                        R: tl.constexpr, BLOCK_T: tl.constexpr, BLOCK_D: tl.constexpr):
    # P[layer, :, cols] = sum_j U[layer, :, j] (outer) V[layer, j, cols]
    offs_t = tl.arange(0, BLOCK_T)
    offs_d = col_block * BLOCK_D + tl.arange(0, BLOCK_D)
    mask_t = offs_t < T
    mask_d = offs_d < D
    acc = tl.zeros((BLOCK_T, BLOCK_D), dtype=tl.float32)
    for j in tl.static_range(R):
        u = tl.load(u_ptr + layer * T * R + offs_t * R + j, mask=mask_t, other=0.0).to(tl.float32)
        v = tl.load(v_ptr + layer * R * D + j * D + offs_d, mask=mask_d, other=0.0).to(tl.float32)
        acc += u[:, None] * v[None, :]
    p_ptrs = p_ptr + layer * T * D + offs_t[:, None] * D + offs_d[None, :]
    tl.store(p_ptrs, acc.to(p_ptr.dtype.element_ty), mask=mask_t[:, None] & mask_d[None, :])


@triton.jit
def expand_fwd_kernel(ut_ptr, vt_ptr, pt_ptr, uv_ptr, vv_ptr, pv_ptr,
                      L_T, T_T, D_T, L_V, T_V, D_V, N_BLOCKS_T,
                      R_T: tl.constexpr, R_V: tl.constexpr, BLOCK_T: tl.constexpr, BLOCK_D: tl.constexpr):
    """Forward of both modalities in one launch.

    Grid: (max(L_t, L_v), N_BLOCKS_T + N_BLOCKS_V). Program (l, c) writes the column block c of P_t^(l) when
    c < N_BLOCKS_T, else the column block c - N_BLOCKS_T of P_v^(l). A modality that is absent is launched with
    zero column blocks (its pointers are then unused placeholders).
    """
    layer = tl.program_id(0)
    col = tl.program_id(1)
    if col < N_BLOCKS_T:
        if layer < L_T:
            _outer_product_tile(ut_ptr, vt_ptr, pt_ptr, layer, col, T_T, D_T, R_T, BLOCK_T, BLOCK_D)
    else:
        if layer < L_V:
            _outer_product_tile(uv_ptr, vv_ptr, pv_ptr, layer, col - N_BLOCKS_T, T_V, D_V, R_V, BLOCK_T, BLOCK_D)


@triton.jit
def _modality_bwd(u_ptr, v_ptr, dp_ptr, dv_ptr, layer, T, D,
                  R: tl.constexpr, BLOCK_T: tl.constexpr, BLOCK_R: tl.constexpr, BLOCK_D: tl.constexpr):
    # dV[layer, j, :] = sum_t U[layer, t, j] dP[layer, t, :]   (stored here)
    # dU[layer, t, j] = sum_d dP[layer, t, d] V[layer, j, d]    (returned as a (BLOCK_T, BLOCK_R) fp32 tile)
    offs_t = tl.arange(0, BLOCK_T)
    offs_r = tl.arange(0, BLOCK_R)
    mask_t = offs_t < T
    du = tl.zeros((BLOCK_T, BLOCK_R), dtype=tl.float32)
    for d0 in range(0, D, BLOCK_D):
        offs_d = d0 + tl.arange(0, BLOCK_D)
        mask_d = offs_d < D
        dp = tl.load(dp_ptr + layer * T * D + offs_t[:, None] * D + offs_d[None, :],
                     mask=mask_t[:, None] & mask_d[None, :], other=0.0).to(tl.float32)  # (BLOCK_T, BLOCK_D)
        for j in tl.static_range(R):
            u = tl.load(u_ptr + layer * T * R + offs_t * R + j, mask=mask_t, other=0.0).to(tl.float32)
            dv = tl.sum(u[:, None] * dp, axis=0)  # (BLOCK_D,)
            tl.store(dv_ptr + layer * R * D + j * D + offs_d, dv.to(dv_ptr.dtype.element_ty), mask=mask_d)
            v = tl.load(v_ptr + layer * R * D + j * D + offs_d, mask=mask_d, other=0.0).to(tl.float32)
            du_j = tl.sum(dp * v[None, :], axis=1)  # (BLOCK_T,)
            du += tl.where(offs_r[None, :] == j, du_j[:, None], 0.0)
    return du


@triton.jit
def _store_du(du_ptr, du, layer, T, R: tl.constexpr, BLOCK_T: tl.constexpr, BLOCK_R: tl.constexpr):
    offs_t = tl.arange(0, BLOCK_T)
    offs_r = tl.arange(0, BLOCK_R)
    ptrs = du_ptr + layer * T * R + offs_t[:, None] * R + offs_r[None, :]
    tl.store(ptrs, du.to(du_ptr.dtype.element_ty), mask=(offs_t[:, None] < T) & (offs_r[None, :] < R))


@triton.jit
def expand_bwd_kernel(ut_ptr, vt_ptr, dpt_ptr, dut_ptr, dvt_ptr,
                      uv_ptr, vv_ptr, dpv_ptr, duv_ptr, dvv_ptr,
                      L_T, T_T, D_T, L_V, T_V, D_V,
                      HAS_T: tl.constexpr, HAS_V: tl.constexpr, SHARED: tl.constexpr,
                      R_T: tl.constexpr, R_V: tl.constexpr, BLOCK_T: tl.constexpr, BLOCK_R: tl.constexpr,
                      BLOCK_D: tl.constexpr):
    """Backward of both modalities in one launch: dU, dV_t, dV_v from dP_t, dP_v.

    Math per layer l: dV^(l) = U^(l)^T dP^(l) (R x D) and dU^(l) = dP^(l) V^(l)^T (T x R); with a shared U,
    dU^(l) = dP_t^(l) V_t^(l)^T + dP_v^(l) V_v^(l)^T, summed in registers and stored once.

    Grid: (L,) when SHARED (program l does both modalities of layer l), else (max(L_t, L_v), 2) with axis 1
    selecting the modality. The reductions over D run inside one program, so no atomics are needed and the
    result is deterministic.
    """
    layer = tl.program_id(0)
    if SHARED:
        du = _modality_bwd(ut_ptr, vt_ptr, dpt_ptr, dvt_ptr, layer, T_T, D_T, R_T, BLOCK_T, BLOCK_R, BLOCK_D)
        du += _modality_bwd(uv_ptr, vv_ptr, dpv_ptr, dvv_ptr, layer, T_V, D_V, R_V, BLOCK_T, BLOCK_R, BLOCK_D)
        _store_du(dut_ptr, du, layer, T_T, R_T, BLOCK_T, BLOCK_R)
    else:
        modality = tl.program_id(1)
        if HAS_T:
            if modality == 0:
                if layer < L_T:
                    du = _modality_bwd(ut_ptr, vt_ptr, dpt_ptr, dvt_ptr, layer, T_T, D_T, R_T,
                                       BLOCK_T, BLOCK_R, BLOCK_D)
                    _store_du(dut_ptr, du, layer, T_T, R_T, BLOCK_T, BLOCK_R)
        if HAS_V:
            if modality == 1:
                if layer < L_V:
                    du = _modality_bwd(uv_ptr, vv_ptr, dpv_ptr, dvv_ptr, layer, T_V, D_V, R_V,
                                       BLOCK_T, BLOCK_R, BLOCK_D)
                    _store_du(duv_ptr, du, layer, T_V, R_V, BLOCK_T, BLOCK_R)
