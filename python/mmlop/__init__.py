"""mmlop: Multi-Modal Low-Rank Prompting (MMLoP) for few-shot adaptation of open_clip CLIP models.

The public API is listed in ``__all__``; everything else is reached through submodules.

Quick use::

    import mmlop
    base = mmlop.load_base("ViT-B-16", pretrained="openai")      # QuickGELU chosen for OpenAI weights
    model = mmlop.MMLoP(base)                                    # 11,556 trainable parameters
    clf = mmlop.Classifier.from_pretrained("runs/pets/prompts", base, ["cat", "dog"])
    clf.predict(images)
"""

from importlib.metadata import PackageNotFoundError, version as _pkg_version

try:
    __version__ = _pkg_version("mmlop")
except PackageNotFoundError:  # running from a source tree without installing
    __version__ = "0.0.0+source"

from mmlop.config import ConfigError, LossConfig, MethodConfig, PromptConfig, TeacherConfig  # noqa: E402
from mmlop.errors import MmlopError  # noqa: E402
from mmlop.data import (  # noqa: E402
    DATASETS,
    DatasetError,
    DatasetSplits,
    ImageDataset,
    Items,
    load_dataset,
    register_dataset,
)
from mmlop.inference import Classifier, predict  # noqa: E402
from mmlop.losses import logit_kl, mmlop_loss, uniform_drift_correction  # noqa: E402
from mmlop.model import (  # noqa: E402
    BaseCLIP,
    MMLoP,
    QuickGeluMismatchError,
    UnsupportedModelError,
    base_from_model,
    load_base,
)
from mmlop.model.io import PromptMismatchError, load_prompts, save_prompts  # noqa: E402
from mmlop.model.teacher import frozen_text_features  # noqa: E402

# `mmlop.train` is the function; the training machinery lives in the `mmlop.training` subpackage.
from mmlop.training import RunConfig, build_config, train  # noqa: E402

from mmlop import builtin as _builtin  # noqa: E402

_builtin.register()

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
    "PromptConfig",
    "PromptMismatchError",
    "QuickGeluMismatchError",
    "RunConfig",
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
