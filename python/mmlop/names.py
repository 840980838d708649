"""The names the command line offers as ``choices``, importable without torch.

``mmlop --help`` must answer in well under a second, so argparse cannot import the preset tables (they build
config dataclasses next to torch-heavy modules). The tables below are plain tuples; a test checks that they list
exactly the keys of the preset tables, so the two cannot drift apart.
"""

from __future__ import annotations

__all__ = ["PRESETS", "METHODS", "PRECISIONS", "FEWSHOT_SOURCES"]

#: Protocol presets of ``mmlop train --preset`` (``training.all_presets()``); ``world`` is the offline benchmark.
PRESETS = ("world", "b2n", "fewshot", "xd", "dg")
#: Method presets of ``mmlop train --method`` (``training.presets.method_preset``): the ablation ladder, then the
#: variants and baselines.
METHODS = ("mmlop", "ivlp", "lora", "scl", "udc", "mmlop-kl1", "coop", "coop16", "zeroshot")
#: ``RunConfig.precision`` values.
PRECISIONS = ("fp32", "amp_bf16", "amp_fp16")
#: ``RunConfig.fewshot_source`` values (``data.fewshot_splits.FEWSHOT_SOURCES``).
FEWSHOT_SOURCES = ("auto", "reference_pickle", "own", "resample")
