"""Zero-shot accuracy of a CLIP on clean generated images, per attribute family."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from open_clip.model import CLIP

from mmlop.metrics import harmonic_mean
from mmlop.world.captions import FAMILY_PROMPTS
from mmlop.world.generator import FAMILIES, generate
from mmlop.world.model import to_tensor

_BATCH = 256


@torch.no_grad()
def _image_features(model: CLIP, images: np.ndarray) -> torch.Tensor:
    feats = [
        model.encode_image(to_tensor(images[start : start + _BATCH]), normalize=True)  # (B, D)
        for start in range(0, len(images), _BATCH)
    ]
    return torch.cat(feats)


@torch.no_grad()
def _predict(model: CLIP, tokenizer, feats: torch.Tensor, prompts: Sequence[str]) -> np.ndarray:
    text = model.encode_text(tokenizer(list(prompts)), normalize=True)  # (C, D)
    return (feats @ text.T).argmax(dim=1).numpy()


def classify(model: CLIP, tokenizer, images: np.ndarray, prompts: Sequence[str]) -> np.ndarray:
    """Predicted prompt index of each image by cosine similarity.

    Args:
        model: an open_clip CLIP (used as is; call ``eval()`` first).
        tokenizer: callable mapping a list of strings to token ids.
        images: (N, H, W, 3) uint8 images.
        prompts: one prompt per class.

    Returns:
        (N,) int64 predictions.
    """
    return _predict(model, tokenizer, _image_features(model, images), prompts)


def zeroshot_accuracies(
    model: CLIP, tokenizer, families: Sequence[str], n_images: int, seed: int
) -> dict[str, float]:
    """:func:`zeroshot_accuracy` for several families, encoding the held-out images once.

    Args:
        model: an open_clip CLIP in eval mode.
        tokenizer: its tokenizer.
        families: attribute families to evaluate.
        n_images: size of the held-out set.
        seed: stream seed of the held-out set.

    Returns:
        ``{family: accuracy in [0, 1]}``.

    Raises:
        KeyError: unknown family.
        ValueError: ``n_images`` < 1.
    """
    for family in families:
        if family not in FAMILIES:
            raise KeyError(f"unknown attribute family {family!r}; expected one of {sorted(FAMILIES)}")
    if n_images < 1:
        raise ValueError(f"n_images must be >= 1, got {n_images}")
    images, attrs = generate(seed, range(n_images))
    feats = _image_features(model, images)
    out = {}
    for family in families:
        prompts = [FAMILY_PROMPTS[family].format(v) for v in FAMILIES[family]]
        out[family] = float((_predict(model, tokenizer, feats, prompts) == attrs.family(family)).mean())
    return out


def zeroshot_accuracy(model: CLIP, tokenizer, family: str, n_images: int, seed: int) -> float:
    """Zero-shot accuracy on ``n_images`` clean generated images, classifying among a family's values.

    The images are ``generate(seed, range(n_images))``; the prompts are ``FAMILY_PROMPTS[family]``
    filled with each value name.

    Args:
        model: an open_clip CLIP in eval mode.
        tokenizer: its tokenizer.
        family: attribute family (``"shape"``, ``"colour"``, ``"pattern"``, ``"size"``, ``"position"``,
            ``"background"``).
        n_images: size of the held-out set.
        seed: stream seed of the held-out set (keep it apart from training seeds).

    Returns:
        Accuracy in [0, 1].

    Raises:
        KeyError: unknown family.
        ValueError: ``n_images`` < 1.
    """
    return zeroshot_accuracies(model, tokenizer, [family], n_images, seed)[family]


def suite_zeroshot(
    model: CLIP, tokenizer, *, seed: int = 0, test_per_class: int = 50, names: Sequence[str] | None = None
) -> dict[str, dict[str, float]]:
    """Zero-shot base / novel accuracy of a model on the test split of each suite dataset.

    Per the protocol (§3), base classes are the first ``ceil(C/2)`` labels and each half is classified
    among its own classes only. Images are generated in memory, identical to the materialised PNGs.

    Args:
        model: an open_clip CLIP in eval mode.
        tokenizer: its tokenizer.
        seed: suite seed.
        test_per_class: test images per class.
        names: datasets (default: all).

    Returns:
        ``{dataset: {"base": acc, "novel": acc, "hm": harmonic mean}}``, accuracies in [0, 1].
    """
    from mmlop.world.suite import SUITE, generate_split

    out = {}
    for name in names or list(SUITE):
        spec = SUITE[name]
        images, labels = generate_split(spec, "test", seed, test_per_class)
        feats = _image_features(model, images)
        prompts = [spec.template.format(c) for c in spec.classnames]
        m = spec.num_base
        accs = {}
        for half, lo, hi in (("base", 0, m), ("novel", m, len(prompts))):
            sel = torch.from_numpy((labels >= lo) & (labels < hi))
            preds = _predict(model, tokenizer, feats[sel], prompts[lo:hi])
            accs[half] = float((preds == labels[sel.numpy()] - lo).mean())
        b, n = accs["base"], accs["novel"]
        accs["hm"] = harmonic_mean(b, n)
        out[name] = accs
    return out
