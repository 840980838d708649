"""A restricted reader for the reference framework's pickles (protocol §2.2). It never runs foreign code.

The reference caches few-shot splits (``split_fewshot/shot_K-seed_S.pkl``) and the ImageNet listing
(``imagenet/preprocessed.pkl``) as pickles of ``dassl.data.datasets.base_dataset.Datum`` objects. Unpickling can
call any global the file names, so :class:`_RestrictedUnpickler` resolves exactly one global, Dassl's ``Datum``,
to the inert local record :class:`PickledDatum`; every other global is refused before anything is called.
``REDUCE``/``NEWOBJ`` can only call what ``find_class`` returns, so no callable is reachable.
"""

from __future__ import annotations

import os
import pickle
from dataclasses import dataclass

from mmlop.data.errors import DatasetError

__all__ = ["PickledDatum", "Record", "read_reference_pickle", "reroot", "MAX_PICKLE_BYTES"]

#: Refuse larger files (ImageNet's preprocessed.pkl, the largest legitimate one, is a few hundred MB).
MAX_PICKLE_BYTES = 2 << 30

_DATUM = ("dassl.data.datasets.base_dataset", "Datum")
_FIELDS = {"_impath": str, "_label": int, "_domain": int, "_classname": str}


class PickledDatum:
    """Inert stand-in for Dassl's ``Datum``: stores the four fields and nothing else."""

    __slots__ = ("impath", "label", "domain", "classname")

    def __setstate__(self, state: object) -> None:
        if not isinstance(state, dict) or set(state) != set(_FIELDS):
            got = sorted(state) if isinstance(state, dict) else type(state).__name__
            raise pickle.UnpicklingError(f"Datum state must have the keys {sorted(_FIELDS)}, got {got}")
        for key, typ in _FIELDS.items():
            value = state[key]
            if type(value) is not typ:  # exact types: bool is not a label
                raise pickle.UnpicklingError(f"Datum field {key} must be {typ.__name__}, got {type(value).__name__}")
        self.impath = state["_impath"]
        self.label = state["_label"]
        self.domain = state["_domain"]
        self.classname = state["_classname"]


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> type:
        if (module, name) == _DATUM:
            return PickledDatum
        raise pickle.UnpicklingError(
            f"global {module}.{name} is not allowed; only {'.'.join(_DATUM)} records may appear"
        )

    def persistent_load(self, pid: object) -> object:
        raise pickle.UnpicklingError("persistent ids are not allowed")


@dataclass(frozen=True)
class Record:
    """One stored datum: absolute path on the machine that wrote it, dataset-level label, class name."""

    impath: str
    label: int
    classname: str


def read_reference_pickle(path: str, allowed_keys: tuple[str, ...], max_bytes: int = MAX_PICKLE_BYTES) -> dict[str, list[Record]]:
    """Reads a reference cache pickle without executing any code it names.

    Args:
        path: The ``.pkl`` file.
        allowed_keys: Keys the top-level dict may have (``("train", "val")`` for few-shot caches,
            ``("train", "test")`` for ImageNet's ``preprocessed.pkl``); ``train`` is required.
        max_bytes: Size cap.

    Returns:
        ``{key: [Record, ...]}``.

    Raises:
        DatasetError: If the file is missing, too large, names any global other than Dassl's ``Datum``, or
            does not hold a dict of lists of Datum records with fields (str, int, int, str).
    """
    try:
        size = os.path.getsize(path)
    except OSError as e:
        raise DatasetError(f"{path}: cannot read reference pickle: {e}") from None
    if size > max_bytes:
        raise DatasetError(f"{path}: {size} bytes exceeds the {max_bytes}-byte limit for reference pickles")
    try:
        with open(path, "rb") as f:
            obj = _RestrictedUnpickler(f).load()
    except (pickle.UnpicklingError, EOFError, TypeError, ValueError, AttributeError, IndexError, KeyError) as e:
        raise DatasetError(f"{path}: refused reference pickle: {e}") from None
    except OSError as e:
        raise DatasetError(f"{path}: cannot read reference pickle: {e}") from None
    if not isinstance(obj, dict) or "train" not in obj or not set(obj) <= set(allowed_keys):
        got = sorted(map(str, obj)) if isinstance(obj, dict) else type(obj).__name__
        raise DatasetError(f"{path}: expected a dict with keys {list(allowed_keys)} ('train' required), got {got}")
    out: dict[str, list[Record]] = {}
    for key, records in obj.items():
        if not isinstance(records, list):
            raise DatasetError(f"{path}: {key!r} must be a list of Datum records, got {type(records).__name__}")
        for i, r in enumerate(records):
            if not isinstance(r, PickledDatum) or not hasattr(r, "impath"):
                raise DatasetError(f"{path}: entry {i} of {key!r} is a {type(r).__name__}, expected a Datum record")
        out[key] = [Record(r.impath, r.label, r.classname) for r in records]
    return out


def reroot(impath: str, prefix: str) -> str | None:
    """The part of a stored absolute path after the dataset's path prefix.

    ``/old/root/oxford_pets/images/a/b.jpg`` with prefix ``oxford_pets/images`` gives ``a/b.jpg``.

    Args:
        impath: Absolute path written on another machine.
        prefix: The dataset's path prefix relative to the data root.

    Returns:
        The relative path, or None when the prefix does not occur in ``impath``.
    """
    marker = "/" + prefix.strip("/") + "/"
    norm = impath.replace("\\", "/")  # caches written on Windows
    at = norm.find(marker)
    return None if at < 0 else norm[at + len(marker) :]
