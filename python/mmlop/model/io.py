"""Saving and loading prompts alone: ``prompts.safetensors`` + ``mmlop_config.json`` (kilobytes, no base weights)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from mmlop.errors import MmlopError
from mmlop._io import atomic_write_bytes, atomic_write_json
from mmlop.config import MethodConfig, PromptConfig
from mmlop.model.factory import BaseCLIP
from mmlop.model.prompted import MMLoP

FORMAT = "mmlop-prompts/1"
WEIGHTS_FILE = "prompts.safetensors"
CONFIG_FILE = "mmlop_config.json"
#: Base properties that must match for saved prompts to be meaningful on a base.
_MATCH_KEYS = ("model", "pretrained", "text_width", "vision_width", "embed_dim", "text_layers", "vision_layers")


class PromptMismatchError(MmlopError, ValueError):
    """Saved prompts do not belong to the base they are being loaded onto."""


def _version() -> str:
    from mmlop import __version__

    return __version__


def save_prompts(model: MMLoP, path: str | Path, *, method: MethodConfig | None = None,
                 extra: dict[str, Any] | None = None, overwrite: bool = False) -> Path:
    """Save the learned prompt factors and their configuration into the folder ``path``.

    Args:
        model: The prompted model.
        path: Target folder (created). Existing prompts there are kept unless ``overwrite=True``.
        method: Full method config to record (loss, teacher); only its prompt part is needed to load.
        extra: Free-form JSON metadata (dataset, epoch, metrics).
        overwrite: Replace existing prompts in ``path``.

    Returns:
        The folder.

    Raises:
        FileExistsError: ``path`` already holds prompts and ``overwrite`` is False.
    """
    path = Path(path)
    if (path / CONFIG_FILE).exists() and not overwrite:
        raise FileExistsError(f"{path / CONFIG_FILE} exists; pass overwrite=True to replace these prompts")
    tensors = {k: v.detach().to("cpu", torch.float32).contiguous() for k, v in model.prompts.state_dict().items()}
    meta = {
        "format": FORMAT,
        "mmlop_version": _version(),
        "base": model.base_info.describe(),
        "prompt": model.config.to_dict(),
        "method": (method.to_dict() if method is not None else None),
        "num_parameters": model.num_trainable_parameters(),
        "extra": extra or {},
    }
    atomic_write_bytes(path / WEIGHTS_FILE, st_save(tensors, metadata={"format": FORMAT}))
    atomic_write_json(path / CONFIG_FILE, meta)  # written last: its presence marks a complete save
    return path


def read_prompt_config(path: str | Path) -> dict[str, Any]:
    """The JSON metadata saved next to the prompts.

    Raises:
        FileNotFoundError, ValueError: missing or malformed file (the message names it).
    """
    cfg_path = Path(path) / CONFIG_FILE
    if not cfg_path.is_file():
        raise FileNotFoundError(f"{cfg_path} not found: expected a folder written by mmlop.save_prompts")
    try:
        meta = json.loads(cfg_path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{cfg_path}: not valid JSON ({e})") from e
    if meta.get("format") != FORMAT:
        raise ValueError(f"{cfg_path}: format {meta.get('format')!r}, expected {FORMAT!r}")
    return meta


def load_prompts(path: str | Path, base: BaseCLIP, *, check_pretrained: bool = True) -> MMLoP:
    """Rebuild a prompted model from saved prompts on a base model.

    Args:
        path: Folder written by :func:`save_prompts`.
        base: The base to load onto; it must be the one the prompts were trained on.
        check_pretrained: Also require the same pretrained tag/checkpoint (not only the same architecture).

    Raises:
        PromptMismatchError: the base differs (the message names both).
        ValueError: corrupt or inconsistent files.
    """
    path = Path(path)
    meta = read_prompt_config(path)
    saved, here = meta["base"], base.describe()
    keys = _MATCH_KEYS if check_pretrained else tuple(k for k in _MATCH_KEYS if k != "pretrained")
    diff = {k: (saved.get(k), here.get(k)) for k in keys if saved.get(k) != here.get(k)}
    if diff:
        detail = ", ".join(f"{k}: saved {a!r} vs base {b!r}" for k, (a, b) in diff.items())
        raise PromptMismatchError(
            f"prompts in {path} were trained on {saved.get('model')} (pretrained={saved.get('pretrained')!r}) and "
            f"cannot be loaded onto {here.get('model')} (pretrained={here.get('pretrained')!r}): {detail}")
    config = PromptConfig.from_dict(meta["prompt"], source=str(path / CONFIG_FILE))
    model = MMLoP(base, config)
    weights = path / WEIGHTS_FILE
    try:
        tensors = st_load(weights.read_bytes())
    except FileNotFoundError:
        raise FileNotFoundError(f"{weights} not found next to {CONFIG_FILE}") from None
    except Exception as e:  # safetensors raises its own error types on corrupt headers
        raise ValueError(f"{weights}: not a valid safetensors file ({e})") from e
    expected = {k: tuple(v.shape) for k, v in model.prompts.state_dict().items()}
    got = {k: tuple(v.shape) for k, v in tensors.items()}
    if expected != got:
        raise ValueError(f"{weights}: tensors {got} do not match the config's expected {expected}")
    device = next(base.model.parameters()).device
    model.prompts.load_state_dict({k: v.to(device) for k, v in tensors.items()})
    return model.to(device)
