"""Saving and loading prompts alone: ``prompts.safetensors`` + ``mmlop_config.json`` (kilobytes, no base weights)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from mmlop._io import atomic_write_bytes, atomic_write_json, read_json
from mmlop.config import MethodConfig, PromptConfig
from mmlop.errors import PromptFileError, PromptFileNotFoundError, PromptMismatchError
from mmlop.model.factory import BaseCLIP, load_base
from mmlop.model.prompted import MMLoP
from mmlop.version import __version__

FORMAT = "mmlop-prompts/1"
WEIGHTS_FILE = "prompts.safetensors"
CONFIG_FILE = "mmlop_config.json"
#: Base properties that must match for saved prompts to be meaningful on a base.
_MATCH_KEYS = ("model", "pretrained", "text_width", "vision_width", "embed_dim", "text_layers", "vision_layers")


def tensors_digest(tensors: dict[str, torch.Tensor]) -> str:
    """SHA-256 over the names, dtypes, shapes and bytes of ``tensors`` in name order (identifies learned prompts)."""
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().to("cpu").contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


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
        "mmlop_version": __version__,
        "base": model.base_info.describe(),
        "prompt": model.config.to_dict(),
        "method": (method.to_dict() if method is not None else None),
        "num_parameters": model.num_trainable_parameters(),
        "sha256": tensors_digest(tensors),  # verified on load: a flipped bit would silently lower accuracy
        "extra": extra or {},
    }
    atomic_write_bytes(path / WEIGHTS_FILE, st_save(tensors, metadata={"format": FORMAT}))
    atomic_write_json(path / CONFIG_FILE, meta)  # written last: its presence marks a complete save
    return path


def read_prompt_config(path: str | Path) -> dict[str, Any]:
    """The JSON metadata saved next to the prompts.

    Raises:
        PromptFileNotFoundError: the folder or its config is missing (a FileNotFoundError).
        PromptFileError: a malformed config (a ValueError); the message names the file.
    """
    cfg_path = Path(path) / CONFIG_FILE
    if not Path(path).is_dir():
        missing = not Path(path).exists()
        error = PromptFileNotFoundError if missing else PromptFileError
        raise error(f"{path}: {'not found' if missing else 'a file'}; expected a folder written by "
                    f"mmlop.save_prompts (holding {CONFIG_FILE} and {WEIGHTS_FILE})")
    meta = read_json(cfg_path, "the metadata of a folder written by mmlop.save_prompts", error=PromptFileError,
                     missing=PromptFileNotFoundError)
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        found = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
        raise PromptFileError(f"{cfg_path}: format {found!r}, expected {FORMAT!r}")
    for key, kind in (("base", dict), ("prompt", dict)):
        if not isinstance(meta.get(key), kind):
            raise PromptFileError(f"{cfg_path}: field {key!r} is {meta.get(key)!r}; expected a JSON object")
    return meta


def saved_method(path: str | Path) -> MethodConfig:
    """The method (prompts, loss, teacher) recorded with saved prompts; the defaults for prompts saved without one.

    Evaluating saved prompts as they were trained needs it: the teacher templates and the test-time drift
    correction of ``method.loss.udc_at_test``.

    Raises:
        FileNotFoundError, ValueError: missing or malformed metadata (the message names the file).
        ConfigError: the recorded method has an invalid field.
    """
    meta = read_prompt_config(path)
    if not meta.get("method"):
        return MethodConfig()
    return MethodConfig.from_dict(meta["method"], source=str(Path(path) / CONFIG_FILE))


def load_prompts(path: str | Path, base: BaseCLIP, *, check_pretrained: bool = True) -> MMLoP:
    """Rebuild a prompted model from saved prompts on a base model.

    Args:
        path: Folder written by :func:`save_prompts`.
        base: The base to load onto; it must be the one the prompts were trained on.
        check_pretrained: Also require the same pretrained tag/checkpoint (not only the same architecture).

    Raises:
        PromptMismatchError: the base differs (the message names both).
        PromptFileNotFoundError: a missing folder or file.
        PromptFileError: corrupt or inconsistent files, or tensors that differ from their recorded SHA-256.
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
        raise PromptFileNotFoundError(f"{weights} not found next to {CONFIG_FILE}") from None
    except Exception as e:  # safetensors raises its own error types on corrupt headers
        raise PromptFileError(f"{weights}: not a valid safetensors file ({e})") from e
    expected = {k: tuple(v.shape) for k, v in model.prompts.state_dict().items()}
    got = {k: tuple(v.shape) for k, v in tensors.items()}
    if expected != got:
        raise PromptFileError(f"{weights}: tensors {got} do not match the config's expected {expected}")
    recorded = meta.get("sha256")  # absent in files saved before the digest existed: those load unchecked
    if recorded is not None and tensors_digest(tensors) != recorded:
        raise PromptFileError(f"{weights}: the tensors' SHA-256 differs from the one recorded in {CONFIG_FILE} "
                              "(the file was damaged or edited); expected the prompts as saved: restore or "
                              "retrain them")
    device = next(base.model.parameters()).device
    model.prompts.load_state_dict({k: v.to(device) for k, v in tensors.items()})
    return model.to(device)


def load_prompts_on_saved_base(path: str | Path, *, model: str | None = None, pretrained: str | None = None,
                               device: str | torch.device = "cpu") -> MMLoP:
    """Load saved prompts onto the base recorded with them (``mmlop_config.json``), as ``mmlop eval``,
    ``predict`` and ``export`` do.

    Args:
        path: Folder written by :func:`save_prompts`.
        model, pretrained: Override the recorded architecture / pretrained tag or checkpoint.
        device: Where to put the model.

    Raises:
        PromptFileNotFoundError, PromptFileError: missing or malformed files.
        PromptMismatchError: an override names a base the prompts were not trained on.
    """
    saved = read_prompt_config(path)["base"]
    base = load_base(model or saved["model"], saved["pretrained"] if pretrained is None else pretrained,
                     device=device)
    return load_prompts(path, base)
