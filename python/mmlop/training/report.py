"""Run summaries: per-dataset mean and standard deviation over seeds, base/novel/HM, as JSON, Markdown and a PNG figure."""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

from mmlop._io import atomic_write_bytes, atomic_write_json
from mmlop.metrics import harmonic_mean


def _stats(values: list[float]) -> dict[str, Any]:
    return {"mean": statistics.fmean(values), "std": statistics.pstdev(values) if len(values) > 1 else 0.0,
            "per_seed": values}


def summarize(protocol: str, results: dict[str, dict[int, dict]], *, source: str | None = None) -> dict[str, Any]:
    """Aggregate per-seed results ``{dataset: {seed: {...}}}``.

    Base-to-novel: per dataset B and N are seed means and HM = HM(B, N); the average row is HM(mean B, mean N)
    (not the mean of HMs), as the protocol specifies. Other protocols: accuracy mean/std per dataset and the mean
    over datasets.

    Args:
        protocol: ``b2n``, ``fewshot``, ``xd`` or ``dg``.
        results: Per dataset, per seed, the numeric results of that run.
        source: For xd/dg, the source dataset: its row is kept, marked ``is_source``, and left out of the average
            (which is over targets only).

    Returns:
        ``{"protocol", "datasets": {name: row}, "average": {metric: value}}``.
    """
    rows: dict[str, Any] = {}
    for ds, per_seed in results.items():
        seeds = sorted(per_seed)
        row: dict[str, Any] = {"seeds": seeds}
        keys = sorted({k for r in per_seed.values() for k, v in r.items() if isinstance(v, (int, float))})
        for k in keys:
            row[k] = _stats([float(per_seed[s][k]) for s in seeds if k in per_seed[s]])
        if protocol == "b2n":
            row["hm"] = harmonic_mean(row["base"]["mean"], row["novel"]["mean"])
            if "zs_base" in row:
                row["zs_hm"] = harmonic_mean(row["zs_base"]["mean"], row["zs_novel"]["mean"])
        rows[ds] = row
    if source is not None:
        rows[source]["is_source"] = True
    avg: dict[str, Any] = {}
    if rows:
        metric_keys = {k for r in rows.values() for k, v in r.items() if isinstance(v, dict) and "mean" in v}
        for k in sorted(metric_keys):
            vals = [r[k]["mean"] for r in rows.values() if k in r and not r.get("is_source")]
            if vals:
                avg[k] = statistics.fmean(vals)
        if protocol == "b2n":
            avg["hm"] = harmonic_mean(avg["base"], avg["novel"])
            if "zs_base" in avg:
                avg["zs_hm"] = harmonic_mean(avg["zs_base"], avg["zs_novel"])
    return {"protocol": protocol, "datasets": rows, "average": avg}


def to_markdown(summary: dict[str, Any], title: str = "") -> str:
    """A Markdown table: B / N / HM (two decimals) for base-to-novel, accuracy (one decimal) otherwise."""
    lines = [f"## {title}", ""] if title else []
    rows, avg = summary["datasets"], summary["average"]
    if summary["protocol"] == "b2n":
        zs = any("zs_base" in r for r in rows.values())
        head = "| Dataset | " + ("ZS Base | ZS Novel | ZS HM | " if zs else "") + "Base | Novel | HM |"
        lines += [head, "|" + "---|" * (head.count("|") - 1)]

        def fmt(r, avg_row=False):
            def cell(k):
                v = r[k] if avg_row else r[k]["mean"]
                return f"{v:.2f}" if avg_row else f"{v:.2f} ± {r[k]['std']:.2f}"
            z = f"{cell('zs_base')} | {cell('zs_novel')} | {r['zs_hm']:.2f} | " if zs else ""
            return f"{z}{cell('base')} | {cell('novel')} | {r['hm']:.2f} |"

        for ds, r in rows.items():
            lines.append(f"| {ds} | {fmt(r)}")
        lines.append(f"| **Average** | {fmt(avg, True)}")
    else:
        zs = any("zs_accuracy" in r for r in rows.values())
        lines += ["| Dataset | " + ("Zero-shot | " if zs else "") + "Accuracy |",
                  "|---|" + ("---|" if zs else "") + "---|"]
        for ds, r in rows.items():
            z = f"{r['zs_accuracy']['mean']:.1f} | " if zs and "zs_accuracy" in r else ("– | " if zs else "")
            tag = " (source)" if r.get("is_source") else ""
            lines.append(f"| {ds}{tag} | {z}{r['accuracy']['mean']:.1f} ± {r['accuracy']['std']:.1f} |")
        z = f"{avg['zs_accuracy']:.1f} | " if zs and "zs_accuracy" in avg else ("– | " if zs else "")
        lines.append(f"| **Average** | {z}{avg.get('accuracy', float('nan')):.1f} |")
    if "paper" in summary:
        from mmlop.training import paper

        lines += ["", paper.to_markdown(summary["paper"]).rstrip("\n")]
    used = summary.get("shots", {}).get("used", {})
    if used:
        shots = summary["shots"]["requested"]
        per = ", ".join(f"{d} {u['min_per_class']}" + (f"-{u['max_per_class']}" if u["max_per_class"] !=
                        u["min_per_class"] else "") for d, u in used.items())
        lines += ["", f"Training images per class (requested {shots if shots > 0 else 'all'}): {per}"]
    lines += [f"\n> warning: {w}" for w in summary.get("warnings", [])]
    return "\n".join(lines) + "\n"


def write_reports(summary: dict[str, Any], folder: Path, title: str = "") -> None:
    """``summary.json``, ``summary.md`` and ``summary.png`` (see :func:`mmlop.training.figures.summary_figure`)
    in ``folder``."""
    from mmlop.training.figures import save_figure, summary_figure

    atomic_write_json(folder / "summary.json", summary)
    atomic_write_bytes(folder / "summary.md", to_markdown(summary, title).encode())
    save_figure(summary_figure(summary, title), folder / "summary.png")
