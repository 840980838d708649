"""The Triton kernels compile for a GPU (sm_90 cubin), checked on a CPU-only machine.

The interpreter runs the kernels' arithmetic but not the compiler, so a kernel can pass every interpreter test
and still fail to build on a GPU; this compiles each kernel variant the ops launch, in a subprocess without
``TRITON_INTERPRET``.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).with_name("_compile_kernels.py")


@pytest.mark.slow
def test_every_kernel_compiles_to_a_cubin_for_sm90():
    pytest.importorskip("triton")
    # The subprocess imports mmlop as this process does (the installed package, or PYTHONPATH in a dev tree).
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    proc = subprocess.run([sys.executable, str(SCRIPT)], env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    assert proc.stdout.count(" ok") == 10, proc.stdout
