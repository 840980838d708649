"""The ``mmlop`` command: a thin layer over the public API.

Subcommands: ``info`` (prompt configuration and trainable-parameter table of an architecture).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Sequence

from mmlop.config import ConfigError, PromptConfig


def _widths(model: str) -> dict[str, Any]:
    """Tower widths and depths of an architecture, from its open_clip config (no weights are built)."""
    import open_clip

    from mmlop.model.factory import _BUILTIN_BASES, _resolve_config_name

    if model in _BUILTIN_BASES:
        from mmlop.model.factory import load_base

        return load_base(model).describe()
    arch = _resolve_config_name(model)
    cfg = open_clip.get_model_config(arch)
    v, t = cfg["vision_cfg"], cfg["text_cfg"]
    if "hf_model_name" in t or "timm_model_name" in v:
        raise ValueError(f"{model}: Hugging Face text towers and timm image towers are not supported by mmlop")
    return {"model": model, "text_width": t.get("width", 512), "text_layers": t.get("layers", 12),
            "context_length": t.get("context_length", 77), "vision_width": v["width"],
            "vision_layers": v["layers"], "embed_dim": cfg["embed_dim"], "image_size": v.get("image_size", 224),
            "quick_gelu": bool(cfg.get("quick_gelu", False))}


def _variants(config: PromptConfig) -> dict[str, PromptConfig]:
    return {
        "this config": config,
        "MMLoP (shared U, rank 1, depth 9)": PromptConfig(),
        "independent U_t, U_v": PromptConfig(shared_up=False),
        "IVLP full rank": PromptConfig.ivlp(),
        "DG / cross-dataset source (depth 3)": PromptConfig(depth=3),
        "CoOp, 4 tokens": PromptConfig.coop(4),
        "CoOp, 16 tokens": PromptConfig.coop(16),
    }


def cmd_info(args: argparse.Namespace) -> int:
    from mmlop import __version__

    config = PromptConfig.from_json_file(args.config) if args.config else PromptConfig()
    overrides = {k: getattr(args, k) for k in ("length", "rank", "depth") if getattr(args, k) is not None}
    if args.full_rank:
        overrides["rank"] = None
    if args.independent:
        overrides["shared_up"] = False
    config = PromptConfig.from_dict({**config.to_dict(), **overrides}, source="command line")
    arch = _widths(args.model)
    limit = min(arch["text_layers"], arch["vision_layers"])
    table = []
    for name, cfg in _variants(config).items():
        fits = cfg.text_depth <= arch["text_layers"] and cfg.vis_depth <= arch["vision_layers"]
        table.append({"variant": name, "parameters": cfg.num_parameters(arch["text_width"], arch["vision_width"]),
                      "fits": fits})
    report = {"mmlop_version": __version__, "architecture": arch, "prompt": config.to_dict(),
              "max_depth": limit, "parameters": table}
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"mmlop {__version__} — {arch['model']}: text {arch['text_layers']}x{arch['text_width']}, "
          f"vision {arch['vision_layers']}x{arch['vision_width']}, embed {arch['embed_dim']}, "
          f"image {arch['image_size']} px, {'QuickGELU' if arch['quick_gelu'] else 'GELU'}")
    print("prompt config: " + ", ".join(f"{k}={v}" for k, v in config.to_dict().items()))
    print(f"\n{'variant':<40} {'trainable':>10}")
    for row in table:
        note = "" if row["fits"] else f"  (depth > {limit} blocks: not applicable)"
        print(f"{row['variant']:<40} {row['parameters']:>10,}{note}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mmlop", description="Multi-Modal Low-Rank Prompting for CLIP.")
    sub = parser.add_subparsers(dest="command", required=True)
    info = sub.add_parser("info", help="prompt configuration and trainable-parameter table of an architecture",
                          description="Print a prompt configuration and its trainable-parameter table for an "
                                      "open_clip architecture. No weights are needed.")
    info.add_argument("--model", default="ViT-B-16",
                      help="open_clip architecture name or path to a model JSON (default: ViT-B-16)")
    info.add_argument("--config", help="prompt config JSON (PromptConfig fields)")
    info.add_argument("--length", type=int, help="prompt tokens T per modality")
    info.add_argument("--rank", type=int, help="rank r of each layer's prompt")
    info.add_argument("--depth", type=int, help="prompted layers L")
    info.add_argument("--full-rank", action="store_true", help="full-rank prompts (IVLP)")
    info.add_argument("--independent", action="store_true", help="independent U per modality")
    info.add_argument("--json", action="store_true", help="machine-readable output")
    info.set_defaults(func=cmd_info)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``mmlop`` console script."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ConfigError, ValueError, FileNotFoundError, KeyError) as e:
        print(f"mmlop {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
