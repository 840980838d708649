"""The ``mmlop`` command: a thin layer over the public API.

- ``mmlop train``: run a protocol (default: base-to-novel on the built-in offline benchmark).
- ``mmlop eval``: evaluate saved prompts on a dataset.
- ``mmlop info``: prompt configuration and trainable-parameter table of an architecture.
- ``mmlop predict``: classify image files with saved prompts (CSV/JSON, top-k).
- ``mmlop export``: write the prompted classifier for a class list as ONNX or TorchScript.
"""

from __future__ import annotations

import argparse
import json
import sys
import traceback
from pathlib import Path
from typing import Any, Sequence

from mmlop.config import ConfigError, PromptConfig
from mmlop.names import FEWSHOT_SOURCES, METHODS, PRECISIONS, PRESETS
from mmlop.errors import MmlopError


def _widths(model: str) -> dict[str, Any]:
    """Tower widths and depths of an architecture, from its open_clip config (no weights are built)."""
    from mmlop.model.factory import load_base, model_config, registered_base, resolve_config_name

    if registered_base(model) is not None:
        return load_base(model).describe()
    arch = resolve_config_name(model)
    cfg = model_config(arch)
    v, t = cfg["vision_cfg"], cfg["text_cfg"]
    if "hf_model_name" in t or "timm_model_name" in v:
        raise ConfigError(f"{model}: Hugging Face text towers and timm image towers are not supported by mmlop")
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
    from mmlop.version import __version__

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


def _train_fields(args: argparse.Namespace) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for name in ("root", "cache_dir", "model", "shots", "output_dir", "device", "precision", "test_batch_size",
                 "num_workers", "text_chunk", "fewshot_source", "max_test_per_class", "feature_cache", "views_per_image"):
        v = getattr(args, name)
        if v is not None:
            fields[name] = v
    if args.pretrained is not None:
        fields["pretrained"] = None if args.pretrained.lower() in ("", "none") else args.pretrained
    if args.datasets:
        fields["datasets"] = args.datasets
    if args.targets:
        fields["targets"] = args.targets
    if args.seeds:
        fields["seeds"] = args.seeds
    if args.name:
        fields["name"] = args.name
    for flag, key in (("epochs", "optim.epochs"), ("lr", "optim.lr"), ("batch_size", "optim.batch_size"),
                      ("depth", "method.prompt.depth"), ("rank", "method.prompt.rank"),
                      ("length", "method.prompt.length")):
        v = getattr(args, flag)
        if v is not None:
            fields[key] = v
    if args.grad_checkpoint:
        fields["grad_checkpoint"] = True
    if args.no_zero_shot:
        fields["zero_shot"] = False
    if args.quiet:
        fields["quiet"] = True
    for item in args.set or []:
        if "=" not in item:
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE, e.g. optim.lr=0.01")
        k, v = item.split("=", 1)
        fields[k.strip()] = v  # parsed by the option's type in apply_overrides, which names the key on error
    return fields


def cmd_train(args: argparse.Namespace) -> int:
    from mmlop.training import RunConfig, build_config, run
    from mmlop.training.ablation import ABLATION_ROWS, write_ablation
    from mmlop.training.runner import run_title

    fields = _train_fields(args)
    fixed_name = "name" in fields
    if args.config and (args.method is not None or args.preset is not None or args.ablation):
        given = [f for f, v in (("--method", args.method), ("--preset", args.preset), ("--ablation", args.ablation))
                 if v]
        raise ConfigError(f"--config {args.config} cannot be combined with {', '.join(given)}: the config file "
                          "already fixes the protocol and the method; change its settings with --set KEY=VALUE "
                          "or the other flags instead")
    preset, method = args.preset or "world", args.method or "mmlop"
    if args.config:
        base_cfg = RunConfig.from_json_file(args.config)
        from mmlop.training.config import apply_overrides

        configs = {"": apply_overrides(base_cfg, fields)}
    elif args.ablation:
        configs = {}
        for row, _ in ABLATION_ROWS:
            cfg = build_config(preset, method=row, overrides=fields)
            configs[row] = cfg.replace(name=f"{cfg.name or 'ablation'}-{row}", zero_shot=False)
    else:
        configs = {"": build_config(preset, method=method, overrides=fields)}
    if args.print_config:
        resolved = {k: c.to_dict() for k, c in configs.items()}
        print(json.dumps(resolved[""] if "" in resolved else resolved, indent=2))
        for cfg in configs.values():
            note = cfg.optim.schedule_warning()
            if note and cfg.optim.epochs:
                print(f"mmlop train: warning: {note}", file=sys.stderr)
        return 0
    summaries = {}
    for key, cfg in configs.items():
        summary = run(cfg, resume=args.resume, fixed_name=fixed_name or bool(args.config))
        summaries[key] = summary
        if not cfg.quiet:
            from mmlop.training.report import to_markdown

            title = run_title(cfg, Path(summary["run_dir"]))
            print(to_markdown(summary, title=f"{key}: {title}" if key else title))
    if args.ablation:
        folder = Path(next(iter(configs.values())).output_dir)
        print(write_ablation(summaries, folder, title=f"ablation: {preset} preset"))
        print(f"ablation table written to {folder / 'ablation.md'} and {folder / 'ablation.png'}")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from mmlop.data.loading import load_dataset
    from mmlop.model.io import load_prompts_on_saved_base, read_prompt_config, saved_method
    from mmlop.training.evaluate import EvalConfig, evaluate_split
    from mmlop.training.runner import resolve_device

    meta = read_prompt_config(args.prompts)
    device = resolve_device(args.device)
    model = load_prompts_on_saved_base(args.prompts, model=args.model, pretrained=args.pretrained, device=device)
    # The settings the prompts were trained and evaluated with, so that this scores what training-time
    # evaluation scored: the teacher templates, drift correction at test time, and the precision.
    method = saved_method(args.prompts)
    config = EvalConfig(udc=method.loss.udc_at_test and not args.no_udc, teacher=method.teacher,
                        precision=args.precision or (meta.get("extra") or {}).get("precision", "fp32"),
                        batch_size=args.test_batch_size, max_per_class=args.max_test_per_class,
                        progress=not args.quiet)
    rows = []
    for name in args.datasets:
        splits = load_dataset(name, args.root or "", num_shots=0, seed=1, subsample=args.subsample)
        res = evaluate_split(model, splits, config, device)
        rows.append({"dataset": name, "subsample": args.subsample, "classes": len(splits.classnames), **res})
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        for r in rows:
            print(f"{r['dataset']} ({r['subsample']}, {r['classes']} classes): {r['accuracy']:.2f}% "
                  f"({r['correct']}/{r['total']})")
    return 0


def _class_list(args: argparse.Namespace) -> list[str]:
    """The class names of ``--classes`` or ``--classes-file``, checked (empty list, duplicates)."""
    from mmlop.predictions import check_classnames, read_classes_file

    if args.classes_file:
        return read_classes_file(args.classes_file)
    return check_classnames(args.classes or [])


def cmd_predict(args: argparse.Namespace) -> int:
    from mmlop.predictions import (check_output, find_images, load_classifier, predict_files, predictions_csv,
                                   write_predictions)

    classnames = _class_list(args)
    if args.output:
        check_output(args.output, overwrite=args.overwrite)  # before loading a model or reading images
    paths = find_images(args.images)
    clf = load_classifier(args.prompts, classnames, device=args.device, model=args.model,
                          pretrained=args.pretrained, udc=not args.no_udc)
    preds = list(predict_files(clf, paths, top_k=args.top_k, batch_size=args.batch_size, progress=not args.quiet))
    if args.output:
        out = write_predictions(preds, args.output, classnames=classnames, prompts=str(args.prompts),
                                overwrite=args.overwrite)
        if not args.quiet:
            print(f"{len(preds)} predictions written to {out}", file=sys.stderr)
    else:
        sys.stdout.write(predictions_csv(preds))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from mmlop.export import export_classifier
    from mmlop.predictions import load_classifier

    classnames = _class_list(args)
    clf = load_classifier(args.prompts, classnames, device="cpu", model=args.model, pretrained=args.pretrained,
                          udc=not args.no_udc)
    path = export_classifier(clf, args.output, fmt=args.format, prompts=str(args.prompts), opset=args.opset,
                             overwrite=args.overwrite)
    print(f"{args.format} classifier over {len(classnames)} classes written to {path} "
          f"(inputs and preprocessing: {path.parent / 'model.json'})")
    return 0


def _add_class_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--prompts", required=True, help="folder with prompts.safetensors + mmlop_config.json")
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument("--classes", nargs="+", metavar="NAME", help="class names to score, in label order")
    group.add_argument("--classes-file", metavar="FILE", help="text file with one class name per line")
    p.add_argument("--model", help="override the base model recorded with the prompts")
    p.add_argument("--pretrained", help="override the pretrained tag/checkpoint recorded with the prompts "
                                        "(e.g. a checkpoint file that has moved)")
    p.add_argument("--no-udc", action="store_true", help="disable drift correction over the class list")
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")


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

    tr = sub.add_parser("train", help="train and evaluate under a protocol (default: the offline benchmark)",
                        description="Train prompts and evaluate them. Without arguments: base-to-novel on the "
                                    "built-in synthetic benchmark (zero-shot vs MMLoP, 16 shots, 3 seeds). "
                                    "Settings resolve as: preset, then method, then flags, then --set; with "
                                    "--config: the file, then flags, then --set (--preset/--method are refused).",
                        epilog="Each preset's defaults (datasets, shots, epochs, lr, depth, ...): "
                               "mmlop train --preset PRESET [--method METHOD] --print-config. "
                               "Re-running a finished run prints its summary; other settings under a preset's "
                               "default name go to <name>-<settings digest>.")
    tr.add_argument("--preset", choices=PRESETS,
                    help="protocol preset (default: world, the offline benchmark)")
    tr.add_argument("--method", choices=METHODS,
                    help="method preset: MMLoP (default), the ablation rows, or a baseline")
    tr.add_argument("--ablation", action="store_true",
                    help="run the ablation ladder (ivlp, lora, scl, udc, mmlop) plus coop and zeroshot and write "
                         "ablation.md/json in the output folder")
    tr.add_argument("--config", help="a full RunConfig JSON (e.g. a run folder's config.json)")
    tr.add_argument("--print-config", action="store_true",
                    help="print the fully resolved configuration as JSON and exit (nothing is loaded or trained)")
    tr.add_argument("--datasets", nargs="+", help="dataset names or custom dataset paths")
    tr.add_argument("--targets", nargs="+", help="evaluation targets for xd/dg")
    tr.add_argument("--root", help="data root (CoOp layout); mmlop never writes into it except few-shot split "
                                   "caches, which --cache-dir moves elsewhere")
    tr.add_argument("--cache-dir", help="folder for few-shot split caches (for a read-only data root)")
    tr.add_argument("--model", help="open_clip architecture, model JSON path, or built-in name")
    tr.add_argument("--pretrained", help="pretrained tag or checkpoint path ('none' for random weights)")
    tr.add_argument("--shots", type=int, help="K shots per class (0 = full training set)")
    tr.add_argument("--seeds", nargs="+", type=int, help="seeds (default 1 2 3)")
    tr.add_argument("--epochs", type=int,
                    help="training epochs, the first of them a warm-up at lr 1e-5: --epochs 1 trains only the "
                         "warm-up and barely moves the prompts (use 2 or more for a smoke test)")
    tr.add_argument("--lr", type=float, help="learning rate")
    tr.add_argument("--batch-size", type=int, help="global training batch size")
    tr.add_argument("--depth", type=int, help="prompt depth L")
    tr.add_argument("--rank", type=int, help="prompt rank r")
    tr.add_argument("--length", type=int, help="prompt tokens T")
    tr.add_argument("--name", help="run folder name (default: derived from the settings)")
    tr.add_argument("--output-dir", help="parent folder of runs (default: runs)")
    tr.add_argument("--device", help="auto, cpu, cuda, cuda:1")
    tr.add_argument("--precision", choices=PRECISIONS, help="autocast precision (amp_* on CUDA)")
    tr.add_argument("--test-batch-size", type=int, help="evaluation batch size")
    tr.add_argument("--num-workers", type=int, help="DataLoader workers")
    tr.add_argument("--text-chunk", type=int, help="classes per text-encoder pass (0 = all)")
    tr.add_argument("--grad-checkpoint", action="store_true", help="gradient checkpointing of encoder blocks")
    tr.add_argument("--feature-cache",
                    help="frozen-feature cache folder ('auto' = <output-dir>/feature_cache, '' = off)")
    tr.add_argument("--views-per-image", type=int,
                    help="pre-enumerate N augmented views per training image; their frozen features are cached")
    tr.add_argument("--fewshot-source", choices=FEWSHOT_SOURCES,
                    help="where few-shot splits come from (default auto: the reference pickles when present)")
    tr.add_argument("--max-test-per-class", type=int, help="evaluate on at most N test images per class")
    tr.add_argument("--no-zero-shot", action="store_true", help="skip the zero-shot baseline evaluation")
    tr.add_argument("--set", action="append", metavar="KEY=VALUE",
                    help="any RunConfig option by dotted name, e.g. method.loss.kl_mode=zs_to_prompted (repeatable)")
    tr.add_argument("--resume", action="store_true",
                    help="continue an existing run folder (finished runs kept, interrupted ones resumed)")
    tr.add_argument("--quiet", action="store_true", help="no progress bars or tables")
    tr.set_defaults(func=cmd_train)

    ev = sub.add_parser("eval", help="evaluate saved prompts on datasets",
                        description="Evaluate prompts saved by mmlop (a folder with mmlop_config.json) on the "
                                    "test split of one or more datasets, with drift correction over the evaluated "
                                    "class set.")
    ev.add_argument("--prompts", required=True, help="folder with prompts.safetensors + mmlop_config.json")
    ev.add_argument("--datasets", nargs="+", required=True, help="dataset names or custom dataset paths")
    ev.add_argument("--root", help="data root")
    ev.add_argument("--subsample", default="all", choices=("all", "base", "new"), help="class subset to score")
    ev.add_argument("--model", help="override the base model recorded with the prompts")
    ev.add_argument("--pretrained", help="override the pretrained tag/checkpoint recorded with the prompts")
    ev.add_argument("--device", default="auto", help="auto, cpu, cuda")
    ev.add_argument("--test-batch-size", type=int, default=100, help="evaluation batch size")
    ev.add_argument("--max-test-per-class", type=int, default=0, help="at most N test images per class")
    ev.add_argument("--no-udc", action="store_true",
                    help="disable drift correction at test time (default: as the prompts were trained)")
    ev.add_argument("--precision", help="fp32, amp_bf16 or amp_fp16 (default: as the prompts were trained)")
    ev.add_argument("--json", action="store_true", help="machine-readable output")
    ev.add_argument("--quiet", action="store_true", help="no progress bars")
    ev.set_defaults(func=cmd_eval)

    pr = sub.add_parser("predict", help="classify image files with saved prompts",
                        description="Classify images among the given class names with saved prompts (drift "
                                    "correction over that class list). Folders are walked for image files. "
                                    "Writes path, top-k classes and probabilities as CSV (stdout by default) or "
                                    "JSON.")
    _add_class_args(pr)
    pr.add_argument("images", nargs="+", metavar="IMAGES_OR_FOLDERS",
                    help="image files and folders of images (after --classes, separate them with --)")
    pr.add_argument("--top-k", type=int, default=1, help="classes reported per image (default 1)")
    pr.add_argument("--output", help="out.csv or out.json (default: CSV on stdout)")
    pr.add_argument("--batch-size", type=int, default=32, help="images per forward pass (default 32)")
    pr.add_argument("--device", default="auto", help="auto, cpu, cuda")
    pr.add_argument("--quiet", action="store_true", help="no progress on stderr")
    pr.set_defaults(func=cmd_predict)

    ex = sub.add_parser("export", help="export the prompted classifier for a class list (ONNX, TorchScript)",
                        description="Write a self-contained image classifier: the prompted image tower and the "
                                    "drift-corrected text classifier of the class list as a buffer. Input: "
                                    "normalised images (B, 3, H, W); outputs: probabilities and logits. "
                                    "model.json beside it documents the preprocessing.")
    _add_class_args(ex)
    ex.add_argument("--format", default="onnx", choices=("onnx", "torchscript"), help="file format (default onnx)")
    ex.add_argument("--output", required=True, help="folder for model.onnx / model.pt and model.json")
    ex.add_argument("--opset", type=int, default=17, help="ONNX opset (default 17)")
    ex.set_defaults(func=cmd_export)
    return parser


def _os_error_line(e: OSError) -> str:
    """An OSError as 'what: path' (plus the second path of a rename), without the errno prefix."""
    what = e.strerror or str(e)
    paths = [p for p in (e.filename, e.filename2) if p is not None]
    return f"{what}: {' -> '.join(str(p) for p in paths)}" if paths else what


def _one_line(e: BaseException) -> str:
    text = _os_error_line(e) if isinstance(e, OSError) and not isinstance(e, MmlopError) else str(e)
    if isinstance(e, KeyError) and len(e.args) == 1:
        text = str(e.args[0])
    first, _, rest = text.partition("\n")
    return first + (" (details below)\n" + rest if rest else "")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``mmlop`` console script: the one error boundary.

    A user error (any :class:`~mmlop.errors.MmlopError`, an OS error such as a missing file or a permission,
    and the ``ValueError``/``KeyError`` the package raises for bad values) prints ``mmlop <cmd>: error: ...``
    and exits 2; an interrupt exits 130 saying how to continue; a diverged run exits 3; anything else is a bug:
    its traceback is printed, with a line saying so, and the exit status is 1.
    """
    args = build_parser().parse_args(argv)
    prefix = f"mmlop {args.command}"
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print(f"{prefix}: interrupted", file=sys.stderr)
        return 130
    except (MmlopError, OSError, ValueError, KeyError) as e:
        code = getattr(e, "exit_code", 2)
        label = "failed" if code == 3 else ("interrupted" if code == 130 else "error")
        print(f"{prefix}: {label}: {_one_line(e)}", file=sys.stderr)
        return code
    except Exception:
        traceback.print_exc()
        print(f"{prefix}: internal error: this is a bug in mmlop, not a problem with your input; please report it "
              "with the traceback above", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
