"""Triton kernels for drift-corrected cosine logits (method §5), forward in two launches and backward in two.

Math (norm(x) = x / max(||x||_2, eps), rows of B x D and C x D float tensors, all arithmetic in float32):

    f    = norm(img)                      (B, D)   prompted image features
    gp_k = norm(txt_k),  g0_k = norm(frz_k)        prompted / frozen text features of class k
    rbar = (1/C) sum_k (gp_k - g0_k)      (D,)     uniform drift          [CORRECT only]
    h_k  = gp_k - rbar,  ghat_k = norm(h_k)        corrected text feature [else ghat = gp]
    Z    = s f ghat^T                     (B, C)   logits

The mean over the C classes is a reduction across every program, so the work is split where that reduction
needs a global barrier (a launch boundary), and each side of it is one launch:

    forward   1. ``drift_stats_kernel``: row norms of txt, frz, img; f; per-row-group column sums of gp - g0.
              2. ``drift_logits_fwd_kernel``: rbar from those partial sums, ghat, and Z = s f ghat^T (tl.dot).
    backward  1. ``drift_bwd_rows_kernel``: dG = s dZ^T f + dGhat_out, dh = J_norm(h)^T dG (+ partial column
                 sums of dh for the mean), and dF = s dZ ghat + dF_out tile by tile.
              2. ``drift_bwd_finish_kernel``: dgp = dh - mean_k dh, dtxt = J_norm(txt)^T dgp,
                 dimg = J_norm(img)^T dF.

with the normalisation Jacobian J_norm(x)^T dy = (dy - y (y . dy) [||x|| >= eps]) / max(||x||, eps),
y = norm(x). Rows that need a full-D dot before they can be finished are processed in two sweeps over D
(the first for the dot, the second recomputes the tile and writes it) instead of holding a C x D tile in
registers. Every ``tl.dot`` uses blocks of at least 16 on each side (masked), so the kernels compile for a GPU;
dots run with ``input_precision="ieee"`` so float32 results match the reference (TF32 would not).

Interpreter cost shaped the loops (the GPU code is unaffected): under ``TRITON_INTERPRET=1`` every call of a
``@triton.jit`` helper (``tl.sum`` included) re-patches the language (~1 ms) and every integer tensor op is
overflow-checked. Keeping helper calls out of the inner loops and stepping D by 128 took forward + backward at
B=32, C=1000, D=1024 from 115 s to 34 s on one lightly loaded CPU core; computing offsets once per program and
accumulating row dots in 2-D tiles (one reduction after the sweep) cut the interpreted calls by another ~30%.
"""

import triton
import triton.language as tl


@triton.jit
def _row_norms(x_ptr, offs, mask_r, D, BLOCK_ROWS: tl.constexpr, BLOCK_D: tl.constexpr):
    # ||x_row||_2 of a block of rows (offs = rows[:, None] * D + arange(BLOCK_D)[None, :]), swept over D.
    cols = tl.arange(0, BLOCK_D)
    ss = tl.zeros((BLOCK_ROWS, BLOCK_D), dtype=tl.float32)
    for d0 in range(0, D, BLOCK_D):
        m = mask_r[:, None] & (cols[None, :] < D - d0)
        x = tl.load(x_ptr + d0 + offs, mask=m, other=0.0).to(tl.float32)
        ss += x * x
    return tl.sqrt(tl.sum(ss, axis=1))


@triton.jit
def _load_scale(scale_ptr, scale_val, SCALE_FROM_PTR: tl.constexpr):
    if SCALE_FROM_PTR:
        return tl.load(scale_ptr).to(tl.float32)
    else:
        return scale_val


@triton.jit
def drift_stats_kernel(txt_ptr, frz_ptr, img_ptr, f_ptr, norm_t_ptr, norm_i_ptr, partial_ptr,
                       C, B, D, eps, N_TEXT_PROGS,
                       CORRECT: tl.constexpr, BLOCK_ROWS: tl.constexpr, BLOCK_D: tl.constexpr):
    """Forward pass 1. Grid: (N_TEXT_PROGS + cdiv(B, BLOCK_ROWS),).

    Text program p (rows k of group p): norm_t[k] = ||txt_k||; when CORRECT also
    partial[p, :] = sum_{k in group} (gp_k - g0_k)   (N_TEXT_PROGS, D) float32.
    Image program: norm_i[b] = ||img_b|| and f[b, :] = norm(img_b)   (B, D) float32.
    """
    pid = tl.program_id(0)
    cols = tl.arange(0, BLOCK_D)
    if pid < N_TEXT_PROGS:
        rows = pid * BLOCK_ROWS + tl.arange(0, BLOCK_ROWS)
        mask_r = rows < C
        offs = rows[:, None] * D + cols[None, :]
        n_t = _row_norms(txt_ptr, offs, mask_r, D, BLOCK_ROWS, BLOCK_D)
        tl.store(norm_t_ptr + rows, n_t, mask=mask_r)
        if CORRECT:
            inv_t = 1.0 / tl.maximum(n_t, eps)
            inv_0 = 1.0 / tl.maximum(_row_norms(frz_ptr, offs, mask_r, D, BLOCK_ROWS, BLOCK_D), eps)
            for d0 in range(0, D, BLOCK_D):
                m = mask_r[:, None] & (cols[None, :] < D - d0)
                x_t = tl.load(txt_ptr + d0 + offs, mask=m, other=0.0).to(tl.float32)
                x_0 = tl.load(frz_ptr + d0 + offs, mask=m, other=0.0).to(tl.float32)
                r = x_t * inv_t[:, None] - x_0 * inv_0[:, None]  # masked rows are 0
                tl.store(partial_ptr + pid * D + d0 + cols, tl.sum(r, axis=0), mask=cols < D - d0)
    else:
        rows = (pid - N_TEXT_PROGS) * BLOCK_ROWS + tl.arange(0, BLOCK_ROWS)
        mask_r = rows < B
        offs = rows[:, None] * D + cols[None, :]
        n_i = _row_norms(img_ptr, offs, mask_r, D, BLOCK_ROWS, BLOCK_D)
        tl.store(norm_i_ptr + rows, n_i, mask=mask_r)
        inv_i = 1.0 / tl.maximum(n_i, eps)
        for d0 in range(0, D, BLOCK_D):
            m = mask_r[:, None] & (cols[None, :] < D - d0)
            x = tl.load(img_ptr + d0 + offs, mask=m, other=0.0).to(tl.float32)
            tl.store(f_ptr + d0 + offs, x * inv_i[:, None], mask=m)


@triton.jit
def drift_logits_fwd_kernel(txt_ptr, norm_t_ptr, partial_ptr, f_ptr, ghat_ptr, norm_h_ptr, logits_ptr,
                            scale_ptr, scale_val, C, B, D, n_partials, inv_c, eps,
                            CORRECT: tl.constexpr, SCALE_FROM_PTR: tl.constexpr,
                            BLOCK_C: tl.constexpr, BLOCK_B: tl.constexpr, BLOCK_D: tl.constexpr,
                            BLOCK_P: tl.constexpr):
    """Forward pass 2. Grid: (cdiv(C, BLOCK_C), cdiv(B, BLOCK_B)).

    Program (i, j) computes, for classes k in block i: gp_k = txt_k / max(norm_t[k], eps),
    h_k = gp_k - rbar (rbar summed from ``partial`` (n_partials, D)), norm_h[k] = ||h_k||, ghat_k = norm(h_k)
    (ghat = gp when not CORRECT), and the logits tile Z[block j, block i] = s f[block j] ghat[block i]^T.
    Programs with j == 0 also store ghat (C, D) and norm_h (C,); the others recompute them (cheap, elementwise)
    rather than wait for them. When CORRECT, a first sweep over D finds ||h_k|| and a second one writes ghat and
    accumulates the logits; without correction only the second sweep runs.
    """
    pid_c = tl.program_id(0)
    pid_b = tl.program_id(1)
    cols = tl.arange(0, BLOCK_D)
    rows = pid_c * BLOCK_C + tl.arange(0, BLOCK_C)
    mask_r = rows < C
    offs = rows[:, None] * D + cols[None, :]  # (BLOCK_C, BLOCK_D)
    writer = pid_b == 0
    rows_b = pid_b * BLOCK_B + tl.arange(0, BLOCK_B)
    mask_b = rows_b < B
    offs_b = rows_b[:, None] * D + cols[None, :]  # (BLOCK_B, BLOCK_D)
    ps = tl.arange(0, BLOCK_P)
    p_offs = ps[:, None] * D + cols[None, :]
    inv_t = 1.0 / tl.maximum(tl.load(norm_t_ptr + rows, mask=mask_r, other=1.0), eps)
    inv_h = tl.full((BLOCK_C,), 1.0, dtype=tl.float32)
    ss = tl.zeros((BLOCK_C, BLOCK_D), dtype=tl.float32)
    acc = tl.zeros((BLOCK_B, BLOCK_C), dtype=tl.float32)
    for sweep in tl.static_range(0 if CORRECT else 1, 2):
        for d0 in range(0, D, BLOCK_D):
            m = mask_r[:, None] & (cols[None, :] < D - d0)
            g = tl.load(txt_ptr + d0 + offs, mask=m, other=0.0).to(tl.float32) * inv_t[:, None]  # gp
            if CORRECT:
                drift = tl.zeros((BLOCK_P, BLOCK_D), dtype=tl.float32)  # rbar[d0:] from the partial rows
                for p0 in range(0, n_partials, BLOCK_P):
                    pm = (ps[:, None] < n_partials - p0) & (cols[None, :] < D - d0)
                    drift += tl.load(partial_ptr + p0 * D + d0 + p_offs, mask=pm, other=0.0)
                drift = tl.sum(drift, axis=0) * inv_c
                g = tl.where(m, (g - drift[None, :]) * inv_h[:, None], 0.0)  # h in sweep 0, ghat in sweep 1
            if sweep == 0:
                ss += g * g
            else:
                tl.store(ghat_ptr + d0 + offs, g, mask=m & writer)
                f = tl.load(f_ptr + d0 + offs_b, mask=mask_b[:, None] & (cols[None, :] < D - d0), other=0.0)
                acc = tl.dot(f, tl.trans(g), acc, input_precision="ieee")  # (BLOCK_B, BLOCK_C)
        if sweep == 0:
            n_h = tl.sqrt(tl.sum(ss, axis=1))
            tl.store(norm_h_ptr + rows, n_h, mask=mask_r & writer)
            inv_h = 1.0 / tl.maximum(n_h, eps)
    s = _load_scale(scale_ptr, scale_val, SCALE_FROM_PTR)
    tl.store(logits_ptr + rows_b[:, None] * C + rows[None, :], acc * s, mask=mask_b[:, None] & mask_r[None, :])


@triton.jit
def drift_bwd_rows_kernel(dz_ptr, f_ptr, ghat_ptr, norm_h_ptr, dgo_ptr, dfo_ptr, dh_ptr, dpartial_ptr, df_ptr,
                          scale_ptr, scale_val, C, B, D, eps, N_TEXT_PROGS, N_D_BLOCKS,
                          CORRECT: tl.constexpr, HAS_DG_OUT: tl.constexpr, HAS_DF_OUT: tl.constexpr,
                          SCALE_FROM_PTR: tl.constexpr, BLOCK_C: tl.constexpr, BLOCK_B: tl.constexpr,
                          BLOCK_D: tl.constexpr, BLOCK_CI: tl.constexpr):
    """Backward pass 1. Grid: (N_TEXT_PROGS + cdiv(B, BLOCK_B) * N_D_BLOCKS,).

    Text program p (classes k in block p, N_TEXT_PROGS = cdiv(C, BLOCK_C), or 0 when txt needs no grad):
        dG_k = s sum_b dZ[b, k] f_b + dGhat_out_k
        CORRECT:  dh_k = (dG_k - ghat_k (ghat_k . dG_k) [||h_k|| >= eps]) / max(||h_k||, eps) -> dh (C, D),
                  dpartial[p, :] = sum_{k in block} dh_k   (N_TEXT_PROGS, D)
                  (sweep 0 over D finds ghat_k . dG_k, sweep 1 recomputes the dG tile and writes dh)
        otherwise dh_k = dG_k (ghat = gp, whose Jacobian pass 2 applies), one sweep.
    Image program (row block i, column block j): dF[i, j] = s dZ[i, :] ghat[:, j] + dF_out[i, j] -> df (B, D),
    a sum over all C classes in BLOCK_CI steps.
    """
    pid = tl.program_id(0)
    s = _load_scale(scale_ptr, scale_val, SCALE_FROM_PTR)
    cols = tl.arange(0, BLOCK_D)
    if pid < N_TEXT_PROGS:
        rows = pid * BLOCK_C + tl.arange(0, BLOCK_C)
        mask_r = rows < C
        offs = rows[:, None] * D + cols[None, :]  # (BLOCK_C, BLOCK_D)
        bs = tl.arange(0, BLOCK_B)
        dz_offs = bs[None, :] * C + rows[:, None]  # (BLOCK_C, BLOCK_B): dZ[b, k] read transposed
        f_offs = bs[:, None] * D + cols[None, :]  # (BLOCK_B, BLOCK_D)
        n_h = tl.load(norm_h_ptr + rows, mask=mask_r, other=1.0)
        inv_h = 1.0 / tl.maximum(n_h, eps)
        a2 = tl.zeros((BLOCK_C, BLOCK_D), dtype=tl.float32)
        a = tl.zeros((BLOCK_C,), dtype=tl.float32)
        for sweep in tl.static_range(0 if CORRECT else 1, 2):
            for d0 in range(0, D, BLOCK_D):
                mask_d = cols < D - d0
                m = mask_r[:, None] & mask_d[None, :]
                dg = tl.zeros((BLOCK_C, BLOCK_D), dtype=tl.float32)
                for b0 in range(0, B, BLOCK_B):
                    mb = bs < B - b0
                    dz_t = tl.load(dz_ptr + b0 * C + dz_offs, mask=mask_r[:, None] & mb[None, :], other=0.0)
                    fb = tl.load(f_ptr + b0 * D + d0 + f_offs, mask=mb[:, None] & mask_d[None, :], other=0.0)
                    dg = tl.dot(dz_t, fb, dg, input_precision="ieee")
                dg = dg * s
                if HAS_DG_OUT:
                    dg += tl.load(dgo_ptr + d0 + offs, mask=m, other=0.0)
                if CORRECT:
                    g = tl.load(ghat_ptr + d0 + offs, mask=m, other=0.0)
                    if sweep == 0:
                        a2 += g * dg
                    else:
                        dh = tl.where(m, (dg - g * a[:, None]) * inv_h[:, None], 0.0)
                        tl.store(dh_ptr + d0 + offs, dh, mask=m)
                        tl.store(dpartial_ptr + pid * D + d0 + cols, tl.sum(dh, axis=0), mask=mask_d)
                else:
                    tl.store(dh_ptr + d0 + offs, dg, mask=m)
            if sweep == 0:
                a = tl.where(n_h >= eps, tl.sum(a2, axis=1), 0.0)
    else:
        # Variables of this branch carry an i_ prefix: the compiler merges same-named values of both branches
        # and rejects different shapes.
        i_tile = pid - N_TEXT_PROGS
        i_rows = (i_tile // N_D_BLOCKS) * BLOCK_B + tl.arange(0, BLOCK_B)
        i_d0 = (i_tile % N_D_BLOCKS) * BLOCK_D
        i_mask_b = i_rows < B
        i_mask_d = cols < D - i_d0
        i_cs = tl.arange(0, BLOCK_CI)
        i_dz_offs = i_rows[:, None] * C + i_cs[None, :]  # (BLOCK_B, BLOCK_CI)
        i_g_offs = i_cs[:, None] * D + cols[None, :]  # (BLOCK_CI, BLOCK_D)
        i_acc = tl.zeros((BLOCK_B, BLOCK_D), dtype=tl.float32)
        for c0 in range(0, C, BLOCK_CI):
            i_mc = i_cs < C - c0
            i_dz = tl.load(dz_ptr + c0 + i_dz_offs, mask=i_mask_b[:, None] & i_mc[None, :], other=0.0)
            i_g = tl.load(ghat_ptr + c0 * D + i_d0 + i_g_offs, mask=i_mc[:, None] & i_mask_d[None, :], other=0.0)
            i_acc = tl.dot(i_dz, i_g, i_acc, input_precision="ieee")
        i_acc = i_acc * s
        i_m = i_mask_b[:, None] & i_mask_d[None, :]
        i_offs = i_rows[:, None] * D + cols[None, :]
        if HAS_DF_OUT:
            i_acc += tl.load(dfo_ptr + i_d0 + i_offs, mask=i_m, other=0.0)
        tl.store(df_ptr + i_d0 + i_offs, i_acc, mask=i_m)


@triton.jit
def _norm_backward_rows(x_ptr, dy_ptr, dx_ptr, partial_ptr, n_partials, inv_c, rows, mask_r, norm, D, eps,
                        SHIFTED: tl.constexpr, X_IS_UNIT: tl.constexpr, BLOCK_ROWS: tl.constexpr,
                        BLOCK_D: tl.constexpr, BLOCK_P: tl.constexpr):
    # dx = (dy' - y (y . dy') [norm >= eps]) / max(norm, eps), y = x / max(norm, eps) (x itself when X_IS_UNIT),
    # dy' = dy - (1/C) sum_p partial[p, :] when SHIFTED (the gradient of the drift mean, the same for all rows).
    cols = tl.arange(0, BLOCK_D)
    offs = rows[:, None] * D + cols[None, :]
    ps = tl.arange(0, BLOCK_P)
    p_offs = ps[:, None] * D + cols[None, :]
    inv = 1.0 / tl.maximum(norm, eps)
    dot2 = tl.zeros((BLOCK_ROWS, BLOCK_D), dtype=tl.float32)
    dot = tl.zeros((BLOCK_ROWS,), dtype=tl.float32)
    for sweep in tl.static_range(2):
        for d0 in range(0, D, BLOCK_D):
            m = mask_r[:, None] & (cols[None, :] < D - d0)
            y = tl.load(x_ptr + d0 + offs, mask=m, other=0.0).to(tl.float32)
            if not X_IS_UNIT:
                y = y * inv[:, None]
            dy = tl.load(dy_ptr + d0 + offs, mask=m, other=0.0)
            if SHIFTED:
                mean = tl.zeros((BLOCK_P, BLOCK_D), dtype=tl.float32)  # (1/C) sum_k dh_k [d0:], from the partials
                for p0 in range(0, n_partials, BLOCK_P):
                    pm = (ps[:, None] < n_partials - p0) & (cols[None, :] < D - d0)
                    mean += tl.load(partial_ptr + p0 * D + d0 + p_offs, mask=pm, other=0.0)
                dy = dy - tl.sum(mean, axis=0)[None, :] * inv_c
            if sweep == 0:
                dot2 += tl.where(m, y * dy, 0.0)
            else:
                dx = (dy - y * dot[:, None]) * inv[:, None]
                tl.store(dx_ptr + d0 + offs, dx.to(dx_ptr.dtype.element_ty), mask=m)
        if sweep == 0:
            dot = tl.where(norm >= eps, tl.sum(dot2, axis=1), 0.0)


@triton.jit
def drift_bwd_finish_kernel(txt_ptr, norm_t_ptr, dh_ptr, dpartial_ptr, dtxt_ptr,
                            f_ptr, norm_i_ptr, df_ptr, dimg_ptr, C, B, D, n_partials, inv_c, eps, N_TEXT_PROGS,
                            CORRECT: tl.constexpr, BLOCK_ROWS: tl.constexpr, BLOCK_D: tl.constexpr,
                            BLOCK_P: tl.constexpr):
    """Backward pass 2. Grid: (N_TEXT_PROGS + N_IMAGE_PROGS,), blocks of BLOCK_ROWS rows.

    Text rows: dgp_k = dh_k - mean with mean = (1/C) sum_p dpartial[p, :] = (1/C) sum_k dh_k (CORRECT), else
    dgp_k = dh_k; then dtxt_k = (dgp_k - gp_k (gp_k . dgp_k) [||txt_k|| >= eps]) / max(||txt_k||, eps), stored
    in txt's dtype. Image rows: dimg_b = (dF_b - f_b (f_b . dF_b) [||img_b|| >= eps]) / max(||img_b||, eps), in
    img's dtype. Every program re-sums the (few) partial rows of the mean itself instead of paying a launch.
    """
    pid = tl.program_id(0)
    if pid < N_TEXT_PROGS:
        rows = pid * BLOCK_ROWS + tl.arange(0, BLOCK_ROWS)
        mask_r = rows < C
        norm = tl.load(norm_t_ptr + rows, mask=mask_r, other=1.0)
        _norm_backward_rows(txt_ptr, dh_ptr, dtxt_ptr, dpartial_ptr, n_partials, inv_c, rows, mask_r, norm, D, eps,
                            CORRECT, False, BLOCK_ROWS, BLOCK_D, BLOCK_P)
    else:
        rows = (pid - N_TEXT_PROGS) * BLOCK_ROWS + tl.arange(0, BLOCK_ROWS)
        mask_r = rows < B
        norm = tl.load(norm_i_ptr + rows, mask=mask_r, other=1.0)
        # f already is img / max(||img||, eps): it is y.
        _norm_backward_rows(f_ptr, df_ptr, dimg_ptr, dpartial_ptr, n_partials, inv_c, rows, mask_r, norm, D, eps,
                            False, True, BLOCK_ROWS, BLOCK_D, BLOCK_P)
