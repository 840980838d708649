"""Which autocast a precision gets on the CPU (the step itself under CPU bf16: tests/training/test_amp.py)."""

import pytest
import torch

from mmlop.training.loop import autocast_context


def test_bf16_autocast_on_cpu_and_fp16_refused():
    with autocast_context(torch.device("cpu"), "amp_bf16"):
        assert torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == torch.bfloat16
    with autocast_context(torch.device("cpu"), "fp32"):
        assert not torch.is_autocast_enabled("cpu")
    with pytest.raises(ValueError, match="'amp_fp16' needs CUDA.*amp_bf16 or fp32"):
        autocast_context(torch.device("cpu"), "amp_fp16")
    with pytest.raises(ValueError, match="precision 'fp8'"):
        autocast_context(torch.device("cpu"), "fp8")
