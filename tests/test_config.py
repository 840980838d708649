import json

import pytest

from mmlop.config import ConfigError, LossConfig, MethodConfig, PromptConfig

B16 = dict(text_width=512, vision_width=768)
L14 = dict(text_width=768, vision_width=1024)

# method.md §3.1, every row.
TABLE = [
    (PromptConfig(), B16, 11_556),
    (PromptConfig(shared_up=False), B16, 11_592),
    (PromptConfig(rank=2), B16, 23_112),
    (PromptConfig(rank=4), B16, 46_224),
    (PromptConfig(depth=7), B16, 8_988),
    (PromptConfig(depth=11), B16, 14_124),
    (PromptConfig(length=2), B16, 11_538),
    (PromptConfig(length=8), B16, 11_592),
    (PromptConfig(depth=3), B16, 3_852),
    (PromptConfig(rank=None, shared_up=False), B16, 46_080),
    (PromptConfig.ivlp(), B16, 46_080),
    (PromptConfig(), L14, 16_164),
    (PromptConfig.coop(4), B16, 2_048),
    (PromptConfig.coop(16), B16, 8_192),
    (PromptConfig.zero_shot(), B16, 0),
]


@pytest.mark.parametrize("config,widths,count", TABLE)
def test_parameter_count_table(config, widths, count):
    assert config.num_parameters(**widths) == count


def test_json_round_trip(tmp_path):
    cfg = MethodConfig(prompt=PromptConfig(rank=2, depth=5), loss=LossConfig(kl_mode="zs_to_prompted", udc=False))
    path = tmp_path / "m.json"
    path.write_text(json.dumps(cfg.to_dict()))
    back = MethodConfig.from_dict(json.loads(path.read_text()))
    assert back == cfg
    assert PromptConfig.from_json_file(_write(tmp_path / "p.json", cfg.prompt.to_dict())) == cfg.prompt


def _write(path, obj):
    path.write_text(json.dumps(obj))
    return path


def test_unknown_option_is_rejected_with_its_name(tmp_path):
    with pytest.raises(ConfigError, match=r"unknown PromptConfig option\(s\) \['lenght'\]"):
        PromptConfig.from_dict({"lenght": 4})
    with pytest.raises(ConfigError, match="unknown MethodConfig option"):
        MethodConfig.from_dict({"prompts": {}})
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ConfigError, match="bad.json: not valid JSON"):
        PromptConfig.from_json_file(bad)


@pytest.mark.parametrize("kwargs,field", [
    (dict(length=0), "length"),
    (dict(rank=0), "rank"),
    (dict(depth=-1), "depth"),
    (dict(init_std=0.0), "init_std"),
    (dict(vision_length=2), "vision_length"),  # shared U needs T = V
    (dict(vision_depth=3), "vision_depth"),  # shared U needs equal depths
    (dict(ctx_init="a photo of a"), "ctx_init"),  # low rank cannot start from words
    (dict(rank=None, ctx_init="a photo"), "ctx_init"),  # word count must equal length
    (dict(class_template="no placeholder"), "class_template"),
])
def test_invalid_prompt_values_name_the_field(kwargs, field):
    with pytest.raises(ConfigError, match=rf"PromptConfig\.{field}="):
        PromptConfig(**kwargs)


def test_independent_variant_allows_different_lengths():
    cfg = PromptConfig(shared_up=False, vision_length=2)
    assert cfg.num_parameters(512, 768) == 9 * (4 + 512) + 9 * (2 + 768)


@pytest.mark.parametrize("kwargs", [dict(kl_mode="js"), dict(lambda_text=-1.0), dict(kl_reduction="sum"),
                                    dict(l1_reduction="max")])
def test_invalid_loss_values(kwargs):
    with pytest.raises(ConfigError, match="LossConfig"):
        LossConfig(**kwargs)
