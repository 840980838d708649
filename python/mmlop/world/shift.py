"""Dataset-level distribution shift applied to clean generated images.

A shift has a systematic part, fixed for a whole dataset (a colour cast, lower contrast, a fixed texture
overlay, blur), which prompts can learn to undo, and a random part drawn per image (brightness jitter, a
small extra cast, pixel noise), which they cannot. The random part is a pure function of
``(seed, index)``, like the clean image.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mmlop.world.generator import IMAGE_SIZE


@dataclass(frozen=True)
class Shift:
    """Parameters of a dataset-level shift.

    Attributes:
        cast: per-channel gain (R, G, B) applied to every image (systematic).
        contrast: contrast factor towards ``grey`` (1 = unchanged; systematic).
        grey: the grey level contrast is pulled towards, in [0, 255].
        overlay: amplitude in [0, 255] of a fixed texture added to every image (systematic).
        overlay_period: period in pixels of that texture's stripes.
        overlay_angle: orientation of that texture in degrees.
        blur: number of 3x3 box-blur passes (systematic; 0 = none).
        brightness_jitter: per-image random gain range (+-, random part).
        cast_jitter: per-image random per-channel gain range (+-, random part).
        noise: standard deviation of per-pixel Gaussian noise in [0, 255] units (random part).
    """

    cast: tuple[float, float, float] = (1.0, 1.0, 1.0)
    contrast: float = 1.0
    grey: float = 128.0
    overlay: float = 0.0
    overlay_period: float = 6.0
    overlay_angle: float = 30.0
    blur: int = 0
    brightness_jitter: float = 0.0
    cast_jitter: float = 0.0
    noise: float = 0.0

    def __post_init__(self) -> None:
        if len(self.cast) != 3 or min(self.cast) <= 0:
            raise ValueError(f"Shift.cast must be 3 positive gains, got {self.cast}")
        if not 0 < self.contrast <= 2:
            raise ValueError(f"Shift.contrast must be in (0, 2], got {self.contrast}")
        if self.blur < 0 or self.noise < 0 or self.overlay < 0:
            raise ValueError(f"Shift.blur, noise and overlay must be >= 0, got {self.blur}, {self.noise}, {self.overlay}")
        if not (0 <= self.brightness_jitter < 1 and 0 <= self.cast_jitter < 1):
            raise ValueError("Shift.brightness_jitter and cast_jitter must be in [0, 1)")


def _box_blur(x: np.ndarray) -> np.ndarray:
    """One 3x3 box-blur pass with edge padding; (N, H, W, 3) -> same."""
    p = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)), mode="edge")
    rows = p[:, :-2] + p[:, 1:-1] + p[:, 2:]  # (N, H, W+2, 3)
    return (rows[:, :, :-2] + rows[:, :, 1:-1] + rows[:, :, 2:]) / 9.0


def _overlay(shift: Shift) -> np.ndarray:
    """The fixed texture of a shift: oriented sinusoidal stripes, (H, W) in [-1, 1]."""
    grid = np.arange(IMAGE_SIZE, dtype=np.float32)
    yy, xx = np.meshgrid(grid, grid, indexing="ij")
    a = np.deg2rad(shift.overlay_angle)
    return np.sin(2 * np.pi * (xx * np.cos(a) + yy * np.sin(a)) / shift.overlay_period).astype(np.float32)


def apply_shift(images: np.ndarray, shift: Shift, seed: int, indices: np.ndarray) -> np.ndarray:
    """Apply a shift to a batch.

    Args:
        images: (N, H, W, 3) clean images, uint8 or float in [0, 255].
        shift: the shift.
        seed: stream seed of the random part.
        indices: (N,) image indices (the random part of image i depends on ``(seed, indices[i])`` only).

    Returns:
        (N, H, W, 3) uint8 shifted images.
    """
    x = images.astype(np.float32)
    for _ in range(shift.blur):
        x = _box_blur(x)
    x = x * np.asarray(shift.cast, np.float32)
    x = shift.grey + shift.contrast * (x - shift.grey)
    if shift.overlay:
        x = x + shift.overlay * _overlay(shift)[None, :, :, None]
    n = len(x)
    gains = np.empty((n, 3), np.float32)
    noise = np.empty(x.shape, np.float32)
    for row, idx in enumerate(np.asarray(indices)):
        rng = np.random.default_rng([int(seed), int(idx), 11])
        bright = 1.0 + rng.uniform(-shift.brightness_jitter, shift.brightness_jitter)
        gains[row] = bright * (1.0 + rng.uniform(-shift.cast_jitter, shift.cast_jitter, size=3))
        noise[row] = rng.standard_normal(x.shape[1:], dtype=np.float32)
    x = x * gains[:, None, None, :] + shift.noise * noise
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)
