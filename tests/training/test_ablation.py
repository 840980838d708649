"""The ablation table (training/ablation.py): per-seed dataset averages, HM of means vs HM per seed, the row labels."""

import json

import pytest

from mmlop.training.ablation import ABLATION_ROWS, ablation_table, seed_averages, write_ablation
from mmlop.training.presets import method_preset
from mmlop.training.report import summarize

# Expected values are worked out by hand from small decimal inputs; float64 arithmetic in another order differs by
# a few ulps, which pytest.approx's rel 1e-6 absorbs.


def _summary(per_dataset_seed_values):
    """A base-to-novel summary from ``{dataset: [(base, novel) per seed]}``."""
    results = {ds: {seed: {"base": b, "novel": n} for seed, (b, n) in enumerate(values, start=1)}
               for ds, values in per_dataset_seed_values.items()}
    return summarize("b2n", results)


TWO_SEEDS = _summary({"pets": [(90.0, 60.0), (80.0, 80.0)], "cars": [(70.0, 40.0), (60.0, 40.0)]})


def test_seed_averages_average_datasets_within_each_seed():
    per_seed = seed_averages(TWO_SEEDS)
    # Seed 1: base mean(90, 70) = 80, novel mean(60, 40) = 50; seed 2: base 70, novel 60.
    assert per_seed["base"] == pytest.approx([80.0, 70.0])
    assert per_seed["novel"] == pytest.approx([50.0, 60.0])
    assert per_seed["hm"] == pytest.approx([2 * 80 * 50 / 130, 2 * 70 * 60 / 130])


def test_table_reports_hm_of_means_and_the_mean_and_spread_of_per_seed_hms():
    record, table = ablation_table({"mmlop": TWO_SEEDS})
    row = record["mmlop"]
    assert row["base"] == pytest.approx(75.0) and row["novel"] == pytest.approx(55.0)
    assert row["hm"] == pytest.approx(2 * 75 * 55 / 130)  # HM of the averaged base and novel
    hm_seeds = [2 * 80 * 50 / 130, 2 * 70 * 60 / 130]  # 61.54, 64.62
    assert row["std"]["base"] == pytest.approx(5.0) and row["std"]["novel"] == pytest.approx(5.0)
    assert row["std"]["hm"] == pytest.approx(abs(hm_seeds[0] - hm_seeds[1]) / 2)  # population std of two values
    lines = table.splitlines()
    assert lines[0] == "| Row | Base | Novel | HM (of means) | HM per seed |"
    assert lines[2] == "| 5 + shared up-projection (MMLoP) | 75.00 ± 5.00 | 55.00 ± 5.00 | 63.46 | 63.08 ± 1.54 |"


def test_one_seed_has_zero_spread_and_unknown_methods_keep_their_name():
    one = _summary({"pets": [(90.0, 60.0)]})
    record, table = ablation_table({"mmlop-kl1": one})
    assert record["mmlop-kl1"]["std"] == {"base": 0.0, "novel": 0.0, "hm": 0.0}
    assert "| mmlop-kl1 | 90.00 ± 0.00 | 60.00 ± 0.00 | 72.00 | 72.00 ± 0.00 |" in table


def test_rows_follow_the_ladder_and_every_row_is_a_preset():
    # The paper's ladder (Table 4: rows 1-5), then the baselines.
    assert tuple(m for m, _ in ABLATION_ROWS[:5]) == ("ivlp", "lora", "scl", "udc", "mmlop")
    for method, _ in ABLATION_ROWS:
        method_preset(method)  # raises on an unknown preset
    record, table = ablation_table({m: TWO_SEEDS for m, _ in ABLATION_ROWS})
    assert list(record) == [m for m, _ in ABLATION_ROWS]
    assert [line.split(" | ")[0][2:] for line in table.splitlines()[2:]] == [label for _, label in ABLATION_ROWS]


def test_write_ablation_writes_the_record_and_the_table(tmp_path):
    summary = {**TWO_SEEDS, "run_dir": "/runs/x"}
    table = write_ablation({"ivlp": summary}, tmp_path)
    assert (tmp_path / "ablation.md").read_text() == table
    record = json.loads((tmp_path / "ablation.json").read_text())
    assert record["ivlp"]["run_dir"] == "/runs/x" and record["ivlp"]["per_seed"]["base"] == [80.0, 70.0]
