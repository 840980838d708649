"""Prompt template lists (data shipped with the package, from ``templates.json``)."""

from __future__ import annotations

import functools
import json
from importlib import resources

from mmlop.errors import TemplateError


@functools.lru_cache(maxsize=1)
def _all() -> dict:
    return json.loads(resources.files("mmlop").joinpath("templates.json").read_text())


def get_templates(key: str) -> list[str]:
    """A template list: ``imagenet_templates_60`` (the teacher's), ``imagenet_templates_80``,
    ``imagenet_templates_select_7``.

    Raises:
        TemplateError: unknown key (a KeyError); the message lists the known ones.
    """
    data = _all()
    if key not in data or not isinstance(data[key], list):
        known = sorted(k for k, v in data.items() if isinstance(v, list))
        raise TemplateError(f"unknown template list {key!r}; known: {known}")
    return list(data[key])


def dataset_template(dataset_key: str) -> str | None:
    """The hand-written zero-shot template of a benchmark dataset (``coop_custom_templates``), e.g.
    ``"a photo of a {}, a type of pet."`` for ``OxfordPets``; None for an unknown dataset."""
    return _all()["coop_custom_templates"].get(dataset_key)
