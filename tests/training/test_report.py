"""Run summaries (training/report.py): seed statistics, HM of means, the average row, xd/dg source exclusion."""

import json

import pytest
from PIL import Image

from mmlop.training.report import harmonic_mean, summarize, to_markdown, write_reports

# Every expected value below is worked out by hand from small decimal inputs; the code computes the same float64
# arithmetic, perhaps in another order, so pytest.approx's rel 1e-6 (~1e10 ulps) only absorbs that order.

B2N = {
    "pets": {1: {"base": 90.0, "novel": 60.0, "hm": 72.0}, 2: {"base": 80.0, "novel": 70.0, "hm": 74.67}},
    "cars": {1: {"base": 70.0, "novel": 30.0, "hm": 42.0}, 2: {"base": 70.0, "novel": 50.0, "hm": 58.33}},
}


def test_harmonic_mean():
    assert harmonic_mean(80.0, 20.0) == pytest.approx(32.0)
    assert harmonic_mean(50.0, 50.0) == 50.0
    assert harmonic_mean(0.0, 0.0) == 0.0  # defined, not a ZeroDivisionError


def test_base_to_novel_rows_are_seed_means_and_hm_of_the_means():
    rows = summarize("b2n", B2N)["datasets"]
    pets = rows["pets"]
    assert pets["seeds"] == [1, 2]
    assert pets["base"] == {"mean": 85.0, "std": 5.0, "per_seed": [90.0, 80.0]}  # population std over seeds
    assert pets["novel"]["mean"] == 65.0
    # HM of the seed means, not the mean of the per-seed HMs (73.33): HM(85, 65) = 2 * 85 * 65 / 150.
    assert pets["hm"] == pytest.approx(2 * 85 * 65 / 150)
    assert pets["hm"] != pytest.approx((72.0 + 74.67) / 2)
    assert rows["cars"]["base"]["std"] == 0.0


def test_base_to_novel_average_row_is_hm_of_the_averaged_base_and_novel():
    avg = summarize("b2n", B2N)["average"]
    # Base: mean(85, 70) = 77.5; novel: mean(65, 40) = 52.5; HM(77.5, 52.5), not the mean of the rows' HMs.
    assert avg["base"] == pytest.approx(77.5) and avg["novel"] == pytest.approx(52.5)
    assert avg["hm"] == pytest.approx(2 * 77.5 * 52.5 / 130)
    per_row_hm = [2 * 85 * 65 / 150, 2 * 70 * 40 / 110]
    assert avg["hm"] != pytest.approx(sum(per_row_hm) / 2)


def test_zero_shot_columns_get_their_own_hm():
    results = {"pets": {1: {"base": 90.0, "novel": 60.0, "zs_base": 80.0, "zs_novel": 20.0}}}
    s = summarize("b2n", results)
    assert s["datasets"]["pets"]["zs_hm"] == pytest.approx(32.0)
    assert s["average"]["zs_hm"] == pytest.approx(32.0)
    md = to_markdown(s)
    assert "| Dataset | ZS Base | ZS Novel | ZS HM | Base | Novel | HM |" in md
    assert "| pets | 80.00 ± 0.00 | 20.00 ± 0.00 | 32.00 | 90.00 ± 0.00 | 60.00 ± 0.00 | 72.00 |" in md
    assert "| **Average** | 80.00 | 20.00 | 32.00 | 90.00 | 60.00 | 72.00 |" in md


@pytest.mark.parametrize("protocol", ["xd", "dg"])
def test_cross_dataset_average_leaves_the_source_out(protocol):
    results = {
        "imagenet": {1: {"accuracy": 70.0, "zs_accuracy": 66.0}, 2: {"accuracy": 72.0, "zs_accuracy": 66.0}},
        "pets": {1: {"accuracy": 90.0, "zs_accuracy": 88.0}, 2: {"accuracy": 92.0, "zs_accuracy": 88.0}},
        "cars": {1: {"accuracy": 60.0, "zs_accuracy": 64.0}, 2: {"accuracy": 64.0, "zs_accuracy": 64.0}},
    }
    s = summarize(protocol, results, source="imagenet")
    assert s["datasets"]["imagenet"]["is_source"] is True
    assert s["datasets"]["imagenet"]["accuracy"]["mean"] == 71.0  # reported, but not averaged
    assert "is_source" not in s["datasets"]["pets"]
    assert s["average"] == {"accuracy": pytest.approx((91.0 + 62.0) / 2), "zs_accuracy": pytest.approx(76.0)}
    # Without a source every dataset counts: the source changes the average.
    assert summarize(protocol, results)["average"]["accuracy"] == pytest.approx((71.0 + 91.0 + 62.0) / 3)
    md = to_markdown(s)
    assert "| imagenet (source) | 66.0 | 71.0 ± 1.0 |" in md
    assert "| **Average** | 76.0 | 76.5 |" in md


def test_fewshot_average_is_the_mean_over_datasets():
    results = {"pets": {1: {"accuracy": 90.0}}, "cars": {1: {"accuracy": 61.0}}}
    s = summarize("fewshot", results)
    assert s["average"] == {"accuracy": pytest.approx(75.5)}
    assert "| **Average** | 75.5 |" in to_markdown(s, title="fewshot")
    assert to_markdown(s, title="fewshot").startswith("## fewshot\n")


def test_write_reports_writes_json_markdown_and_a_png(tmp_path):
    s = summarize("b2n", B2N)
    write_reports(s, tmp_path, title="b2n: tiny")
    assert json.loads((tmp_path / "summary.json").read_text()) == json.loads(json.dumps(s))
    assert (tmp_path / "summary.md").read_text() == to_markdown(s, "b2n: tiny")
    with Image.open(tmp_path / "summary.png") as img:
        assert img.format == "PNG"
