"""Export for deployment: the prompted image tower plus a fixed text classifier as one ONNX or TorchScript file.

The text side of a :class:`mmlop.Classifier` depends only on the class list, so it is computed once (drift
corrected over that list) and stored as a buffer; the exported module runs the image tower with the learned
vision prompts, also stored as a buffer, and needs neither mmlop nor open_clip to run. A JSON file beside it
documents the input and the preprocessing a caller must apply.
"""

from __future__ import annotations

import contextlib
import io
import os
import warnings
from pathlib import Path
from typing import Any, Iterator

import torch
from torch import Tensor, nn

from mmlop._io import atomic_write_bytes, atomic_write_json
from mmlop.errors import ExportError
from mmlop.inference import Classifier
from mmlop.model import towers

FORMATS = {"onnx": "model.onnx", "torchscript": "model.pt"}
METADATA_FILE = "model.json"
FORMAT = "mmlop-export/1"
#: ONNX opset: 17 has LayerNormalization as one op; onnxruntime >= 1.13 runs it.
DEFAULT_OPSET = 17


class ExportedClassifier(nn.Module):
    """``images (B, 3, H, W) -> (probabilities (B, C), logits (B, C))`` with everything class-specific frozen.

    Args:
        classifier: The classifier to freeze; its class list, drift correction and logit scale are kept.
    """

    def __init__(self, classifier: Classifier):
        super().__init__()
        model = classifier.model
        self.visual = model.visual
        vision = model.prompt_tensors()[1] if model.config.vis_depth > 0 else None
        # Prompts are recomputed from the factors once here; the exported graph holds the (L_v, V, d_v) result.
        self.register_buffer("vision_prompts", None if vision is None else vision.detach().float().clone())
        self.register_buffer("text_weights", classifier.text_classifier().float())  # (C, D), unit rows
        self.register_buffer("logit_scale", torch.tensor(float(classifier.logit_scale)))

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor]:
        f = towers.encode_image(self.visual, images, self.vision_prompts).float()  # (B, D)
        f = f / f.norm(dim=-1, keepdim=True)
        logits = self.logit_scale * f @ self.text_weights.t()  # (B, C)
        return torch.softmax(logits, dim=-1), logits


@contextlib.contextmanager
def _traceable() -> Iterator[None]:
    """Trace the plain-torch path: the fused ops' pure-torch references instead of Triton kernels, and
    ``nn.MultiheadAttention`` without its fused fast path (``aten::_native_multi_head_attention`` has no ONNX
    symbolic, and TorchScript would tie the file to that kernel)."""
    old_ops = os.environ.get("MMLOP_OPS")
    old_fast = torch.backends.mha.get_fastpath_enabled()
    os.environ["MMLOP_OPS"] = "reference"
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        with warnings.catch_warnings():
            # The tracer warns about Python branches on prompt shapes: they are fixed for the exported model.
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            # torch deprecates dynamo=False and torch.jit; both still work and need no extra package.
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", FutureWarning)
            yield
    finally:
        torch.backends.mha.set_fastpath_enabled(old_fast)
        if old_ops is None:
            os.environ.pop("MMLOP_OPS", None)
        else:
            os.environ["MMLOP_OPS"] = old_ops


def _transform_steps(transform: Any) -> list[dict[str, Any]]:
    """The test transform as data, read from the torchvision ``Compose`` the classifier itself applies."""
    steps = []
    for t in getattr(transform, "transforms", [transform]):
        name = type(t).__name__
        if name == "Resize":
            size = t.size if isinstance(t.size, int) else list(t.size)
            steps.append({"op": "resize", "size": size, "interpolation": t.interpolation.value,
                          "note": "an int size resizes the shorter side to it, keeping the aspect ratio"})
        elif name == "CenterCrop":
            steps.append({"op": "center_crop", "size": list(t.size)})
        elif name.endswith("ToTensor"):  # open_clip 3.x wraps it as MaybeToTensor
            steps.append({"op": "to_tensor", "note": "HWC uint8 -> CHW float32 in [0, 1]"})
        elif name == "Normalize":
            steps.append({"op": "normalize", "mean": [float(x) for x in t.mean], "std": [float(x) for x in t.std]})
        elif "ConvertMode" in name or "rgb" in getattr(t, "__name__", name).lower():
            steps.append({"op": "convert_rgb"})
        else:
            steps.append({"op": name})
    return steps


def export_metadata(classifier: Classifier, fmt: str, *, prompts: str | None = None,
                    opset: int | None = None) -> dict[str, Any]:
    """What a caller needs to use the exported file: input, outputs, preprocessing, classes, provenance."""
    from mmlop.version import __version__

    base = classifier.model.base_info
    size = base.image_size
    n = len(classifier.classnames)
    return {
        "format": FORMAT,
        "file": FORMATS[fmt],
        "model_format": fmt,
        "mmlop_version": __version__,
        "torch_version": torch.__version__,
        "onnx_opset": opset,
        "inputs": {"images": {"shape": ["batch", 3, size, size], "dtype": "float32",
                              "description": "RGB images after the preprocessing below"}},
        "outputs": {"probabilities": {"shape": ["batch", n], "dtype": "float32",
                                      "description": "softmax of the logits over class_names"},
                    "logits": {"shape": ["batch", n], "dtype": "float32",
                               "description": "logit_scale * cosine(image feature, class weight)"}},
        "preprocessing": {"image_size": size, "mean": list(base.mean), "std": list(base.std),
                          "steps": _transform_steps(classifier._preprocess)},
        "class_names": list(classifier.classnames),
        "logit_scale": float(classifier.logit_scale),
        "prompts": prompts,
        "prompt_config": classifier.model.config.to_dict(),
        "base": base.describe(),
    }


def _onnx_bytes(module: ExportedClassifier, example: Tensor, opset: int) -> bytes:
    try:
        import onnx  # noqa: F401  (torch's exporter needs it; fail with the extra's name, not deep in torch)
    except ImportError:
        raise ExportError("ONNX export needs the onnx package: pip install 'mmlop[export]'") from None
    buf = io.BytesIO()
    # The TorchScript-based exporter (dynamo=False) needs no onnxscript and handles this graph.
    torch.onnx.export(module, (example,), buf, dynamo=False, opset_version=opset, input_names=["images"],
                      output_names=["probabilities", "logits"],
                      dynamic_axes={"images": {0: "batch"}, "probabilities": {0: "batch"}, "logits": {0: "batch"}})
    return buf.getvalue()


def _torchscript_bytes(module: ExportedClassifier, example: Tensor) -> bytes:
    traced = torch.jit.trace(module, (example,), check_trace=False)
    buf = io.BytesIO()
    torch.jit.save(traced, buf)
    return buf.getvalue()


def export_classifier(classifier: Classifier, output_dir: str | Path, *, fmt: str = "onnx",
                      prompts: str | None = None, opset: int = DEFAULT_OPSET, overwrite: bool = False) -> Path:
    """Write ``model.onnx`` or ``model.pt`` (TorchScript) and ``model.json`` into ``output_dir``.

    Args:
        classifier: The classifier to export (its class list and drift correction are frozen in).
        output_dir: Target folder (created).
        fmt: ``onnx`` or ``torchscript``.
        prompts: The prompts folder, recorded in the metadata.
        opset: ONNX opset.
        overwrite: Replace an earlier export in ``output_dir``.

    Returns:
        The path of the model file.

    Raises:
        ExportError: unknown format, files already there, or onnx not installed.
    """
    if fmt not in FORMATS:
        raise ExportError(f"--format {fmt!r}: expected one of {', '.join(FORMATS)}")
    out = Path(output_dir)
    if out.exists() and not out.is_dir():
        raise ExportError(f"--output {out}: is a file; expected a folder for {FORMATS[fmt]} and {METADATA_FILE}")
    target = out / FORMATS[fmt]
    existing = [p.name for p in (target, out / METADATA_FILE) if p.exists()]
    if existing and not overwrite:
        raise ExportError(f"--output {out}: already holds {existing}; pass --overwrite to replace them "
                          "(nothing was written)")
    device = classifier.text.device
    module = ExportedClassifier(classifier).to("cpu").eval()
    size = classifier.model.base_info.image_size
    example = torch.zeros(2, 3, size, size)  # batch 2, so no size-1 dimension is specialised in the graph
    try:
        with _traceable(), torch.no_grad():
            data = _onnx_bytes(module, example, opset) if fmt == "onnx" else _torchscript_bytes(module, example)
    finally:
        classifier.model.to(device)  # the module shares the tower with the classifier
    atomic_write_bytes(target, data)
    atomic_write_json(out / METADATA_FILE, export_metadata(classifier, fmt, prompts=prompts,
                                                           opset=opset if fmt == "onnx" else None))
    return target
