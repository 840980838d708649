"""End-to-end saving of the frozen-feature cache on the built-in benchmark: training epochs of the world preset on
one dataset with a frozen image pass every step vs pre-enumerated views whose frozen features come from a warm
cache, side by side in one process.

    python benchmarks/bench_world_cache.py [--dataset world/colours] [--epochs 4] [--views 4]

Writes benchmarks/results/world_cache-<device>.json (seconds per training step, cache fill time).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
sys.path.insert(0, os.path.dirname(__file__))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="world/colours")
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--views", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()

    import torch

    import mmlop
    from common import write_result
    from mmlop.config import LossConfig, PromptConfig
    from mmlop.data.transforms import build_train_transform
    from mmlop.templates import get_templates
    from mmlop.training.config import OptimConfig
    from mmlop.training.frozen import FrozenFeatures, view_lookup
    from mmlop.training.loop import FitCheckpoint, FitConfig, FitData, fit

    base = mmlop.load_base("mmlop-world")
    splits = mmlop.load_dataset(args.dataset, "", num_shots=16, seed=1, subsample="base")
    tf = build_train_transform(base.image_size, base.mean, base.std, scale=(0.5, 1.0))
    train = mmlop.ImageDataset(splits.train, tf)
    optim = OptimConfig(epochs=args.epochs, lr=0.01, batch_size=4)
    loss = LossConfig(lambda_text=12.5, lambda_image=5.0)
    steps = args.epochs * (len(train) // 4)
    with tempfile.TemporaryDirectory() as tmp:
        model = mmlop.MMLoP(base, PromptConfig(depth=3))
        features = FrozenFeatures(model, Path(tmp) / "cache")
        g0 = features.text(splits.classnames, get_templates("imagenet_templates_60"), "imagenet_templates_60")
        keys = features.image_view_keys(splits.train.paths, repr(tf), seed=1, views=args.views)
        t0 = time.perf_counter()
        features.image_views(train, keys, batch_size=250, device=torch.device("cpu"))  # cold: fills the cache
        fill = time.perf_counter() - t0
        rows = {"frozen_pass": [], "cached_views": []}
        for r in range(args.rounds):
            for name in rows:
                m = mmlop.MMLoP(base, PromptConfig(depth=3), generator=torch.Generator().manual_seed(1))
                data = FitData(train, splits.classnames, g0)
                if name == "cached_views":
                    table = FrozenFeatures(m, Path(tmp) / "cache").image_views(
                        train, keys, batch_size=250, device=torch.device("cpu"))  # warm: read from the store
                    data = FitData(train, splits.classnames, g0, frozen_image_fn=view_lookup(table), view_keys=keys)
                t0 = time.perf_counter()
                fit(m, data, FitConfig(optim, loss, seed=1, progress=False),
                    FitCheckpoint(Path(tmp) / f"{name}{r}", digest="b"))
                rows[name].append((time.perf_counter() - t0) / steps)
    result = {k: round(min(v) * 1e3, 2) for k, v in rows.items()}
    out = {"benchmark": "world_cache", "dataset": args.dataset, "epochs": args.epochs, "views": args.views,
           "steps": steps, "ms_per_step": result, "cache_fill_s": round(fill, 3),
           "step_time_saving": round(1 - result["cached_views"] / result["frozen_pass"], 3)}
    print(out)
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    print("wrote", write_result(f"world_cache-{dev}", out))


if __name__ == "__main__":
    main()
