"""Shared by the training-loop tests and run as a subprocess by the SIGKILL test: a tiny model, a deterministic
dataset with random augmentation, and one call of ``fit``."""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("TRITON_INTERPRET", "1")

import torch  # noqa: E402
from torch.utils.data import Dataset  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tiny_models import make_tiny_clip  # noqa: E402

from mmlop.config import LossConfig, PromptConfig  # noqa: E402
from mmlop.model import MMLoP, base_from_model  # noqa: E402
from mmlop.model.teacher import frozen_text_features  # noqa: E402
from mmlop.training.config import OptimConfig  # noqa: E402
from mmlop.training.distributed import DistInfo  # noqa: E402
from mmlop.training.loop import FitCheckpoint, FitConfig, FitData, fit  # noqa: E402

CLASSES = ["cat", "dog", "bird", "fish"]


class AugmentedImages(Dataset):
    """Fixed images per index; a random flip and noise drawn from the global torch RNG, like torchvision."""

    def __init__(self, n: int = 32):
        g = torch.Generator().manual_seed(123)
        self.images = torch.randn(n, 3, 32, 32, generator=g)
        self.labels = [i % len(CLASSES) for i in range(n)]

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        x = self.images[i]
        if torch.rand(()) < 0.5:
            x = x.flip(-1)
        return x + 0.1 * torch.randn_like(x), self.labels[i]


def make_model() -> MMLoP:
    import open_clip

    base = base_from_model(make_tiny_clip(), open_clip.get_tokenizer("ViT-B-16"), "tiny-test")
    return MMLoP(base, PromptConfig(depth=2), generator=torch.Generator().manual_seed(7))


def fixed_batch(n: int = 8):
    """A fresh model, its frozen text features and one fixed batch: (model, g0, images, labels, frozen images)."""
    model = make_model()
    g0 = frozen_text_features(model, CLASSES, ["a photo of a {}.", "a {}."])
    data = AugmentedImages()
    images, labels = data.images[:n], torch.tensor(data.labels[:n])
    with torch.no_grad():
        f0 = model.encode_image(images, prompted=False, normalize=True)
    return model, g0, images, labels, f0


def run_fit(run_dir: Path, epochs: int, *, resume: bool = False, dist_info: DistInfo = DistInfo(),
            batch_size: int = 8, lr: float = 0.05) -> MMLoP:
    torch.set_num_threads(1)
    model = make_model()
    g0 = frozen_text_features(model, CLASSES, ["a photo of a {}.", "a {}."])
    ds = AugmentedImages()
    fit(model, FitData(ds, CLASSES, g0),
        FitConfig(OptimConfig(epochs=epochs, batch_size=batch_size, lr=lr), LossConfig(), seed=3, progress=False),
        FitCheckpoint(run_dir, digest="test", resume=resume), dist_info=dist_info)
    return model


if __name__ == "__main__":
    run_fit(Path(sys.argv[1]), int(sys.argv[2]), resume=len(sys.argv) > 3)
