"""Image preprocessing of the reference protocol (§1.4); size and normalisation come from the model."""

from __future__ import annotations

from collections.abc import Sequence

from PIL import Image
from torchvision import transforms as T
from torchvision.transforms import InterpolationMode

__all__ = ["build_train_transform", "build_test_transform", "convert_to_rgb", "CLIP_MEAN", "CLIP_STD"]

#: OpenAI CLIP's image normalisation (open_clip's ``OPENAI_DATASET_MEAN``/``STD``), mmlop's one copy: the default
#: of every transform and of :class:`mmlop.BaseCLIP`, and the world CLIP's (tests check it against open_clip's).
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def _check(image_size: int, mean: Sequence[float], std: Sequence[float]) -> None:
    if not isinstance(image_size, int) or image_size < 1:
        raise ValueError(f"image_size must be a positive int, got {image_size!r}")
    if len(mean) != 3 or len(std) != 3 or min(std) <= 0:
        raise ValueError(f"mean and std must have 3 entries with std > 0, got {mean!r} and {std!r}")


def build_train_transform(image_size: int, mean: Sequence[float] = CLIP_MEAN, std: Sequence[float] = CLIP_STD,
                          scale: tuple[float, float] = (0.08, 1.0)) -> T.Compose:
    """RandomResizedCrop (scale 0.08-1 by default, bicubic) -> RandomHorizontalFlip -> ToTensor -> Normalize.

    Raises:
        ValueError: For a non-positive size, malformed mean/std, or a crop scale outside (0, 1].
    """
    _check(image_size, mean, std)
    lo, hi = scale
    if not 0 < lo <= hi <= 1:
        raise ValueError(f"crop scale must satisfy 0 < min <= max <= 1, got {scale!r}")
    return T.Compose([
        T.RandomResizedCrop(image_size, scale=(lo, hi), interpolation=InterpolationMode.BICUBIC),
        T.RandomHorizontalFlip(),
        T.ToTensor(),
        T.Normalize(list(mean), list(std)),
    ])


def convert_to_rgb(image: Image.Image) -> Image.Image:
    """The image in RGB (a no-op copy for an RGB image): grayscale, palette and RGBA inputs get three channels."""
    return image.convert("RGB")


def build_test_transform(image_size: int, mean: Sequence[float] = CLIP_MEAN, std: Sequence[float] = CLIP_STD) -> T.Compose:
    """Resize the shorter side (bicubic) -> CenterCrop -> RGB -> ToTensor -> Normalize: open_clip's evaluation
    preprocessing, and mmlop's one test transform (training-time evaluation, ``mmlop eval``, the Classifier).

    Raises:
        ValueError: For a non-positive size or malformed mean/std.
    """
    _check(image_size, mean, std)
    return T.Compose([
        T.Resize(image_size, interpolation=InterpolationMode.BICUBIC),
        T.CenterCrop(image_size),
        convert_to_rgb,
        T.ToTensor(),
        T.Normalize(list(mean), list(std)),
    ])
