"""Atomic file writes, the one helper for every file mmlop writes from Python: a temporary file in the target folder,
fsync, rename over the target, then fsync the folder so that the rename survives a crash. (The Rust core has its
twin, ``rust/core/src/atomic.rs``, for the feature store and the listing cache.)"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any


def umask_mode() -> int:
    """The mode a plain ``open()`` would give a new file: ``0o666`` less the process umask."""
    try:  # Linux reports it without changing it (setting it, below, briefly affects other threads)
        with open("/proc/self/status", encoding="ascii") as f:
            mask = next(int(line.split()[1], 8) for line in f if line.startswith("Umask:"))
    except (OSError, StopIteration, ValueError, IndexError):
        mask = os.umask(0o022)
        os.umask(mask)
    return 0o666 & ~mask


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see either the old file or the complete new one.

    The file gets the permissions of the umask, as a plain ``open()`` would (``mkstemp`` creates 0600, which
    locks out the other users of a shared data root or run folder).

    Args:
        path: The target file; its folder is created if needed.
        data: The complete new content.

    Raises:
        OSError: the folder or file cannot be written (the target is then unchanged).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, umask_mode())
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_folder(path.parent)


def _fsync_folder(folder: Path) -> None:
    if os.name != "posix":  # Windows cannot open a folder for fsync; its rename is durable enough
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_json(path: str | Path, expected: str, *, error: type[Exception] = ValueError,
              missing: type[Exception] = FileNotFoundError) -> Any:
    """The parsed content of a JSON file, with errors that name the file and what it should have been.

    Args:
        path: The file.
        expected: What the file is, for the messages (e.g. ``"an open_clip model JSON"``).
        error: The exception type for a file that is not UTF-8 JSON (e.g. :class:`mmlop.errors.ConfigError`).
        missing: The exception type for a missing file (a ``FileNotFoundError`` subclass).

    Raises:
        missing: ``"<path>: file not found; expected <expected>"``.
        error: ``"<path>: not valid JSON (<detail>)"``.
    """
    path = Path(path)
    if not path.is_file():
        raise missing(f"{path}: file not found; expected {expected}")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise error(f"{path}: not valid JSON ({e})") from e


def atomic_write_json(path: str | Path, obj: Any) -> None:
    """Atomically write ``obj`` as indented JSON."""
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode())
