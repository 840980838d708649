"""mmlop: Multi-Modal Low-Rank Prompting (MMLoP) for few-shot adaptation of open_clip CLIP models.

The public API is listed in ``__all__``; everything else is reached through submodules.

Quick use::

    import mmlop
    base = mmlop.load_base("ViT-B-16", pretrained="openai")      # QuickGELU chosen for OpenAI weights
    model = mmlop.MMLoP(base)                                    # 11,556 trainable parameters
    clf = mmlop.Classifier.from_pretrained("runs/pets/prompts", base, ["cat", "dog"])
    clf.predict(images)

Importing the package stays light: the configs and errors are loaded at once, every other name (and with it
torch, open_clip and the training package) on first access, and the built-in world registers its base and
datasets on the first lookup of their names.
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import TYPE_CHECKING, Any

from mmlop.config import LossConfig, MethodConfig, PromptConfig, TeacherConfig
from mmlop.errors import (
    ConfigError,
    DatasetError,
    MmlopError,
    PromptMismatchError,
    QuickGeluMismatchError,
    StoreError,
    UnsupportedModelError,
)
from mmlop.version import __version__

#: Public name -> the module that defines it; resolved on first access by ``__getattr__``.
_LAZY = {
    "DATASETS": "mmlop.data.catalog",
    "DatasetSplits": "mmlop.data.splits",
    "ImageDataset": "mmlop.data.image",
    "Items": "mmlop.data.items",
    "load_dataset": "mmlop.data.loading",
    "register_dataset": "mmlop.data.catalog",
    "Classifier": "mmlop.inference",
    "predict": "mmlop.inference",
    "logit_kl": "mmlop.losses",
    "mmlop_loss": "mmlop.losses",
    "uniform_drift_correction": "mmlop.ops.drift_logits",
    "BaseCLIP": "mmlop.model.factory",
    "base_from_model": "mmlop.model.factory",
    "load_base": "mmlop.model.factory",
    "MMLoP": "mmlop.model.prompted",
    "load_prompts": "mmlop.model.io",
    "save_prompts": "mmlop.model.io",
    "frozen_text_features": "mmlop.model.teacher",
    # `mmlop.train` is the function; the training machinery lives in the `mmlop.training` subpackage.
    "RunConfig": "mmlop.training.config",
    "build_config": "mmlop.training",
    "train": "mmlop.training",
}

if TYPE_CHECKING:  # static tools see the names eagerly
    from mmlop.data.catalog import DATASETS, register_dataset
    from mmlop.data.image import ImageDataset
    from mmlop.data.items import Items
    from mmlop.data.loading import load_dataset
    from mmlop.data.splits import DatasetSplits
    from mmlop.inference import Classifier, predict
    from mmlop.losses import logit_kl, mmlop_loss
    from mmlop.model.factory import BaseCLIP, base_from_model, load_base
    from mmlop.model.io import load_prompts, save_prompts
    from mmlop.model.prompted import MMLoP
    from mmlop.model.teacher import frozen_text_features
    from mmlop.ops.drift_logits import uniform_drift_correction
    from mmlop.training import build_config, train
    from mmlop.training.config import RunConfig


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is not None:
        value = getattr(importlib.import_module(module), name)
    elif not name.startswith("__") and importlib.util.find_spec(f"{__name__}.{name}") is not None:
        value = importlib.import_module(f"{__name__}.{name}")  # `mmlop.training` etc. without importing them first
    else:
        raise AttributeError(f"module 'mmlop' has no attribute {name!r}")
    globals()[name] = value  # later accesses skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "__version__",
    "BaseCLIP",
    "DATASETS",
    "DatasetError",
    "DatasetSplits",
    "ImageDataset",
    "Items",
    "Classifier",
    "ConfigError",
    "MmlopError",
    "LossConfig",
    "MMLoP",
    "MethodConfig",
    "MmlopError",
    "PromptConfig",
    "PromptMismatchError",
    "QuickGeluMismatchError",
    "RunConfig",
    "StoreError",
    "TeacherConfig",
    "UnsupportedModelError",
    "base_from_model",
    "build_config",
    "frozen_text_features",
    "load_base",
    "load_dataset",
    "load_prompts",
    "logit_kl",
    "mmlop_loss",
    "predict",
    "register_dataset",
    "save_prompts",
    "train",
    "uniform_drift_correction",
]
