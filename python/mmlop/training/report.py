"""Run summaries: per-dataset mean and standard deviation over seeds, base/novel/HM, as JSON, Markdown and PNG."""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

from mmlop._io import atomic_write_bytes, atomic_write_json


def harmonic_mean(b: float, n: float) -> float:
    return 0.0 if b + n == 0 else 2 * b * n / (b + n)


def _stats(values: list[float]) -> dict[str, Any]:
    return {"mean": statistics.fmean(values), "std": statistics.pstdev(values) if len(values) > 1 else 0.0,
            "per_seed": values}


def summarize(protocol: str, results: dict[str, dict[int, dict]]) -> dict[str, Any]:
    """Aggregate per-seed results ``{dataset: {seed: {...}}}``.

    Base-to-novel: per dataset B and N are seed means and HM = HM(B, N); the average row is HM(mean B, mean N)
    (not the mean of HMs), as the protocol specifies. Other protocols: accuracy mean/std per dataset and the mean
    over datasets (for xd/dg over targets only).
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
    return "\n".join(lines) + "\n"


def plot_png(summary: dict[str, Any], path: Path) -> None:
    """A bar chart (zero-shot vs trained; HM for base-to-novel, accuracy otherwise) drawn with PIL."""
    from io import BytesIO

    from PIL import Image, ImageDraw

    key, zs_key = ("hm", "zs_hm") if summary["protocol"] == "b2n" else ("accuracy", "zs_accuracy")

    def val(r, k):
        v = r.get(k)
        return v["mean"] if isinstance(v, dict) else v

    from mmlop.training.paper import headline

    ref = headline(summary.get("paper"))  # the paper's numbers, only when the run's setting is the paper's
    items = [(ds, val(r, zs_key), val(r, key), ref.get(ds)) for ds, r in summary["datasets"].items()]
    step = 120 if ref else 90
    w, h, left, bottom = max(360, step * len(items) + 80), 320, 50, 60
    img = Image.new("RGB", (w, h), "white")
    d = ImageDraw.Draw(img)
    d.line([(left, 20), (left, h - bottom), (w - 10, h - bottom)], fill="black")
    for tick in range(0, 101, 25):
        y = h - bottom - (h - bottom - 20) * tick / 100
        d.text((10, y - 6), str(tick), fill="black")
    for i, (ds, zs, ours, paper_v) in enumerate(items):
        x = left + 20 + step * i
        for j, (v, colour) in enumerate(((zs, (160, 160, 160)), (ours, (40, 110, 200)), (paper_v, (230, 140, 30)))):
            if v is None:
                continue
            top = h - bottom - (h - bottom - 20) * max(0.0, min(v, 100.0)) / 100
            d.rectangle([x + 30 * j, top, x + 30 * j + 26, h - bottom], fill=colour)
            d.text((x + 30 * j, top - 12), f"{v:.0f}", fill="black")
        d.text((x, h - bottom + 6), ds[:14], fill="black")
    d.text((left + 10, h - 30), f"grey: zero-shot, blue: trained{', orange: paper' if ref else ''} "
           f"({'HM' if key == 'hm' else 'accuracy'} %)", fill="black")
    buf = BytesIO()
    img.save(buf, format="PNG")
    atomic_write_bytes(path, buf.getvalue())


def write_reports(summary: dict[str, Any], folder: Path, title: str = "") -> None:
    """``summary.json``, ``summary.md`` and ``summary.png`` in ``folder``."""
    atomic_write_json(folder / "summary.json", summary)
    atomic_write_bytes(folder / "summary.md", to_markdown(summary, title).encode())
    plot_png(summary, folder / "summary.png")
