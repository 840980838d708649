"""Weights users already have: OpenAI's TorchScript checkpoints, read without running them.

The ``clip`` package downloads OpenAI's weights as TorchScript archives (``~/.cache/clip/ViT-B-16.pt``).
``torch.load(weights_only=True)`` refuses them and ``torch.jit.load`` would run the archive's code, so this
module reads only the tensors: the archive is a zip holding ``<prefix>/data.pkl`` (the pickled module tree) and
``<prefix>/data/<key>`` (one raw storage per key). :class:`_TensorOnlyUnpickler` resolves exactly the
tensor-rebuild function, the storage dtypes, ``OrderedDict`` and the archive's own ``__torch__.*`` module
classes, the last three as inert stand-ins; every other global is refused before anything is called (the same
approach as :mod:`mmlop.data.pickle_compat` takes with foreign few-shot pickles).

The tensors carry OpenAI's names, which are also open_clip's ``CLIP`` names, so the open_clip model is built
from the state dict (architecture inferred from the tensor shapes) and checked against a named architecture.
"""

from __future__ import annotations

import pickle
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from mmlop.errors import WeightsFileError

__all__ = ["is_torchscript_archive", "read_torchscript_tensors", "openai_state_dict_config",
           "load_openai_archive", "check_architecture"]

#: Storage classes a TorchScript pickle may name, and the dtype each holds.
_STORAGE_DTYPES = {
    "FloatStorage": torch.float32, "HalfStorage": torch.float16, "BFloat16Storage": torch.bfloat16,
    "DoubleStorage": torch.float64, "LongStorage": torch.int64, "IntStorage": torch.int32,
    "ShortStorage": torch.int16, "CharStorage": torch.int8, "ByteStorage": torch.uint8, "BoolStorage": torch.bool,
}
#: Bookkeeping tensors of OpenAI's archives that are no weights (open_clip drops them too).
_NON_WEIGHTS = ("input_resolution", "context_length", "vocab_size")


@dataclass(frozen=True)
class _Dtype:
    """Stand-in for a ``torch.<X>Storage`` global: only says which dtype the storage holds."""

    dtype: torch.dtype


class _ScriptModule:
    """Stand-in for one of the archive's ``__torch__.*`` module classes: keeps its attributes, runs nothing."""

    def __init__(self, *args: Any) -> None:
        self.state: dict[str, Any] = {}

    def __setstate__(self, state: object) -> None:
        if not isinstance(state, dict):
            raise pickle.UnpicklingError(f"module state must be a dict, got {type(state).__name__}")
        self.state = state


def _empty_ordered_dict(*args: Any) -> dict:
    if args:
        raise pickle.UnpicklingError("OrderedDict with arguments is not allowed")
    return {}


class _TensorOnlyUnpickler(pickle.Unpickler):
    def __init__(self, file, archive: zipfile.ZipFile, prefix: str, path: Path):
        super().__init__(file)
        self._zip, self._prefix, self._path = archive, prefix, path
        self._storages: dict[str, torch.Tensor] = {}

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor
        if (module, name) == ("collections", "OrderedDict"):
            return _empty_ordered_dict
        if module == "torch" and name in _STORAGE_DTYPES:
            return _Dtype(_STORAGE_DTYPES[name])
        if module == "__torch__" or module.startswith("__torch__."):
            return _ScriptModule
        raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in a weights archive (only tensors, "
                                     "storages and the archive's module records are read)")

    def persistent_load(self, pid: object) -> torch.Tensor:
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage" and isinstance(pid[1], _Dtype)):
            raise pickle.UnpicklingError(f"unexpected persistent id {pid!r}; expected ('storage', dtype, key, ...)")
        _, kind, key, _location, numel = pid
        key = str(key)
        if key not in self._storages:
            member = f"{self._prefix}/data/{key}"
            try:
                raw = self._zip.read(member)
            except KeyError:
                raise pickle.UnpicklingError(f"storage {member} is missing from the archive") from None
            itemsize = torch.empty((), dtype=kind.dtype).element_size()
            if len(raw) != int(numel) * itemsize:
                raise pickle.UnpicklingError(f"storage {member} holds {len(raw)} bytes, expected {numel} x "
                                             f"{itemsize}")
            # bytearray: a writable copy, so the tensor owns its memory after the zip is closed.
            self._storages[key] = torch.frombuffer(bytearray(raw), dtype=kind.dtype) if raw else \
                torch.empty(0, dtype=kind.dtype)
        return self._storages[key]


def _rebuild_tensor(storage: Any, offset: int, size: tuple, stride: tuple, requires_grad: bool = False,
                    hooks: Any = None, *extra: Any) -> torch.Tensor:
    if not isinstance(storage, torch.Tensor) or storage.dim() != 1:
        raise pickle.UnpicklingError("a tensor must be rebuilt from one of the archive's storages")
    size, stride = tuple(int(s) for s in size), tuple(int(s) for s in stride)
    if size and (offset + sum((n - 1) * st for n, st in zip(size, stride)) >= storage.numel()):
        raise pickle.UnpicklingError(f"tensor of size {size} and stride {stride} at offset {offset} overruns its "
                                     f"storage of {storage.numel()} elements")
    return storage.as_strided(size, stride, int(offset)).clone()


def is_torchscript_archive(path: str | Path) -> bool:
    """Whether ``path`` is a TorchScript archive (a zip with ``<prefix>/data.pkl`` and ``<prefix>/code/``)."""
    path = Path(path)
    if not path.is_file() or not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as z:
        names = z.namelist()
    return any(n.endswith("/data.pkl") for n in names) and any("/code/" in n for n in names)


def read_torchscript_tensors(path: str | Path) -> dict[str, torch.Tensor]:
    """Every tensor attribute of a TorchScript archive's module tree, by dotted name, without running its code.

    Args:
        path: The archive (e.g. ``~/.cache/clip/ViT-B-16.pt``).

    Returns:
        ``{"visual.conv1.weight": tensor, ...}`` in the archive's dtypes (OpenAI's are mostly float16).

    Raises:
        WeightsFileError: not a TorchScript archive, a damaged one, or one naming any other global.
    """
    path = Path(path).expanduser()
    if not is_torchscript_archive(path):
        raise WeightsFileError(f"{path}: not a TorchScript archive (expected a zip with <name>/data.pkl and "
                              "<name>/code/, as the clip package downloads)")
    with zipfile.ZipFile(path) as z:
        pkl = next(n for n in z.namelist() if n.endswith("/data.pkl") and n.count("/") == 1)
        prefix = pkl.rsplit("/", 1)[0]
        try:
            with z.open(pkl) as f:
                root = _TensorOnlyUnpickler(f, z, prefix, path).load()
        except (pickle.UnpicklingError, EOFError, TypeError, ValueError, AttributeError, IndexError,
                KeyError, RuntimeError) as e:
            raise WeightsFileError(f"{path}: refused TorchScript archive: {e}") from None
    if not isinstance(root, _ScriptModule):
        raise WeightsFileError(f"{path}: data.pkl holds a {type(root).__name__}, expected a module record")
    tensors: dict[str, torch.Tensor] = {}
    stack: list[tuple[str, _ScriptModule]] = [("", root)]
    seen: set[int] = set()
    while stack:
        prefix_name, node = stack.pop()
        if id(node) in seen:  # a shared submodule is listed under its first name only
            continue
        seen.add(id(node))
        for key, value in node.state.items():
            name = f"{prefix_name}{key}"
            if isinstance(value, torch.Tensor):
                tensors[name] = value
            elif isinstance(value, _ScriptModule):
                stack.append((name + ".", value))
    return tensors


def openai_state_dict_config(state: dict[str, torch.Tensor]) -> dict[str, Any]:
    """The architecture of an OpenAI-layout ViT CLIP state dict, in open_clip's model-config form.

    Raises:
        WeightsFileError: the tensors are not a ViT CLIP in OpenAI's layout (ResNet towers are not supported).
    """
    need = ("visual.conv1.weight", "visual.positional_embedding", "visual.proj", "text_projection",
            "positional_embedding", "token_embedding.weight", "ln_final.weight")
    missing = [k for k in need if k not in state]
    if missing:
        raise WeightsFileError(f"not an OpenAI ViT CLIP state dict: missing {missing}")
    width = state["visual.conv1.weight"].shape[0]
    patch = state["visual.conv1.weight"].shape[-1]
    grid = round((state["visual.positional_embedding"].shape[0] - 1) ** 0.5)
    text_width = state["ln_final.weight"].shape[0]
    return {
        "embed_dim": int(state["text_projection"].shape[1]),
        "quick_gelu": True,  # every OpenAI CLIP was trained with QuickGELU
        "vision_cfg": {"image_size": int(patch * grid), "layers": _count_blocks(state, "visual.transformer"),
                       "width": int(width), "patch_size": int(patch)},
        "text_cfg": {"context_length": int(state["positional_embedding"].shape[0]),
                     "vocab_size": int(state["token_embedding.weight"].shape[0]), "width": int(text_width),
                     "heads": int(text_width // 64), "layers": _count_blocks(state, "transformer")},
    }


def _count_blocks(state: dict[str, torch.Tensor], prefix: str) -> int:
    return len({k.split(".")[len(prefix.split("."))+1] for k in state if k.startswith(f"{prefix}.resblocks.")})


def check_architecture(name: str, config: dict[str, Any], inferred: dict[str, Any], source: str) -> None:
    """Refuse a named architecture that differs from the checkpoint's (each differing field is named).

    Raises:
        WeightsFileError: a width, depth, patch, resolution or vocabulary differs.
    """
    fields = [("embed_dim",), ("vision_cfg", "width"), ("vision_cfg", "layers"), ("vision_cfg", "patch_size"),
              ("vision_cfg", "image_size"), ("text_cfg", "width"), ("text_cfg", "layers"),
              ("text_cfg", "context_length"), ("text_cfg", "vocab_size")]
    defaults = {("text_cfg", "width"): 512, ("text_cfg", "layers"): 12, ("text_cfg", "context_length"): 77,
                ("text_cfg", "vocab_size"): 49408, ("vision_cfg", "image_size"): 224}
    diffs = []
    for path in fields:
        want = inferred
        have: Any = config
        for p in path:
            want = want[p]
            have = have.get(p) if isinstance(have, dict) else None
        have = defaults.get(path) if have is None else have
        if have != want:
            diffs.append(f"{'.'.join(path)} {have} (config) vs {want} (checkpoint)")
    if diffs:
        raise WeightsFileError(f"{source} does not hold a {name}: " + "; ".join(diffs) +
                              ". Pass the matching --model (e.g. ViT-B-16, ViT-B-32, ViT-L-14)")


def load_openai_archive(path: str | Path, name: str, config: dict[str, Any] | None,
                        force_quick_gelu: bool | None = None) -> torch.nn.Module:
    """Build an open_clip ``CLIP`` (float32, QuickGELU) from an OpenAI TorchScript archive.

    Args:
        path: The archive.
        name: The architecture asked for (recorded with prompts; checked when ``config`` is given).
        config: The open_clip model config of ``name``, or None to take the architecture from the checkpoint.
        force_quick_gelu: False is refused (the weights were trained with QuickGELU).

    Returns:
        The model, weights loaded, in eval mode.

    Raises:
        WeightsFileError: not an archive, refused content, or an architecture mismatch.
        QuickGeluMismatchError: ``force_quick_gelu=False``.
    """
    from open_clip.model import build_model_from_openai_state_dict

    from mmlop.errors import QuickGeluMismatchError

    if force_quick_gelu is False:
        raise QuickGeluMismatchError(f"{path}: OpenAI weights were trained with QuickGELU, but "
                                     "force_quick_gelu=False; use None or True")
    state = read_torchscript_tensors(path)
    for key in _NON_WEIGHTS:
        state.pop(key, None)
    inferred = openai_state_dict_config(state)
    if config is not None:
        check_architecture(name, config, inferred, str(path))
    # open_clip keeps the causal mask as a non-persistent buffer; an archive that lists it would fail strict loading.
    state = {k: v for k, v in state.items() if not k.endswith("attn_mask")}
    try:
        model = build_model_from_openai_state_dict(state, quick_gelu=True, cast_dtype=None)
    except RuntimeError as e:  # load_state_dict: missing or unexpected keys, or shapes
        raise WeightsFileError(f"{path}: the tensors do not fit an open_clip CLIP: {e}") from None
    return model.float().eval()
