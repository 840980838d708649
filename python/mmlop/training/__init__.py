"""Training and evaluation: :func:`train` runs a protocol over datasets and seeds and writes a run folder."""

from __future__ import annotations

from typing import Any

from mmlop.config import ConfigError, MethodConfig
from mmlop.errors import RunExistsError, TrainingDivergedError
from mmlop.training.ablation import ABLATION_ROWS
from mmlop.training.config import OptimConfig, RunConfig, apply_overrides
from mmlop.training.presets import PROTOCOL_PRESETS, method_preset
from mmlop.training.runner import run

#: Preset used by ``mmlop train`` / ``mmlop.train()`` without arguments.
DEFAULT_PRESET = "world"


def build_config(preset: str | None = DEFAULT_PRESET, *, method: str | MethodConfig = "mmlop",
                 overrides: dict[str, Any] | None = None, **fields: Any) -> RunConfig:
    """Resolve a run configuration: preset, then method, then fields, then dotted overrides.

    Args:
        preset: A protocol preset (``b2n``, ``fewshot``, ``xd``, ``dg``, ``world``) or None for bare defaults.
        method: A method preset name (``mmlop``, ``ivlp``, ``lora``, ``scl``, ``udc``, ``mmlop-kl1``, ``coop``,
            ``coop16``, ``zeroshot``) or a :class:`~mmlop.MethodConfig`.
        overrides: Dotted keys, e.g. ``{"optim.lr": 0.01, "method.prompt.rank": 2}``.
        **fields: Top-level :class:`RunConfig` fields (``datasets``, ``root``, ``seeds``, ``model``, ...).

    Raises:
        ConfigError: unknown preset, method or option.
    """
    config = RunConfig()
    dotted: dict[str, Any] = {}
    if preset is not None:
        presets = all_presets()
        if preset not in presets:
            raise ConfigError(f"unknown preset {preset!r}; known: {sorted(presets)}")
        dotted.update(presets[preset])
    if isinstance(method, str):
        method_cfg, method_overrides = method_preset(method)
    else:
        method_cfg, method_overrides = method, {}
    config = config.replace(method=method_cfg)
    top = {k: v for k, v in dotted.items() if "." not in k}
    config = config.replace(**top) if top else config
    nested = {k: v for k, v in dotted.items() if "." in k}
    # The method's own settings (e.g. CoOp's epochs) win over the protocol's, explicit overrides over both.
    config = apply_overrides(config, {**nested, **method_overrides})
    if fields:
        config = apply_overrides(config, fields)
    if overrides:
        config = apply_overrides(config, overrides)
    return config


def all_presets() -> dict[str, dict[str, Any]]:
    """Protocol presets, including the built-in offline benchmark when its assets are installed."""
    from mmlop.world.builtin import world_preset

    return {**PROTOCOL_PRESETS, "world": world_preset()}


def train(preset: str | None = DEFAULT_PRESET, *, method: str | MethodConfig = "mmlop", resume: bool = False,
          config: RunConfig | None = None, overrides: dict[str, Any] | None = None, **fields: Any) -> dict[str, Any]:
    """Train and evaluate MMLoP (or a baseline) under a protocol; see :func:`build_config` for the arguments.

    With no arguments this runs base-to-novel on the built-in offline benchmark (zero-shot vs MMLoP, 16 shots).
    For the paper's benchmarks pass ``preset="b2n"`` (or ``fewshot``, ``xd``, ``dg``), ``root=`` your data folder,
    and ``model="ViT-B-16", pretrained="openai"``.

    Args:
        config: A complete configuration (then preset/method/fields are ignored).
        resume: Continue a run whose folder exists (finished (dataset, seed) pairs are kept; an interrupted one
            continues from its last epoch checkpoint). Without it, a folder holding this run finished returns its
            summary, and a preset's default name with other settings becomes ``<name>-<settings digest>``.

    Returns:
        The summary written to ``<output_dir>/<name>/summary.json``.
    """
    # A name the caller chose is honoured strictly; a preset's default name moves aside for other settings.
    fixed_name = "name" in fields or "name" in (overrides or {}) or (config is not None and bool(config.name))
    if config is None:
        config = build_config(preset, method=method, overrides=overrides, **fields)
    return run(config, resume=resume, fixed_name=fixed_name)


__all__ = ["ABLATION_ROWS", "OptimConfig", "RunConfig", "RunExistsError", "TrainingDivergedError", "build_config",
           "train", "all_presets"]
