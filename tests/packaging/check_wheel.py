"""Check a built wheel: the Triton kernel modules and the native extension are inside it, and both import
from the installed package (not from the source tree).

Usage: python tests/packaging/check_wheel.py dist/mmlop-*.whl
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import venv
import zipfile
from pathlib import Path

REQUIRED_PREFIXES = ("mmlop/kernels/", "mmlop/ops/", "mmlop/_native", "mmlop/reference_results.json", "mmlop/world/",
                     "mmlop/py.typed")


def main(wheel: str) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    for prefix in REQUIRED_PREFIXES:
        hits = [n for n in names if n.startswith(prefix)]
        if not hits:
            raise SystemExit(f"{wheel}: no file under {prefix!r}; the wheel has: {sorted(names)}")
    kernel_modules = sorted(n for n in names if n.startswith("mmlop/kernels/") and n.endswith(".py"))
    print(f"{wheel}: {len(names)} files; kernel modules: {kernel_modules}")

    # Import from an isolated install of the wheel that sees the current environment's torch/triton.
    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / "site"
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), wheel],
                       check=True)
        code = (
            "import importlib, pkgutil, mmlop, mmlop.kernels, mmlop._native as n;"
            f"assert mmlop.__file__.startswith({str(target)!r}), mmlop.__file__;"
            "mods=[m.name for m in pkgutil.iter_modules(mmlop.kernels.__path__)];"
            "[importlib.import_module('mmlop.kernels.'+m) for m in mods];"
            "print('imported from', mmlop.__file__, 'kernels', mods, 'native', n.__version__)"
        )
        subprocess.run([sys.executable, "-c", code], check=True, cwd=tmp,
                       env={"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin", "TRITON_INTERPRET": "1"})


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    main(sys.argv[1])
