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
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else f"cpu ({os.cpu_count()} cores, " \
        f"{torch.get_num_threads()} torch threads, {platform.processor() or platform.machine()})"
    return {"device": device, "commit": commit(), "versions": versions}


def write_result(name: str, payload: dict) -> Path:
    """Write ``results/<name>.json`` with the environment record added."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps({"environment": environment(), **payload}, indent=2) + "\n")
    os.replace(tmp, path)
    return path
