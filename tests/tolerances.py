"""Float comparisons with a stated bound: errors relative to the reference's largest entry (normwise), in float64.

A normwise bound holds on any CPU where an element-wise ``rtol`` may not: entries near zero carry an absolute rounding
error of the size of the tensor's large entries, whatever order a CPU's kernels sum in.
"""

from __future__ import annotations

import torch


def max_rel(actual: torch.Tensor, expected: torch.Tensor) -> float:
    """Largest |actual - expected| divided by the largest |expected| (0 for two all-zero tensors)."""
    err = (actual.double() - expected.double()).abs().max().item()
    scale = expected.double().abs().max().item()
    return err / scale if scale > 0 else err


def assert_close_rel(actual: torch.Tensor, expected: torch.Tensor, rel: float, what: str) -> None:
    """Assert equal shapes and ``max |actual - expected| <= rel * max |expected|``."""
    assert actual.shape == expected.shape, f"{what}: shape {tuple(actual.shape)} vs {tuple(expected.shape)}"
    err = (actual.double() - expected.double()).abs().max().item()
    scale = expected.double().abs().max().item()
    assert err <= rel * scale + 1e-30, f"{what}: max error {err:.3g} vs max magnitude {scale:.3g} (bound {rel:g})"
