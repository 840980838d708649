"""The run figures hold the plotted values: bar heights, error bars and line data read back from the artists."""

import json

import pytest
from matplotlib.container import BarContainer

from mmlop.training.figures import (ablation_figure, read_metrics, save_figure, save_training_curves,
                                    summary_figure, training_curves_figure)
from mmlop.training.report import summarize


def _bars(ax) -> list[list[float]]:
    return [[round(p.get_height(), 6) for p in c.patches] for c in ax.containers if isinstance(c, BarContainer)]


def _b2n_summary():
    per = {"world/a": {1: {"base": 80.0, "novel": 60.0, "hm": 0, "zs_base": 70.0, "zs_novel": 65.0},
                       2: {"base": 84.0, "novel": 64.0, "hm": 0, "zs_base": 70.0, "zs_novel": 65.0}},
           "world/b": {1: {"base": 90.0, "novel": 50.0, "hm": 0, "zs_base": 75.0, "zs_novel": 55.0},
                       2: {"base": 90.0, "novel": 50.0, "hm": 0, "zs_base": 75.0, "zs_novel": 55.0}}}
    return summarize("b2n", per)


def test_the_base_to_novel_summary_figure_plots_means_spread_and_the_average(tmp_path):
    summary = _b2n_summary()
    fig = summary_figure(summary, "base-to-novel: mmlop-world (built-in weights) — world-b2n")
    base_ax, novel_ax, hm_ax = fig.axes[:3]
    assert fig._suptitle.get_text() == "base-to-novel: mmlop-world (built-in weights) — world-b2n"
    assert [ax.get_title() for ax in (base_ax, novel_ax, hm_ax)] == ["Base", "Novel", "HM"]
    # zero-shot then trained; per dataset, then the Average group
    assert _bars(base_ax) == [[70.0, 75.0, 72.5], [82.0, 90.0, 86.0]]
    assert _bars(novel_ax) == [[65.0, 55.0, 60.0], [62.0, 50.0, 56.0]]
    hm = _bars(hm_ax)[1]
    assert hm[0] == pytest.approx(2 * 82 * 62 / 144, abs=1e-5) and hm[2] == pytest.approx(2 * 86 * 56 / 142, abs=1e-5)
    # Seed spread: population std of the two seeds' base accuracies (80, 84) is 2.
    trained = [c for c in base_ax.containers if isinstance(c, BarContainer)][1]
    err = trained.errorbar.lines[2][0].get_segments()[0]
    assert err[1][1] - err[0][1] == pytest.approx(4.0)  # mean ± 2
    assert [t.get_text() for t in base_ax.get_xticklabels()] == ["world/a", "world/b", "Average"]
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["zero-shot", "trained"]
    path = save_figure(fig, tmp_path / "summary.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_paper_numbers_are_a_third_series_when_the_run_was_compared():
    summary = _b2n_summary()
    summary["paper"] = {"compared": True,
                        "datasets": {"world/a": {"base": {"paper": 85.0}, "novel": {"paper": 66.0},
                                                 "hm": {"paper": 74.3}}},
                        "average": {"base": {"paper": 84.0}, "novel": {"paper": 70.0}, "hm": {"paper": 76.4}}}
    fig = summary_figure(summary)
    paper = _bars(fig.axes[0])[2]
    assert paper[0] == 85.0 and paper[1] != paper[1] and paper[2] == 84.0  # world/b has no paper number: a gap
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["zero-shot", "trained", "paper"]
    summary["paper"] = {"compared": False, "differences": ["synthetic data"]}
    assert len(_bars(summary_figure(summary).axes[0])) == 2


def test_other_protocols_plot_accuracy_and_mark_the_source():
    per = {"/data/imagenet": {1: {"accuracy": 70.0}}, "imagenet_r": {1: {"accuracy": 75.0, "zs_accuracy": 74.0}}}
    summary = summarize("dg", per)
    summary["datasets"]["/data/imagenet"]["is_source"] = True
    summary["average"] = {"accuracy": 75.0, "zs_accuracy": 74.0}  # over targets only, as the runner computes it
    fig = summary_figure(summary, "domain generalisation")
    (ax,) = fig.axes
    assert ax.get_title() == "Accuracy"
    zs, trained = _bars(ax)
    assert trained == [70.0, 75.0, 75.0] and zs[1:] == [74.0, 74.0]
    assert [t.get_text() for t in ax.get_xticklabels()][0] == "imagenet (source)"


def test_training_curves_plot_each_loss_term_and_the_lr(tmp_path):
    rows = [{"epoch": e, "lr": lr, "loss_total": 3.0 - e, "loss_ce": 2.0 - e / 2, "loss_kl": 0.1 * e}
            for e, lr in ((1, 1e-5), (2, 0.01), (3, 0.005))]
    metrics = tmp_path / "metrics.jsonl"
    metrics.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert read_metrics(metrics) == rows
    fig = training_curves_figure(rows, "world/a seed 1")
    loss_ax, lr_ax = fig.axes
    lines = {line.get_label(): list(line.get_ydata()) for line in loss_ax.get_lines()}
    assert lines == {"total": [2.0, 1.0, 0.0], "ce": [1.5, 1.0, 0.5], "kl": pytest.approx([0.1, 0.2, 0.3])}
    assert loss_ax.get_yscale() == "linear"  # a zero loss: no log axis
    assert training_curves_figure(rows[:2]).axes[0].get_yscale() == "log"
    assert list(lr_ax.get_lines()[0].get_xdata()) == [1, 2, 3]
    assert list(lr_ax.get_lines()[0].get_ydata()) == [1e-5, 0.01, 0.005] and lr_ax.get_yscale() == "log"
    assert save_training_curves(metrics, tmp_path / "curves.png").stat().st_size > 1000
    assert save_training_curves(tmp_path / "missing.jsonl", tmp_path / "none.png") is None
    metrics.write_text("{not json\n")
    with pytest.raises(ValueError, match="metrics.jsonl:1: not a JSON line"):
        read_metrics(metrics)


def test_the_ablation_figure_has_one_bar_per_row_and_metric():
    record = {"ivlp": {"base": 80.0, "novel": 60.0, "hm": 68.57, "std": {"base": 1.0, "novel": 2.0, "hm": 1.5}},
              "mmlop": {"base": 82.0, "novel": 70.0, "hm": 75.53, "std": {"base": 0.5, "novel": 0.5, "hm": 0.4}}}
    record = dict(reversed(record.items()))  # as read back from ablation.json (sorted keys): the labels give the order
    fig = ablation_figure(record, {"ivlp": "1 IVLP", "mmlop": "5 MMLoP"}, "ablation")
    (ax,) = fig.axes
    assert _bars(ax) == [[80.0, 82.0], [60.0, 70.0], [68.57, 75.53]]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1 IVLP", "5 MMLoP"]
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["Base", "Novel", "HM"]
