"""``mmlop.export`` and ``mmlop export``: the exported file reproduces ``Classifier`` without mmlop."""

import json

import numpy as np
import onnxruntime
import pytest
import torch
from PIL import Image
from torchvision import transforms as T

import mmlop
from mmlop.cli import main
from mmlop.config import PromptConfig
from mmlop.export import ExportError, export_classifier
from mmlop.inference import Classifier
from mmlop.model import MMLoP

# torch deprecates TorchScript in favour of torch.export; loading still works and is what a deployment would do.
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:FutureWarning")

NAMES = ["red circle", "blue square", "green triangle", "yellow star", "white cross", "black ring"]
#: The exported graph runs the same float32 ops in another order (onnxruntime's kernels, the traced graph):
#: features differ by ~1e-7, logits (scale ~18 for the world model) by ~3e-6; 1e-4 on probabilities leaves
#: margin for any CPU's vector width.
PROB_BOUND = 1e-4


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """The built-in world model with random prompts saved by ``save_prompts`` (large init so they matter)."""
    root = tmp_path_factory.mktemp("export")
    base = mmlop.load_base("mmlop-world")
    model = MMLoP(base, PromptConfig(depth=3, init_std=0.5), generator=torch.Generator().manual_seed(0))
    mmlop.save_prompts(model, root / "prompts")
    clf = Classifier.from_pretrained(root / "prompts", base, NAMES)
    rng = np.random.default_rng(0)
    pil = [Image.fromarray(rng.integers(0, 256, (40 + 7 * i, 60, 3), dtype=np.uint8)) for i in range(6)]
    images = torch.cat([clf.preprocess(pil), torch.randn(10, 3, base.image_size, base.image_size)])
    return root, clf, pil, images


def _agreement(probs: np.ndarray, clf: Classifier, images: torch.Tensor) -> tuple[float, float]:
    ref = torch.softmax(clf.logits(images), dim=-1).numpy()
    top2 = np.sort(ref, axis=1)[:, -2:]
    # Guard: a near tie could flip top-1 under any rounding; the fixed inputs have clear margins.
    assert (top2[:, 1] - top2[:, 0]).min() > 10 * PROB_BOUND
    return float(np.abs(probs - ref).max()), float((probs.argmax(1) == ref.argmax(1)).mean())


def test_cli_onnx_export_matches_the_classifier_under_onnxruntime(world, capsys):
    root, clf, pil, images = world
    out = root / "onnx"
    assert main(["export", "--prompts", str(root / "prompts"), "--classes", *NAMES, "--format", "onnx",
                 "--output", str(out)]) == 0
    assert "model.onnx" in capsys.readouterr().out
    session = onnxruntime.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["images"]
    probs, logits = session.run(["probabilities", "logits"], {"images": images.numpy()})  # batch 16, exported at 2
    max_diff, top1 = _agreement(probs, clf, images)
    assert max_diff < PROB_BOUND and top1 == 1.0
    np.testing.assert_allclose(logits, clf.logits(images).numpy(), atol=PROB_BOUND * clf.logit_scale)

    meta = json.loads((out / "model.json").read_text())
    assert meta["class_names"] == NAMES and meta["file"] == "model.onnx" and meta["onnx_opset"] == 17
    assert meta["inputs"]["images"]["shape"] == ["batch", 3, 48, 48]
    assert meta["base"]["model"] == "mmlop-world" and meta["prompts"] == str(root / "prompts")
    assert meta["logit_scale"] == pytest.approx(clf.logit_scale)
    # A caller who reads only model.json reproduces the classifier's preprocessing.
    pre = meta["preprocessing"]
    steps = {s["op"]: s for s in pre["steps"]}
    assert steps["resize"]["interpolation"] == "bicubic" and list(steps) == [
        "resize", "center_crop", "convert_rgb", "to_tensor", "normalize"]
    tf = T.Compose([T.Resize(steps["resize"]["size"], interpolation=T.InterpolationMode.BICUBIC),
                    T.CenterCrop(steps["center_crop"]["size"]), T.ToTensor(), T.Normalize(pre["mean"], pre["std"])])
    torch.testing.assert_close(torch.stack([tf(im) for im in pil]), clf.preprocess(pil), rtol=0, atol=0)


def test_torchscript_export_matches_the_classifier(world):
    root, clf, _, images = world
    path = export_classifier(clf, root / "ts", fmt="torchscript", prompts=str(root / "prompts"))
    assert path.name == "model.pt" and json.loads((root / "ts" / "model.json").read_text())["onnx_opset"] is None
    loaded = torch.jit.load(str(path))
    probs, _ = loaded(images)
    max_diff, top1 = _agreement(probs.numpy(), clf, images)
    assert max_diff < PROB_BOUND and top1 == 1.0


def test_export_refuses_to_overwrite_and_unknown_formats(world, tmp_path, capsys):
    root, clf, _, _ = world
    export_classifier(clf, tmp_path, fmt="torchscript")
    before = (tmp_path / "model.pt").read_bytes()
    with pytest.raises(ExportError, match=r"already holds \['model.pt', 'model.json'\]; pass --overwrite"):
        export_classifier(clf, tmp_path, fmt="torchscript")
    assert (tmp_path / "model.pt").read_bytes() == before
    with pytest.raises(ExportError, match="--format 'tflite': expected one of onnx, torchscript"):
        export_classifier(clf, tmp_path / "x", fmt="tflite")
    assert main(["export", "--prompts", str(root / "prompts"), "--classes", "a", "a", "--output",
                 str(tmp_path / "y")]) == 2
    assert "duplicate class names ['a']" in capsys.readouterr().err
    assert not (tmp_path / "y").exists()


def test_export_without_vision_prompts_and_without_drift_correction(tiny_base, tmp_path):
    """A text-only prompt config (no vision prompts) exports the frozen image tower."""
    model = MMLoP(tiny_base, PromptConfig.coop(4))
    clf = Classifier(model, ["a", "b", "c"], udc=False)
    loaded = torch.jit.load(str(export_classifier(clf, tmp_path, fmt="torchscript")))
    images = torch.randn(3, 3, 32, 32)
    probs, logits = loaded(images)
    # Same ops, same order (trace of the eager graph): float32 rounding only.
    torch.testing.assert_close(logits, clf.logits(images), rtol=1e-5, atol=1e-5)
