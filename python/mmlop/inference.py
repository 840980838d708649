"""Classifying images among any list of class names with learned prompts (method.md §8).

Once per class set: the frozen template-ensemble features g0, the prompted text features, and their drift
correction over that set. Per image: prompted image features. Predictions depend on which classes are scored
together, because drift correction averages over the class set given.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

from mmlop.config import TeacherConfig
from mmlop.data.transforms import build_test_transform
from mmlop.errors import InputError
from mmlop.model.factory import BaseCLIP
from mmlop.model.io import load_prompts
from mmlop.model.prompted import MMLoP
from mmlop.model.teacher import frozen_text_features
from mmlop.ops.drift_logits import uniform_drift_correction
from mmlop.templates import get_templates


def check_classnames(classnames: Sequence[str]) -> list[str]:
    """The class names as a list, refused unless a non-empty sequence of distinct, non-empty strings.

    Raises:
        InputError: a bare string (which would make one class per letter), an empty list, a non-string, an
            empty name, or a repeated name (two columns of logits for one class).
    """
    if isinstance(classnames, (str, bytes)):
        raise InputError(f"classnames={classnames!r} is a single string; expected a list of class names, e.g. "
                         f"[{classnames!r}] (a string would make one class per letter)")
    if not isinstance(classnames, Sequence) and not hasattr(classnames, "__iter__"):
        raise InputError(f"classnames is a {type(classnames).__name__}; expected a list of class names")
    names = list(classnames)
    if not names:
        raise InputError("classnames is empty: expected at least one class name")
    for i, n in enumerate(names):
        if not isinstance(n, str):
            raise InputError(f"classnames[{i}]={n!r} is a {type(n).__name__}; expected a string")
        if not n.strip():
            raise InputError(f"classnames[{i}]={n!r} is empty; expected a non-empty class name")
    seen: dict[str, int] = {}
    for i, n in enumerate(names):
        if n in seen:
            raise InputError(f"classnames[{i}]={n!r} repeats classnames[{seen[n]}]; expected distinct class names")
        seen[n] = i
    return names


class Classifier:
    """A text classifier over a fixed class list.

    Args:
        model: A prompted model (or a depth-0 one for zero-shot CLIP).
        classnames: The classes to score, in label order.
        udc: Apply uniform drift correction over ``classnames`` (the paper does at test time).
        teacher: Templates for the frozen features g0 that drift correction needs.
        zero_shot_template: For a model without text prompts: use this single template (e.g.
            ``"a photo of a {}."``) instead of the ensemble, as the zero-shot CLIP baseline does.
        chunk_size: Classes per text-encoder pass.
    """

    def __init__(self, model: MMLoP, classnames: Sequence[str], *, udc: bool = True,
                 teacher: TeacherConfig | None = None, zero_shot_template: str | None = None,
                 chunk_size: int = 256):
        if not isinstance(model, MMLoP):
            raise InputError(f"model is a {type(model).__name__}; expected an mmlop.MMLoP (see mmlop.load_prompts)")
        self.model = model
        self.classnames = check_classnames(classnames)
        teacher = teacher or TeacherConfig()
        with torch.no_grad():
            if model.config.text_depth == 0:
                templates = [zero_shot_template] if zero_shot_template else get_templates(teacher.templates)
                self.text = frozen_text_features(model, self.classnames, templates, average=teacher.average)
            else:
                g = model.class_text_features(self.classnames, chunk_size=chunk_size).float()
                if udc:
                    g0 = frozen_text_features(model, self.classnames, get_templates(teacher.templates),
                                              average=teacher.average)
                    self.text = uniform_drift_correction(g, g0)
                else:
                    self.text = F.normalize(g, dim=-1)
        self.logit_scale = model.logit_scale
        base = model.base_info
        self._preprocess = build_test_transform(base.image_size, base.mean, base.std)

    @classmethod
    def from_pretrained(cls, prompts_path: str | Path, base: BaseCLIP, classnames: Sequence[str],
                        **kwargs) -> "Classifier":
        """Load saved prompts onto ``base`` and build a classifier over ``classnames``."""
        return cls(load_prompts(prompts_path, base), classnames, **kwargs)

    def text_classifier(self) -> Tensor:
        """The (C, D) unit-norm text weights; ``logits = s * normalize(image_features) @ W.T``. Export these to
        classify without mmlop."""
        return self.text.clone()

    def preprocess(self, images: Sequence[Image.Image | str | Path]) -> Tensor:
        """Resize, center-crop and normalise PIL images (or image paths) as the base expects."""
        if isinstance(images, (str, Path, Image.Image)):
            raise InputError(f"images is a single {type(images).__name__} ({images!r:.80}); expected a list of "
                             "images or paths, e.g. [image]")
        out = []
        for i, im in enumerate(images):
            if not isinstance(im, Image.Image):
                if not isinstance(im, (str, Path)):
                    raise InputError(f"images[{i}] is a {type(im).__name__}; expected a PIL image or an image path")
                try:
                    with Image.open(im) as f:
                        im = f.convert("RGB")
                except FileNotFoundError:
                    raise InputError(f"images[{i}]: {im}: file not found; expected an image file") from None
                except (OSError, Image.UnidentifiedImageError) as e:
                    raise InputError(f"images[{i}]: {im}: not a readable image ({e})") from None
            out.append(self._preprocess(im.convert("RGB")))
        if not out:
            raise InputError("images is empty: expected at least one image")
        return torch.stack(out)

    @torch.no_grad()
    def logits(self, images: Tensor | Sequence[Image.Image | str | Path]) -> Tensor:
        """(B, C) scaled cosine logits of normalised image tensors (B, 3, H, W) or PIL images/paths."""
        if not torch.is_tensor(images):
            images = self.preprocess(images)
        size = self.model.base_info.image_size
        if images.ndim != 4 or images.shape[0] == 0 or tuple(images.shape[1:]) != (3, size, size):
            raise InputError(f"images tensor of shape {tuple(images.shape)}; expected (B, 3, {size}, {size}) with "
                             "B >= 1, normalised as Classifier.preprocess returns it")
        if not images.is_floating_point():
            raise InputError(f"images tensor of dtype {images.dtype}; expected a floating-point tensor (normalised "
                             "pixels, as Classifier.preprocess returns it)")
        device = self.text.device
        f = self.model.encode_image(images.to(device), normalize=True).float()
        return self.logit_scale * f @ self.text.t()

    def predict(self, images: Tensor | Sequence[Image.Image | str | Path]) -> list[str]:
        """The predicted class name of each image."""
        return [self.classnames[i] for i in self.logits(images).argmax(dim=-1).tolist()]


def predict(model: MMLoP, images: Tensor | Sequence[Image.Image | str | Path], classnames: Sequence[str],
            **kwargs) -> list[str]:
    """One-shot convenience: build a :class:`Classifier` over ``classnames`` and predict ``images``."""
    return Classifier(model, classnames, **kwargs).predict(images)
