"""Measure how closely exported classifiers (ONNX under onnxruntime, TorchScript) agree with ``mmlop.Classifier``.

The built-in world model with random prompts (depth 3, init std 0.5, seed 0), 20 class names, 512 random
normalised images (seed 1). Prints one JSON object: the largest absolute probability difference and the top-1
agreement per format. Usage: ``python scripts/export_agreement.py [--images 512] [--classes 20]``.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile

import numpy as np
import onnxruntime
import torch

import mmlop
from mmlop.config import PromptConfig
from mmlop.export import export_classifier


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=512)
    ap.add_argument("--classes", type=int, default=20)
    args = ap.parse_args()
    base = mmlop.load_base("mmlop-world")
    model = mmlop.MMLoP(base, PromptConfig(depth=3, init_std=0.5), generator=torch.Generator().manual_seed(0))
    names = [f"class {i}" for i in range(args.classes)]
    x = torch.randn(args.images, 3, base.image_size, base.image_size, generator=torch.Generator().manual_seed(1))
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        mmlop.save_prompts(model, f"{tmp}/prompts")
        clf = mmlop.Classifier.from_pretrained(f"{tmp}/prompts", base, names)
        ref = torch.softmax(clf.logits(x), dim=-1).numpy()
        for fmt in ("onnx", "torchscript"):
            path = export_classifier(clf, f"{tmp}/{fmt}", fmt=fmt)
            if fmt == "onnx":
                session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
                probs = session.run(["probabilities"], {"images": x.numpy()})[0]
            else:
                with torch.no_grad():
                    probs = torch.jit.load(str(path))(x)[0].numpy()
            rows[fmt] = {"max_abs_probability_diff": float(np.abs(probs - ref).max()),
                         "top1_agreement": float((probs.argmax(1) == ref.argmax(1)).mean()),
                         "file_bytes": path.stat().st_size}
    print(json.dumps({"images": args.images, "classes": args.classes, "cpu": platform.processor() or platform.machine(),
                      "torch": torch.__version__, "onnxruntime": onnxruntime.__version__, "results": rows}, indent=2))


if __name__ == "__main__":
    main()
