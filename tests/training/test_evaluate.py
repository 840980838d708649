"""The one evaluation path: ``mmlop eval`` scores saved prompts exactly as training-time evaluation did."""

import json

import pytest

from mmlop.cli import main
from mmlop.config import PromptConfig
from mmlop.data.transforms import CLIP_MEAN, CLIP_STD
from mmlop.data.splits import DatasetSplits
from mmlop.model import MMLoP, base_from_model, register_base
from mmlop.training import build_config
from mmlop.training.evaluate import DEFAULT_ZERO_SHOT_TEMPLATE, EvalConfig, limit_per_class, zero_shot_template
from mmlop.training.runner import Runner
from tiny_models import make_tiny_clip


@pytest.mark.parametrize("method, overrides", [
    ("mmlop", {}),
    # Not the defaults: eval must read the teacher and the test-time drift correction saved with the prompts.
    ("scl", {"method.teacher.templates": "imagenet_templates_select_7", "method.teacher.average": "normalized"}),
])
def test_mmlop_eval_scores_exactly_what_training_time_evaluation_scored(method, overrides, colour_dataset, tmp_path,
                                                                        tokenizer, capsys):
    name = f"tiny-eval-{method}"
    # `mmlop eval` loads the base by the name saved with the prompts: register the same tiny weights under it.
    register_base(name, lambda: (make_tiny_clip(), tokenizer, {"image_size": 32, "mean": CLIP_MEAN, "std": CLIP_STD,
                                                               "pretrained": None}))
    cfg = build_config("b2n", method=method, overrides={
        "datasets": [str(colour_dataset)], "output_dir": str(tmp_path), "seeds": [1], "shots": 2, "quiet": True,
        "model": name, "pretrained": None, "test_batch_size": 5, "zero_shot": False, "optim.epochs": 1,
        "method.prompt.depth": 2, **overrides})
    Runner(cfg, base=base_from_model(make_tiny_clip(), tokenizer, name)).run()
    seed_dir = next((tmp_path).glob("*/*/seed1"))
    trained = json.loads((seed_dir / "results.json").read_text())

    for subsample, key in (("base", "base"), ("new", "novel")):
        capsys.readouterr()
        assert main(["eval", "--prompts", str(seed_dir / "prompts"), "--datasets", str(colour_dataset),
                     "--subsample", subsample, "--device", "cpu", "--test-batch-size", "5", "--json", "--quiet"]) == 0
        row = json.loads(capsys.readouterr().out)[0]
        assert row["accuracy"] == trained[key], (subsample, row, trained)  # exactly: the same path, bit for bit
        assert row["total"] == 12  # 4 test images of each of the 3 classes of the half


def test_a_model_without_text_prompts_uses_the_dataset_template_or_the_default(tiny_base):
    zero_shot = MMLoP(tiny_base, PromptConfig.zero_shot())
    prompted = MMLoP(tiny_base, PromptConfig(depth=1))
    with_template = DatasetSplits("k", ["a"], [], [], [], template="a photo of a {}, a colour.")
    without = DatasetSplits("k", ["a"], [], [], [])
    assert zero_shot_template(zero_shot, with_template) == "a photo of a {}, a colour."
    assert zero_shot_template(zero_shot, without) == DEFAULT_ZERO_SHOT_TEMPLATE
    assert zero_shot_template(prompted, with_template) is None


def test_eval_config_checks_its_fields_and_limit_per_class_keeps_order():
    with pytest.raises(ValueError, match="precision='fp64'"):
        EvalConfig(precision="fp64")
    assert limit_per_class([0, 1, 0, 0, 1, 2], 2) == [0, 1, 2, 4, 5]
    assert limit_per_class([0, 1], 0) == [0, 1]
