"""The package's shape: a light import, one exception base, native errors of the Python types."""

import subprocess
import sys
from pathlib import Path

import pytest

import mmlop
from mmlop import _native, errors

PYTHON_DIR = str(Path(mmlop.__file__).resolve().parents[1])


def _modules_after(code: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", f"import sys\n{code}\nprint(' '.join(sys.modules))"],
                         capture_output=True, text=True, check=True, env={"PYTHONPATH": PYTHON_DIR, "PATH": ""})
    return set(out.stdout.split())


def test_import_mmlop_loads_neither_training_nor_the_world_nor_torch():
    loaded = _modules_after("import mmlop")
    assert not {"mmlop.training", "mmlop.world", "torch", "open_clip"} & loaded


def test_cli_help_imports_no_torch():
    loaded = _modules_after("import contextlib, io\nfrom mmlop.cli import main\n"
                            "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
                            "    main(['--help'])")
    assert "mmlop.cli" in loaded and "torch" not in loaded


def test_every_public_name_resolves():
    for name in mmlop.__all__:
        assert getattr(mmlop, name) is not None, name
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        mmlop.nope  # noqa: B018
    assert _modules_after("import mmlop\nassert mmlop.training.run") >= {"mmlop.training"}  # subpackages on access


def test_every_package_error_derives_from_mmlop_error():
    for name in errors.__all__:
        assert issubclass(getattr(errors, name), errors.MmlopError), name
    assert issubclass(mmlop.DatasetError, ValueError) and issubclass(errors.RunExistsError, FileExistsError)


def test_native_errors_are_the_package_types(tmp_path):
    with pytest.raises(mmlop.DatasetError, match="not found"):
        _native.list_class_dirs(str(tmp_path / "missing"))
    bad = tmp_path / "bad.store"
    bad.write_bytes(b"not a store at all, just some bytes" * 10)
    with pytest.raises(mmlop.StoreError, match="bad.store"):
        _native.Store(bad, verify=True, dtype="float32", width=4, fingerprint="x")
