"""Run configuration: optimisation, data, protocol and output, on top of the method config."""

from __future__ import annotations

import typing
from dataclasses import dataclass, field
from typing import Any, Literal

from mmlop.config import ConfigError, JsonConfigMixin, MethodConfig, check_field, config_from_dict, parse_value
from mmlop.names import FEWSHOT_SOURCES, PRECISIONS

PROTOCOLS = ("b2n", "fewshot", "xd", "dg")


@dataclass(frozen=True)
class OptimConfig(JsonConfigMixin):
    """SGD with a constant warm-up epoch then a per-epoch cosine schedule (method.md §9, rows 11-14).

    The first ``warmup_epochs`` epochs run at ``warmup_lr`` (1e-5), so ``epochs <= warmup_epochs`` never reaches
    ``lr``: such a run barely moves the prompts (see :meth:`schedule_warning`).
    """

    lr: float = 0.0025
    momentum: float = 0.9
    weight_decay: float = 5e-4
    epochs: int = 30
    warmup_epochs: int = 1
    warmup_lr: float = 1e-5
    batch_size: int = 4
    max_steps_per_epoch: int = 0  # 0 = the whole train set each epoch

    def __post_init__(self) -> None:
        o = "OptimConfig"
        check_field(self.lr > 0, o, "lr", self.lr, "a number > 0")
        check_field(0 <= self.momentum < 1, o, "momentum", self.momentum, "in [0, 1)")
        check_field(self.weight_decay >= 0, o, "weight_decay", self.weight_decay, ">= 0")
        check_field(isinstance(self.epochs, int) and self.epochs >= 0, o, "epochs", self.epochs, "an integer >= 0")
        check_field(isinstance(self.warmup_epochs, int) and self.warmup_epochs >= 0, o, "warmup_epochs",
                    self.warmup_epochs, "an integer >= 0")
        check_field(self.warmup_lr > 0, o, "warmup_lr", self.warmup_lr, "a number > 0")
        check_field(isinstance(self.batch_size, int) and self.batch_size >= 1, o, "batch_size", self.batch_size,
                    "an integer >= 1")
        check_field(isinstance(self.max_steps_per_epoch, int) and self.max_steps_per_epoch >= 0, o,
                    "max_steps_per_epoch", self.max_steps_per_epoch, "an integer >= 0")

    def schedule_warning(self) -> str | None:
        """A sentence explaining why this schedule cannot learn much, or None when it reaches the base lr."""
        if 0 < self.epochs <= self.warmup_epochs:
            return (f"optim.epochs={self.epochs} with warmup_epochs={self.warmup_epochs}: every epoch runs at the "
                    f"warm-up lr {self.warmup_lr:g}, none at lr {self.lr:g}, so the prompts barely move and accuracy "
                    f"stays near (or below) zero-shot; use at least {self.warmup_epochs + 1} epochs")
        return None


@dataclass(frozen=True)
class RunConfig(JsonConfigMixin):
    """One experiment: a protocol over datasets and seeds with one method.

    Attributes:
        protocol: ``b2n`` (base-to-novel), ``fewshot`` (all classes, K shots), ``xd`` (ImageNet to the other 10)
            or ``dg`` (ImageNet to V2, Sketch, A, R).
        datasets: Dataset names (CLI names, custom paths, or registered names); for xd/dg the first is the source
            and ``targets`` the evaluation sets.
        targets: Evaluation datasets for xd/dg.
        root: Data root folder (CoOp layout).
        cache_dir: Where few-shot split caches are written instead of ``<root>/<dataset>/split_fewshot``
            (for a read-only data root); ``""`` keeps them next to the dataset.
        model, pretrained: The base (see :func:`mmlop.load_base`).
        shots: K; 0 or less uses the full training set.
        seeds: Run seeds; results report mean and standard deviation over them.
        method: Prompts, loss and teacher.
        optim: Optimiser and schedule.
        name: Run name (the output folder under ``output_dir``).
        output_dir: Parent of run folders.
        device: ``auto`` (CUDA if available), ``cpu`` or ``cuda[:i]``.
        precision: ``fp32``, ``amp_bf16`` (CUDA, or a CPU with bf16 arithmetic: ``avx512_bf16`` or AMX) or
            ``amp_fp16`` (CUDA only; fp16 uses a grad scaler). Under autocast the encoders run in low precision;
            prompt factors and losses stay float32.
        test_batch_size: Evaluation batch size.
        num_workers: DataLoader workers.
        text_chunk: Classes per text-encoder pass (bounds memory for 1000 classes); 0 = all at once.
        grad_checkpoint: Gradient checkpointing of the encoder blocks.
        feature_cache: Folder of the frozen-feature cache (text ensembles and pre-enumerated image views);
            ``"auto"`` is ``<output_dir>/feature_cache``; ``""`` disables it (features computed in memory).
        train_crop_scale: Area range of the training RandomResizedCrop ((0.08, 1.0), the protocol's).
        views_per_image: Pre-enumerate this many augmented views per training image and take their frozen image
            features from the cache (0: a fresh augmentation every epoch and a frozen pass every step).
        fewshot_source: Where few-shot splits come from (``auto``, ``reference_pickle``, ``own``, ``resample``).
        max_test_per_class: 0 = the whole test split; otherwise evaluate on at most this many images per class
            (for quick checks; published numbers need 0).
        allow_duplicates: Accept an image listed twice in one split (refused by default).
        allow_train_test_overlap: Accept test images that are also training images (refused by default).
        zero_shot: Also evaluate the zero-shot CLIP baseline (hand-written template) for comparison.
        quiet: No progress bars.
    """

    protocol: Literal["b2n", "fewshot", "xd", "dg"] = "b2n"
    datasets: tuple[str, ...] = ()
    targets: tuple[str, ...] = ()
    root: str = ""
    cache_dir: str = ""
    model: str = "ViT-B-16"
    pretrained: str | None = "openai"
    shots: int = 16
    seeds: tuple[int, ...] = (1, 2, 3)
    method: MethodConfig = field(default_factory=MethodConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    name: str = ""
    output_dir: str = "runs"
    device: str = "auto"
    precision: Literal["fp32", "amp_bf16", "amp_fp16"] = "fp32"
    test_batch_size: int = 100
    num_workers: int = 0
    text_chunk: int = 0
    grad_checkpoint: bool = False
    feature_cache: str = ""
    views_per_image: int = 0
    train_crop_scale: tuple[float, float] = (0.08, 1.0)
    fewshot_source: str = "auto"
    max_test_per_class: int = 0
    allow_duplicates: bool = False
    allow_train_test_overlap: bool = False
    zero_shot: bool = True
    quiet: bool = False

    def __post_init__(self) -> None:
        o = "RunConfig"
        object.__setattr__(self, "datasets", tuple(self.datasets))
        object.__setattr__(self, "targets", tuple(self.targets))
        object.__setattr__(self, "seeds", tuple(int(s) for s in self.seeds))
        object.__setattr__(self, "train_crop_scale", tuple(float(x) for x in self.train_crop_scale))
        check_field(len(self.train_crop_scale) == 2 and 0 < self.train_crop_scale[0] <= self.train_crop_scale[1] <= 1,
                    o, "train_crop_scale", self.train_crop_scale, "(min, max) with 0 < min <= max <= 1")
        check_field(self.protocol in PROTOCOLS, o, "protocol", self.protocol, f"one of {', '.join(PROTOCOLS)}")
        check_field(len(self.seeds) >= 1, o, "seeds", self.seeds, "at least one seed")
        check_field(self.precision in PRECISIONS, o, "precision", self.precision, f"one of {', '.join(PRECISIONS)}")
        check_field(self.test_batch_size >= 1, o, "test_batch_size", self.test_batch_size, ">= 1")
        check_field(self.num_workers >= 0, o, "num_workers", self.num_workers, ">= 0")
        check_field(self.text_chunk >= 0, o, "text_chunk", self.text_chunk, ">= 0")
        check_field(isinstance(self.views_per_image, int) and self.views_per_image >= 0, o, "views_per_image",
                    self.views_per_image, "an integer >= 0")
        check_field(self.fewshot_source in FEWSHOT_SOURCES, o, "fewshot_source", self.fewshot_source,
                    f"one of {', '.join(FEWSHOT_SOURCES)}")
        # The name is one folder under output_dir: a path could reach (and overwrite) any folder.
        check_field(isinstance(self.name, str) and not ({"/", "\\"} & set(self.name)) and self.name not in (".", "..")
                    and ":" not in self.name, o, "name", self.name,
                    "a single folder name under output_dir (no '/', '\\', ':', '.' or '..')")
        repeated = sorted({d for d in self.datasets if self.datasets.count(d) > 1})
        check_field(not repeated, o, "datasets", self.datasets, f"each dataset once (repeated: {repeated})")
        if self.protocol in ("xd", "dg"):
            check_field(len(self.datasets) == 1, o, "datasets", self.datasets,
                        f"exactly one source dataset for protocol {self.protocol}")

    def to_dict(self) -> dict[str, Any]:
        d = super().to_dict()
        d["datasets"], d["targets"], d["seeds"] = list(self.datasets), list(self.targets), list(self.seeds)
        d["train_crop_scale"] = list(self.train_crop_scale)
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, source: str = "config") -> "RunConfig":
        data = dict(data)
        method = MethodConfig.from_dict(data.pop("method", {}), source=f"{source}:method")
        optim = OptimConfig.from_dict(data.pop("optim", {}), source=f"{source}:optim")
        cfg = config_from_dict(cls, data, source=source)
        return cfg.replace(method=method, optim=optim)

    def replace(self, **changes: Any) -> "RunConfig":
        from dataclasses import replace

        return replace(self, **changes)


def apply_overrides(config: RunConfig, overrides: dict[str, Any]) -> RunConfig:
    """Apply dotted overrides (``{"optim.lr": 0.01, "method.prompt.rank": 2}``) strictly.

    Raises:
        ConfigError: an unknown key (with the allowed ones) or an invalid value.
    """
    data = config.to_dict()
    for key, value in overrides.items():
        node, owner = data, RunConfig
        parts = key.split(".")
        for p in parts[:-1]:
            if not isinstance(node.get(p), dict):
                raise ConfigError(f"override {key!r}: {p!r} is not a config section")
            node, owner = node[p], typing.get_type_hints(owner)[p]
        if parts[-1] not in node:
            raise ConfigError(f"override {key!r}: unknown option {parts[-1]!r}; allowed: {sorted(node)}")
        # Parsed here, by the field's type, so that the message names the key the user wrote.
        node[parts[-1]] = value if isinstance(value, dict) else parse_value(owner, parts[-1], value,
                                                                            source=f"override {key}")
    return RunConfig.from_dict(data, source="overrides")
