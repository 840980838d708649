"""Frozen features from the cache: training with cached pre-enumerated views equals computing them on the fly."""

import json
import os

import numpy as np
import pytest
import torch
from PIL import Image

from mmlop.config import LossConfig, PromptConfig
from mmlop.data import ImageDataset, Items
from mmlop.data.transforms import build_train_transform
from mmlop.model import MMLoP, base_from_model
from mmlop.training.config import OptimConfig
from mmlop.training.frozen import FrozenFeatures, view_lookup
from mmlop.training.loop import FitCheckpoint, FitConfig, FitData, fit
from tiny_models import make_tiny_clip
from tolerances import max_rel

CLASSES = ["red", "green", "blue"]


@pytest.fixture
def images(tmp_path):
    rng = np.random.default_rng(1)
    rels, labels = [], []
    for label, rgb in enumerate([(220, 30, 30), (30, 200, 30), (30, 30, 220)]):
        for i in range(4):
            rel = f"{CLASSES[label]}_{i}.png"
            arr = np.clip(np.array(rgb) + rng.normal(0, 30, (40, 40, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(arr).save(tmp_path / rel)
            rels.append(rel)
            labels.append(label)
    return Items.from_pairs(str(tmp_path), rels, labels)


@pytest.fixture
def model(tokenizer):
    return MMLoP(base_from_model(make_tiny_clip(), tokenizer, "tiny-test"), PromptConfig(depth=2),
                 generator=torch.Generator().manual_seed(0))


def _count_calls(monkeypatch, model, method):
    calls = []
    real = getattr(model, method)

    def spy(*a, **k):
        calls.append(1)
        return real(*a, **k)

    monkeypatch.setattr(model, method, spy)
    return calls


@pytest.mark.numerics
def test_cached_views_train_like_on_the_fly_frozen_features(tmp_path, images, model, tokenizer):
    dataset = ImageDataset(images, build_train_transform(32, (0.5,) * 3, (0.25,) * 3))
    features = FrozenFeatures(model, tmp_path / "cache")
    keys = features.image_view_keys(images.paths, "tf-test", seed=5, views=3)
    table = features.image_views(dataset, keys, batch_size=5, device=torch.device("cpu"))
    g0 = features.text(CLASSES, ["a photo of a {}."], "one")
    assert table.shape == (12, 3, 24)

    # Cache fills and training batches group images differently, so the frozen features agree to fp32 rounding, not
    # bit for bit, and 9 SGD steps amplify that rounding. A moderate lr keeps the amplification small; compared relative
    # to each tensor's largest entry, as the fused-vs-reference run (tests/training/test_loop.py), 1e-4 is the bound.
    runs = {}
    for name, fn in (("cached", view_lookup(table)), ("on_the_fly", None)):
        m = MMLoP(model.base_info, PromptConfig(depth=2), generator=torch.Generator().manual_seed(0))
        fit(m, FitData(dataset, CLASSES, g0, frozen_image_fn=fn, view_keys=keys),
            FitConfig(OptimConfig(epochs=3, batch_size=4, lr=0.01), LossConfig(), seed=5, progress=False),
            FitCheckpoint(tmp_path / name, digest="d"))
        runs[name] = (m, [json.loads(x) for x in (tmp_path / name / "metrics.jsonl").read_text().splitlines()])
    for a, b in zip(runs["cached"][1], runs["on_the_fly"][1]):
        # Epoch-mean losses of the same runs: same amplification, same bound (loss_image starts near 0, hence an abs floor).
        assert a["loss_image"] == pytest.approx(b["loss_image"], rel=1e-4, abs=1e-7)
        assert a["loss_total"] == pytest.approx(b["loss_total"], rel=1e-4)
    for (k, a), (_, b) in zip(runs["cached"][0].prompts.state_dict().items(),
                              runs["on_the_fly"][0].prompts.state_dict().items()):
        assert max_rel(a, b) <= 1e-4, k


def test_cache_is_reused_and_invalidated_when_an_image_changes(tmp_path, images, model, monkeypatch):
    dataset = ImageDataset(images, build_train_transform(32, (0.5,) * 3, (0.25,) * 3))
    first = FrozenFeatures(model, tmp_path / "cache")
    keys = first.image_view_keys(images.paths, "tf", seed=1, views=2)
    table = first.image_views(dataset, keys, batch_size=8, device=torch.device("cpu"))
    text = first.text(CLASSES, ["a {}."], "t")

    again = FrozenFeatures(model, tmp_path / "cache")
    image_calls = _count_calls(monkeypatch, model, "encode_image")
    text_calls = _count_calls(monkeypatch, model, "encode_text")
    assert torch.equal(again.image_views(dataset, keys, batch_size=8, device=torch.device("cpu")), table)
    assert torch.equal(again.text(CLASSES, ["a {}."], "t"), text)
    assert image_calls == [] and text_calls == []

    # Another run seed gives other views (other keys); a rewritten image gives a new key for that image only.
    assert again.image_view_keys(images.paths, "tf", seed=2, views=2)[0][0] != keys[0][0]
    path = images.paths[0]
    st = os.stat(path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    new_keys = again.image_view_keys(images.paths, "tf", seed=1, views=2)
    assert new_keys[0] != keys[0] and new_keys[1:] == keys[1:]
    again.image_views(dataset, new_keys, batch_size=8, device=torch.device("cpu"))
    assert len(image_calls) == 1  # only the two views of the touched image were computed


def test_text_cache_is_keyed_by_model(tmp_path, model, tokenizer):
    FrozenFeatures(model, tmp_path).text(CLASSES, ["a {}."], "t")
    other = MMLoP(base_from_model(make_tiny_clip(seed=1), tokenizer, "tiny-other"), PromptConfig(depth=1))
    f = FrozenFeatures(other, tmp_path)
    assert f.fingerprint != FrozenFeatures(model, tmp_path).fingerprint
    # The cache stores the float32 rows it was given, computed by the same function: equal up to the default float32
    # tolerance (rtol 1.3e-6), which only a different batching of the same encoder could use.
    torch.testing.assert_close(f.text(CLASSES, ["a {}."], "t"),
                               __import__("mmlop").frozen_text_features(other, CLASSES, ["a {}."]))
