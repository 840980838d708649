"""Shared by benchmark scripts: the environment record written next to every result."""

from __future__ import annotations

import json
import os
import platform
import subprocess
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def environment() -> dict:
    import torch

    def commit() -> str:
        try:
            return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                  cwd=Path(__file__).parent, check=True).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            return "unknown"

    versions = {"torch": torch.__version__, "python": platform.python_version()}
    for mod in ("open_clip", "triton", "numpy"):
        try:
            versions[mod] = __import__(mod).__version__
        except ImportError:
            pass
    model, units = cpu_model_and_vector_units()
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else f"cpu ({model}, " \
        f"{os.cpu_count()} cores, {torch.get_num_threads()} torch threads, {' '.join(units) or 'no AVX'})"
    return {"device": device, "cpu": {"model": model, "cores": os.cpu_count(), "vector_units": units,
                                      "torch_cpu_capability": torch.backends.cpu.get_cpu_capability()},
            "commit": commit(), "versions": versions}


#: The /proc/cpuinfo flags that decide how fast the same code runs here (the Intel and AMD machines differ).
VECTOR_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "avx512_fp16", "amx_tile", "amx_bf16")


def cpu_model_and_vector_units() -> tuple[str, list[str]]:
    """The CPU's model name and which of :data:`VECTOR_FLAGS` it has (from ``/proc/cpuinfo`` on Linux)."""
    model, flags = platform.processor() or platform.machine(), set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "model name" and model in ("", platform.machine(), platform.processor()):
                    model = value.strip()
                elif key.strip() == "flags" and not flags:
                    flags = set(value.split())
    except OSError:
        pass
    return model, [u for u in VECTOR_FLAGS if u in flags]


def write_result(name: str, payload: dict) -> Path:
    """Write ``results/<name>.json`` with the environment record added."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps({"environment": environment(), **payload}, indent=2) + "\n")
    os.replace(tmp, path)
    return path
