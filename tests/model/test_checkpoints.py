"""Weights users already have: an OpenAI TorchScript archive read without running it, and hf-hub: models offline.

Both are built in-process: a TorchScript archive holding a tiny CLIP in OpenAI's key layout (a scripted module
whose attributes carry OpenAI's names, saved with ``torch.jit.save``), and a Hugging Face cache folder laid out as
huggingface_hub lays it, read in a subprocess with ``HF_HUB_OFFLINE=1``.
"""

import json
import os
import pickle
import subprocess
import sys
import warnings
import zipfile
from pathlib import Path

import open_clip
import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from mmlop.model import QuickGeluMismatchError, load_base
from mmlop.errors import WeightsFileError
from mmlop.model.checkpoints import is_torchscript_archive, read_torchscript_tensors

# Widths are multiples of 64: OpenAI's layout has no head count, so open_clip infers heads = width / 64.
TINY_OPENAI = {"embed_dim": 32, "quick_gelu": True,
               "vision_cfg": {"image_size": 32, "patch_size": 16, "width": 64, "layers": 2},
               "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 64, "heads": 1, "layers": 2}}


class _Holder(nn.Module):
    """A module tree whose parameters carry given dotted names, like OpenAI's scripted CLIP."""

    def __init__(self, tensors: dict[str, torch.Tensor], buffers: dict[str, torch.Tensor]):
        super().__init__()
        for name, t in tensors.items():
            self._owner(name).register_parameter(name.rsplit(".", 1)[-1], nn.Parameter(t, requires_grad=True))
        for name, t in buffers.items():
            self._owner(name).register_buffer(name.rsplit(".", 1)[-1], t)

    def _owner(self, name: str) -> nn.Module:
        node: nn.Module = self
        for part in name.split(".")[:-1]:
            if part not in node._modules:
                node.add_module(part, _Leaf())
            node = node._modules[part]
        return node

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


class _Leaf(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def _tiny_openai_clip() -> nn.Module:
    torch.manual_seed(0)
    return open_clip.model.CLIP(TINY_OPENAI["embed_dim"], vision_cfg=TINY_OPENAI["vision_cfg"],
                                text_cfg=TINY_OPENAI["text_cfg"], quick_gelu=True).eval()


@pytest.fixture(scope="module")
def openai_archive(tmp_path_factory):
    """``ViT-tiny.pt``: a TorchScript archive of a tiny CLIP in OpenAI's layout and dtype (float16)."""
    reference = _tiny_openai_clip()
    weights = {k: v.detach().half() if v.is_floating_point() else v for k, v in reference.state_dict().items()}
    extras = {"input_resolution": torch.tensor(32), "context_length": torch.tensor(16),
              "vocab_size": torch.tensor(49408)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit is deprecated; OpenAI's files still use it
        scripted = torch.jit.script(_Holder(weights, extras))
        path = tmp_path_factory.mktemp("clip") / "ViT-tiny.pt"
        torch.jit.save(scripted, str(path))
    return path, reference


def _config_file(tmp_path, **changes) -> str:
    cfg = json.loads(json.dumps(TINY_OPENAI))
    for key, value in changes.items():
        section, field = key.split("__")
        cfg[section][field] = value
    path = tmp_path / "ViT-tiny.json"
    path.write_text(json.dumps(cfg))
    return str(path)


def test_the_archive_tensors_are_read_with_their_openai_names(openai_archive):
    path, reference = openai_archive
    assert is_torchscript_archive(path) and zipfile.is_zipfile(path)
    tensors = read_torchscript_tensors(path)
    expected = reference.state_dict()
    assert set(expected) | {"input_resolution", "context_length", "vocab_size"} == set(tensors)
    for k, v in expected.items():
        assert tensors[k].dtype == torch.float16 and torch.equal(tensors[k], v.half()), k


def test_load_base_builds_the_checked_architecture_with_quick_gelu(openai_archive, tmp_path):
    path, reference = openai_archive
    base = load_base(_config_file(tmp_path), str(path))
    assert base.quick_gelu and base.image_size == 32 and base.pretrained == str(path)
    info = base.describe()
    assert (info["vision_width"], info["vision_layers"], info["text_layers"], info["context_length"]) == (64, 2, 2, 16)
    # The same weights (rounded to float16, as the archive stores them) in a float32 model give the same features.
    expected = _tiny_openai_clip()
    expected.load_state_dict({k: v.half().float() for k, v in reference.state_dict().items()})
    images = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    tokens = base.tokenizer(["a photo of a cat", "a dog"])
    assert all(torch.equal(v, expected.state_dict()[k]) for k, v in base.model.state_dict().items())
    with torch.no_grad():
        # Identical weights; the two models' tensors differ in memory layout, so kernels may round differently
        # (float32, features of norm ~10: 1e-5 is ~10 ulps, far below any real weight difference).
        torch.testing.assert_close(base.model.encode_image(images), expected.encode_image(images), rtol=0, atol=1e-5)
        torch.testing.assert_close(base.model.encode_text(tokens), expected.encode_text(tokens), rtol=0, atol=1e-5)
    assert all(p.dtype == torch.float32 and not p.requires_grad for p in base.model.parameters())


def test_an_unknown_name_takes_the_architecture_from_the_archive(openai_archive):
    path, _ = openai_archive
    assert load_base("openai-tiny", str(path)).describe()["embed_dim"] == 32


def test_a_mismatched_architecture_or_activation_is_refused(openai_archive, tmp_path):
    path, _ = openai_archive
    with pytest.raises(WeightsFileError, match=r"vision_cfg.width 768 \(config\) vs 64 \(checkpoint\)"):
        load_base("ViT-B-16", str(path))
    with pytest.raises(WeightsFileError, match=r"text_cfg.layers 3 \(config\) vs 2"):
        load_base(_config_file(tmp_path, text_cfg__layers=3), str(path))
    with pytest.raises(QuickGeluMismatchError, match="QuickGELU"):
        load_base(_config_file(tmp_path), str(path), force_quick_gelu=False)


def test_an_archive_naming_other_code_is_refused_before_anything_runs(tmp_path):
    marker = tmp_path / "ran"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    path = tmp_path / "evil.pt"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("evil/data.pkl", pickle.dumps(Evil(), protocol=2))
        z.writestr("evil/code/__torch__.py", "")
    with pytest.raises(WeightsFileError, match=r"global (posix|os)\.system is not allowed"):
        read_torchscript_tensors(path)
    assert not marker.exists()
    plain = tmp_path / "plain.pt"
    torch.save({"w": torch.zeros(1)}, plain)  # a torch.save zip has no code/: not a TorchScript archive
    with pytest.raises(WeightsFileError, match="not a TorchScript archive"):
        read_torchscript_tensors(plain)


def _hub_cache(root: Path, repo: str) -> Path:
    """A Hugging Face cache folder as huggingface_hub lays it out: refs/main -> snapshots/<sha>/files."""
    sha = "0123456789abcdef0123456789abcdef01234567"
    folder = root / f"models--{repo.replace('/', '--')}"
    snapshot = folder / "snapshots" / sha
    snapshot.mkdir(parents=True)
    (folder / "refs").mkdir()
    (folder / "refs" / "main").write_text(sha)
    cfg = {"model_cfg": TINY_OPENAI, "preprocess_cfg": {"mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]}}
    (snapshot / "open_clip_config.json").write_text(json.dumps(cfg))
    save_file({k: v.contiguous() for k, v in _tiny_openai_clip().state_dict().items()},
              str(snapshot / "open_clip_model.safetensors"))
    return snapshot


_HUB_CHECK = """
import json, sys, torch, mmlop
base = mmlop.load_base("hf-hub:tiny-org/tiny-clip")
sys.path.insert(0, sys.argv[1])
from test_checkpoints import _tiny_openai_clip
ref = _tiny_openai_clip()
sd = base.model.state_dict()
same = all(torch.equal(v, sd[k]) for k, v in ref.state_dict().items())
print(json.dumps({"same": same, "quick_gelu": base.quick_gelu, "mean": list(base.mean), **base.describe()}))
"""


def test_an_hf_hub_model_loads_offline_from_a_warm_cache(tmp_path):
    _hub_cache(tmp_path / "hub", "tiny-org/tiny-clip")
    # huggingface_hub reads HF_HUB_OFFLINE and HF_HUB_CACHE when it is imported: a fresh process, as a user has.
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(tmp_path / "hub"),
           # The parent's import path: the installed package in CI, the source tree with PYTHONPATH=python.
           "PYTHONPATH": os.pathsep.join(sys.path)}
    out = subprocess.run([sys.executable, "-c", _HUB_CHECK, str(Path(__file__).parent)], env=env,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    info = json.loads(out.stdout.strip().splitlines()[-1])
    assert info["same"] and info["quick_gelu"] and info["model"] == "hf-hub:tiny-org/tiny-clip"
    assert info["mean"] == [0.5, 0.5, 0.5] and info["vision_width"] == 64

    missing = subprocess.run([sys.executable, "-c", "import mmlop; mmlop.load_base('hf-hub:tiny-org/absent')"],
                             env=env, capture_output=True, text=True, timeout=600)
    assert missing.returncode != 0 and "HF_HUB_OFFLINE=1" in missing.stderr
