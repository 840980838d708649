"""Exact text truncation: the prompted ViT-B/16 text encoder over C class prompts, run only up to the longest
end-of-text position vs the full 77-token context, side by side in one process.

    python benchmarks/bench_text_truncation.py [--classes 100 1000] [--repeats 2]

Random ViT-B/16 weights (no download). Writes benchmarks/results/text_truncation-<device>.json.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time


import torch  # noqa: E402

sys.path.insert(0, os.path.dirname(__file__))
from common import write_result  # noqa: E402

WORDS = ("red great white shark tiger cat golden retriever sports car tree frog mountain bike espresso machine "
         "grand piano water ouzel american black bear snow leopard sea lion garbage truck chocolate sauce barn "
         "spider electric guitar paper towel lemon band aid crossword puzzle pizza ballpoint pen").split()


def class_names(n: int, seed: int = 0) -> list[str]:
    """Synthetic class names of 1-4 words (ImageNet-like token lengths)."""
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.choice((1, 2, 2, 3, 4)))) for _ in range(n)]


def timed(fn, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--classes", nargs="+", type=int, default=[100, 1000])
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--backward-max-classes", type=int, default=100,
                    help="forward+backward is timed up to this many classes (CPU time)")
    args = ap.parse_args()

    import open_clip

    from mmlop.model import MMLoP, base_from_model

    torch.manual_seed(0)
    clip = open_clip.create_model("ViT-B-16")
    base = base_from_model(clip, open_clip.get_tokenizer("ViT-B-16"), "ViT-B-16")
    model = MMLoP(base)
    rows = []
    for c in args.classes:
        tokens = model.class_tokens(class_names(c))
        longest = int(tokens.argmax(-1).max()) + 1
        p_text = model.prompt_tensors()[0]
        modes = [("forward", False)] + ([("forward+backward", True)] if c <= args.backward_max_classes else [])
        for mode, backward in modes:
            def run(truncate: bool):
                with torch.set_grad_enabled(backward):
                    p = model.prompt_tensors()[0] if backward else p_text.detach()
                    out = model.encode_text(tokens, text_prompts=p, truncate=truncate)
                    if backward:
                        out.sum().backward()
            # Interleave so both see the same machine load.
            full = trunc = float("inf")
            for _ in range(args.repeats):
                full = min(full, timed(lambda: run(False), 1))
                trunc = min(trunc, timed(lambda: run(True), 1))
            row = {"classes": c, "mode": mode, "context": 77, "truncated_to": longest,
                   "full_s": round(full, 4), "truncated_s": round(trunc, 4), "speedup": round(full / trunc, 2)}
            print(row, flush=True)
            rows.append(row)
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    print("wrote", write_result(f"text_truncation-{dev}", {"benchmark": "text_truncation", "model": "ViT-B-16",
                                                        "rows": rows}))


if __name__ == "__main__":
    main()
