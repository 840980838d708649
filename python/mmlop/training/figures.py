"""The figures of a run, drawn with matplotlib: the summary, the training curves and the ablation ladder.

Each ``*_figure`` function returns a :class:`matplotlib.figure.Figure` (so that tests and notebooks can read
the plotted values back from its artists) and each ``save_*`` function writes one PNG atomically. Figures are
built with the object API on an Agg canvas: nothing touches pyplot's global state or the user's backend, and
matplotlib is imported only when a figure is drawn (``import mmlop`` stays light).
"""

from __future__ import annotations

import json
import statistics
from io import BytesIO
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from mmlop._io import atomic_write_bytes

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["summary_figure", "training_curves_figure", "ablation_figure", "read_metrics", "save_figure",
           "save_training_curves"]

ZERO_SHOT_COLOUR, TRAINED_COLOUR, PAPER_COLOUR = "#9e9e9e", "#1f6fc8", "#e68c1e"
_B2N_PANELS = (("base", "zs_base", "Base"), ("novel", "zs_novel", "Novel"), ("hm", "zs_hm", "HM"))


def _new_figure(width: float, height: float) -> "Figure":
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig: "Figure", path: str | Path) -> Path:
    """Write ``fig`` as a PNG to ``path`` (temporary file, fsync, rename) and return the path."""
    buf = BytesIO()
    fig.savefig(buf, format="png")
    atomic_write_bytes(path, buf.getvalue())
    return Path(path)


def _mean_std(row: dict[str, Any], key: str) -> tuple[float, float] | None:
    value = row.get(key)
    if isinstance(value, dict):
        return float(value["mean"]), float(value.get("std", 0.0))
    if isinstance(value, (int, float)):
        return float(value), 0.0
    return None


def _hm_spread(row: dict[str, Any], base: str, novel: str) -> float:
    """Seed spread of HM: the summary's HM is of the seed means, so take HM per seed from base/novel per seed."""
    b, n = row.get(base), row.get(novel)
    if not (isinstance(b, dict) and isinstance(n, dict)) or len(b.get("per_seed", ())) < 2:
        return 0.0
    hms = [0.0 if x + y == 0 else 2 * x * y / (x + y) for x, y in zip(b["per_seed"], n["per_seed"])]
    return statistics.pstdev(hms)


def _grouped_bars(ax, labels: Sequence[str], series: list[tuple[str, str, list[float], list[float]]]) -> None:
    """Bars of several series side by side per label: ``(name, colour, values, errors)``; NaN values are gaps."""
    import numpy as np

    x = np.arange(len(labels))
    width = 0.8 / max(1, len(series))
    for i, (name, colour, values, errors) in enumerate(series):
        offset = (i - (len(series) - 1) / 2) * width
        bars = ax.bar(x + offset, values, width, yerr=errors, capsize=3, color=colour, label=name,
                      error_kw={"elinewidth": 1})
        ax.bar_label(bars, fmt="%.1f", fontsize=7, padding=2)
    ax.set_xticks(x, labels, rotation=30, ha="right", fontsize=8)
    ax.set_ylim(0, 105)
    ax.grid(axis="y", alpha=0.3)


def _short(name: str, limit: int = 22) -> str:
    """A tick label: a custom dataset's folder name rather than its whole path, elided past ``limit``."""
    name = Path(name).name or name if ("/" in name and not name.startswith("world/")) else name
    return name if len(name) <= limit else name[: limit - 1] + "…"


def summary_figure(summary: dict[str, Any], title: str = "") -> "Figure":
    """Per dataset, the trained method beside zero-shot CLIP, error bars the spread (std) over seeds.

    Base-to-novel: three panels (Base, Novel, HM) with an Average group (HM of the mean base and novel, as the
    protocol defines it). Other protocols: one panel of accuracy, the source dataset marked. When the summary's
    ``paper`` block compared the run with the paper (:mod:`mmlop.training.paper`), the paper's numbers are a
    third series.

    Args:
        summary: A run summary (``summary.json``).
        title: The figure title (protocol, model, run).

    Returns:
        The figure; each panel's bar containers are zero-shot (when evaluated), the trained method, then the
        paper (when compared).
    """
    rows, avg = summary["datasets"], summary.get("average", {})
    labels = [_short(name) + (" (source)" if r.get("is_source") else "") for name, r in rows.items()] + ["Average"]
    nan = float("nan")
    if summary["protocol"] == "b2n":
        panels = _B2N_PANELS
    else:
        panels = (("accuracy", "zs_accuracy", "Accuracy"),)
    fig = _new_figure(max(6.0, 1.1 * len(labels) * len(panels) ** 0.5 + 2), 3.6 * len(panels) ** 0.6 + 0.6)
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (key, zs_key, name) in zip(axes, panels):
        series = []
        for k, legend, colour in ((zs_key, "zero-shot", ZERO_SHOT_COLOUR), (key, "trained", TRAINED_COLOUR)):
            if not any(k in r for r in rows.values()):
                continue
            values, errors = [], []
            for r in rows.values():
                ms = _mean_std(r, k)
                spread = _hm_spread(r, *(("zs_base", "zs_novel") if k == "zs_hm" else ("base", "novel"))) \
                    if k in ("hm", "zs_hm") else (ms[1] if ms else 0.0)
                values.append(ms[0] if ms else nan)
                errors.append(spread)
            values.append(float(avg[k]) if k in avg else nan)
            errors.append(0.0)
            series.append((legend, colour, values, errors))
        paper = _paper_values(summary.get("paper"), key, list(rows))
        if paper is not None:
            series.append(("paper", PAPER_COLOUR, paper, [0.0] * len(paper)))
        _grouped_bars(ax, labels, series)
        ax.set_title(name)
        ax.set_ylabel("top-1 accuracy (%)" if key != "hm" else "harmonic mean (%)")
    handles, names = axes[0].get_legend_handles_labels()
    fig.legend(handles, names, loc="outside lower center", ncols=len(names), fontsize=8)
    fig.suptitle(title or summary["protocol"])
    return fig


def _paper_values(block: dict[str, Any] | None, key: str, datasets: list[str]) -> list[float] | None:
    """The paper's ``key`` per dataset then its average (NaN where it has none), or None when not compared."""
    if not block or not block.get("compared"):
        return None
    rows, avg = block.get("datasets", {}), block.get("average", {})
    values = [float(rows[d][key]["paper"]) if key in rows.get(d, {}) else float("nan") for d in datasets]
    values.append(float(avg[key]["paper"]) if key in avg else float("nan"))
    return None if all(v != v for v in values) else values


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """The epoch records of a ``metrics.jsonl`` (one JSON object a line), in order.

    Raises:
        ValueError: a line is not a JSON object (the message names the file and line).
    """
    records = []
    for i, line in enumerate(Path(path).read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}:{i}: not a JSON line ({e})") from None
        if not isinstance(record, dict) or "epoch" not in record:
            raise ValueError(f"{path}:{i}: expected an epoch record with an 'epoch' field")
        records.append(record)
    return records


def training_curves_figure(records: Sequence[dict[str, Any]], title: str = "") -> "Figure":
    """Each loss term (``loss_*``) and the learning rate per epoch.

    Args:
        records: Epoch records as in ``metrics.jsonl``.
        title: The figure title (dataset, seed, run).

    Returns:
        A figure with two axes: the loss terms (one line each, labelled by term; log scale when all are
        positive) and the lr (log scale).
    """
    epochs = [int(r["epoch"]) for r in records]
    terms = sorted({k for r in records for k in r if k.startswith("loss_")}, key=lambda k: (k != "loss_total", k))
    fig = _new_figure(9.0, 3.6)
    loss_ax, lr_ax = fig.subplots(1, 2)
    for k in terms:
        loss_ax.plot(epochs, [r.get(k, float("nan")) for r in records], marker="o", markersize=3,
                     linewidth=2.0 if k == "loss_total" else 1.2, label=k.removeprefix("loss_"))
    values = [r[k] for r in records for k in terms if isinstance(r.get(k), (int, float))]
    if values and min(values) > 0:  # the consistency terms are ~100x smaller than CE: a log axis shows both
        loss_ax.set_yscale("log")
    loss_ax.set_xlabel("epoch")
    loss_ax.set_ylabel("mean loss over the epoch")
    loss_ax.set_title("loss terms")
    loss_ax.grid(alpha=0.3)
    if terms:
        loss_ax.legend(fontsize=8)
    lr_ax.plot(epochs, [r.get("lr", float("nan")) for r in records], marker="o", markersize=3, color="#d2691e",
               label="lr")
    lr_ax.set_yscale("log")
    lr_ax.set_xlabel("epoch")
    lr_ax.set_title("learning rate")
    lr_ax.grid(alpha=0.3)
    for ax in (loss_ax, lr_ax):
        ax.xaxis.get_major_locator().set_params(integer=True)
    fig.suptitle(title or "training curves")
    return fig


def save_training_curves(metrics_path: str | Path, png_path: str | Path, title: str = "") -> Path | None:
    """Draw ``metrics.jsonl`` as ``png_path``; None (nothing written) when there are no epochs yet."""
    metrics_path = Path(metrics_path)
    if not metrics_path.is_file():
        return None
    records = read_metrics(metrics_path)
    if not records:
        return None
    fig = training_curves_figure(records, title)
    return save_figure(fig, png_path)


def ablation_figure(record: dict[str, dict[str, Any]], labels: dict[str, str] | None = None,
                    title: str = "") -> "Figure":
    """The ablation ladder as grouped bars: base, novel and HM (dataset averages) per row, seed spread as errors.

    Args:
        record: ``ablation.json``: ``{method: {"base", "novel", "hm", "std": {...}}}`` in row order.
        labels: Row labels by method, in row order (``ablation.json`` is written with sorted keys, so the order
            comes from here); methods without a label follow, as the method names.
        title: The figure title.

    Returns:
        A figure with one axis and three bar containers (Base, Novel, HM), one bar per row.
    """
    labels = labels or {}
    order = [m for m in labels if m in record] + [m for m in record if m not in labels]
    record = {m: record[m] for m in order}
    names = [_short(labels.get(m, m), 34) for m in record]
    fig = _new_figure(max(7.0, 1.3 * len(names) + 2), 4.4)
    ax = fig.subplots()
    series = []
    for key, legend, colour in (("base", "Base", "#4c9be8"), ("novel", "Novel", "#f0a04b"),
                                ("hm", "HM", "#3a9e5f")):
        values = [float(r[key]) for r in record.values()]
        errors = [float(r.get("std", {}).get(key, 0.0)) for r in record.values()]
        series.append((legend, colour, values, errors))
    _grouped_bars(ax, names, series)
    ax.set_ylabel("accuracy averaged over datasets (%)")
    fig.legend(*ax.get_legend_handles_labels(), loc="outside lower center", ncols=3, fontsize=8)
    fig.suptitle(title or "ablation (base-to-novel)")
    return fig
