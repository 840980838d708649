"""Triton kernels for QuickGELU, y = x * sigmoid(1.702 x), elementwise over a contiguous tensor of N elements.

Forward:  y  = x * s,                              s = sigmoid(1.702 x)
Backward: dx = dy * (s + 1.702 x s (1 - s))

Only x is kept for the backward (the caller's autograd.Function saves it); s is recomputed, which costs one
exp per element and saves a tensor the size of the MLP's hidden activation per block. Loads are upcast to
float32 before any arithmetic (the interpreter computes half-type products wrongly otherwise, and sigmoid
needs the range); stores cast to the destination's dtype. One program handles BLOCK consecutive elements.
"""

import triton
import triton.language as tl


@triton.jit
def quick_gelu_fwd_kernel(x_ptr, y_ptr, N, BLOCK: tl.constexpr):
    """y[i] = x[i] * sigmoid(1.702 x[i]) for i < N. Grid: (cdiv(N, BLOCK),)."""
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < N
    x = tl.load(x_ptr + offs, mask=mask, other=0.0).to(tl.float32)
    s = tl.sigmoid(x * 1.702)
    tl.store(y_ptr + offs, (x * s).to(y_ptr.dtype.element_ty), mask=mask)


@triton.jit
def quick_gelu_bwd_kernel(x_ptr, dy_ptr, dx_ptr, N, BLOCK: tl.constexpr):
    """dx[i] = dy[i] * (s + 1.702 x[i] s (1 - s)), s = sigmoid(1.702 x[i]), for i < N. Grid: (cdiv(N, BLOCK),)."""
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < N
    x = tl.load(x_ptr + offs, mask=mask, other=0.0).to(tl.float32)
    dy = tl.load(dy_ptr + offs, mask=mask, other=0.0).to(tl.float32)
    s = tl.sigmoid(x * 1.702)
    dx = dy * (s + 1.702 * x * s * (1.0 - s))
    tl.store(dx_ptr + offs, dx.to(dx_ptr.dtype.element_ty), mask=mask)
