"""Which path a fused op takes: Triton or the pure-torch reference."""

import pytest
import torch

from mmlop.ops._dispatch import ops_mode, use_triton


def test_interpreter_makes_cpu_tensors_take_triton(monkeypatch):
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    assert use_triton(torch.zeros(2), None)


def test_cpu_without_interpreter_takes_reference(monkeypatch):
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    assert not use_triton(torch.zeros(2))


def test_reference_switch_wins_everywhere(monkeypatch):
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    monkeypatch.setenv("MMLOP_OPS", "Reference")
    assert ops_mode() == "reference"
    assert not use_triton(torch.zeros(2))


def test_float64_and_no_tensors_take_reference(monkeypatch):
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    assert not use_triton(torch.zeros(2, dtype=torch.float64))
    assert not use_triton(None, None)


def test_unknown_mode_is_rejected(monkeypatch):
    monkeypatch.setenv("MMLOP_OPS", "fast")
    with pytest.raises(ValueError, match="MMLOP_OPS='fast'.*auto.*reference"):
        use_triton(torch.zeros(2))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_tensors_take_triton(monkeypatch):
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    assert use_triton(torch.zeros(2, device="cuda"))
