"""Measure the shipped world CLIP's zero-shot accuracy on the synthetic suite and on its clean world.

Writes benchmarks/results/world-suite-zeroshot.json: per dataset, base / novel / HM on the shifted test split
(protocol base/novel halves), plus the clean-image accuracy of each class axis for comparison.

    OMP_WAIT_POLICY=PASSIVE PYTHONPATH=python python scripts/world_suite_zeroshot.py [--weights CKPT]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import subprocess
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import open_clip  # noqa: E402
import torch  # noqa: E402
from safetensors.torch import load_file  # noqa: E402

from mmlop.world.model import build_world_clip, load_world_clip, world_tokenizer  # noqa: E402
from mmlop.world.suite import SUITE  # noqa: E402
from mmlop.world.zeroshot import suite_zeroshot  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--weights", default=None, help="a checkpoint to measure instead of the shipped weights")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--test-per-class", type=int, default=50)
    p.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "world-suite-zeroshot.json"))
    args = p.parse_args()
    torch.set_num_threads(1)
    if args.weights:
        model, tokenizer = build_world_clip(), world_tokenizer()
        model.load_state_dict({k: v.float() for k, v in load_file(args.weights).items()})
        model.eval()
    else:
        model, tokenizer = load_world_clip()
    t0 = time.time()
    res = suite_zeroshot(model, tokenizer, seed=args.seed, test_per_class=args.test_per_class)
    for name, accs in res.items():
        print(f"{name:16s} base {accs['base']:.3f}  novel {accs['novel']:.3f}  hm {accs['hm']:.3f}")
    mean = {k: sum(a[k] for a in res.values()) / len(res) for k in ("base", "novel", "hm")}
    print(f"{'mean':16s} base {mean['base']:.3f}  novel {mean['novel']:.3f}  hm {mean['hm']:.3f}")
    if args.weights:
        return  # calibration runs are not recorded
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
    out = {
        "benchmark": "world-suite-zeroshot",
        "command": f"PYTHONPATH=python python scripts/world_suite_zeroshot.py --seed {args.seed} "
                   f"--test-per-class {args.test_per_class}",
        "commit": commit,
        "device": "cpu, torch threads 1",
        "versions": {"python": platform.python_version(), "torch": torch.__version__,
                     "open_clip": open_clip.__version__},
        "elapsed_s": round(time.time() - t0, 1),
        "seed": args.seed,
        "test_per_class": args.test_per_class,
        "zeroshot": res,
        "mean": mean,
        "datasets": {n: {"classes": s.classnames, "num_base": s.num_base, "shortcut": s.shortcut,
                         "shift": dataclasses.asdict(s.shift), "description": s.description}
                     for n, s in SUITE.items()},
    }
    path = Path(args.out)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(out, indent=2) + "\n")
    os.replace(tmp, path)


if __name__ == "__main__":
    main()
