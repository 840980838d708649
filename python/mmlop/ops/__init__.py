"""Fused ops: each module holds a pure-torch reference, a Triton autograd.Function and one dispatching
entry point."""

from mmlop.ops.drift_logits import DriftLogits, drift_corrected_logits, drift_corrected_logits_reference
from mmlop.ops.prompt_expand import expand_prompts, expand_prompts_reference

__all__ = [
    "DriftLogits",
    "drift_corrected_logits",
    "drift_corrected_logits_reference",
    "expand_prompts",
    "expand_prompts_reference",
]
