"""Captions for generated images: several sentence templates, random attribute subsets, a few synonyms.

Captions name the shape most of the time; when they omit it they use a generic noun ("shape", "object",
"thing"), which is also the noun the zero-shot prompts of the colour and pattern families use. The canonical
value name is used most of the time so that prompts built from class names match the captions' wording.
"""

from __future__ import annotations

import numpy as np

from mmlop.world.generator import FAMILIES, Attributes

_SYNONYMS: dict[str, tuple[str, ...]] = {
    "cross": ("cross", "cross", "plus sign"),
    "bar": ("bar", "bar", "stick"),
    "crescent": ("crescent", "crescent", "moon"),
    "ring": ("ring", "ring", "donut"),
    "small": ("small", "small", "little", "tiny"),
    "large": ("large", "large", "big"),
    "medium": ("medium", "medium", "medium sized"),
    "striped": ("striped", "striped", "stripy"),
    "checkered": ("checkered", "checkered", "checked"),
    "dotted": ("dotted", "dotted", "polka dot"),
    "hollow": ("hollow", "hollow", "outlined"),
    "speckled": ("speckled", "speckled", "grainy"),
    "faded": ("faded", "faded", "fading"),
    "gray": ("gray", "gray", "grey"),
    "center": ("center", "center", "middle"),
    "top left": ("top left", "top left", "upper left"),
    "top right": ("top right", "top right", "upper right"),
    "bottom left": ("bottom left", "bottom left", "lower left"),
    "bottom right": ("bottom right", "bottom right", "lower right"),
}
_LEADS = ("a photo of", "a photo of", "an image of", "a picture of", "a drawing of", "a rendering of")
_GENERIC_NOUNS = ("shape", "shape", "object", "thing")

#: Zero-shot prompt of each family; ``{}`` is the value name. They use the captions' canonical wording.
FAMILY_PROMPTS: dict[str, str] = {
    "shape": "a photo of a {}.",
    "colour": "a photo of a {} shape.",
    "pattern": "a photo of a {} shape.",
    "size": "a photo of a {} shape.",
    "position": "a photo of a shape in the {}.",
    "background": "a photo of a shape on a {} background.",
}


def with_article(phrase: str) -> str:
    """Prefix ``a``/``an`` to a noun phrase."""
    return ("an " if phrase[:1] in "aeiou" else "a ") + phrase


def _word(rng: np.random.Generator, value: str) -> str:
    options = _SYNONYMS.get(value)
    return value if options is None else options[rng.integers(len(options))]


def caption(rng: np.random.Generator, values: dict[str, str]) -> str:
    """One caption for an image with attribute ``values`` (family -> value name).

    Args:
        rng: random stream (decides template, attribute subset and synonyms).
        values: value name of every family in ``FAMILIES``.

    Returns:
        A lower-case sentence ending with a period (at most ~16 tokens).
    """
    # Shape is named in most captions (it is the hardest family to learn contrastively); the other
    # families appear often enough that every word is seen with every shape.
    keep = {
        "shape": rng.random() < 0.8,
        "colour": rng.random() < 0.7,
        "pattern": rng.random() < 0.6,
        "size": rng.random() < 0.3,
    }
    adjectives = [_word(rng, values[f]) for f in ("size", "colour", "pattern") if keep[f]]
    if len(adjectives) >= 2 and rng.random() < 0.3:
        adjectives[-2], adjectives[-1] = adjectives[-1], adjectives[-2]
    noun = _word(rng, values["shape"]) if keep["shape"] else _GENERIC_NOUNS[rng.integers(len(_GENERIC_NOUNS))]
    phrase = with_article(" ".join(adjectives + [noun]))
    tail = rng.random()
    if tail < 0.2:
        phrase += f" on {with_article(_word(rng, values['background']))} background"
    elif tail < 0.4:
        phrase += f" in the {_word(rng, values['position'])}"
    if rng.random() < 0.35:
        return phrase + "."
    return f"{_LEADS[rng.integers(len(_LEADS))]} {phrase}."


def captions_for(seed: int, indices: np.ndarray | range, attrs: Attributes) -> list[str]:
    """Captions for a batch, each a pure function of ``(seed, index)`` and the image's attributes.

    Args:
        seed: caption stream seed (use a different one from the image stream).
        indices: image indices, aligned with ``attrs``.
        attrs: attributes of the images.

    Returns:
        One caption per image.
    """
    out = []
    for row, idx in enumerate(np.asarray(indices)):
        rng = np.random.default_rng([int(seed), int(idx), 7])
        values = {f: FAMILIES[f][int(attrs.family(f)[row])] for f in FAMILIES}
        out.append(caption(rng, values))
    return out
