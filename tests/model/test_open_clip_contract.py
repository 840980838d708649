"""The open_clip internals that model/towers.py relies on, checked by name so that an open_clip release that
changes them fails here, with a message saying what to update, rather than as a wrong feature somewhere else."""

import inspect

import open_clip
import torch
from open_clip.transformer import VisionTransformer

from tiny_models import make_tiny_clip

_HOW_TO_FIX = (f"open_clip {open_clip.__version__} changed VisionTransformer.{{name}}, which mmlop/model/towers.py "
               "calls; update towers.encode_image to the new internals before raising the open_clip_torch bound "
               "in pyproject.toml")


def test_vision_transformer_still_has_embeds_and_pool_with_their_signatures():
    for name, params in (("_embeds", ["self", "x"]), ("_pool", ["self", "x"])):
        fn = getattr(VisionTransformer, name, None)
        assert callable(fn), _HOW_TO_FIX.format(name=name)
        assert list(inspect.signature(fn).parameters)[:2] == params, _HOW_TO_FIX.format(name=name)


@torch.no_grad()
def test_embeds_blocks_pool_and_proj_are_still_the_whole_image_forward():
    visual = make_tiny_clip().eval().visual
    images = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    x = visual._embeds(images)  # (B, 1+M, d_v)
    pooled, _ = visual._pool(visual.transformer(x))
    assert torch.equal(pooled @ visual.proj, visual(images)), _HOW_TO_FIX.format(name="_embeds/_pool")
