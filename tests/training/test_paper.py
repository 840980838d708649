"""The paper comparison: shipped reference numbers, setting checks, the summary block, and one end-to-end run."""

import json
import os
import statistics

import numpy as np
import pytest
from PIL import Image

from mmlop.data import DATASETS
from mmlop.model import base_from_model
from mmlop.training import build_config
from mmlop.training.paper import compare_with_paper, reference_results, setting_differences, to_markdown
from mmlop.training.presets import BENCHMARK_DATASETS, DG_TARGETS
from mmlop.training.report import harmonic_mean, summarize
from mmlop.training.runner import Runner
from tiny_models import make_tiny_clip

VIT_B16 = {"model": "ViT-B-16", "pretrained": "openai"}


def test_reference_numbers_are_consistent_and_sourced():
    tables = reference_results()["tables"]
    b2n = tables["b2n"]
    assert set(b2n["datasets"]) == set(BENCHMARK_DATASETS)
    for k in ("base", "novel", "zs_base", "zs_novel"):  # the per-dataset rows average back to the stated row
        assert statistics.fmean(r[k] for r in b2n["datasets"].values()) == pytest.approx(b2n["average"][k], abs=0.01)
    for r in b2n["datasets"].values():  # every stated HM is 2BN/(B+N) up to the table's rounding
        assert harmonic_mean(r["base"], r["novel"]) == pytest.approx(r["hm"], abs=0.011)
        assert harmonic_mean(r["zs_base"], r["zs_novel"]) == pytest.approx(r["zs_hm"], abs=0.011)
    assert harmonic_mean(b2n["average"]["base"], b2n["average"]["novel"]) == pytest.approx(79.70, abs=0.011)
    for backbone, per_k in tables["fewshot"]["backbones"].items():
        assert sorted(per_k, key=int) == ["4", "8", "16"], backbone
        for table in per_k.values():
            assert set(table["datasets"]) == set(BENCHMARK_DATASETS)
            for k in ("accuracy", "zs_accuracy"):  # one-decimal means of one-decimal rows
                assert statistics.fmean(r[k] for r in table["datasets"].values()) == pytest.approx(
                    table["average"][k], abs=0.05)
    dg = tables["dg"]
    assert set(dg["datasets"]) == {"imagenet", *DG_TARGETS}
    for k in ("accuracy", "zs_accuracy"):
        assert statistics.fmean(dg["datasets"][t][k] for t in DG_TARGETS) == pytest.approx(dg["average"][k], abs=0.01)
    for name, table in tables.items():
        src = table["source"]
        assert src["arxiv"] == "2602.21397v1" and src["table"] and src["provenance"], name
    assert all(d in DATASETS for d in BENCHMARK_DATASETS + DG_TARGETS)


def _summary(protocol, rows):
    """A summary over seeds 1-3 from {dataset: {metric: value}} (the same value for every seed)."""
    return summarize(protocol, {ds: {s: dict(r) for s in (1, 2, 3)} for ds, r in rows.items()})


def test_a_paper_b2n_run_is_compared_per_dataset_and_on_average():
    ref = reference_results()["tables"]["b2n"]["datasets"]
    cfg = build_config("b2n")
    assert setting_differences(cfg, VIT_B16) == []
    rows = {ds: {"base": r["base"] + 1, "novel": r["novel"] - 2, "zs_base": r["zs_base"], "zs_novel": r["zs_novel"]}
            for ds, r in ref.items()}
    block = compare_with_paper(cfg, _summary("b2n", rows), base=VIT_B16)
    assert block["compared"] and block["paper_average"] == "stated" and block["notes"] == []
    pets = block["datasets"]["oxford_pets"]
    assert pets["base"] == {"run": pytest.approx(96.47), "paper": 95.47, "diff": pytest.approx(1.0)}
    assert pets["novel"]["diff"] == pytest.approx(-2.0) and pets["zs_hm"]["diff"] == pytest.approx(0.0, abs=0.01)
    avg = block["average"]
    assert avg["base"]["paper"] == 83.79 and avg["base"]["diff"] == pytest.approx(1.0, abs=0.01)
    assert avg["hm"]["paper"] == 79.70 and avg["hm"]["run"] == pytest.approx(harmonic_mean(84.79, 73.98), abs=0.01)
    md = to_markdown(block)
    assert "### Compared with the paper (arXiv 2602.21397v1, Table 1)" in md
    assert "| oxford_pets | 96.47 | 95.47 | +1.00 | 94.97 | 96.97 | -2.00 |" in md
    assert "| **Average** | 84.79 | 83.79 | +1.00 |" in md


def test_a_subset_of_the_datasets_is_compared_with_the_recomputed_paper_average():
    cfg = build_config("b2n", datasets=["dtd", "eurosat"], seeds=[1])
    block = compare_with_paper(cfg, _summary("b2n", {"dtd": {"base": 80, "novel": 60},
                                                     "eurosat": {"base": 90, "novel": 70}}), base=VIT_B16)
    assert block["compared"] and block["paper_average"] == "recomputed over 2 datasets [derived]"
    assert block["average"]["base"]["paper"] == pytest.approx((82.67 + 92.37) / 2)
    assert block["average"]["hm"]["paper"] == pytest.approx(harmonic_mean((82.67 + 92.37) / 2, (60.87 + 79.10) / 2))
    assert "zs_hm" not in block["average"]  # the run had no zero-shot baseline
    assert block["notes"] == ["seeds [1] (paper: mean of seeds 1, 2, 3)"]


def test_fewshot_uses_the_backbone_and_shots_table():
    cfg = build_config("fewshot", model="ViT-B-32", shots=8, datasets=["eurosat"])
    block = compare_with_paper(cfg, _summary("fewshot", {"eurosat": {"accuracy": 86.0, "zs_accuracy": 45.0}}),
                               base={"model": "ViT-B-32-quickgelu", "pretrained": "openai"})
    assert block["compared"] and block["datasets"]["eurosat"]["accuracy"]["paper"] == 85.2
    assert block["datasets"]["eurosat"]["zs_accuracy"]["paper"] == 45.1
    assert "| eurosat | 86.0 | 85.2 | +0.8 | 45.0 | 45.1 | -0.1 |" in to_markdown(block)
    two = build_config("fewshot", shots=2)
    assert setting_differences(two, VIT_B16) == ["shots 2 (paper: 4 / 8 / 16)"]
    assert setting_differences(build_config("b2n", model="ViT-B-32"), {"model": "ViT-B-32", "pretrained": "openai"}) \
        == ["model ViT-B-32 (paper: ViT-B-16)"]


def test_dg_compares_the_source_and_the_targets():
    cfg = build_config("dg")
    rows = {"imagenet": {"accuracy": 70.5}, **{t: {"accuracy": 60.0, "zs_accuracy": 50.0} for t in DG_TARGETS}}
    summary = _summary("dg", rows)
    summary["datasets"]["imagenet"]["is_source"] = True
    summary["average"] = {"accuracy": 60.0, "zs_accuracy": 50.0}  # targets only, as the runner recomputes it
    block = compare_with_paper(cfg, summary, base=VIT_B16)
    assert block["compared"] and block["datasets"]["imagenet"]["is_source"]
    assert block["datasets"]["imagenet"]["accuracy"]["diff"] == pytest.approx(-0.5)
    assert block["average"]["accuracy"]["paper"] == 60.46 and block["paper_average"] == "stated"
    assert "| imagenet (source) | 70.5 | 71.0 | -0.5 |" in to_markdown(block)


@pytest.mark.parametrize("config, base, message", [
    (build_config("b2n", model="ViT-B-32", **{"optim.epochs": 5}), {"model": "ViT-B-32", "pretrained": "openai"},
     "not compared with the paper: model ViT-B-32 (paper: ViT-B-16), epochs 5 (paper: 30)"),
    (build_config("b2n", method="lora"), VIT_B16, "not compared with the paper: method.loss.consistency False "
     "(paper: True), method.loss.udc False (paper: True), method.loss.udc_at_test False (paper: True), "
     "method.prompt.shared_up False (paper: True)"),
    (build_config("b2n", datasets=["imagenet", "/data/my_birds"], max_test_per_class=10), VIT_B16,
     "not compared with the paper: datasets ['/data/my_birds'] (paper: the 11 benchmark datasets only), "
     "max_test_per_class 10 (paper: 0)"),
    (build_config("b2n"), {"model": "ViT-B-16", "pretrained": "laion2b_s34b_b88k"},
     "not compared with the paper: pretrained laion2b_s34b_b88k (paper: openai)"),
    (build_config("xd"), VIT_B16, "not compared with the paper: protocol xd (the paper reports no cross-dataset "
     "numbers)"),
])
def test_a_run_that_differs_says_which_settings_differ(config, base, message):
    block = compare_with_paper(config, {"datasets": {}, "average": {}}, base=base)
    assert block == {"compared": False, "differences": block["differences"], "message": message}
    assert to_markdown(block) == f"_{message}._\n"


def _pets_tree(root, classes=("abyssinian", "beagle", "boxer", "pug")):
    """OxfordPets laid out as the real dataset: images under oxford_pets/images, split_zhou_OxfordPets.json."""
    spec = DATASETS["oxford_pets"]
    rng = np.random.default_rng(0)
    split = {}
    for name, n in (("train", 4), ("val", 1), ("test", 3)):
        split[name] = []
        for c, cls in enumerate(classes):
            for i in range(n):
                rel = f"{cls}_{name}_{i}.jpg"
                path = os.path.join(root, spec.prefix, rel)
                os.makedirs(os.path.dirname(path), exist_ok=True)
                Image.fromarray(rng.integers(0, 256, (36, 36, 3), dtype=np.uint8)).save(path)
                split[name].append([rel, c, cls])
    with open(os.path.join(root, spec.folder, spec.split_file), "w") as f:
        json.dump(split, f, indent=4, separators=(",", ": "))


def test_end_to_end_run_on_a_small_base_says_it_is_not_the_papers_setting(tmp_path, tokenizer):
    _pets_tree(str(tmp_path / "data"))
    base = base_from_model(make_tiny_clip(), tokenizer, "tiny-test")
    cfg = build_config("b2n", datasets=["oxford_pets"], root=str(tmp_path / "data"), seeds=[1], quiet=True,
                       output_dir=str(tmp_path / "runs"), name="pets", model="ViT-B-16", pretrained="openai",
                       test_batch_size=16, **{"optim.epochs": 1, "method.prompt.depth": 2})
    summary = Runner(cfg, base=base).run()
    expected = ("not compared with the paper: model tiny-test (paper: ViT-B-16), pretrained None (paper: openai), "
                "epochs 1 (paper: 30), method.prompt.depth 2 (paper: 9)")
    assert summary["paper"]["message"] == expected
    run_dir = tmp_path / "runs" / "pets"
    assert json.loads((run_dir / "summary.json").read_text())["paper"]["compared"] is False
    assert f"_{expected}._" in (run_dir / "summary.md").read_text()
