"""The generator is deterministic per (seed, index), covers every attribute value, and keeps objects visible."""

import numpy as np
import pytest
import torch

from mmlop.world.captions import captions_for
from mmlop.world.generator import BACKGROUNDS, FAMILIES, IMAGE_SIZE, generate
from mmlop.world.model import world_tokenizer


def test_same_seed_and_index_give_the_same_image_in_any_batch():
    images, attrs = generate(3, range(40))
    again, attrs_again = generate(3, [7, 31, 2])
    np.testing.assert_array_equal(again, images[[7, 31, 2]])
    for family in FAMILIES:
        np.testing.assert_array_equal(attrs_again.family(family), attrs.family(family)[[7, 31, 2]])
    other, _ = generate(4, range(40))
    assert (other != images).any(axis=(1, 2, 3)).all()


def test_batch_shape_and_dtype():
    images, attrs = generate(0, range(5))
    assert images.shape == (5, IMAGE_SIZE, IMAGE_SIZE, 3) and images.dtype == np.uint8
    assert len(attrs) == 5


def test_vocabulary_sizes():
    assert len(FAMILIES["shape"]) >= 12
    assert len(FAMILIES["colour"]) == 10
    assert len(FAMILIES["pattern"]) >= 4


def test_every_value_of_every_family_appears():
    _, attrs = generate(0, range(800))
    for family, values in FAMILIES.items():
        counts = np.bincount(attrs.family(family), minlength=len(values))
        assert (counts > 0).all(), (family, counts)


def test_fixed_attributes_are_respected_and_others_still_vary():
    _, attrs = generate(0, range(200), fixed={"shape": 4, "pattern": 2})
    assert (attrs.shape == 4).all() and (attrs.pattern == 2).all()
    assert len(np.unique(attrs.colour)) == len(FAMILIES["colour"])


def test_object_stays_visible_against_its_background():
    images, attrs = generate(1, range(300))
    bg = np.array(list(BACKGROUNDS.values()))[attrs.background]  # (N, 3)
    differs = (np.abs(images.astype(int) - bg[:, None, None, :]).max(axis=-1) > 30).sum(axis=(1, 2))
    assert differs.min() >= 20  # even a small hollow shape covers dozens of pixels


def test_fixed_background_is_honoured_and_the_colour_redrawn():
    white_bg = list(BACKGROUNDS).index("white")
    _, attrs = generate(0, range(200), fixed={"background": white_bg})
    assert (attrs.background == white_bg).all()
    assert FAMILIES["colour"].index("white") not in set(attrs.colour.tolist())
    with pytest.raises(ValueError, match="invisible"):
        generate(0, range(2), fixed={"background": white_bg, "colour": FAMILIES["colour"].index("white")})


def test_bad_fixed_values_raise():
    with pytest.raises(KeyError, match="texture"):
        generate(0, range(2), fixed={"texture": 0})
    with pytest.raises(ValueError, match="shape=99"):
        generate(0, range(2), fixed={"shape": 99})


def test_captions_are_deterministic_and_fit_the_context():
    _, attrs = generate(0, range(1500))
    caps = captions_for(2, range(1500), attrs)
    assert caps == captions_for(2, range(1500), attrs)
    assert len(set(caps)) > 1000  # templates, subsets and synonyms vary
    tokens = world_tokenizer()(caps)  # (N, 24)
    # Never truncated: the end-of-text token survives in every row.
    assert (tokens == 49407).any(dim=1).all()
    shape_named = [FAMILIES["shape"][s] in c for s, c in zip(attrs.shape, caps)]
    assert 0.6 < np.mean(shape_named) < 0.95
    assert isinstance(tokens, torch.Tensor)
