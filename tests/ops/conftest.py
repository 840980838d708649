"""The devices the Triton op tests run on: CPU tensors under the interpreter, and CUDA tensors compiled.

Under ``TRITON_INTERPRET=1`` (the default in tests) the Triton path runs on CPU tensors; the CUDA case needs a
GPU and a process without the interpreter (``TRITON_INTERPRET=0``, as ``benchmarks/gpu_check.sh`` runs it), so
that the real compiled kernels are what is tested.
"""

import os

import pytest
import torch


@pytest.fixture(params=[pytest.param("interpreter"), pytest.param("cuda", marks=pytest.mark.gpu)])
def device(request) -> torch.device:
    interpreted = os.environ.get("TRITON_INTERPRET") == "1"
    if request.param == "interpreter":
        if not interpreted:
            pytest.skip("CPU tensors take the Triton path only under TRITON_INTERPRET=1")
        return torch.device("cpu")
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    if interpreted:
        pytest.skip("CUDA kernels are tested compiled: run with TRITON_INTERPRET=0 (benchmarks/gpu_check.sh)")
    return torch.device("cuda")
