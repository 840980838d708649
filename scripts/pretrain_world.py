"""Pretrain the tiny world CLIP on generated image-caption pairs and ship it in python/mmlop/assets/.

Recipe (from the feasibility study in shared/notes/offline-world.md): a supervised warm start of the image
tower with one cross-entropy head per attribute family (the labels come free with the generator), then
contrastive image-text training with the image tower locked except its last norm and projection. The heads
stay on as a small auxiliary loss during the contrastive phase so that the projected image features keep
shape information, which the contrastive signal alone learns slowly.

Deterministic: fixed seeds, one torch thread, data a pure function of (seed, index), fixed step counts.
Runs on one CPU core (the machine is shared); checkpoints every ``--ckpt-every`` steps to ``--work-dir`` so
that ``--export-from`` can ship a partial run. The weights and config are written to temporary files and
renamed into place.

    OMP_WAIT_POLICY=PASSIVE PYTHONPATH=python python scripts/pretrain_world.py --steps1 2600 --steps2 700
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import open_clip  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from safetensors.torch import save_file  # noqa: E402

from mmlop.world.captions import FAMILY_PROMPTS, captions_for  # noqa: E402
from mmlop.world.generator import FAMILIES, generate  # noqa: E402
from mmlop.world.model import (  # noqa: E402
    ASSETS_DIR,
    MODEL_CFG,
    PREPROCESS,
    WORLD_CLIP_NAME,
    build_world_clip,
    load_world_clip,
    sha256_file,
    to_tensor,
    world_tokenizer,
)
from mmlop.world.zeroshot import zeroshot_accuracies  # noqa: E402

IMAGE_SEED = 1  # training image stream
CAPTION_SEED = 2  # training caption stream
HELDOUT_SEED = 20_260_601  # held-out zero-shot set: never used for training
HELDOUT_SIZE = 1200
PROBE_SIZE = 600  # smaller set for the progress log
FAMILY_ORDER = tuple(FAMILIES)
REPO = Path(__file__).resolve().parents[1]


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def lr_at(step: int, total: int, peak: float, warmup: int) -> float:
    """Linear warmup then cosine decay to 5% of the peak."""
    if step < warmup:
        return peak * (step + 1) / warmup
    t = (step - warmup) / max(1, total - warmup)
    return peak * (0.05 + 0.95 * 0.5 * (1.0 + math.cos(math.pi * t)))


def batch(step: int, phase: int, size: int, tokenizer) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Images (B, 3, H, W), caption tokens (B, L) and labels (B, families) of one training step."""
    start = (phase * 10_000_000) + step * size
    idx = np.arange(start, start + size)
    images, attrs = generate(IMAGE_SEED, idx)
    labels = torch.from_numpy(np.stack([attrs.family(f) for f in FAMILY_ORDER], axis=1))
    tokens = tokenizer(captions_for(CAPTION_SEED, idx, attrs)) if phase == 2 else torch.empty(0)
    return to_tensor(images), tokens, labels


# Shape and pattern are learnt slowest (a first run reached 33% / 72% batch accuracy on them after 500
# steps while colour, position and background were at 97-100%), so they weigh more.
HEAD_WEIGHTS = {"shape": 3.0, "colour": 1.0, "pattern": 2.0, "size": 1.0, "position": 0.5, "background": 0.5}


def head_loss(heads: torch.nn.ModuleList, feats: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    total = sum(HEAD_WEIGHTS[f] * F.cross_entropy(h(feats), labels[:, i])
                for i, (f, h) in enumerate(zip(FAMILY_ORDER, heads)))
    return total / sum(HEAD_WEIGHTS.values())


def probe(model, tokenizer, families=("shape", "colour", "pattern")) -> dict[str, float]:
    model.eval()
    out = {f: round(a, 4) for f, a in zeroshot_accuracies(model, tokenizer, families, PROBE_SIZE, HELDOUT_SEED + 1).items()}
    model.train()
    return out


def save_checkpoint(model, path: Path, step_info: dict) -> None:
    tmp = path.with_suffix(".tmp")
    state = {k: v.detach().to(torch.float16).contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(tmp), metadata={k: str(v) for k, v in step_info.items()})
    os.replace(tmp, path)


def export(ckpt: Path, log_rows: list, args, elapsed_s: float) -> dict:
    """Copy a checkpoint into the assets with its config, hash and measured held-out zero-shot accuracy."""
    assets = Path(args.assets_dir)
    assets.mkdir(parents=True, exist_ok=True)
    weights = assets / f"{WORLD_CLIP_NAME}.safetensors"
    tmp = weights.with_suffix(".safetensors.tmp")
    tmp.write_bytes(ckpt.read_bytes())
    os.replace(tmp, weights)
    cfg = {
        "name": WORLD_CLIP_NAME,
        "model_cfg": MODEL_CFG,
        "context_length": MODEL_CFG["text_cfg"]["context_length"],
        "tokenizer": "open_clip.tokenizer.SimpleTokenizer",
        "weights": weights.name,
        "dtype": "float16",
        "sha256": sha256_file(weights),
        "image_size": PREPROCESS.image_size,
        "image_mean": list(PREPROCESS.mean),
        "image_std": list(PREPROCESS.std),
        "family_prompts": FAMILY_PROMPTS,
        "heldout": {"seed": HELDOUT_SEED, "n_images": HELDOUT_SIZE},
        "zeroshot_accuracy": {},
        "pretraining": {"script": "scripts/pretrain_world.py", "steps1": args.steps1, "steps2": args.steps2,
                        "batch": args.batch, "image_seed": IMAGE_SEED, "caption_seed": CAPTION_SEED},
    }
    cfg_path = assets / f"{WORLD_CLIP_NAME}.json"
    _write_json(cfg_path, cfg)  # provisional (hash only), so that load_world_clip can read the weights
    model, tokenizer = load_world_clip(assets_dir=assets)
    # Measured on the exact shipped (float16-rounded) weights, as the tests will load them.
    cfg["zeroshot_accuracy"] = zeroshot_accuracies(model, tokenizer, FAMILY_ORDER, HELDOUT_SIZE, HELDOUT_SEED)
    _write_json(cfg_path, cfg)
    log(f"exported {weights} ({weights.stat().st_size / 1e6:.1f} MB); zero-shot {cfg['zeroshot_accuracy']}")
    result = {
        "benchmark": "world-pretrain",
        "command": " ".join(sys.argv),
        "commit": _git_commit(),
        "device": f"cpu ({platform.processor() or platform.machine()}), torch threads 1",
        "versions": {"python": platform.python_version(), "torch": torch.__version__,
                     "open_clip": open_clip.__version__, "numpy": np.__version__},
        "elapsed_s": round(elapsed_s, 1),
        "steps1": args.steps1, "steps2": args.steps2, "batch": args.batch,
        "heldout": cfg["heldout"],
        "final_zeroshot": cfg["zeroshot_accuracy"],
        "sha256": cfg["sha256"],
        "log": log_rows,
    }
    _write_json(Path(args.results), result)
    return cfg


def _write_json(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(obj, indent=2) + "\n")
    os.replace(tmp, path)


def _git_commit() -> str:
    try:
        return subprocess.check_output(["git", "rev-parse", "HEAD"], cwd=REPO, text=True).strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def train(args) -> None:
    torch.manual_seed(0)
    model = build_world_clip()
    tokenizer = world_tokenizer()
    dim = MODEL_CFG["embed_dim"]
    heads = torch.nn.ModuleList(torch.nn.Linear(dim, len(FAMILIES[f])) for f in FAMILY_ORDER)
    work = Path(args.work_dir)
    work.mkdir(parents=True, exist_ok=True)
    ckpt = work / "world_clip.ckpt.safetensors"
    log_rows: list[dict] = []
    t0 = time.time()
    model.train()

    # Phase 1: image tower + attribute heads, supervised.
    params1 = list(model.visual.parameters()) + list(heads.parameters())
    opt = torch.optim.AdamW(params1, lr=args.lr1, weight_decay=0.05)
    for step in range(args.steps1):
        for g in opt.param_groups:
            g["lr"] = lr_at(step, args.steps1, args.lr1, 50)
        x, _, y = batch(step, 1, args.batch, tokenizer)
        feats = model.encode_image(x)  # (B, D)
        loss = head_loss(heads, feats, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if (step + 1) % 50 == 0 or step + 1 == args.steps1:
            with torch.no_grad():  # accuracy of each head on this (unseen before the step) batch
                acc = {f: round((h(feats).argmax(1) == y[:, i]).float().mean().item(), 3)
                       for i, (f, h) in enumerate(zip(FAMILY_ORDER, heads))}
            row = {"phase": 1, "step": step + 1, "loss": round(loss.item(), 4), "batch_acc": acc,
                   "elapsed_s": round(time.time() - t0, 1)}
            log_rows.append(row)
            log(json.dumps(row))

    # Phase 2: contrastive image-text, plus the heads as a small auxiliary loss.
    # Phase 2 locks the image tower except its last norm and projection (as in LiT): the warm start already
    # made its features attribute-aware, and skipping its backward pass halves the cost of a step, which
    # buys twice the contrastive steps on a shared core. The token embedding (79% of the parameters) keeps
    # its random init: the captions use a few dozen words, and its dense gradient would cost ~15% of a step.
    for p in model.visual.parameters():
        p.requires_grad_(False)
    for p in list(model.visual.ln_post.parameters()) + [model.visual.proj]:
        p.requires_grad_(True)
    model.token_embedding.weight.requires_grad_(False)
    params2 = [p for p in model.parameters() if p.requires_grad] + list(heads.parameters())
    opt = torch.optim.AdamW(params2, lr=args.lr2, weight_decay=0.05)
    for step in range(args.steps2):
        for g in opt.param_groups:
            g["lr"] = lr_at(step, args.steps2, args.lr2, 100)
        x, tokens, y = batch(step, 2, args.batch, tokenizer)
        img = model.encode_image(x)  # (B, D)
        txt = model.encode_text(tokens)  # (B, D)
        logits = model.logit_scale.exp() * F.normalize(img, dim=-1) @ F.normalize(txt, dim=-1).T  # (B, B)
        target = torch.arange(len(x))
        clip_loss = (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2
        aux = head_loss(heads, img, y)
        loss = clip_loss + args.aux_weight * aux
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0, math.log(100))
        done = step + 1
        if done % 50 == 0 or done == args.steps2:
            row = {"phase": 2, "step": done, "clip_loss": round(clip_loss.item(), 4), "aux": round(aux.item(), 4),
                   "elapsed_s": round(time.time() - t0, 1)}
            if done % args.ckpt_every == 0 or done == args.steps2:
                row["probe"] = probe(model, tokenizer)
                save_checkpoint(model, ckpt, {"phase": 2, "step": done})
            log_rows.append(row)
            log(json.dumps(row))
            _write_json(work / "log.json", log_rows)
    export(ckpt, log_rows, args, time.time() - t0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps1", type=int, default=2600, help="supervised warm-start steps (image tower)")
    p.add_argument("--steps2", type=int, default=700, help="contrastive steps")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--lr1", type=float, default=1.5e-3)
    p.add_argument("--lr2", type=float, default=1e-3)
    p.add_argument("--aux-weight", type=float, default=0.3)
    p.add_argument("--ckpt-every", type=int, default=100)
    p.add_argument("--work-dir", default=str(REPO / "runs" / "pretrain_world"))
    p.add_argument("--assets-dir", default=str(ASSETS_DIR), help="where the weights and config are written")
    p.add_argument("--results", default=str(REPO / "benchmarks" / "results" / "world-pretrain.json"))
    p.add_argument("--export-from", default=None, help="only export this checkpoint to the assets")
    args = p.parse_args()
    torch.set_num_threads(1)
    if args.export_from:
        log_path = Path(args.work_dir) / "log.json"
        rows = json.loads(log_path.read_text()) if log_path.is_file() else []
        export(Path(args.export_from), rows, args, rows[-1]["elapsed_s"] if rows else float("nan"))
        return
    train(args)


if __name__ == "__main__":
    main()
