import json

import pytest
import torch

from tiny_models import make_tiny_clip
from mmlop.config import PromptConfig
from mmlop.model import MMLoP, base_from_model
from mmlop.model.io import CONFIG_FILE, WEIGHTS_FILE, PromptMismatchError, load_prompts, save_prompts


def test_round_trip_is_bit_identical_and_small(tiny_base, tmp_path):
    model = MMLoP(tiny_base, PromptConfig(depth=3, rank=2))
    save_prompts(model, tmp_path / "p", extra={"dataset": "pets"})
    assert (tmp_path / "p" / WEIGHTS_FILE).stat().st_size < 8_000
    meta = json.loads((tmp_path / "p" / CONFIG_FILE).read_text())
    assert meta["base"]["model"] == "tiny-test" and meta["base"]["text_width"] == 32
    assert meta["prompt"]["rank"] == 2 and "mmlop_version" in meta and meta["extra"] == {"dataset": "pets"}
    back = load_prompts(tmp_path / "p", tiny_base)
    for (k, a), (_, b) in zip(model.prompts.state_dict().items(), back.prompts.state_dict().items()):
        assert torch.equal(a, b), k
    images = torch.randn(2, 3, 32, 32)
    assert torch.equal(model.encode_image(images), back.encode_image(images))


def test_existing_prompts_are_not_overwritten(tiny_base, tmp_path):
    model = MMLoP(tiny_base, PromptConfig(depth=1))
    save_prompts(model, tmp_path)
    before = (tmp_path / WEIGHTS_FILE).read_bytes()
    with pytest.raises(FileExistsError, match="overwrite=True"):
        save_prompts(MMLoP(tiny_base, PromptConfig(depth=2)), tmp_path)
    assert (tmp_path / WEIGHTS_FILE).read_bytes() == before
    save_prompts(MMLoP(tiny_base, PromptConfig(depth=2)), tmp_path, overwrite=True)
    assert load_prompts(tmp_path, tiny_base).config.depth == 2


def test_loading_onto_a_different_base_names_both(tiny_base, tokenizer, tmp_path):
    save_prompts(MMLoP(tiny_base, PromptConfig(depth=1)), tmp_path)
    other = base_from_model(make_tiny_clip(width=64), tokenizer, "other-model")
    with pytest.raises(PromptMismatchError, match=r"trained on tiny-test .*onto other-model.*vision_width"):
        load_prompts(tmp_path, other)
    renamed = base_from_model(make_tiny_clip(), tokenizer, "tiny-test", pretrained="laion")
    with pytest.raises(PromptMismatchError, match="pretrained"):
        load_prompts(tmp_path, renamed)
    assert load_prompts(tmp_path, renamed, check_pretrained=False).config.depth == 1


def test_corrupt_files_are_reported_by_name(tiny_base, tmp_path):
    with pytest.raises(FileNotFoundError, match=CONFIG_FILE):
        load_prompts(tmp_path, tiny_base)
    save_prompts(MMLoP(tiny_base, PromptConfig(depth=1)), tmp_path)
    (tmp_path / WEIGHTS_FILE).write_bytes(b"garbage")
    with pytest.raises(ValueError, match=WEIGHTS_FILE):
        load_prompts(tmp_path, tiny_base)
    (tmp_path / CONFIG_FILE).write_text("{")
    with pytest.raises(ValueError, match=f"{CONFIG_FILE}: not valid JSON"):
        load_prompts(tmp_path, tiny_base)
