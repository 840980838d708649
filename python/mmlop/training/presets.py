"""Named presets: the paper's benchmark settings, the ablation rows and the baselines (method.md §9-10). The ladder's
order and labels are :data:`mmlop.training.ablation.ABLATION_ROWS`."""

from __future__ import annotations

from typing import Any

from mmlop.config import ConfigError, LossConfig, MethodConfig, PromptConfig

#: The 11 datasets of base-to-novel, few-shot and cross-dataset evaluation (CLI names).
BENCHMARK_DATASETS = ("imagenet", "caltech101", "oxford_pets", "stanford_cars", "oxford_flowers", "food101",
                      "fgvc_aircraft", "sun397", "dtd", "eurosat", "ucf101")
DG_TARGETS = ("imagenetv2", "imagenet_sketch", "imagenet_a", "imagenet_r")

#: Protocol presets: RunConfig fields (dotted keys for nested ones).
PROTOCOL_PRESETS: dict[str, dict[str, Any]] = {
    "b2n": {"protocol": "b2n", "datasets": BENCHMARK_DATASETS, "shots": 16, "optim.epochs": 30},
    "fewshot": {"protocol": "fewshot", "datasets": BENCHMARK_DATASETS, "shots": 16, "optim.epochs": 50},
    "dg": {"protocol": "dg", "datasets": ("imagenet",), "targets": DG_TARGETS, "shots": 16, "optim.epochs": 50,
           "method.prompt.depth": 3},
    "xd": {"protocol": "xd", "datasets": ("imagenet",), "targets": BENCHMARK_DATASETS[1:], "shots": 16,
           "optim.epochs": 50, "method.prompt.depth": 3},
}

def method_preset(name: str) -> tuple[MethodConfig, dict[str, Any]]:
    """A method variant and the optimiser settings it comes with.

    Names: ``mmlop`` (default), the ablation rows ``ivlp`` (1), ``lora`` (2: rank 1, independent U), ``scl``
    (3: + consistency loss), ``udc`` (4: + drift correction; ``mmlop`` is row 5, + shared U), ``mmlop-kl1``
    (PromptSRC's one-directional KL), baselines ``coop`` (4 context tokens, the base-to-novel setting),
    ``coop16`` (16 random context tokens, the few-shot setting) and ``zeroshot``.

    Returns:
        ``(method, overrides)``: overrides are dotted RunConfig keys such as ``optim.epochs``.

    Raises:
        ConfigError: unknown name.
    """
    indep = PromptConfig(shared_up=False)
    no_udc = LossConfig(udc=False, udc_at_test=False)
    table: dict[str, tuple[MethodConfig, dict[str, Any]]] = {
        "mmlop": (MethodConfig(), {}),
        "udc": (MethodConfig(prompt=indep), {}),
        "scl": (MethodConfig(prompt=indep, loss=no_udc), {}),
        "lora": (MethodConfig(prompt=indep, loss=LossConfig.ce_only()), {}),
        "ivlp": (MethodConfig(prompt=PromptConfig.ivlp(), loss=LossConfig.ce_only()), {"optim.epochs": 20}),
        "mmlop-kl1": (MethodConfig(loss=LossConfig(kl_mode="zs_to_prompted")), {}),
        "coop": (MethodConfig(prompt=PromptConfig.coop(4), loss=LossConfig.ce_only()),
                 {"optim.lr": 0.002, "optim.batch_size": 32, "optim.epochs": 200, "method.prompt.depth": 1}),
        "coop16": (MethodConfig(prompt=PromptConfig.coop(16), loss=LossConfig.ce_only()),
                   {"optim.lr": 0.002, "optim.batch_size": 32, "optim.epochs": 200, "method.prompt.depth": 1}),
        # Depth 0 here too, so that a protocol's depth (world, dg, xd) cannot add untrained prompts.
        "zeroshot": (MethodConfig(prompt=PromptConfig.zero_shot(), loss=LossConfig.ce_only()),
                     {"optim.epochs": 0, "method.prompt.depth": 0}),
    }
    if name not in table:
        raise ConfigError(f"unknown method preset {name!r}; known: {sorted(table)}")
    return table[name]
