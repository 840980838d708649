"""The built-in offline world: generated images, a tiny pretrained CLIP, and a synthetic few-shot suite.

The world is synthetic; numbers measured on it say nothing about real benchmarks.
"""

from mmlop.world.generator import FAMILIES, IMAGE_SIZE, Attributes, generate
from mmlop.world.model import PREPROCESS, WorldPreprocess, load_world_clip, read_world_clip_config, to_tensor
from mmlop.world.shift import Shift, apply_shift
from mmlop.world.suite import SUITE, WorldClass, WorldDatasetSpec, generate_split, materialize_suite
from mmlop.world.zeroshot import suite_zeroshot, zeroshot_accuracies, zeroshot_accuracy

__all__ = [
    "FAMILIES",
    "IMAGE_SIZE",
    "PREPROCESS",
    "SUITE",
    "Attributes",
    "Shift",
    "WorldClass",
    "WorldDatasetSpec",
    "WorldPreprocess",
    "apply_shift",
    "generate",
    "generate_split",
    "load_world_clip",
    "materialize_suite",
    "read_world_clip_config",
    "suite_zeroshot",
    "to_tensor",
    "zeroshot_accuracies",
    "zeroshot_accuracy",
]
