"""The built-in offline benchmark through the public API: base, datasets, preset, and MMLoP raising base accuracy."""

import pytest
import torch

import mmlop
from mmlop.world.builtin import WORLD_MODEL, world_datasets
from mmlop.config import LossConfig, PromptConfig
from mmlop.templates import get_templates
from mmlop.data.transforms import build_test_transform, build_train_transform
from mmlop.training import build_config
from mmlop.training.config import OptimConfig
from mmlop.training.evaluate import EvalConfig, accuracy
from mmlop.training.loop import FitCheckpoint, FitConfig, FitData, fit


def test_world_preset_is_the_default_and_complete():
    cfg = build_config()
    assert cfg.protocol == "b2n" and cfg.model == WORLD_MODEL and cfg.seeds == (1, 2, 3) and cfg.shots == 16
    assert cfg.datasets == world_datasets() and len(cfg.datasets) >= 5
    assert cfg.method.prompt.depth == 3 and cfg.method.prompt.is_shared and cfg.method.loss.udc


@pytest.mark.slow
def test_a_few_mmlop_epochs_raise_base_accuracy_on_the_world(tmp_path):
    torch.manual_seed(0)
    base = mmlop.load_base(WORLD_MODEL)
    splits = mmlop.load_dataset("world/colours", "", num_shots=16, seed=1, subsample="base")
    assert len(splits.classnames) >= 4 and len(splits.train) == 16 * len(splits.classnames)
    model = mmlop.MMLoP(base, PromptConfig(depth=3), generator=torch.Generator().manual_seed(1))
    test = mmlop.ImageDataset(splits.test, build_test_transform(base.image_size, base.mean, base.std))
    labels = [int(y) for y in splits.test.labels]

    def base_accuracy():
        return accuracy(model, test, labels, splits.classnames, EvalConfig(batch_size=250))["accuracy"]

    before = base_accuracy()
    g0 = mmlop.frozen_text_features(model, splits.classnames, get_templates("imagenet_templates_60"))
    train = mmlop.ImageDataset(splits.train, build_train_transform(base.image_size, base.mean, base.std,
                                                                    scale=(0.5, 1.0)))
    fit(model, FitData(train, splits.classnames, g0),
        FitConfig(OptimConfig(epochs=4, lr=0.01, batch_size=4), LossConfig(lambda_text=12.5, lambda_image=5.0), seed=1,
                  progress=False),
        FitCheckpoint(tmp_path, digest="t"))
    after = base_accuracy()
    assert after >= before + 3.0, (before, after)


def test_the_world_is_generated_under_mmlop_home_never_under_a_data_root(tmp_path, monkeypatch):
    import os

    from mmlop.world.builtin import world_data_root

    assert world_data_root() == __import__("pathlib").Path(os.environ["MMLOP_HOME"]) / "world"
    root = tmp_path / "user-data"
    root.mkdir()
    root.chmod(0o555)  # a read-only data root, as a shared dataset folder often is
    try:
        splits = mmlop.load_dataset("world/colours", str(root), num_shots=2, seed=1, subsample="base")
    finally:
        root.chmod(0o755)
    assert len(splits.train) == 2 * len(splits.classnames) and list(root.iterdir()) == []
    assert all(str(p).startswith(str(world_data_root())) for p in splits.train.paths[:3])
