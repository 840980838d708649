"""Training checkpoints: prompts + optimiser state + progress in ONE safetensors file, replaced atomically after
every epoch, so a killed run always leaves the last complete epoch behind."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from mmlop._io import atomic_write_bytes
from mmlop.errors import CheckpointError
from mmlop.model.prompted import MMLoP

CHECKPOINT_FILE = "checkpoint.safetensors"


def config_digest(config: dict) -> str:
    """Digest of the settings that must not change between a run and its resumption."""
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:16]


@dataclass
class Checkpoint:
    epoch: int  # last completed epoch (0-based)
    digest: str


def save_checkpoint(path: Path, model: MMLoP, optimizer: torch.optim.Optimizer, epoch: int, digest: str) -> None:
    """Atomically write prompts, SGD momentum buffers and the completed epoch."""
    tensors = {f"prompt.{k}": v.detach().cpu().contiguous() for k, v in model.prompts.state_dict().items()}
    names = {id(p): n for n, p in model.prompts.named_parameters()}
    for group in optimizer.param_groups:
        for p in group["params"]:
            buf = optimizer.state.get(p, {}).get("momentum_buffer")
            if buf is not None:
                tensors[f"momentum.{names[id(p)]}"] = buf.detach().cpu().contiguous()
    meta = {"epoch": str(epoch), "digest": digest, "format": "mmlop-checkpoint/1"}
    atomic_write_bytes(path / CHECKPOINT_FILE, st_save(tensors, metadata=meta))


def load_checkpoint(path: Path, model: MMLoP, optimizer: torch.optim.Optimizer, digest: str) -> Checkpoint | None:
    """Restore a checkpoint written by :func:`save_checkpoint`; None when there is none.

    Raises:
        CheckpointError: corrupt file, or written by a run with different settings.
    """
    file = path / CHECKPOINT_FILE
    if not file.exists():
        return None
    try:
        from safetensors import safe_open

        with safe_open(str(file), "pt") as f:
            meta = f.metadata() or {}
        tensors = st_load(file.read_bytes())
    except Exception as e:
        raise CheckpointError(f"{file}: unreadable checkpoint ({e}); delete it to start the run afresh") from e
    if meta.get("digest") != digest:
        raise CheckpointError(f"{file} was written by a run with different settings (digest {meta.get('digest')} "
                              f"!= {digest}); use a new run name or delete the checkpoint")
    device = next(model.prompts.parameters()).device
    state = {k[len("prompt."):]: v.to(device) for k, v in tensors.items() if k.startswith("prompt.")}
    model.prompts.load_state_dict(state)
    params = dict(model.prompts.named_parameters())
    for k, v in tensors.items():
        if k.startswith("momentum."):
            optimizer.state[params[k[len("momentum."):]]]["momentum_buffer"] = v.to(device)
    return Checkpoint(int(meta["epoch"]), digest)
