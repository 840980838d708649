"""Does a run match the paper? The paper's reported numbers beside a run's summary, or the settings that differ.

The numbers ship as package data (``mmlop/reference_results.json``, transcribed from protocol.md §6 with each
table's source and provenance tags). A base-to-novel, few-shot or domain-generalisation run is compared only when
it uses the paper's setting: ViT-B/16 with OpenAI weights (ViT-B/32 for the appendix few-shot table), the paper's
datasets, shots and epochs, and the ``mmlop`` method preset with its paper settings. Otherwise the block says which
settings differ, so that a number is never set beside one it cannot be compared with.
"""

from __future__ import annotations

import functools
import json
import statistics
from importlib import resources
from typing import Any

from mmlop.config import dotted_items
from mmlop.training.config import RunConfig

REFERENCE_FILE = "reference_results.json"
REFERENCE_FORMAT = "mmlop-reference-results/1"
#: open_clip architecture names of the paper's backbones (the OpenAI weights need QuickGELU; both names load it).
PAPER_MODELS = {"ViT-B-16": "ViT-B/16", "ViT-B-16-quickgelu": "ViT-B/16",
                "ViT-B-32": "ViT-B/32", "ViT-B-32-quickgelu": "ViT-B/32"}
#: RunConfig fields that do not change what is measured (speed, output, logging), never compared.
_IGNORED = ("name", "output_dir", "device", "test_batch_size", "num_workers", "text_chunk", "grad_checkpoint",
            "feature_cache", "fewshot_source", "zero_shot", "quiet", "root", "model", "pretrained", "datasets",
            "targets", "shots", "seeds", "precision", "views_per_image")


@functools.lru_cache(maxsize=1)
def reference_results() -> dict[str, Any]:
    """The paper's reported numbers (``mmlop/reference_results.json``), with their sources.

    Raises:
        ValueError: the shipped file is not the expected format (a broken install).
    """
    text = resources.files("mmlop").joinpath(REFERENCE_FILE).read_text(encoding="utf-8")
    data = json.loads(text)
    if data.get("format") != REFERENCE_FORMAT:
        raise ValueError(f"mmlop/{REFERENCE_FILE}: format {data.get('format')!r}, expected {REFERENCE_FORMAT!r}")
    return data


def _fmt(v: Any, most: int = 4) -> str:
    if isinstance(v, (list, tuple)):
        more = f", ... ({len(v)} in all)" if len(v) > most else ""
        return "[" + ", ".join(_fmt(x) for x in v[:most]) + more + "]"
    return repr(v) if isinstance(v, str) else str(v)


def _reference_table(config: RunConfig, backbone: str | None) -> tuple[dict[str, Any] | None, str]:
    """The reference table for this protocol (and backbone, shots for few-shot), or None and why not."""
    tables = reference_results()["tables"]
    if config.protocol == "xd":
        return None, "the paper reports no cross-dataset numbers"
    if config.protocol == "fewshot":
        per_k = tables["fewshot"]["backbones"].get(backbone or "ViT-B/16", {})
        table = per_k.get(str(config.shots))
        if table is None:
            return None, ""
        return {**tables["fewshot"], **table}, ""
    return tables[config.protocol], ""


def setting_differences(config: RunConfig, base: dict[str, Any] | None = None) -> list[str]:
    """How a run's setting differs from the paper's for its protocol (empty: comparable).

    Args:
        config: The run's resolved configuration.
        base: The base model's :meth:`~mmlop.BaseCLIP.describe` (the model actually used); defaults to the
            configuration's ``model`` and ``pretrained``.

    Returns:
        One ``"<setting> <run value> (paper: <value>)"`` entry per difference.
    """
    from mmlop.training import build_config
    from mmlop.training.presets import BENCHMARK_DATASETS, DG_TARGETS

    model = base["model"] if base else config.model
    pretrained = base["pretrained"] if base else config.pretrained
    diffs: list[str] = []
    backbone = PAPER_MODELS.get(model)
    allowed = ("ViT-B/16", "ViT-B/32") if config.protocol == "fewshot" else ("ViT-B/16",)
    if backbone not in allowed:
        diffs.append(f"model {model} (paper: {' or '.join(b.replace('/', '-') for b in allowed)})")
    if pretrained != "openai":
        diffs.append(f"pretrained {pretrained} (paper: openai)")
    if config.protocol == "xd":
        return diffs + ["protocol xd (the paper reports no cross-dataset numbers)"]

    paper = build_config(config.protocol, method="mmlop")
    shots = (4, 8, 16) if config.protocol == "fewshot" else (paper.shots,)
    if config.shots not in shots:
        diffs.append(f"shots {config.shots} (paper: {' / '.join(map(str, shots))})")
    if config.protocol == "dg":
        if tuple(config.datasets) != ("imagenet",):
            diffs.append(f"source {_fmt(list(config.datasets))} (paper: imagenet)")
        extra = [t for t in config.targets if t not in DG_TARGETS]
        if extra or not config.targets:
            diffs.append(f"targets {_fmt(extra or [])} (paper: {', '.join(DG_TARGETS)})")
    else:
        extra = [d for d in config.datasets if d not in BENCHMARK_DATASETS]
        if extra:
            diffs.append(f"datasets {_fmt(extra)} (paper: the {len(BENCHMARK_DATASETS)} benchmark datasets only)")
    ours, theirs = dotted_items(config.to_dict()), dotted_items(paper.to_dict())
    for key in sorted(ours, key=lambda k: (k != "optim.epochs", k)):  # epochs first: the usual difference
        if key in _IGNORED or ours[key] == theirs.get(key):
            continue
        label = "epochs" if key == "optim.epochs" else key
        diffs.append(f"{label} {_fmt(ours[key])} (paper: {_fmt(theirs.get(key))})")
    return diffs


def _notes(config: RunConfig) -> list[str]:
    """Differences that keep a run comparable but make it a looser check."""
    notes = []
    if tuple(config.seeds) != (1, 2, 3):
        notes.append(f"seeds {_fmt(list(config.seeds))} (paper: mean of seeds 1, 2, 3)")
    if config.precision != "fp32":
        notes.append(f"precision {config.precision} (expect about ±0.3 pt, method.md §9 row 26)")
    if config.views_per_image:
        notes.append(f"{config.views_per_image} pre-enumerated augmented views per image (paper: a fresh "
                     "augmentation every epoch)")
    return notes


def _mean(values: list[float]) -> float:
    return statistics.fmean(values)


def compare_with_paper(config: RunConfig, summary: dict[str, Any], *,
                       base: dict[str, Any] | None = None) -> dict[str, Any]:
    """The ``paper`` block of a run summary.

    Args:
        config: The run's configuration.
        summary: From :func:`mmlop.training.report.summarize` (per-dataset seed means and the average).
        base: The base model's description (see :func:`setting_differences`).

    Returns:
        ``{"compared": False, "differences": [...], "message": ...}`` when the setting differs, else
        ``{"compared": True, "source": ..., "datasets": {name: {metric: {"run", "paper", "diff"}}},
        "average": {...}, "notes": [...]}``. The average is the paper's own average row when the run covers all
        of the paper's datasets, else the paper's numbers recomputed over the datasets the run has ([derived]).
    """
    from mmlop.metrics import harmonic_mean

    diffs = setting_differences(config, base)
    table, why = (None, "") if diffs else _reference_table(
        config, PAPER_MODELS.get(base["model"] if base else config.model))
    if diffs or table is None:
        diffs = diffs or [why or f"{config.protocol} with these settings has no reference table"]
        return {"compared": False, "differences": diffs,
                "message": "not compared with the paper: " + ", ".join(diffs)}
    metrics = table["metrics"]
    paper_rows = table["datasets"]
    rows: dict[str, Any] = {}
    for ds, row in summary["datasets"].items():
        ref = paper_rows.get(ds)
        if ref is None:
            continue
        cells = {}
        for m in metrics:
            run_v = row.get(m)
            run_v = run_v["mean"] if isinstance(run_v, dict) else run_v
            if run_v is not None and m in ref:
                cells[m] = {"run": run_v, "paper": ref[m], "diff": run_v - ref[m]}
        rows[ds] = {**cells, **({"is_source": True} if ref.get("is_source") else {})}
    targets = [d for d in rows if not rows[d].get("is_source")]
    full = set(targets) == {d for d, r in paper_rows.items() if not r.get("is_source")}
    average: dict[str, Any] = {}
    for m in metrics:
        if m in ("hm", "zs_hm"):
            continue
        have = [d for d in targets if m in rows[d]]
        if not have:
            continue
        run_avg = summary["average"].get(m)
        paper_avg = table["average"][m] if full else _mean([paper_rows[d][m] for d in have])
        if run_avg is not None:
            average[m] = {"run": run_avg, "paper": paper_avg, "diff": run_avg - paper_avg}
    for hm, (b, n) in (("hm", ("base", "novel")), ("zs_hm", ("zs_base", "zs_novel"))):
        if hm in metrics and b in average and n in average:
            paper_hm = table["average"][hm] if full else harmonic_mean(average[b]["paper"], average[n]["paper"])
            run_hm = summary["average"][hm]
            average[hm] = {"run": run_hm, "paper": paper_hm, "diff": run_hm - paper_hm}
    return {"compared": True, "source": table["source"], "setting": table["setting"],
            "paper_average": "stated" if full else f"recomputed over {len(targets)} datasets [derived]",
            "datasets": rows, "average": average, "notes": _notes(config)}


def to_markdown(block: dict[str, Any]) -> str:
    """The paper block as Markdown: a second table (run, paper, difference per metric), or the differences."""
    if not block.get("compared"):
        return f"_{block['message']}._\n"
    src = block["source"]
    metrics = [m for m in ("base", "novel", "hm", "zs_hm", "accuracy", "zs_accuracy")
               if any(m in r for r in block["datasets"].values())]
    names = {"base": "Base", "novel": "Novel", "hm": "HM", "zs_hm": "ZS HM", "accuracy": "Accuracy",
             "zs_accuracy": "Zero-shot"}
    digits = 2 if "hm" in metrics else 1  # the paper's own precision (protocol.md §4)
    lines = [f"### Compared with the paper (arXiv {src['arxiv']}, {src['table']})", ""]
    head = "| Dataset | " + " | ".join(f"{names[m]} | paper | Δ" for m in metrics) + " |"
    lines += [head, "|" + "---|" * (1 + 3 * len(metrics))]

    def cells(r: dict[str, Any]) -> str:
        out = []
        for m in metrics:
            c = r.get(m)
            out.append("– | – | –" if c is None else
                       f"{c['run']:.{digits}f} | {c['paper']:.{digits}f} | {c['diff']:+.{digits}f}")
        return " | ".join(out)

    for ds, r in block["datasets"].items():
        lines.append(f"| {ds}{' (source)' if r.get('is_source') else ''} | {cells(r)} |")
    lines.append(f"| **Average** | {cells(block['average'])} |")
    lines.append("")
    lines.append(f"Paper average: {block['paper_average']}. Provenance: "
                 + "; ".join(f"{k}: {v}" for k, v in src["provenance"].items()) + ".")
    for n in block["notes"]:
        lines.append(f"Note: {n}.")
    return "\n".join(lines) + "\n"


def headline(block: dict[str, Any] | None) -> dict[str, float]:
    """The paper's value of the headline metric per dataset (HM for base-to-novel, else accuracy), for figures."""
    if not block or not block.get("compared"):
        return {}
    key = "hm" if any("hm" in r for r in block["datasets"].values()) else "accuracy"
    return {ds: r[key]["paper"] for ds, r in block["datasets"].items() if key in r}
