"""One training step of ViT-B/16 (random weights) with 500 classes (ImageNet's base half) and 16 images:
mmlop's step vs the peers' design, each variant in its own process (for its peak memory), in one run.

- mmlop: the prompted text encoder runs only up to the longest end-of-text token; frozen text features g0 and the
  frozen features of the pre-enumerated image views come from the feature cache (no frozen image pass).
- mmlop-ckpt: the same with gradient checkpointing of the encoder blocks (``--grad-checkpoint``), for memory.
- peers: the full 77-token prompted text encoder over all classes and a separate frozen image pass every step
  (g0 precomputed, as the peer projects do).

    python benchmarks/bench_train_step.py [--classes 500] [--batch 16] [--steps 2]

Writes benchmarks/results/train_step-<device>.json: seconds per step (the last of --steps) and peak RSS.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
sys.path.insert(0, os.path.dirname(__file__))


def child(variant: str, classes: int, batch: int, steps: int) -> dict:
    import open_clip
    import torch
    import torch.nn.functional as F

    from bench_text_truncation import class_names
    from mmlop.config import LossConfig
    from mmlop.losses import mmlop_loss
    from mmlop.model import MMLoP, base_from_model
    from mmlop.ops.drift_logits import drift_corrected_logits

    torch.manual_seed(0)
    base = base_from_model(open_clip.create_model("ViT-B-16"), open_clip.get_tokenizer("ViT-B-16"), "ViT-B-16")
    model = MMLoP(base)
    model.use_checkpoint = variant == "mmlop-ckpt"
    tokens = model.class_tokens(class_names(classes))
    g0 = F.normalize(torch.randn(classes, 512), dim=-1)  # precomputed in both designs
    images = torch.randn(batch, 3, 224, 224)
    labels = torch.randint(0, classes, (batch,))
    cached_f0 = F.normalize(torch.randn(batch, 512), dim=-1)  # what the cache lookup returns
    opt = torch.optim.SGD(model.trainable_parameters(), lr=0.0025, momentum=0.9)
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        p_text, p_vision = model.prompt_tensors()
        text = model.encode_text(tokens, text_prompts=p_text, truncate=variant.startswith("mmlop"))
        image = model.encode_image(images, vision_prompts=p_vision)
        if variant.startswith("mmlop"):
            f0 = cached_f0
        else:
            with torch.no_grad():
                f0 = model.encode_image(images, prompted=False, normalize=True)
        out = drift_corrected_logits(image, text, g0, model.logit_scale)
        loss = mmlop_loss(out, labels, f0, g0, model.logit_scale, LossConfig())
        opt.zero_grad()
        loss.total.backward()
        opt.step()
        times.append(time.perf_counter() - t0)
    return {"variant": variant, "step_s": round(times[-1], 3), "all_steps_s": [round(t, 3) for t in times],
            "peak_rss_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 3),
            "text_tokens": int(tokens.argmax(-1).max()) + 1 if variant.startswith("mmlop") else tokens.shape[1]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--classes", type=int, default=500)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--steps", type=int, default=2)
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.classes, args.batch, args.steps)))
        return
    from common import write_result

    rows = {}
    for variant in ("mmlop", "mmlop-ckpt", "peers"):
        out = subprocess.run([sys.executable, __file__, "--child", variant, "--classes", str(args.classes),
                              "--batch", str(args.batch), "--steps", str(args.steps)],
                             capture_output=True, text=True, check=True)
        rows[variant] = json.loads(out.stdout.strip().splitlines()[-1])
        print(rows[variant], flush=True)
    ratio = {f"{v}_vs_peers": {"speedup": round(rows["peers"]["step_s"] / rows[v]["step_s"], 2),
                               "memory_fraction": round(rows[v]["peak_rss_gib"] / rows["peers"]["peak_rss_gib"], 3)}
             for v in ("mmlop", "mmlop-ckpt")}
    print(ratio)
    import torch

    dev = "cuda" if torch.cuda.is_available() else "cpu"
    print("wrote", write_result(f"train_step-{dev}", {"benchmark": "train_step", "model": "ViT-B-16",
                                                     "classes": args.classes, "batch": args.batch,
                                                     "rows": rows, **ratio}))


if __name__ == "__main__":
    main()
