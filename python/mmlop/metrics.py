"""Scores shared by every layer that reports them (training summaries, the world's zero-shot checks)."""

from __future__ import annotations

__all__ = ["harmonic_mean"]


def harmonic_mean(b: float, n: float) -> float:
    """HM(base, novel) = 2bn / (b + n), the base-to-novel protocol's headline; 0 when both are 0."""
    return 0.0 if b + n == 0 else 2 * b * n / (b + n)
