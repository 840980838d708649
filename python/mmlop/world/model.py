"""The tiny open_clip CLIP of the synthetic world: its config, and loading the shipped weights offline."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from open_clip.model import CLIP
from open_clip.tokenizer import SimpleTokenizer
from safetensors.torch import load_file

from mmlop._io import read_json
from mmlop.data.transforms import CLIP_MEAN, CLIP_STD
from mmlop.world.generator import IMAGE_SIZE

ASSETS_DIR = Path(__file__).resolve().parents[1] / "assets"
WORLD_CLIP_NAME = "world_clip"

#: open_clip model config (the ``model_cfg`` of an open_clip JSON config).
MODEL_CFG: dict[str, Any] = {
    "embed_dim": 128,
    "vision_cfg": {"image_size": IMAGE_SIZE, "patch_size": 8, "width": 128, "layers": 4, "head_width": 32},
    "text_cfg": {"context_length": 24, "vocab_size": 49408, "width": 128, "heads": 4, "layers": 4},
}
# Same normalisation as OpenAI CLIP, so one preprocessing path serves the world and real checkpoints.
IMAGE_MEAN, IMAGE_STD = CLIP_MEAN, CLIP_STD


@dataclass(frozen=True)
class WorldPreprocess:
    """How images are fed to the world CLIP: size in pixels, then ``(x / 255 - mean) / std`` per channel."""

    image_size: int = IMAGE_SIZE
    mean: tuple[float, float, float] = IMAGE_MEAN
    std: tuple[float, float, float] = IMAGE_STD


PREPROCESS = WorldPreprocess()


def build_world_clip() -> CLIP:
    """A freshly initialised (untrained) world CLIP with :data:`MODEL_CFG`."""
    return CLIP(**MODEL_CFG)


def world_tokenizer() -> SimpleTokenizer:
    """open_clip's BPE tokenizer with the world's context length (works offline: the vocabulary ships with it)."""
    return SimpleTokenizer(context_length=MODEL_CFG["text_cfg"]["context_length"])


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """Normalise uint8 or float [0, 255] images ``(N, H, W, 3)`` to a float32 model input ``(N, 3, H, W)``."""
    x = torch.from_numpy(np.ascontiguousarray(images)).float().div_(255.0).permute(0, 3, 1, 2)
    mean = torch.tensor(PREPROCESS.mean).view(1, 3, 1, 1)
    std = torch.tensor(PREPROCESS.std).view(1, 3, 1, 1)
    return (x - mean) / std


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_world_clip_config(assets_dir: Path | None = None) -> dict[str, Any]:
    """The shipped ``world_clip.json`` (model config, weights hash, recorded zero-shot accuracies).

    Raises:
        FileNotFoundError: the file is missing.
        ValueError: it is not valid JSON or lacks a required key.
    """
    path = Path(assets_dir or ASSETS_DIR) / f"{WORLD_CLIP_NAME}.json"
    cfg = read_json(path, "the world CLIP config (written by scripts/pretrain_world.py)")
    for key in ("model_cfg", "weights", "sha256", "context_length"):
        if key not in cfg:
            raise ValueError(f"{path}: missing key {key!r}")
    return cfg


def load_world_clip(
    name: str = WORLD_CLIP_NAME, assets_dir: Path | None = None
) -> tuple[CLIP, SimpleTokenizer]:
    """Load the shipped pretrained world CLIP, offline, in eval mode and float32.

    Args:
        name: model name; only ``"world_clip"`` ships.
        assets_dir: folder holding ``<name>.json`` and its weights (default: the package's ``assets``).

    Returns:
        ``(model, tokenizer)``.

    Raises:
        KeyError: unknown model name.
        FileNotFoundError: the config or weights file is missing.
        ValueError: the weights' sha256 differs from the one in the config, or the weights do not fit.
    """
    if name != WORLD_CLIP_NAME:
        raise KeyError(f"unknown world model {name!r}; available: [{WORLD_CLIP_NAME!r}]")
    assets = Path(assets_dir or ASSETS_DIR)
    cfg = read_world_clip_config(assets)
    weights = assets / cfg["weights"]
    if not weights.is_file():
        raise FileNotFoundError(f"{weights}: world CLIP weights not found")
    digest = sha256_file(weights)
    if digest != cfg["sha256"]:
        raise ValueError(
            f"{weights}: sha256 {digest} does not match {cfg['sha256']} recorded in {assets / (name + '.json')}"
        )
    model = CLIP(**cfg["model_cfg"])
    state = {k: v.float() for k, v in load_file(str(weights)).items()}
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ValueError(f"{weights}: weights do not fit the config (missing {missing}, unexpected {unexpected})")
    model.eval()
    return model, SimpleTokenizer(context_length=int(cfg["context_length"]))
