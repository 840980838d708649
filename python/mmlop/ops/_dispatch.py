"""Choose between the Triton kernels and the pure-torch reference for one call of a fused op.

Rules, in order:

1. ``MMLOP_OPS=reference`` forces the reference everywhere (debugging, bisecting a numerical difference, or a
   machine whose Triton install is broken). ``MMLOP_OPS=auto`` (or unset) applies the rules below; any other
   value raises.
2. Float64 inputs take the reference: the kernels compute in float32, and float64 is only used for
   ``gradcheck``.
3. All tensors on CUDA take Triton.
4. All tensors on the CPU take Triton only under ``TRITON_INTERPRET=1`` (the test suite sets it), otherwise the
   reference.
5. Anything else (mixed devices, other accelerators, no ``triton`` package installed) takes the reference.

Nothing here imports triton: the check for its presence uses ``importlib.util.find_spec`` so CPU-only use stays
light.
"""

from __future__ import annotations

import importlib.util
import os

import torch

ENV_VAR = "MMLOP_OPS"
_MODES = ("auto", "reference")


def ops_mode() -> str:
    """Return the dispatch mode read from ``MMLOP_OPS``.

    Returns:
        ``"auto"`` (the default when the variable is unset or empty) or ``"reference"``.

    Raises:
        ValueError: if the variable holds any other value.
    """
    mode = os.environ.get(ENV_VAR, "").strip().lower() or "auto"
    if mode not in _MODES:
        raise ValueError(f"environment variable {ENV_VAR}={os.environ[ENV_VAR]!r}: expected one of {_MODES}")
    return mode


def _triton_installed() -> bool:
    return importlib.util.find_spec("triton") is not None


def use_triton(*tensors: torch.Tensor | None) -> bool:
    """Whether a fused op called on ``tensors`` should run its Triton kernels.

    Args:
        tensors: the op's tensor arguments; ``None`` entries are ignored.

    Returns:
        True to run Triton, False to run the pure-torch reference (see the module docstring for the rules).

    Raises:
        ValueError: if ``MMLOP_OPS`` holds an unknown value.
    """
    if ops_mode() == "reference":
        return False
    present = [t for t in tensors if t is not None]
    if not present or any(t.dtype == torch.float64 for t in present):
        return False
    devices = {t.device.type for t in present}
    if devices == {"cuda"}:
        return _triton_installed()
    if devices == {"cpu"}:
        return os.environ.get("TRITON_INTERPRET") == "1" and _triton_installed()
    return False
