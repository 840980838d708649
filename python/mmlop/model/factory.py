"""Creating and describing the frozen base model: any open_clip CLIP, with the right activation for its weights."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import open_clip
import torch
from torch import nn

from mmlop._io import read_json
from mmlop.data.transforms import CLIP_MEAN, CLIP_STD
from mmlop.errors import ModelConfigError, ModelConfigNotFoundError, QuickGeluMismatchError
from mmlop.model.checkpoints import is_torchscript_archive, load_openai_archive
from mmlop.model.towers import TextTower, check_vision_tower

#: Named bases that ship with mmlop (no download): name -> loader returning (model, tokenizer, preprocess dict).
_BUILTIN_BASES: dict[str, Callable[[], tuple[nn.Module, Callable, dict[str, Any]]]] = {}


def register_base(name: str, loader: Callable[[], tuple[nn.Module, Callable, dict[str, Any]]]) -> None:
    """Make ``load_base(name)`` call ``loader()``; used for the built-in offline model."""
    _BUILTIN_BASES[name] = loader


def registered_base(name: str) -> Callable[[], tuple[nn.Module, Callable, dict[str, Any]]] | None:
    """The loader registered under ``name``, if any (the built-in world's base registers on the first miss)."""
    if name not in _BUILTIN_BASES:
        from mmlop._builtins import ensure_registered

        ensure_registered()
    return _BUILTIN_BASES.get(name)


@dataclass
class BaseCLIP:
    """A frozen open_clip model with what mmlop needs to know about it.

    Attributes:
        model: The open_clip ``CLIP`` or ``CustomTextCLIP``.
        tokenizer: Callable mapping a list of strings to (N, context_length) token ids.
        name: Architecture name (``ViT-B-16``), config path, or built-in name; recorded with saved prompts.
        pretrained: Pretrained tag or checkpoint path, or None for random weights.
        image_size: Input resolution of the image tower.
        mean, std: Image normalisation of the weights.
        quick_gelu: Whether the blocks use QuickGELU.
    """

    model: nn.Module
    tokenizer: Callable[..., torch.Tensor]
    name: str
    pretrained: str | None = None
    image_size: int = 224
    mean: tuple[float, ...] = tuple(CLIP_MEAN)
    std: tuple[float, ...] = tuple(CLIP_STD)
    quick_gelu: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> dict[str, Any]:
        """Identity and shape of the base, as stored next to saved prompts and printed by ``mmlop info``."""
        text = TextTower.of(self.model)
        visual = check_vision_tower(self.model)
        return {
            "model": self.name,
            "pretrained": self.pretrained,
            "class": type(self.model).__name__,
            "text_width": text.width,
            "text_layers": text.layers,
            "context_length": text.context_length,
            "vision_width": int(visual.transformer.width),
            "vision_layers": len(visual.transformer.resblocks),
            "embed_dim": int(visual.output_dim),
            "image_size": self.image_size,
            "quick_gelu": self.quick_gelu,
        }


def _uses_quick_gelu(model: nn.Module) -> bool:
    return any(type(m).__name__ == "QuickGELU" for m in model.modules())


HF_HUB_PREFIX = "hf-hub:"


def resolve_config_name(name: str) -> str:
    """The open_clip architecture name for ``name``: a path to a model JSON is registered with open_clip first and
    replaced by its stem; an ``hf-hub:org/repo`` name is kept (open_clip reads its config from the Hugging Face
    cache or the hub).

    Args:
        name: An open_clip architecture (``ViT-B-16``), a path to an open_clip model JSON, or ``hf-hub:org/repo``.

    Returns:
        The architecture name (the JSON file's stem for a path).

    Raises:
        FileNotFoundError: the JSON path does not exist.
        ValueError: the JSON is invalid or lacks a model key, a malformed ``hf-hub:`` name, or an unknown
            architecture.
    """
    if name.startswith(HF_HUB_PREFIX):
        if name.count("/") != 1 or not name[len(HF_HUB_PREFIX):].strip("/"):
            raise ModelConfigError(f"model {name!r}: expected hf-hub:<org>/<repo>")
        return name
    path = Path(name)
    if name.endswith(".json"):
        cfg = read_json(path, "an open_clip model JSON with embed_dim, vision_cfg and text_cfg",
                        error=ModelConfigError, missing=ModelConfigNotFoundError)
        missing = [k for k in ("embed_dim", "vision_cfg", "text_cfg") if k not in cfg]
        if missing:
            raise ModelConfigError(f"{path}: model config lacks {missing}; expected an open_clip model JSON")
        open_clip.add_model_config(path)
        return path.stem
    if open_clip.get_model_config(name) is None:
        raise ModelConfigError(f"unknown model {name!r}: expected an open_clip architecture (e.g. ViT-B-16; see "
                         f"open_clip.list_models()), a path to a model JSON, hf-hub:<org>/<repo>, or a built-in "
                         f"({sorted(_BUILTIN_BASES) or 'none registered'})")
    return name


def model_config(arch: str) -> dict[str, Any] | None:
    """open_clip's model config of a resolved name; for ``hf-hub:`` names, from the (offline) Hugging Face cache.

    Raises:
        ValueError: an ``hf-hub:`` model that is neither cached nor reachable (the message says how to fix it).
    """
    if not arch.startswith(HF_HUB_PREFIX):
        return open_clip.get_model_config(arch)
    try:
        return open_clip.get_model_config(arch)
    except Exception as e:  # huggingface_hub raises its own hierarchy (offline, missing file, no network)
        raise ModelConfigError(f"{arch}: cannot read open_clip_config.json ({type(e).__name__}: {e}); with "
                         "HF_HUB_OFFLINE=1 the repository must be in the Hugging Face cache (HF_HUB_CACHE)") from None


def resolve_quick_gelu(name: str, pretrained: str | None, force_quick_gelu: bool | None) -> bool:
    """Pick the activation for an architecture and pretrained tag, refusing a known mismatch.

    OpenAI, DFN-2B and MetaCLIP weights were trained with QuickGELU while open_clip's plain configs
    (``ViT-B-16``) build GELU blocks; open_clip only warns. mmlop uses the tag's activation when
    ``force_quick_gelu`` is None and raises when it is set against the tag.

    Raises:
        QuickGeluMismatchError: when ``force_quick_gelu`` contradicts the tag.
    """
    model_cfg = model_config(name) or {}
    model_qg = bool(model_cfg.get("quick_gelu", False))
    tag_cfg = open_clip.get_pretrained_cfg(name, pretrained) if pretrained and not name.startswith(HF_HUB_PREFIX) \
        else {}
    if not tag_cfg:  # random init, a local checkpoint, or an unknown tag: the config decides
        return model_qg if force_quick_gelu is None else bool(force_quick_gelu)
    tag_qg = bool(tag_cfg.get("quick_gelu", False))
    if force_quick_gelu is not None and bool(force_quick_gelu) != tag_qg:
        raise QuickGeluMismatchError(
            f"pretrained={pretrained!r} weights for {name} were trained with "
            f"{'QuickGELU' if tag_qg else 'GELU'}, but force_quick_gelu={force_quick_gelu}; features would drift "
            f"and zero-shot accuracy drop. Use force_quick_gelu={tag_qg} (or None to choose automatically)"
            + (f", or the '{name}-quickgelu' architecture" if tag_qg and not name.endswith("quickgelu") else ""))
    if model_qg != tag_qg and tag_qg is False:
        raise QuickGeluMismatchError(f"architecture {name} uses QuickGELU but pretrained={pretrained!r} weights "
                                     "were trained with GELU; use the architecture without '-quickgelu'")
    return tag_qg


def load_base(name: str, pretrained: str | None = None, *, device: str | torch.device = "cpu",
              force_quick_gelu: bool | None = None, cache_dir: str | None = None) -> BaseCLIP:
    """Create a frozen base model.

    Args:
        name: An open_clip architecture (``ViT-B-16``, ``ViT-B-32``, ``ViT-L-14``, ``...-quickgelu``), a path to an
            open_clip model JSON, ``hf-hub:<org>/<repo>`` (config and weights from the Hugging Face cache, e.g.
            offline with ``HF_HUB_OFFLINE=1``), or a built-in name (``mmlop-world``, the offline benchmark's tiny
            CLIP).
        pretrained: A pretrained tag (``openai``, ``laion2b_s34b_b88k``, ...) or a local checkpoint path, including
            an OpenAI TorchScript archive as the ``clip`` package downloads it (``~/.cache/clip/ViT-B-16.pt``: its
            tensors are read without running it, QuickGELU is used and the architecture is checked against
            ``name``). Tags download through open_clip/Hugging Face, so offline use needs a local file or a warm
            cache. Ignored for ``hf-hub:`` names, which carry their weights.
        device: Where to put the model.
        force_quick_gelu: None picks the activation the weights were trained with; True/False forces it and
            raises if that contradicts a known tag.
        cache_dir: open_clip's download cache.

    Returns:
        The base with every parameter frozen (``requires_grad=False``) and in eval mode.

    Raises:
        ValueError: unknown name, invalid config file, or unsupported towers.
        QuickGeluMismatchError: activation contradicts the pretrained tag.
    """
    loader = registered_base(name)
    if loader is not None:
        model, tokenizer, pre = loader()
        base = BaseCLIP(model, tokenizer, name, pretrained=pre.get("pretrained", "builtin"),
                        image_size=int(pre["image_size"]), mean=tuple(pre["mean"]), std=tuple(pre["std"]),
                        quick_gelu=_uses_quick_gelu(model))
    elif pretrained and is_torchscript_archive(Path(pretrained).expanduser()):
        from open_clip.tokenizer import SimpleTokenizer

        known = None if name.startswith(HF_HUB_PREFIX) else _known_config(name)
        model = load_openai_archive(Path(pretrained).expanduser(), name, known, force_quick_gelu)
        tokenizer = SimpleTokenizer(context_length=int(model.positional_embedding.shape[0]))
        base = BaseCLIP(model, tokenizer, name, pretrained=pretrained, image_size=int(model.visual.image_size[0]),
                        quick_gelu=_uses_quick_gelu(model))
    else:
        arch = resolve_config_name(name)
        quick_gelu = resolve_quick_gelu(arch, pretrained, force_quick_gelu)
        hub = arch.startswith(HF_HUB_PREFIX)
        if hub:
            _hub_weights(arch, cache_dir)
        try:
            model = open_clip.create_model(arch, pretrained=None if hub else pretrained,
                                           force_quick_gelu=quick_gelu, cache_dir=cache_dir, device="cpu")
        except Exception as e:  # huggingface_hub's offline and missing-file errors have their own hierarchy
            if not hub:
                raise
            raise ModelConfigError(f"{arch}: cannot load its weights ({type(e).__name__}: {e}); with HF_HUB_OFFLINE=1 "
                             "open_clip_model.safetensors must be in the Hugging Face cache") from None
        tokenizer = open_clip.get_tokenizer(arch, cache_dir=cache_dir) if hub else open_clip.get_tokenizer(arch)
        pre = open_clip.get_model_preprocess_cfg(model)
        size = pre.get("size", model.visual.image_size)
        size = size[0] if isinstance(size, (tuple, list)) else size
        base = BaseCLIP(model, tokenizer, name, pretrained=pretrained, image_size=int(size),
                        mean=tuple(pre.get("mean", CLIP_MEAN)), std=tuple(pre.get("std", CLIP_STD)),
                        quick_gelu=_uses_quick_gelu(model))
    freeze(base.model)
    base.model.to(device)
    base.describe()  # validates both towers up front
    return base


def _hub_weights(arch: str, cache_dir: str | None) -> str:
    """The cached weights file of an ``hf-hub:`` model; open_clip would only warn and build random weights."""
    from open_clip.pretrained import download_pretrained_from_hf

    try:
        return download_pretrained_from_hf(arch[len(HF_HUB_PREFIX):], cache_dir=cache_dir)
    except Exception as e:  # FileNotFoundError wrapping huggingface_hub's offline / missing-entry errors
        raise ModelConfigError(f"{arch}: no weights (open_clip_model.safetensors or open_clip_pytorch_model.bin) in the "
                         f"Hugging Face cache or on the hub ({e}); with HF_HUB_OFFLINE=1 the repository must be "
                         "cached under HF_HUB_CACHE") from None


def _known_config(name: str) -> dict[str, Any] | None:
    """The open_clip config a name stands for (a JSON path or a known architecture), or None to infer it."""
    try:
        return open_clip.get_model_config(resolve_config_name(name))
    except ValueError:
        return None


def base_from_model(model: nn.Module, tokenizer: Callable[..., torch.Tensor], name: str, *,
                    pretrained: str | None = None, image_size: int | None = None,
                    mean: tuple[float, ...] = tuple(CLIP_MEAN),
                    std: tuple[float, ...] = tuple(CLIP_STD)) -> BaseCLIP:
    """Wrap an open_clip model you already built (it is frozen in place).

    Args:
        model: An open_clip ``CLIP`` or ``CustomTextCLIP`` with a ViT image tower.
        tokenizer: Its tokenizer.
        name: A name recorded with saved prompts; loading prompts checks it.
        pretrained, image_size, mean, std: As in :class:`BaseCLIP`; image_size defaults to the tower's.
    """
    size = image_size or model.visual.image_size
    size = size[0] if isinstance(size, (tuple, list)) else size
    freeze(model)
    base = BaseCLIP(model, tokenizer, name, pretrained=pretrained, image_size=int(size), mean=tuple(mean),
                    std=tuple(std), quick_gelu=_uses_quick_gelu(model))
    base.describe()
    return base


def freeze(model: nn.Module) -> None:
    """Freeze every parameter (logit_scale included) and switch to eval mode."""
    for p in model.parameters():
        p.requires_grad_(False)
    model.eval()
