"""Bad input to the Python API (issue 13, classes 5 and 6): the public boundary checks types and values and says
what was expected; damaged files are detected, never silently used; shared files follow the umask."""

import os
import stat
import warnings

import numpy as np
import pytest
import torch
from checksums import tree_sha256
from PIL import Image

from mmlop._io import atomic_write_bytes
from mmlop.config import PromptConfig
from mmlop.errors import MmlopError
from mmlop.inference import Classifier, InputError
from mmlop.model import MMLoP
from mmlop.model.io import (CONFIG_FILE, WEIGHTS_FILE, PromptFileError, PromptFileNotFoundError, load_prompts,
                            save_prompts)

CLASSNAMES = [
    ("circle", "classnames='circle' is a single string; expected a list of class names"),  # once c, i, r, c, l, e
    ([], "classnames is empty"),
    (["cat", "dog", "cat"], "classnames[2]='cat' repeats classnames[0]; expected distinct class names"),
    (["cat", "  "], "classnames[1]='  ' is empty"),
    (["cat", 3], "classnames[1]=3 is a int; expected a string"),
    (b"cat", "is a single string"),
]


@pytest.mark.parametrize("names,fragment", CLASSNAMES, ids=[repr(n)[:20] for n, _ in CLASSNAMES])
def test_classifier_refuses_bad_class_names(tiny_base, names, fragment):
    with pytest.raises(InputError) as e:
        Classifier(MMLoP(tiny_base, PromptConfig.zero_shot()), names, zero_shot_template="a photo of a {}.")
    assert fragment in str(e.value) and isinstance(e.value, MmlopError) and isinstance(e.value, ValueError)


def test_classifier_refuses_something_that_is_not_a_prompted_model(tiny_base):
    with pytest.raises(InputError, match="model is a BaseCLIP; expected an mmlop.MMLoP"):
        Classifier(tiny_base, ["cat"])


@pytest.fixture
def classifier(tiny_base):
    return Classifier(MMLoP(tiny_base, PromptConfig.zero_shot()), ["cat", "dog"], zero_shot_template="a {}.")


def _not_an_image(tmp_path):
    p = tmp_path / "notes.png"
    p.write_text("not an image")
    return [str(p)]


IMAGES = [
    ("empty list", lambda t: [], "images is empty: expected at least one image"),
    ("bare string path", lambda t: "cat.png", "images is a single str ('cat.png'); expected a list of images"),
    ("bare PIL image", lambda t: Image.new("RGB", (8, 8)), "images is a single Image"),
    ("list of ints", lambda t: [1, 2], "images[0] is a int; expected a PIL image or an image path"),
    ("missing file", lambda t: [str(t / "gone.png")], "gone.png: file not found; expected an image file"),
    ("not an image file", _not_an_image, "notes.png: not a readable image"),
    ("wrong image size", lambda t: torch.zeros(2, 3, 16, 16), "shape (2, 3, 16, 16); expected (B, 3, 32, 32)"),
    ("no batch dimension", lambda t: torch.zeros(3, 32, 32), "shape (3, 32, 32); expected (B, 3, 32, 32)"),
    ("empty batch", lambda t: torch.zeros(0, 3, 32, 32), "shape (0, 3, 32, 32); expected (B, 3, 32, 32) with B >= 1"),
    ("uint8 pixels", lambda t: torch.zeros(1, 3, 32, 32, dtype=torch.uint8), "dtype torch.uint8; expected a floating"),
    ("grey channel", lambda t: torch.zeros(1, 1, 32, 32), "shape (1, 1, 32, 32)"),
]


@pytest.mark.parametrize("case", IMAGES, ids=[c[0] for c in IMAGES])
def test_predict_refuses_bad_images_saying_what_was_expected(classifier, tmp_path, case):
    _, build, fragment = case
    with pytest.raises(InputError) as e:
        classifier.predict(build(tmp_path))
    assert fragment in str(e.value)


def _saved(tiny_base, tmp_path):
    model = MMLoP(tiny_base, PromptConfig(depth=2), generator=torch.Generator().manual_seed(0))
    return model, save_prompts(model, tmp_path / "prompts")


def test_a_flipped_bit_in_saved_prompts_is_refused_and_the_files_are_left_as_they_are(tiny_base, tmp_path):
    _, folder = _saved(tiny_base, tmp_path)
    data = bytearray((folder / WEIGHTS_FILE).read_bytes())
    data[-3] ^= 0x10  # one bit of the last tensor's payload: same shapes, silently different prompts
    (folder / WEIGHTS_FILE).write_bytes(bytes(data))
    before = tree_sha256(folder)
    with pytest.raises(PromptFileError, match=f"{WEIGHTS_FILE}: the tensors' SHA-256 differs from the one recorded"):
        load_prompts(folder, tiny_base)
    assert tree_sha256(folder) == before


def test_prompts_saved_without_a_digest_still_load(tiny_base, tmp_path):
    import json

    model, folder = _saved(tiny_base, tmp_path)
    meta = json.loads((folder / CONFIG_FILE).read_text())
    del meta["sha256"]  # as written before the digest existed
    (folder / CONFIG_FILE).write_text(json.dumps(meta))
    loaded = load_prompts(folder, tiny_base)
    for (k, a), b in zip(model.prompts.state_dict().items(), loaded.prompts.state_dict().values()):
        assert torch.equal(a, b), k


PROMPT_FOLDERS = [
    ("missing folder", lambda f: f.parent / "nope", PromptFileNotFoundError, "nope: not found; expected a folder"),
    ("a file, not a folder", lambda f: f / WEIGHTS_FILE, PromptFileError, f"{WEIGHTS_FILE}: a file; expected a folder"),
    ("config not JSON", lambda f: ((f / CONFIG_FILE).write_text("{oops"), f)[1], PromptFileError, "not valid JSON"),
    ("config of another format", lambda f: ((f / CONFIG_FILE).write_text('{"format": "x"}'), f)[1], PromptFileError,
     "format 'x', expected 'mmlop-prompts/1'"),
    ("config a JSON list", lambda f: ((f / CONFIG_FILE).write_text("[]"), f)[1], PromptFileError, "format 'list'"),
    ("weights missing", lambda f: ((f / WEIGHTS_FILE).unlink(), f)[1], PromptFileNotFoundError,
     f"{WEIGHTS_FILE} not found next to {CONFIG_FILE}"),
    ("weights truncated", lambda f: ((f / WEIGHTS_FILE).write_bytes((f / WEIGHTS_FILE).read_bytes()[:40]), f)[1],
     PromptFileError, "not a valid safetensors file"),
]


@pytest.mark.parametrize("case", PROMPT_FOLDERS, ids=[c[0] for c in PROMPT_FOLDERS])
def test_a_damaged_prompts_folder_is_refused_naming_the_file(tiny_base, tmp_path, case):
    _, make, error, fragment = case
    _, folder = _saved(tiny_base, tmp_path)
    target = make(folder)
    before = tree_sha256(tmp_path)
    with pytest.raises(error) as e:
        load_prompts(target, tiny_base)
    assert fragment in str(e.value) and isinstance(e.value, MmlopError)
    assert tree_sha256(tmp_path) == before


def test_a_damaged_feature_cache_is_moved_aside_and_rebuilt(tiny_base, tmp_path):
    from mmlop.training.frozen import FrozenFeatures

    model = MMLoP(tiny_base, PromptConfig(depth=2))
    first = FrozenFeatures(model, tmp_path).text(["cat", "dog"], ["a {}."], "t")
    (store,) = tmp_path.glob("text-*.store")
    data = bytearray(store.read_bytes())
    data[len(data) // 2] ^= 0xFF
    store.write_bytes(bytes(data))
    damaged = bytes(data)
    with pytest.warns(UserWarning, match=r"damaged feature cache .* moved aside to .*\.damaged-.* and rebuilt"):
        again = FrozenFeatures(model, tmp_path).text(["cat", "dog"], ["a {}."], "t")
    assert torch.equal(first, again)
    (aside,) = tmp_path.glob("text-*.store.damaged-*")
    assert aside.read_bytes() == damaged  # kept, as it was, for inspection
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the rebuilt file opens cleanly
        FrozenFeatures(model, tmp_path).text(["cat", "dog"], ["a {}."], "t")


@pytest.mark.parametrize("mask", [0o002, 0o022, 0o077])
def test_written_files_take_their_permissions_from_the_umask(tmp_path, mask):
    from mmlop.data.fewshot_splits import write_split_file
    from mmlop.data.items import Items
    from mmlop.data.readers import RawDataset

    from mmlop.features import FeatureStore

    old = os.umask(mask)
    try:
        atomic_write_bytes(tmp_path / "out.json", b"{}")
        store = FeatureStore(tmp_path / "rows.store", width=4, dtype="float32", fingerprint="f")
        store.put(np.zeros((1, 16), np.uint8), np.ones((1, 4), np.float32))  # written by the Rust store
        items = Items.from_pairs(str(tmp_path), ["a.png", "b.png"], [0, 1])
        raw = RawDataset("k", ["x", "y"], items, Items.empty(), Items.empty(), "sha")
        assert write_split_file(raw, str(tmp_path / "split_fewshot" / "shot_1-seed_1.json"), 1, 1, "own",
                           np.array([0, 1]), np.zeros(0, np.int64))
    finally:
        os.umask(old)
    for p in (tmp_path / "out.json", tmp_path / "rows.store", tmp_path / "split_fewshot" / "shot_1-seed_1.json"):
        assert stat.S_IMODE(p.stat().st_mode) == 0o666 & ~mask, p  # mkstemp alone would give 0600
