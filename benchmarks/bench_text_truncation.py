"""Exact text truncation: the prompted ViT-B/16 text encoder over C class prompts in length buckets (each
group of classes truncated to its own end-of-text position, ``MMLoP.class_text_features``) vs a single
truncation to the longest (and, optionally, the full 77-token context), side by side in one process; tokens
processed and seconds.

    python benchmarks/bench_text_truncation.py [--classes 500 1000] [--repeats 2] [--full-max-classes 100]

Random ViT-B/16 weights (no download). Writes benchmarks/results/text_truncation-<device>.json.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import torch  # noqa: E402

sys.path.insert(0, os.path.dirname(__file__))
from common import write_result  # noqa: E402


def class_names(n: int) -> list[str]:
    """The first ``n`` ImageNet class names (CLIP's cleaned names, as open_clip ships them; the base half of
    base-to-novel is the first 500), repeated with a suffix beyond 1000."""
    from open_clip.zero_shot_metadata import IMAGENET_CLASSNAMES

    names = list(IMAGENET_CLASSNAMES)
    return [names[i % 1000] + ("" if i < 1000 else f" {i // 1000}") for i in range(n)]


def timed(fn, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--classes", nargs="+", type=int, default=[500, 1000])
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--backward-max-classes", type=int, default=500,
                    help="forward+backward is timed up to this many classes (CPU time)")
    ap.add_argument("--full-max-classes", type=int, default=0,
                    help="the full 77-token context is timed up to this many classes (slow on a CPU)")
    args = ap.parse_args()

    import open_clip

    from mmlop.model import MMLoP, base_from_model

    torch.manual_seed(0)
    arch = "ViT-B-16-quickgelu"
    base = base_from_model(open_clip.create_model(arch), open_clip.get_tokenizer(arch), arch)
    model = MMLoP(base)
    model.checkpoint_text_blocks = 0  # compare the passes themselves
    rows = []
    for c in args.classes:
        tokens = model.class_tokens(class_names(c))
        eot = tokens.argmax(-1) + 1
        longest = int(eot.max())
        p_text = model.prompt_tensors()[0]
        counts = {"full": tokens.numel(), "single": longest * c, "buckets": int(eot.sum())}
        modes = [("forward", False)] + ([("forward+backward", True)] if c <= args.backward_max_classes else [])
        for mode, backward in modes:
            def run(how: str):
                with torch.set_grad_enabled(backward):
                    p = model.prompt_tensors()[0] if backward else p_text.detach()
                    if how == "buckets":
                        out = model.class_text_features(tokens=tokens, text_prompts=p)
                    else:
                        out = model.encode_text(tokens, text_prompts=p, truncate=how == "single")
                    if backward:
                        out.sum().backward()
            hows = ["single", "buckets"] + (["full"] if c <= args.full_max_classes else [])
            best = {h: float("inf") for h in hows}
            for _ in range(args.repeats):  # interleaved so every variant sees the same machine load
                for h in hows:
                    best[h] = min(best[h], timed(lambda: run(h), 1))
            row = {"classes": c, "mode": mode, "context": 77, "truncated_to": longest,
                   "tokens": counts, "token_saving_buckets_vs_single": round(1 - counts["buckets"] / counts["single"], 3),
                   **{f"{h}_s": round(t, 4) for h, t in best.items()},
                   "speedup_buckets_vs_single": round(best["single"] / best["buckets"], 2)}
            if "full" in best:
                row["speedup_single_vs_full"] = round(best["full"] / best["single"], 2)
            print(row, flush=True)
            rows.append(row)
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    print("wrote", write_result(f"text_truncation-{dev}", {"benchmark": "text_truncation", "model": arch,
                                                        "names": "ImageNet class names (open_clip.zero_shot_metadata.IMAGENET_CLASSNAMES)",
                                                        "command": " ".join(["python"] + sys.argv),
                                                        "rows": rows}))


if __name__ == "__main__":
    main()
