"""Checksums of files on disk, to prove that a refused input changed nothing."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path


def tree_sha256(*roots: str | os.PathLike) -> dict[str, str]:
    """``{path: sha256}`` of every file under ``roots`` (a root may be a file), plus ``{folder: "dir"}`` entries,
    so that an added, removed or changed file or folder shows as a difference."""
    out: dict[str, str] = {}
    for root in map(Path, roots):
        if root.is_file():
            out[str(root)] = hashlib.sha256(root.read_bytes()).hexdigest()
            continue
        for dirpath, dirnames, filenames in os.walk(root):
            out[dirpath] = "dir"
            for name in filenames:
                p = Path(dirpath) / name
                out[str(p)] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out
