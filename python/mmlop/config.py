"""Configuration dataclasses for the MMLoP method, validated on construction and saved as JSON.

One :class:`PromptConfig` expresses every prompt variant of the paper and its baselines:

=====================  ===========================================================================
MMLoP (default)        ``PromptConfig()``: 4 tokens, rank 1, depth 9, U shared by both modalities
Independent U (rows 2-4 of the ablation)  ``PromptConfig(shared_up=False)``
IVLP (row 1)           ``PromptConfig.ivlp()``: full rank, "a photo of a" text init, std 0.02
CoOp                   ``PromptConfig.coop(4)``: text only, layer 1, full rank
Zero-shot CLIP         ``PromptConfig.zero_shot()``: depth 0
=====================  ===========================================================================
"""

from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

from mmlop.errors import ConfigError

T = TypeVar("T")


_TRUE = ("true", "1", "yes", "on")
_FALSE = ("false", "0", "no", "off")
_NONE = ("none", "null")


def _describe(tp: Any) -> str:
    """The expected form of a value of type ``tp``, for error messages."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is bool:
        return "a boolean (true/false, 1/0, yes/no)"
    if tp is int:
        return "an integer"
    if tp is float:
        return "a finite number"
    if tp is str:
        return "a string"
    if origin is Literal:
        return "one of " + ", ".join(str(a) for a in args)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        return "none or " + " or ".join(_describe(a) for a in inner)
    if origin in (tuple, list):
        if origin is tuple and not (len(args) == 2 and args[1] is Ellipsis):
            return f"a list of {len(args)} values ({', '.join(_describe(a) for a in args)})"
        return f"a list of {_describe(args[0]).removeprefix('a ').removeprefix('an ')}s (JSON or comma-separated)"
    return getattr(tp, "__name__", str(tp))


class _Refused(Exception):
    """Internal: a value does not fit a type; turned into a ConfigError that names the field."""


def _coerce(tp: Any, value: Any) -> Any:
    """``value`` as type ``tp``; strings (from the command line) are parsed, other values checked."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        if value is None or (isinstance(value, str) and value.strip().lower() in _NONE):
            if type(None) in args:
                return None
            raise _Refused
        for a in inner:
            try:
                return _coerce(a, value)
            except _Refused:
                continue
        raise _Refused
    if origin is Literal:
        if isinstance(value, str) and value.strip() in args:
            return value.strip()
        if value in args and not isinstance(value, bool):
            return value
        raise _Refused
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        if isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
            return value.strip().lower() in _TRUE
        raise _Refused
    if tp is int:
        if isinstance(value, bool):
            raise _Refused
        if isinstance(value, int):
            return value
        if isinstance(value, float) and math.isfinite(value) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value.strip())
            except ValueError:
                raise _Refused from None
        raise _Refused
    if tp is float:
        if isinstance(value, bool):
            raise _Refused
        if isinstance(value, str):
            try:
                value = float(value.strip())
            except ValueError:
                raise _Refused from None
        if isinstance(value, (int, float)) and math.isfinite(value):
            return float(value)
        raise _Refused
    if tp is str:
        if isinstance(value, str):
            return value
        raise _Refused
    if origin in (tuple, list):
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                try:
                    value = json.loads(text)
                except json.JSONDecodeError:
                    raise _Refused from None
            else:
                value = [p.strip() for p in text.split(",")] if text else []
        if not isinstance(value, (list, tuple)):
            raise _Refused
        if origin is tuple and not (len(args) == 2 and args[1] is Ellipsis):
            if len(value) != len(args):
                raise _Refused
            return tuple(_coerce(a, v) for a, v in zip(args, value))
        items = [_coerce(args[0], v) for v in value]
        return tuple(items) if origin is tuple else items
    return value  # nested configs are built by their own from_dict


def _field_types(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def parse_value(cls: type, name: str, value: Any, *, source: str = "config") -> Any:
    """Parses one field value by the dataclass field's type annotation.

    Strings (command-line values) are parsed: booleans accept true/false, 1/0, yes/no; ``none``/``null`` is
    None for optional fields; lists are JSON (``[1, 2]``) or comma-separated (``dtd`` is ``("dtd",)``).
    Other values (from JSON) must already have the field's type; an integral float is accepted as an int.

    Args:
        cls: The config dataclass.
        name: The field name.
        value: The raw value.
        source: Where the value came from (an override key or a file), named in the message.

    Returns:
        The value with the field's type.

    Raises:
        ConfigError: The value does not have, or parse to, the field's type; names the field, value and form.
    """
    tp = _field_types(cls)[name]
    try:
        return _coerce(tp, value)
    except _Refused:
        raise ConfigError(f"{source}: {cls.__name__}.{name}={value!r} is invalid: expected {_describe(tp)}") from None


def check_field(cond: bool, owner: str, name: str, value: Any, expected: str) -> None:
    """Raise a :class:`ConfigError` naming ``owner.name``, its value and what is allowed, unless ``cond`` holds.

    Raises:
        ConfigError: when ``cond`` is false.
    """
    if not cond:
        raise ConfigError(f"{owner}.{name}={value!r} is invalid: expected {expected}")


def config_from_dict(cls: type[T], data: dict[str, Any], *, source: str = "config") -> T:
    """Build a config dataclass from a dict, refusing unknown keys (settings that would silently do nothing).

    Args:
        cls: The dataclass type.
        data: Field values; missing fields take their defaults.
        source: Where the data came from (a file name), used in error messages.

    Raises:
        ConfigError: On an unknown key or an invalid value.
    """
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a JSON object for {cls.__name__}, got {type(data).__name__}")
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"{source}: unknown {cls.__name__} option(s) {unknown}; allowed: {sorted(names)}")
    hints = _field_types(cls)
    typed = {k: v if dataclasses.is_dataclass(hints[k]) else parse_value(cls, k, v, source=source)
             for k, v in data.items()}
    return cls(**typed)  # type: ignore[call-arg]


def dotted_items(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """A nested config dict as ``{dotted key: value}`` (``{"optim": {"lr": 0.01}}`` -> ``{"optim.lr": 0.01}``), the
    keys ``--set`` and :func:`mmlop.training.config.apply_overrides` take."""
    out: dict[str, Any] = {}
    for k, v in data.items():
        if isinstance(v, dict):
            out.update(dotted_items(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


class JsonConfigMixin:
    """``to_dict``/JSON round trips shared by every config dataclass."""

    def to_dict(self) -> dict[str, Any]:
        """The config as a plain dict (JSON-serialisable)."""
        return dataclasses.asdict(self)  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, source: str = "config"):
        """Inverse of :meth:`to_dict`; unknown keys raise :class:`ConfigError`."""
        return config_from_dict(cls, data, source=source)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_json_file(cls, path: str | Path):
        return cls.from_dict(read_json_object(path, cls.__name__), source=str(path))


def read_json_object(path: str | Path, what: str) -> dict[str, Any]:
    """Reads a JSON file that must hold one object (a config).

    Raises:
        ConfigError: The file is missing, is a folder, is not UTF-8 JSON, or holds no JSON object.
    """
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{path}: is a folder; expected a {what} JSON file")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found; expected a {what} JSON file") from None
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start}); expected a {what} JSON file") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise ConfigError(f"{path}: not valid JSON ({e.msg} at line {e.lineno}, column {e.colno}); expected a {what} "
                          "JSON object") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: holds a JSON {type(data).__name__}; expected a {what} JSON object {{...}}")
    return data


@dataclass(frozen=True)
class PromptConfig(JsonConfigMixin):
    """Deep multi-modal prompts (method.md §2-3).

    Attributes:
        length: T, the number of text prompt tokens (placeholders after SOT).
        vision_length: V, the number of vision prompt tokens; ``None`` means ``length``.
        rank: r, the rank of every layer's prompt matrix; ``None`` means full-rank prompts (IVLP, CoOp).
        depth: L, the number of prompted text layers (1-based paper layers 1..L). 0 disables text prompts.
        vision_depth: the number of prompted vision layers; ``None`` means ``depth``; 0 means text-only (CoOp).
        shared_up: share the up-projection U^(l) between the text and vision prompts of each layer (MMLoP).
            Requires a low rank, equal lengths and equal depths.
        init_std: std of the normal init of every low-rank factor (0.05), or of full-rank prompts.
        ctx_init: full rank only: initialise the text prompt of layer 1 from the embeddings of this phrase
            (``"a photo of a"``); its word count must equal ``length``.
        class_template: text after the placeholders; ``{}`` is the class name (``"{}."`` gives "X X X X name.").
    """

    length: int = 4
    vision_length: int | None = None
    rank: int | None = 1
    depth: int = 9
    vision_depth: int | None = None
    shared_up: bool = True
    init_std: float = 0.05
    ctx_init: str | None = None
    class_template: str = "{}."

    def __post_init__(self) -> None:
        o = "PromptConfig"
        check_field(isinstance(self.length, int) and self.length >= 1, o, "length", self.length, "an integer >= 1")
        check_field(self.vision_length is None or (isinstance(self.vision_length, int) and self.vision_length >= 1),
                    o, "vision_length", self.vision_length, "None or an integer >= 1")
        check_field(self.rank is None or (isinstance(self.rank, int) and self.rank >= 1), o, "rank", self.rank,
                    "None (full rank) or an integer >= 1")
        check_field(isinstance(self.depth, int) and self.depth >= 0, o, "depth", self.depth, "an integer >= 0")
        check_field(self.vision_depth is None or (isinstance(self.vision_depth, int) and self.vision_depth >= 0),
                    o, "vision_depth", self.vision_depth, "None or an integer >= 0")
        check_field(isinstance(self.init_std, (int, float)) and self.init_std > 0 and math.isfinite(self.init_std),
                    o, "init_std", self.init_std, "a finite number > 0")
        check_field(isinstance(self.class_template, str) and self.class_template.count("{}") == 1, o,
                    "class_template", self.class_template, "a string with exactly one '{}' for the class name")
        if self.shared_up and self.rank is not None and self.text_depth > 0 and self.vis_depth > 0:
            check_field(self.length == self.vis_length, o, "vision_length", self.vision_length,
                        f"equal to length={self.length} when shared_up=True (U is shared, so T = V)")
            check_field(self.text_depth == self.vis_depth, o, "vision_depth", self.vision_depth,
                        f"equal to depth={self.depth} when shared_up=True")
        if self.ctx_init is not None:
            check_field(self.rank is None, o, "ctx_init", self.ctx_init,
                        "None unless rank=None (only full-rank text prompts can start from word embeddings)")
            check_field(len(self.ctx_init.split()) == self.length, o, "ctx_init", self.ctx_init,
                        f"a phrase of exactly length={self.length} words")

    # Resolved values -------------------------------------------------------------------------------------
    @property
    def vis_length(self) -> int:
        return self.length if self.vision_length is None else self.vision_length

    @property
    def text_depth(self) -> int:
        return self.depth

    @property
    def vis_depth(self) -> int:
        return self.depth if self.vision_depth is None else self.vision_depth

    @property
    def is_shared(self) -> bool:
        """True when one U per layer serves both modalities."""
        return self.shared_up and self.rank is not None and self.text_depth > 0 and self.vis_depth > 0

    @property
    def enabled(self) -> bool:
        return self.text_depth > 0 or self.vis_depth > 0

    def num_parameters(self, text_width: int, vision_width: int) -> int:
        """Trainable-parameter count for towers of these widths (method.md §3.1)."""
        t, v, r = self.length, self.vis_length, self.rank
        lt, lv = self.text_depth, self.vis_depth
        if r is None:
            return lt * t * text_width + lv * v * vision_width
        if self.is_shared:
            return lt * (t * r + r * text_width + r * vision_width)
        return lt * (t * r + r * text_width) + lv * (v * r + r * vision_width)

    # Named variants -----------------------------------------------------------------------------------------
    @classmethod
    def mmlop(cls, **overrides: Any) -> "PromptConfig":
        """The paper's default: T = V = 4, rank 1, depth 9, shared U, N(0, 0.05^2) init."""
        return cls(**overrides)

    @classmethod
    def ivlp(cls, **overrides: Any) -> "PromptConfig":
        """Ablation row 1: full-rank independent V-L prompts, text layer 1 from "a photo of a", std 0.02."""
        return cls(**{"rank": None, "shared_up": False, "init_std": 0.02, "ctx_init": "a photo of a", **overrides})

    @classmethod
    def coop(cls, length: int = 4, **overrides: Any) -> "PromptConfig":
        """CoOp: text-only, layer-1 full-rank context (4 tokens from "a photo of a", or random init)."""
        init = {"ctx_init": "a photo of a"} if length == 4 else {}
        return cls(**{"length": length, "rank": None, "depth": 1, "vision_depth": 0, "shared_up": False,
                      "init_std": 0.02, **init, **overrides})

    @classmethod
    def zero_shot(cls) -> "PromptConfig":
        """No prompts at all: the frozen base model."""
        return cls(depth=0, vision_depth=0)


KlMode = Literal["symmetric", "zs_to_prompted", "prompted_to_zs", "none"]


@dataclass(frozen=True)
class LossConfig(JsonConfigMixin):
    """The MMLoP objective (method.md §5-6): CE + λ1·L1(text) + λ2·L1(image) + λ3·KL, with drift correction.

    Attributes:
        lambda_text: weight of the L1 anchor between corrected prompted and frozen text features (25).
        lambda_image: weight of the L1 anchor between prompted and frozen image features (10).
        lambda_logits: weight of the KL term between prompted and zero-shot logits (1).
        kl_mode: ``symmetric`` (MMLoP), ``zs_to_prompted`` (PromptSRC: KL(q||p)), ``prompted_to_zs`` or ``none``.
        kl_reduction: ``numel`` (sum / (B*C)) or ``batchmean`` (sum / B).
        kl_temperature: temperature applied to the already scaled logits inside the KL.
        l1_reduction: ``mean`` over all elements, or ``sum_rows_mean`` (L1 norm per row, mean over rows).
        consistency: False disables the three consistency terms (the ablation rows without SCL, CoOp).
        udc: uniform drift correction of the text features during training.
        udc_at_test: uniform drift correction at evaluation, over the evaluated class set.
    """

    lambda_text: float = 25.0
    lambda_image: float = 10.0
    lambda_logits: float = 1.0
    kl_mode: KlMode = "symmetric"
    kl_reduction: Literal["numel", "batchmean"] = "numel"
    kl_temperature: float = 1.0
    l1_reduction: Literal["mean", "sum_rows_mean"] = "mean"
    consistency: bool = True
    udc: bool = True
    udc_at_test: bool = True

    def __post_init__(self) -> None:
        o = "LossConfig"
        for name in ("lambda_text", "lambda_image", "lambda_logits"):
            val = getattr(self, name)
            check_field(isinstance(val, (int, float)) and val >= 0 and math.isfinite(val), o, name, val,
                        "a finite number >= 0")
        check_field(self.kl_mode in ("symmetric", "zs_to_prompted", "prompted_to_zs", "none"), o, "kl_mode",
                    self.kl_mode, "one of symmetric, zs_to_prompted, prompted_to_zs, none")
        check_field(self.kl_reduction in ("numel", "batchmean"), o, "kl_reduction", self.kl_reduction,
                    "numel or batchmean")
        check_field(self.l1_reduction in ("mean", "sum_rows_mean"), o, "l1_reduction", self.l1_reduction,
                    "mean or sum_rows_mean")
        check_field(isinstance(self.kl_temperature, (int, float)) and self.kl_temperature > 0, o, "kl_temperature",
                    self.kl_temperature, "a number > 0")

    @classmethod
    def ce_only(cls, udc: bool = False) -> "LossConfig":
        """Cross-entropy only (IVLP, +LoRA, CoOp rows); drift correction optional."""
        return cls(consistency=False, udc=udc, udc_at_test=udc)


@dataclass(frozen=True)
class TeacherConfig(JsonConfigMixin):
    """Frozen zero-shot text features g^0 (method.md §4).

    Attributes:
        templates: key of the template list in ``templates.json`` (``imagenet_templates_60``).
        average: ``raw`` averages the unnormalised projected features then normalises (PromptSRC);
            ``normalized`` normalises each template's feature first (CoOp's ensemble).
    """

    templates: str = "imagenet_templates_60"
    average: Literal["raw", "normalized"] = "raw"

    def __post_init__(self) -> None:
        check_field(self.average in ("raw", "normalized"), "TeacherConfig", "average", self.average, "raw or normalized")


@dataclass(frozen=True)
class MethodConfig(JsonConfigMixin):
    """Everything that defines a method variant: prompts, loss and the frozen teacher."""

    prompt: PromptConfig = field(default_factory=PromptConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    teacher: TeacherConfig = field(default_factory=TeacherConfig)

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, source: str = "config") -> "MethodConfig":
        data = dict(data)
        unknown = sorted(set(data) - {"prompt", "loss", "teacher"})
        if unknown:
            raise ConfigError(f"{source}: unknown MethodConfig option(s) {unknown}; allowed: prompt, loss, teacher")
        return cls(
            prompt=PromptConfig.from_dict(data.get("prompt", {}), source=f"{source}:prompt"),
            loss=LossConfig.from_dict(data.get("loss", {}), source=f"{source}:loss"),
            teacher=TeacherConfig.from_dict(data.get("teacher", {}), source=f"{source}:teacher"),
        )
