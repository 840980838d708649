"""The built-in offline benchmark, wired into the public API: the tiny pretrained CLIP as the base model
``mmlop-world``, the synthetic suite as datasets ``world/<name>``, and the ``world`` preset that ``mmlop train``
runs by default.

The world is synthetic. Its numbers show the method doing what it is for (adapting to a shifted distribution from
a few shots while keeping zero-shot ability on unseen classes); they do not predict real-benchmark numbers.
"""

from __future__ import annotations

from pathlib import Path

from mmlop.paths import mmlop_home

#: Name of the shipped tiny CLIP for :func:`mmlop.load_base`.
WORLD_MODEL = "mmlop-world"
#: Suite seed and split sizes used when the datasets are materialised.
SUITE_SEED, TRAIN_PER_CLASS, VAL_PER_CLASS, TEST_PER_CLASS = 0, 20, 4, 50


def world_data_root() -> Path:
    """Where the generated suite lives: ``$MMLOP_HOME/world`` (default ``~/.cache/mmlop/world``).

    It is mmlop's own generated data, so it never goes under a user's data root (``--root`` may be read-only, or
    shared with other tools), whatever root the run names.
    """
    return Path(mmlop_home()) / "world"


def _world_reader(name: str):
    def read(root: str):  # noqa: ARG001 (the world ignores the data root: see world_data_root)
        from mmlop.data.custom import read_custom
        from mmlop.data.splits import DatasetSplits
        from mmlop.world import SUITE, materialize_suite

        folder = materialize_suite(world_data_root(), seed=SUITE_SEED, train_per_class=TRAIN_PER_CLASS,
                                   val_per_class=VAL_PER_CLASS, test_per_class=TEST_PER_CLASS, names=[name])[name]
        raw = read_custom(str(folder / SUITE[name].split_file))
        return DatasetSplits(f"world_{name}", raw.classnames, raw.train, raw.val, raw.test,
                             template=SUITE[name].template)

    return read


def _world_base():
    from mmlop.world import PREPROCESS, load_world_clip

    model, tokenizer = load_world_clip()
    return model, tokenizer, {"image_size": PREPROCESS.image_size, "mean": PREPROCESS.mean, "std": PREPROCESS.std,
                              "pretrained": "world_clip"}


def world_datasets() -> tuple[str, ...]:
    from mmlop.world import SUITE

    return tuple(f"world/{name}" for name in SUITE)


def register() -> None:
    """Register the built-in base and datasets (idempotent; called by :func:`mmlop._builtins.ensure_registered`
    on the first lookup of a name no one registered)."""
    from mmlop.data.catalog import register_dataset
    from mmlop.world import SUITE
    from mmlop.model.factory import register_base

    register_base(WORLD_MODEL, _world_base)
    for name in SUITE:
        register_dataset(f"world/{name}", _world_reader(name))


def world_preset() -> dict:
    """The ``world`` protocol preset: base-to-novel on the suite with the tiny CLIP, zero-shot vs MMLoP.

    The paper's recipe (batch 4, SGD, warm-up + cosine, symmetric KL, drift correction, T = V = 4, rank 1, shared U)
    with these changes for a 4-block, 128-wide, 48 px model, chosen by a small sweep on seed 1 that the README
    reports:

    - depth 3 (the paper's 9 of 12 blocks, scaled to 4);
    - L1 weights 12.5 / 5 instead of 25 / 10: the weights assume an element-mean L1 on 512-d unit features, and
      at D = 128 each element of a unit vector is twice as large for the same angle, so halving keeps the
      paper's strength;
    - lr 0.01, 12 epochs, and RandomResizedCrop scale (0.5, 1): the protocol's 8 % minimum crop often cuts the
      single object out of a 48 px scene.
    """
    return {"protocol": "b2n", "datasets": world_datasets(), "model": WORLD_MODEL, "pretrained": None,
            "shots": 16, "seeds": (1, 2, 3), "test_batch_size": 250, "name": "world-b2n",
            "train_crop_scale": (0.5, 1.0), "optim.epochs": 12, "optim.batch_size": 4, "optim.lr": 0.01,
            "method.prompt.depth": 3, "method.loss.lambda_text": 12.5, "method.loss.lambda_image": 5.0}
