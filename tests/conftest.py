"""Test configuration: offline, CPU, Triton interpreter.

TRITON_INTERPRET must be set before anything imports triton (``import open_clip`` does), so it is set here,
at the top of the root conftest, before any test module is imported.
"""

import os

os.environ.setdefault("TRITON_INTERPRET", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
