"""Frozen zero-shot text features g^0: the template ensemble of each class (method.md §4)."""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from mmlop.model.prompted import MMLoP


@torch.no_grad()
def frozen_text_features(model: MMLoP, classnames: Sequence[str], templates: Sequence[str], *,
                         average: str = "raw", batch_size: int = 2048) -> Tensor:
    """Frozen text features of each class from a template ensemble.

    Each template is filled with the class name (underscores as spaces) and encoded without prompts.
    ``average="raw"`` averages the projected, unnormalised features of the templates and normalises the mean
    (PromptSRC); ``"normalized"`` normalises each template's feature first (CoOp).

    Args:
        model: The prompted model (its frozen path is used).
        classnames: C class names.
        templates: Template strings with one ``{}``.
        average: ``raw`` or ``normalized``.
        batch_size: Number of prompts encoded at once (bounds memory for 1000 classes x 60 templates).

    Returns:
        (C, D) unit-norm fp32 features.
    """
    if average not in ("raw", "normalized"):
        raise ValueError(f"average={average!r}: expected 'raw' or 'normalized'")
    if not templates:
        raise ValueError("templates is empty: expected at least one template with '{}'")
    texts = [t.format(c.replace("_", " ")) for c in classnames for t in templates]  # class-major
    feats = []
    for i in range(0, len(texts), batch_size):
        tokens = model.tokenize(texts[i:i + batch_size])
        feats.append(model.encode_text(tokens, prompted=False).float())
    x = torch.cat(feats).view(len(classnames), len(templates), -1)  # (C, K, D)
    if average == "normalized":
        x = F.normalize(x, dim=-1)
    return F.normalize(x.mean(dim=1), dim=-1)
