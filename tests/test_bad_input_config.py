"""Bad configuration input (issue 13, class 1): every ``--set`` value and every ``--config`` field is parsed by its
field's type, and anything else is refused with the key, the value and the expected form."""

import json

import pytest

from mmlop.config import ConfigError, LossConfig, PromptConfig
from mmlop.errors import MmlopError
from mmlop.training.config import RunConfig, apply_overrides

# (key, raw command-line value, fragment of the message)
REFUSED_OVERRIDES = [
    ("optim.lr", "abc", "override optim.lr: OptimConfig.lr='abc' is invalid: expected a finite number"),
    ("optim.lr", "nan", "OptimConfig.lr='nan' is invalid: expected a finite number"),
    ("optim.lr", "inf", "OptimConfig.lr='inf'"),
    ("optim.epochs", "2.5", "OptimConfig.epochs='2.5' is invalid: expected an integer"),
    ("optim.epochs", "ten", "OptimConfig.epochs='ten'"),
    ("optim.batch_size", "0", "OptimConfig.batch_size=0 is invalid: expected an integer >= 1"),
    ("method.loss.consistency", "maybe", "LossConfig.consistency='maybe' is invalid: expected a boolean"),
    ("method.loss.udc", "2", "LossConfig.udc='2'"),
    ("method.loss.kl_mode", "forward", "LossConfig.kl_mode='forward' is invalid: expected one of symmetric"),
    ("precision", "fp8", "RunConfig.precision='fp8' is invalid: expected one of fp32, amp_bf16, amp_fp16"),
    ("seeds", "one,two", "RunConfig.seeds='one,two' is invalid: expected a list of integers"),
    ("seeds", "[1, 2", "RunConfig.seeds='[1, 2'"),
    ("train_crop_scale", "0.5", "RunConfig.train_crop_scale='0.5' is invalid: expected a list of 2 values"),
    ("method.prompt.rank", "low", "PromptConfig.rank='low' is invalid: expected none or an integer"),
    ("method.prompt.depth", "-1", "PromptConfig.depth=-1 is invalid"),
    ("optim.nope", "1", "override 'optim.nope': unknown option 'nope'"),
    ("shots.k", "1", "override 'shots.k': 'shots' is not a config section"),
    ("name", "../elsewhere", "RunConfig.name='../elsewhere' is invalid: expected a single folder name"),
    ("datasets", "dtd,dtd", "RunConfig.datasets=('dtd', 'dtd') is invalid: expected each dataset once"),
]


@pytest.mark.parametrize("key,value,fragment", REFUSED_OVERRIDES, ids=[f"{k}={v}" for k, v, _ in REFUSED_OVERRIDES])
def test_a_refused_override_names_the_key_the_value_and_the_form(key, value, fragment):
    with pytest.raises(ConfigError) as e:
        apply_overrides(RunConfig(), {key: value})
    assert fragment in str(e.value)
    assert isinstance(e.value, MmlopError) and isinstance(e.value, ValueError)


# (key, raw value, the parsed value at that key)
PARSED_OVERRIDES = [
    ("method.loss.consistency", "False", False),  # once the truthy string "False": the loss stayed on
    ("method.loss.consistency", "no", False),
    ("method.loss.udc", "0", False),
    ("zero_shot", "YES", True),
    ("datasets", "dtd", ("dtd",)),  # once the letters d, t, d
    ("datasets", "dtd, eurosat", ("dtd", "eurosat")),
    ("datasets", '["dtd", "eurosat"]', ("dtd", "eurosat")),
    ("seeds", "1,2,3", (1, 2, 3)),
    ("optim.lr", "1e-3", 0.001),
    ("method.prompt.rank", "none", None),
    ("method.prompt.rank", "2", 2),
    ("train_crop_scale", "[0.5, 1]", (0.5, 1.0)),
    ("pretrained", "null", None),
]


@pytest.mark.parametrize("key,value,expected", PARSED_OVERRIDES, ids=[f"{k}={v}" for k, v, _ in PARSED_OVERRIDES])
def test_an_override_is_parsed_by_the_field_type(key, value, expected):
    node = apply_overrides(RunConfig(), {key: value})
    for part in key.split("."):
        node = getattr(node, part)
    assert node == expected and type(node) is type(expected)


# (file content, fragment of the message)
REFUSED_FILES = [
    ('["not", "an", "object"]', "holds a JSON list; expected a RunConfig JSON object"),
    ('"b2n"', "holds a JSON str; expected a RunConfig JSON object"),
    ("{not json", "not valid JSON"),
    ('{"optim": {"lr": "abc"}}', "OptimConfig.lr='abc' is invalid: expected a finite number"),
    ('{"optim": {"epochs": true}}', "OptimConfig.epochs=True is invalid: expected an integer"),
    ('{"optim": []}', "expected a JSON object for OptimConfig, got list"),
    ('{"protocol": "b2n", "frobnicate": 1}', "unknown RunConfig option(s) ['frobnicate']"),
    ('{"seeds": [1, "x"]}', "RunConfig.seeds=[1, 'x'] is invalid"),
]


@pytest.mark.parametrize("text,fragment", REFUSED_FILES, ids=[t[:30] for t, _ in REFUSED_FILES])
def test_a_config_file_is_parsed_by_type_or_refused_with_the_file_and_field(tmp_path, text, fragment):
    path = tmp_path / "run.json"
    path.write_text(text)
    with pytest.raises(ConfigError) as e:
        RunConfig.from_json_file(path)
    assert fragment in str(e.value) and "run.json" in str(e.value)


def test_strings_in_a_config_file_are_parsed_like_command_line_values(tmp_path):
    path = tmp_path / "run.json"
    path.write_text('{"method": {"loss": {"consistency": "False"}}, "shots": "16", "datasets": "dtd"}')
    cfg = RunConfig.from_json_file(path)
    assert cfg.method.loss.consistency is False and cfg.shots == 16 and cfg.datasets == ("dtd",)


def test_a_config_file_that_is_missing_a_folder_or_not_utf8_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="nope.json: file not found; expected a RunConfig JSON file"):
        RunConfig.from_json_file(tmp_path / "nope.json")
    with pytest.raises(ConfigError, match="is a folder; expected a RunConfig JSON file"):
        RunConfig.from_json_file(tmp_path)
    (tmp_path / "latin1.json").write_bytes(b'{"name": "caf\xe9"}')
    with pytest.raises(ConfigError, match="latin1.json: not UTF-8 text"):
        RunConfig.from_json_file(tmp_path / "latin1.json")
    (tmp_path / "bom.json").write_bytes(b'\xef\xbb\xbf{"shots": 4}')  # a byte-order mark is accepted
    assert RunConfig.from_json_file(tmp_path / "bom.json").shots == 4


def test_a_round_trip_through_json_is_exact():
    cfg = apply_overrides(RunConfig(), {"method.prompt.rank": "none", "datasets": "a,b", "method.loss.udc": "false"})
    again = RunConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert again == cfg


def test_nested_configs_parse_by_type_too():
    assert LossConfig.from_dict({"udc": "off"}).udc is False
    with pytest.raises(ConfigError, match=r"PromptConfig.shared_up='sometimes' is invalid: expected a boolean"):
        PromptConfig.from_dict({"shared_up": "sometimes"})
