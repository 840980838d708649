"""End to end: protocols over a generated custom dataset with a tiny model, the run folder, presets, CLI."""

import json

import pytest
import torch
from safetensors.torch import load_file

from mmlop.config import ConfigError
from mmlop.model import base_from_model
from mmlop.training import build_config
from mmlop.training.checkpoint import config_digest
from mmlop.training.config import OptimConfig
from mmlop.training.runner import Runner, RunExistsError, dataset_folder
from tiny_models import make_tiny_clip

def _config(dataset, out, **kw):
    fields = dict(datasets=[str(dataset)], output_dir=str(out), seeds=[1, 2], shots=4, quiet=True,
                  model="tiny-test", pretrained=None, test_batch_size=8)
    fields.update(kw)
    overrides = {"optim.epochs": 2, "optim.batch_size": 4, "method.prompt.depth": 2}
    return build_config("b2n", overrides={**overrides, **fields})


def test_base_to_novel_run_writes_the_run_folder(colour_dataset, tmp_path, tokenizer):
    base = base_from_model(make_tiny_clip(), tokenizer, "tiny-test")
    cfg = _config(colour_dataset, tmp_path)
    summary = Runner(cfg, base=base).run()
    run_dir = tmp_path / cfg.name if cfg.name else next(p for p in tmp_path.iterdir() if p.is_dir())
    row = summary["datasets"][str(colour_dataset)]
    assert row["seeds"] == [1, 2] and 0 <= row["base"]["mean"] <= 100 and len(row["novel"]["per_seed"]) == 2
    # The same float64 arithmetic on the same means, maybe in another order: pytest.approx's rel 1e-6 is ~1e10 ulps.
    assert row["hm"] == pytest.approx(2 * row["base"]["mean"] * row["novel"]["mean"] /
                                      (row["base"]["mean"] + row["novel"]["mean"]))
    assert "zs_base" in row and "zs_hm" in row
    for name in ("config.json", "summary.json", "summary.md", "summary.png"):
        assert (run_dir / name).is_file(), name
    seed_dir = run_dir / dataset_folder(str(colour_dataset)) / "seed1"
    lines = (seed_dir / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(x)["epoch"] for x in lines] == [1, 2]
    assert (seed_dir / "prompts" / "prompts.safetensors").stat().st_size < 10_000
    assert json.loads((run_dir / "config.json").read_text())["optim"]["epochs"] == 2
    assert "| **Average** |" in (run_dir / "summary.md").read_text()

    # The same finished run again returns its stored summary without training; --resume keeps finished results.
    mtime = (seed_dir / "checkpoint.safetensors").stat().st_mtime_ns
    assert Runner(cfg, base=base).run() == json.loads((run_dir / "summary.json").read_text())
    assert (seed_dir / "checkpoint.safetensors").stat().st_mtime_ns == mtime
    assert (seed_dir / "curves.png").stat().st_size > 1000
    before = (seed_dir / "results.json").read_text()
    again = Runner(cfg, base=base, resume=True).run()
    assert (seed_dir / "results.json").read_text() == before
    assert again["average"] == summary["average"]


def test_a_default_name_with_other_settings_gets_its_own_folder(colour_dataset, tmp_path, tokenizer):
    base = base_from_model(make_tiny_clip(), tokenizer, "tiny-test")
    first = _config(colour_dataset, tmp_path, seeds=[1], name="smoke", **{"optim.epochs": 1})
    Runner(first, base=base).run()
    other = first.replace(seeds=(2,))
    # A user-chosen name is honoured strictly ...
    with pytest.raises(RunExistsError, match="different settings"):
        Runner(other, base=base, fixed_name=True).run()
    # ... while a preset's default name moves aside to <name>-<digest>, leaving the first run as it was.
    summary = Runner(other, base=base).run()
    assert summary["run_dir"] == str(tmp_path / f"smoke-{config_digest(other.to_dict())[:8]}")
    assert json.loads((tmp_path / "smoke" / "config.json").read_text())["seeds"] == [1]
    # An interrupted run (config written, no summary) still needs --resume.
    (tmp_path / "smoke" / "summary.json").unlink()
    with pytest.raises(RunExistsError, match="--resume"):
        Runner(first, base=base).run()


def test_schedule_without_a_base_lr_epoch_warns(colour_dataset, tmp_path, tokenizer):
    base = base_from_model(make_tiny_clip(), tokenizer, "tiny-test")
    cfg = _config(colour_dataset, tmp_path, seeds=[1], **{"optim.epochs": 1})
    with pytest.warns(UserWarning, match="every epoch runs at the warm-up lr"):
        Runner(cfg, base=base).run()
    assert OptimConfig(epochs=2).schedule_warning() is None and OptimConfig(epochs=0).schedule_warning() is None


def test_warnings_of_the_base_and_novel_loads_are_shown_once(colour_dataset, tmp_path, tokenizer, monkeypatch):
    import warnings

    from mmlop.training import runner

    real = runner.load_dataset

    def noisy(*args, **kwargs):
        warnings.warn("cannot write the few-shot cache; pass cache_dir=")
        return real(*args, **kwargs)

    monkeypatch.setattr(runner, "load_dataset", noisy)  # the runner's data access
    base = base_from_model(make_tiny_clip(), tokenizer, "tiny-test")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        Runner(_config(colour_dataset, tmp_path, seeds=[1], **{"optim.epochs": 0}), base=base).run()
    assert [str(w.message) for w in caught].count("cannot write the few-shot cache; pass cache_dir=") == 1


def test_cache_dir_keeps_fewshot_caches_out_of_the_data_root(colour_dataset, tmp_path, tokenizer):
    base = base_from_model(make_tiny_clip(), tokenizer, "tiny-test")
    before = sorted(p.relative_to(colour_dataset) for p in colour_dataset.rglob("*"))
    cfg = _config(colour_dataset, tmp_path / "runs", seeds=[1], cache_dir=str(tmp_path / "splits"),
                  **{"optim.epochs": 0})
    Runner(cfg, base=base).run()
    assert sorted(p.relative_to(colour_dataset) for p in colour_dataset.rglob("*")) == before
    assert any((tmp_path / "splits").rglob("*.json"))


def test_fewshot_protocol_and_zero_shot_preset(colour_dataset, tmp_path, tokenizer):
    base = base_from_model(make_tiny_clip(), tokenizer, "tiny-test")
    cfg = build_config("fewshot", method="zeroshot", overrides=dict(
        datasets=[str(colour_dataset)], output_dir=str(tmp_path), seeds=[1], quiet=True, model="tiny-test",
        pretrained=None, zero_shot=True))
    summary = Runner(cfg, base=base).run()
    row = summary["datasets"][str(colour_dataset)]
    # Zero-shot "training" is the zero-shot baseline itself.
    assert row["accuracy"]["mean"] == pytest.approx(row["zs_accuracy"]["mean"])  # counts of correct images: float64


@pytest.mark.parametrize("preset", ["world", "b2n", "fewshot", "xd", "dg"])
def test_zero_shot_method_has_no_prompts_under_every_protocol(preset):
    # world, xd and dg set a prompt depth; it must not give the zero-shot baseline untrained prompts.
    prompt = build_config(preset, method="zeroshot").method.prompt
    assert (prompt.depth, prompt.text_depth, prompt.vis_depth) == (0, 0, 0)
    assert build_config(preset, method="zeroshot").optim.epochs == 0


def test_presets_and_strict_overrides():
    cfg = build_config("dg")
    assert cfg.protocol == "dg" and cfg.method.prompt.depth == 3 and cfg.optim.epochs == 50
    assert cfg.targets == ("imagenetv2", "imagenet_sketch", "imagenet_a", "imagenet_r")
    coop = build_config("b2n", method="coop")
    assert coop.optim.batch_size == 32 and coop.optim.epochs == 200 and coop.method.prompt.vis_depth == 0
    ivlp = build_config("b2n", method="ivlp")
    assert ivlp.optim.epochs == 20 and ivlp.method.prompt.rank is None and not ivlp.method.loss.consistency
    assert build_config("b2n", method="scl").method.loss.udc is False
    with pytest.raises(ConfigError, match="unknown option 'lrr'"):
        build_config("b2n", overrides={"optim.lrr": 1})
    with pytest.raises(ConfigError, match="unknown preset"):
        build_config("nope")
    with pytest.raises(ConfigError, match="unknown method preset"):
        build_config("b2n", method="nope")


def _prompts_of(run_root, dataset):
    run_dir = next(p for p in run_root.iterdir() if p.is_dir() and p.name != "feature_cache")
    return load_file(run_dir / dataset_folder(str(dataset)) / "seed1" / "prompts" / "prompts.safetensors")


def test_run_with_the_feature_cache_equals_the_run_without_it(colour_dataset, tmp_path, tokenizer):
    base = base_from_model(make_tiny_clip(), tokenizer, "tiny-test")
    runs = {}
    for name, cache in (("cached", "auto"), ("uncached", "")):
        cfg = _config(colour_dataset, tmp_path / name, feature_cache=cache, views_per_image=2, seeds=[1])
        runs[name] = Runner(cfg, base=base).run()
    stores = sorted(p.name.split("-")[0] for p in (tmp_path / "cached" / "feature_cache").iterdir()
                    if p.suffix == ".store")
    assert stores == ["image", "text"]
    assert not (tmp_path / "uncached" / "feature_cache").exists()
    # The cache stores the rows the in-memory path computes (same function, same batches), and the views are drawn
    # from the same keys, so the two runs are the same computation: equal results, bit-identical prompts.
    assert runs["cached"]["datasets"] == runs["uncached"]["datasets"]
    cached, uncached = _prompts_of(tmp_path / "cached", colour_dataset), _prompts_of(tmp_path / "uncached", colour_dataset)
    assert cached.keys() == uncached.keys() == {"up", "text", "vision"}
    for k in cached:
        assert torch.equal(cached[k], uncached[k]), k


def test_cross_dataset_protocol_evaluates_every_target(colour_dataset, tmp_path, tokenizer):
    base = base_from_model(make_tiny_clip(), tokenizer, "tiny-test")
    cfg = build_config("xd", overrides=dict(
        datasets=[str(colour_dataset)], targets=[str(colour_dataset / "test")], output_dir=str(tmp_path),
        seeds=[1], shots=2, quiet=True, model="tiny-test", pretrained=None, **{"optim.epochs": 1}))
    summary = Runner(cfg, base=base).run()
    rows = summary["datasets"]
    assert rows[str(colour_dataset)]["is_source"] and "accuracy" in rows[str(colour_dataset / "test")]
    # The average is over targets only (the source is reported separately).
    # A mean over one target, in float64: equal up to pytest.approx's rel 1e-6.
    assert summary["average"]["accuracy"] == pytest.approx(rows[str(colour_dataset / "test")]["accuracy"]["mean"])
