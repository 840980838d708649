import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from mmlop.config import PromptConfig
from mmlop.inference import Classifier, predict
from mmlop.ops.drift_logits import uniform_drift_correction
from mmlop.model import MMLoP
from mmlop.model.io import save_prompts
from mmlop.model.teacher import frozen_text_features
from mmlop.templates import get_templates

NAMES = ["cat", "dog", "bird"]


@pytest.mark.numerics
def test_zero_shot_classifier_uses_one_template(tiny_base):
    model = MMLoP(tiny_base, PromptConfig.zero_shot())
    clf = Classifier(model, NAMES, zero_shot_template="a photo of a {}.")
    images = torch.randn(4, 3, 32, 32)
    text = F.normalize(tiny_base.model.encode_text(tiny_base.tokenizer([f"a photo of a {n}." for n in NAMES])), dim=-1)
    expected = model.logit_scale * F.normalize(tiny_base.model.encode_image(images), dim=-1) @ text.t()
    # Logits are s * cosine with s ~ 14 (tiny init): a float32 cosine from another code path is a few ulps (~1e-7) off,
    # times s ~ 1e-6; atol 1e-4 leaves room for other CPU kernels without hiding a wrong template (O(1) changes).
    torch.testing.assert_close(clf.logits(images), expected, rtol=1e-5, atol=1e-4)


@pytest.mark.numerics
def test_prompted_classifier_applies_drift_correction_over_the_given_classes(tiny_base, tmp_path):
    model = MMLoP(tiny_base, PromptConfig(depth=2, init_std=0.5))
    save_prompts(model, tmp_path)
    clf = Classifier.from_pretrained(tmp_path, tiny_base, NAMES)
    g = model.class_text_features(NAMES)
    g0 = frozen_text_features(model, NAMES, get_templates("imagenet_templates_60"))
    # The classifier corrects through the fused op, the reference through losses.py: float32 unit vectors a few ulps
    # apart, inside the default float32 tolerance (rtol 1.3e-6, atol 1e-5).
    torch.testing.assert_close(clf.text_classifier(), uniform_drift_correction(g, g0).detach())
    # The class set matters: correction over a subset gives different weights for the shared classes.
    assert not torch.allclose(Classifier(model, NAMES[:2]).text_classifier(), clf.text_classifier()[:2])
    no_udc = Classifier(model, NAMES, udc=False).text_classifier()
    torch.testing.assert_close(no_udc, F.normalize(g, dim=-1).detach())  # same bound: one normalisation apart


def test_predict_accepts_pil_images_and_paths(tiny_base, tmp_path):
    model = MMLoP(tiny_base, PromptConfig(depth=1))
    img = Image.fromarray((torch.rand(40, 50, 3) * 255).byte().numpy())
    img.save(tmp_path / "a.png")
    out = predict(model, [img, tmp_path / "a.png"], NAMES)
    assert len(out) == 2 and out[0] == out[1] and out[0] in NAMES
