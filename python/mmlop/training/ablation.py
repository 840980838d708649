"""The paper's ablation ladder and the baselines from one command, reported as one table (mean ± spread over
seeds of the dataset-averaged base / novel / HM)."""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

from mmlop._io import atomic_write_bytes, atomic_write_json
from mmlop.metrics import harmonic_mean

#: Rows in the paper's order (Table 4), then the baselines.
ABLATION_ROWS = (
    ("ivlp", "1 IVLP (full rank, independent)"),
    ("lora", "2 + rank 1 (independent U)"),
    ("scl", "3 + consistency loss"),
    ("udc", "4 + drift correction"),
    ("mmlop", "5 + shared up-projection (MMLoP)"),
    ("coop", "CoOp"),
    ("zeroshot", "Zero-shot CLIP"),
)


def seed_averages(summary: dict[str, Any]) -> dict[str, list[float]]:
    """Per seed, the base / novel accuracy averaged over datasets and HM(base, novel)."""
    rows = summary["datasets"].values()
    seeds = sorted({s for r in rows for s in r["seeds"]})
    out: dict[str, list[float]] = {"base": [], "novel": [], "hm": []}
    for i, _ in enumerate(seeds):
        b = statistics.fmean(r["base"]["per_seed"][i] for r in rows)
        n = statistics.fmean(r["novel"]["per_seed"][i] for r in rows)
        out["base"].append(b)
        out["novel"].append(n)
        out["hm"].append(harmonic_mean(b, n))
    return out


def ablation_table(results: dict[str, dict[str, Any]]) -> tuple[dict[str, Any], str]:
    """Combine base-to-novel summaries keyed by method preset into a JSON record and a Markdown table."""
    record: dict[str, Any] = {}
    lines = ["| Row | Base | Novel | HM (of means) | HM per seed |", "|---|---|---|---|---|"]
    labels = dict(ABLATION_ROWS)
    for method, summary in results.items():
        per_seed = seed_averages(summary)
        avg = summary["average"]
        std = {k: statistics.pstdev(v) if len(v) > 1 else 0.0 for k, v in per_seed.items()}
        record[method] = {"base": avg["base"], "novel": avg["novel"], "hm": avg["hm"], "per_seed": per_seed,
                          "std": std, "run_dir": summary.get("run_dir")}
        lines.append(f"| {labels.get(method, method)} | {avg['base']:.2f} ± {std['base']:.2f} | "
                     f"{avg['novel']:.2f} ± {std['novel']:.2f} | {avg['hm']:.2f} | "
                     f"{statistics.fmean(per_seed['hm']):.2f} ± {std['hm']:.2f} |")
    return record, "\n".join(lines) + "\n"


def write_ablation(results: dict[str, dict[str, Any]], folder: Path, title: str = "") -> str:
    """``ablation.json``, ``ablation.md`` and ``ablation.png`` in ``folder``; returns the Markdown table."""
    from mmlop.training.figures import ablation_figure, save_figure

    record, table = ablation_table(results)
    atomic_write_json(folder / "ablation.json", record)
    atomic_write_bytes(folder / "ablation.md", table.encode())
    save_figure(ablation_figure(record, dict(ABLATION_ROWS), title), folder / "ablation.png")
    return table
