"""One training step of ViT-B/16 (random weights, QuickGELU as OpenAI's weights need) with 500 classes (ImageNet's
base half) and 16 images: mmlop's step vs the peers' design, each variant in its own process (for its peak
memory), in one run.

- peers: the full 77-token prompted text encoder over all classes through open_clip's own blocks and a separate
  frozen image pass every step (g0 precomputed, as the peer projects do).
- mmlop-v0: the previous default: single truncation to the longest end-of-text token, open_clip's blocks.
- mmlop: the default step (``TrainStep``): length buckets, the lean blocks (fused QuickGELU, pooled-token last
  block); frozen text features g0 and the frozen features of the pre-enumerated views come from the cache.
- mmlop-unfused: the default with open_clip's QuickGELU expression instead of the fused op (what the op saves).
- mmlop-nockpt: the default without checkpointing its first text blocks (what the lean default trades).
- mmlop-ckpt: the default with gradient checkpointing of every encoder block (``--grad-checkpoint``).
- mmlop-bf16: the default under ``--precision amp_bf16`` (CPU autocast; prompts and losses float32).
- peers-gelu, mmlop-gelu: the same two designs on ``ViT-B-16`` (exact GELU), optional.

    python benchmarks/bench_train_step.py [--classes 500] [--batch 16] [--steps 3] [--variants ...] [--profile]

Writes benchmarks/results/train_step-<device>.json: seconds per step (the best step after the first) and peak
RSS (CPU) or peak allocated memory (CUDA); with ``--profile`` also the top operators of one default step
(``torch.profiler``).
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

VARIANTS = ("peers", "mmlop-v0", "mmlop", "mmlop-nockpt", "mmlop-unfused", "mmlop-ckpt", "mmlop-bf16", "peers-gelu",
            "mmlop-gelu")
DEFAULT_VARIANTS = ("peers", "mmlop-v0", "mmlop", "mmlop-nockpt", "mmlop-unfused", "mmlop-ckpt", "mmlop-bf16")


def _text_tokens(tokens, mode: str) -> int:
    eot = tokens.argmax(-1) + 1
    if mode == "full":
        return tokens.numel()
    if mode == "single":
        return int(eot.max()) * tokens.shape[0]
    return int(eot.sum())  # buckets: every class at its own length


def child(variant: str, classes: int, batch: int, steps: int, device: str, profile: bool) -> dict:
    import open_clip
    import torch
    import torch.nn.functional as F

    from bench_text_truncation import class_names
    from mmlop.config import LossConfig
    from mmlop.losses import mmlop_loss
    from mmlop.model import MMLoP, base_from_model
    from mmlop.model import towers
    from mmlop.ops.drift_logits import drift_corrected_logits
    from mmlop.ops.quick_gelu import quick_gelu_reference
    from mmlop.training.loop import TrainStep, autocast_context

    arch = "ViT-B-16" if variant.endswith("-gelu") else "ViT-B-16-quickgelu"
    peers = variant.startswith("peers")
    torch.manual_seed(0)
    dev = torch.device(device)
    base = base_from_model(open_clip.create_model(arch), open_clip.get_tokenizer(arch), arch)
    base.model.to(dev)
    model = MMLoP(base).to(dev)
    model.use_checkpoint = variant == "mmlop-ckpt"
    model.lean_blocks = not (peers or variant == "mmlop-v0")
    if peers or variant in ("mmlop-v0", "mmlop-nockpt"):
        model.checkpoint_text_blocks = 0
    if variant == "mmlop-unfused":
        towers.quick_gelu = quick_gelu_reference  # this process only: open_clip's expression inside the lean block
    precision = "amp_bf16" if variant == "mmlop-bf16" else "fp32"
    tokens = model.class_tokens(class_names(classes))
    g0 = F.normalize(torch.randn(classes, 512, device=dev), dim=-1)  # precomputed in both designs
    images = torch.randn(batch, 3, 224, 224, device=dev)
    labels = torch.randint(0, classes, (batch,), device=dev)
    cached_f0 = F.normalize(torch.randn(batch, 512, device=dev), dim=-1)  # what the cache lookup returns
    opt = torch.optim.SGD(model.trainable_parameters(), lr=0.0025, momentum=0.9)
    train_step = TrainStep(model, tokens, g0, LossConfig())
    text_mode = "full" if peers else "single" if variant == "mmlop-v0" else "buckets"

    def step():
        if text_mode == "buckets":
            with autocast_context(dev, precision):
                loss = train_step(images, labels, cached_f0)
        else:
            p_text, p_vision = model.prompt_tensors()
            text = model.encode_text(tokens, text_prompts=p_text, truncate=not peers)
            image = model.encode_image(images, vision_prompts=p_vision)
            if peers:
                with torch.no_grad():
                    f0 = model.encode_image(images, prompted=False, normalize=True)
            else:
                f0 = cached_f0
            out = drift_corrected_logits(image, text, g0, model.logit_scale)
            loss = mmlop_loss(out, labels, f0, g0, model.logit_scale, LossConfig())
        opt.zero_grad()
        loss.total.backward()
        opt.step()

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize()

    times, cpu_times = [], []
    for _ in range(steps):
        sync()
        t0, c0 = time.perf_counter(), time.process_time()
        step()
        sync()
        times.append(time.perf_counter() - t0)
        cpu_times.append(time.process_time() - c0)
    timed = times[1:] or times
    # CPU seconds of this process (all its threads) change less than wall time when other jobs share the cores.
    row = {"variant": variant, "model": arch, "precision": precision, "step_s": round(min(timed), 3),
           "all_steps_s": [round(t, 3) for t in times], "step_cpu_s": round(min(cpu_times[1:] or cpu_times), 3),
           "text_mode": text_mode,
           "text_tokens": _text_tokens(tokens, text_mode)}
    if dev.type == "cuda":
        row["peak_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 3)
    else:
        row["peak_gib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 3)  # peak RSS
    if profile:
        from torch.profiler import ProfilerActivity, profile as torch_profile

        acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if dev.type == "cuda" else [])
        with torch_profile(activities=acts) as prof:
            step()
            sync()
        key = "self_cuda_time_total" if dev.type == "cuda" else "self_cpu_time_total"
        events = sorted(prof.key_averages(), key=lambda e: getattr(e, key), reverse=True)[:25]
        row["profile"] = [{"op": e.key, "calls": e.count, "self_ms": round(getattr(e, key) / 1e3, 1),
                           "total_ms": round(e.cpu_time_total / 1e3, 1)} for e in events]
        print(prof.key_averages().table(sort_by=key, row_limit=25), file=sys.stderr)
    return row


def ratios(rows: dict) -> dict:
    """Speed-up and memory fraction of every variant against the peers' variant of the same architecture."""
    out = {}
    for name, row in rows.items():
        ref = rows.get("peers-gelu" if name.endswith("-gelu") else "peers")
        if ref is None or row is ref:
            continue
        out[f"{name}_vs_{ref['variant']}"] = {"speedup": round(ref["step_s"] / row["step_s"], 2),
                                              "memory_fraction": round(row["peak_gib"] / ref["peak_gib"], 3)}
        if "step_cpu_s" in ref:
            out[f"{name}_vs_{ref['variant']}"]["cpu_time_speedup"] = round(ref["step_cpu_s"] / row["step_cpu_s"], 2)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--classes", type=int, default=500)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--steps", type=int, default=3, help="steps per variant; the first is a warm-up")
    ap.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(DEFAULT_VARIANTS))
    ap.add_argument("--device", default="cuda" if _cuda() else "cpu")
    ap.add_argument("--profile", action="store_true", help="profile one more step of the mmlop variant")
    ap.add_argument("--name", default="", help="result file name (default train_step-<device>)")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.classes, args.batch, args.steps, args.device, args.profile)))
        return
    from common import write_result

    rows = {}
    for variant in args.variants:
        cmd = [sys.executable, __file__, "--child", variant, "--classes", str(args.classes), "--batch",
               str(args.batch), "--steps", str(args.steps), "--device", args.device]
        if args.profile and variant == "mmlop":
            cmd.append("--profile")
        out = subprocess.run(cmd, capture_output=True, text=True)
        if out.returncode != 0:
            raise SystemExit(f"variant {variant} failed:\n{out.stderr[-4000:]}")
        rows[variant] = json.loads(out.stdout.strip().splitlines()[-1])
        print({k: v for k, v in rows[variant].items() if k != "profile"}, flush=True)
    ratio = ratios(rows)
    print(json.dumps(ratio, indent=1))
    name = args.name or f"train_step-{args.device.split(':')[0]}"
    print("wrote", write_result(name, {"benchmark": "train_step", "classes": args.classes, "batch": args.batch,
                                       "steps": args.steps, "command": " ".join(["python"] + sys.argv),
                                       "rows": rows, "ratios": ratio}))


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


if __name__ == "__main__":
    main()
