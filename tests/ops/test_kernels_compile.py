"""The Triton kernels compile for a GPU (sm_90 cubin), checked on a CPU-only machine.

The interpreter runs the kernels' arithmetic but not the compiler, so a kernel can pass every interpreter test
and still fail to build on a GPU; this compiles each kernel variant the ops launch, in a subprocess without
``TRITON_INTERPRET``.
"""

import ast
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
    # One line per variant: "<kernel> {constexprs} ok". Name each variant by the flags that select its code path.
    compiled = []
    for line in proc.stdout.splitlines():
        name, _, rest = line.partition(" ")
        assert rest.endswith(" ok"), line
        flags = ast.literal_eval(rest[: -len(" ok")])
        compiled.append((name, tuple(f"{k}={flags[k]}" for k in ("CORRECT", "SHARED") if k in flags)))
    assert sorted(compiled) == sorted(EXPECTED_VARIANTS), proc.stdout


#: The kernel variants the ops launch: drift correction on and off for each drift kernel but the stats one (which
#: runs only with correction), prompt expansion's forward, and its backward with a shared and an independent U;
#: QuickGELU's forward and backward.
EXPECTED_VARIANTS = [
    ("drift_stats_kernel", ("CORRECT=True",)),
    *[(kernel, (f"CORRECT={c}",)) for kernel in ("drift_logits_fwd_kernel", "drift_bwd_rows_kernel",
                                                  "drift_bwd_finish_kernel") for c in (True, False)],
    ("expand_fwd_kernel", ()),
    ("expand_bwd_kernel", ("SHARED=True",)),
    ("expand_bwd_kernel", ("SHARED=False",)),
    ("quick_gelu_fwd_kernel", ()),
    ("quick_gelu_bwd_kernel", ()),
]
