import pytest
import torch
import torch.nn.functional as F

from mmlop.config import PromptConfig
from mmlop.model import MMLoP
from mmlop.model.teacher import frozen_text_features
from mmlop.templates import get_templates


@pytest.mark.numerics
def test_template_ensemble_averages_raw_features_then_normalises(tiny_base):
    model = MMLoP(tiny_base, PromptConfig(depth=1))
    templates = ["a photo of a {}.", "a drawing of the {}.", "itap of a {}."]
    names = ["red_panda", "cat"]
    got = frozen_text_features(model, names, templates, batch_size=4)
    for i, name in enumerate(names):
        # The teacher encodes in batches of 4, the reference per class: other GEMM shapes, so other summation orders
        # through 3 float32 blocks. The outputs are unit vectors (entries <= 1): a few ulps each, well inside
        # rtol 1e-5 / atol 1e-6.
        raw = tiny_base.model.encode_text(tiny_base.tokenizer([t.format(name.replace("_", " ")) for t in templates]))
        torch.testing.assert_close(got[i], F.normalize(raw.mean(0), dim=-1), rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(
            frozen_text_features(model, names, templates, average="normalized")[i],
            F.normalize(F.normalize(raw, dim=-1).mean(0), dim=-1), rtol=1e-5, atol=1e-6)


def test_shipped_template_lists():
    t60 = get_templates("imagenet_templates_60")
    assert len(t60) == 60 and t60[0] == "a photo of a {}." and len(set(t60)) == 60
    assert len(get_templates("imagenet_templates_80")) == 80
