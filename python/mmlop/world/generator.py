"""Procedural 48 px images of one coloured, patterned shape on a background.

Every image is a pure function of ``(seed, index)``: its attributes and its random texture come from a
private ``numpy`` generator seeded with both, so an image does not depend on which batch it was drawn in.
Rendering is vectorised over the batch (one pass per shape and per pattern), which keeps generation at
thousands of images per second on one core, so pretraining spends its time in the model.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

IMAGE_SIZE = 48

SHAPES: tuple[str, ...] = (
    "circle", "square", "triangle", "diamond", "star", "cross",
    "ring", "heart", "crescent", "semicircle", "bar", "arrow",
)
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (215, 35, 35),
    "orange": (245, 140, 25),
    "yellow": (240, 220, 40),
    "green": (40, 165, 55),
    "blue": (40, 85, 225),
    "purple": (140, 50, 190),
    "pink": (250, 135, 195),
    "brown": (125, 75, 35),
    "white": (245, 245, 245),
    "black": (22, 22, 22),
}
PATTERNS: tuple[str, ...] = (
    "plain", "striped", "checkered", "dotted", "hollow", "speckled", "faded", "wavy",
)
SIZES: dict[str, float] = {"small": 0.7, "medium": 0.85, "large": 1.0}
POSITIONS: dict[str, tuple[float, float]] = {
    "center": (0.0, 0.0),
    "top left": (-1.0, -1.0),
    "top right": (1.0, -1.0),
    "bottom left": (-1.0, 1.0),
    "bottom right": (1.0, 1.0),
}
BACKGROUNDS: dict[str, tuple[int, int, int]] = {
    "gray": (128, 128, 128),
    "white": (250, 250, 250),
    "black": (10, 10, 10),
    "beige": (225, 205, 160),
    "navy": (20, 30, 90),
    "olive": (110, 115, 40),
}

#: Attribute families and their value names, in label order.
FAMILIES: dict[str, tuple[str, ...]] = {
    "shape": SHAPES,
    "colour": tuple(COLOURS),
    "pattern": PATTERNS,
    "size": tuple(SIZES),
    "position": tuple(POSITIONS),
    "background": tuple(BACKGROUNDS),
}

_RADIUS_PX = 16.0  # half-extent of a "large" shape
_OFFSET_PX = 8.0  # distance of the corner positions from the centre
_MAX_ROT = np.deg2rad(25.0)  # small: a square turned by 45 degrees would read as a diamond
_MIN_BG_DIST = 90.0  # RGB distance below which the background is redrawn (object must stay visible)


@dataclass(frozen=True)
class Attributes:
    """Attribute labels of a batch; each field is an int array of shape (N,) indexing ``FAMILIES``."""

    shape: np.ndarray
    colour: np.ndarray
    pattern: np.ndarray
    size: np.ndarray
    position: np.ndarray
    background: np.ndarray

    def family(self, name: str) -> np.ndarray:
        """Labels of one family by name (``"shape"``, ``"colour"``, ...)."""
        if name not in FAMILIES:
            raise KeyError(f"unknown attribute family {name!r}; expected one of {sorted(FAMILIES)}")
        return getattr(self, name)

    def __len__(self) -> int:
        return len(self.shape)


@dataclass(frozen=True)
class _Draws:
    """Per-image continuous draws that go with the discrete attributes."""

    rot: np.ndarray  # (N,) radians
    jitter_xy: np.ndarray  # (N, 2) px
    rgb_jitter: np.ndarray  # (N, 3)
    noise: np.ndarray  # (N, H, W) uniform [0, 1), used by "speckled"


def sample_attributes(
    seed: int,
    indices: np.ndarray,
    fixed: dict[str, int] | None = None,
) -> tuple[Attributes, _Draws]:
    """Draw the attributes of images ``indices`` of stream ``seed``.

    Args:
        seed: stream seed.
        indices: (N,) non-negative image indices.
        fixed: optional ``{family: label}`` overrides (the draw is still made, so other attributes do not
            change when a family is fixed). With a fixed background, a random colour too close to it is
            redrawn, so that the object stays visible.

    Raises:
        ValueError: a fixed colour and a fixed background are too close to tell apart.

    Returns:
        The discrete attributes and the continuous per-image draws.
    """
    indices = np.asarray(indices, dtype=np.int64)
    n = len(indices)
    cols = {name: np.empty(n, np.int64) for name in FAMILIES}
    rot = np.empty(n, np.float32)
    jit = np.empty((n, 2), np.float32)
    rgbj = np.empty((n, 3), np.float32)
    noise = np.empty((n, IMAGE_SIZE, IMAGE_SIZE), np.float32)
    bg_rgb = np.array(list(BACKGROUNDS.values()), np.float32)
    fg_rgb = np.array(list(COLOURS.values()), np.float32)
    for row, idx in enumerate(indices):
        rng = np.random.default_rng([int(seed), int(idx)])
        for name, values in FAMILIES.items():
            cols[name][row] = rng.integers(len(values))
        rot[row] = rng.uniform(-_MAX_ROT, _MAX_ROT)
        jit[row] = rng.uniform(-2.0, 2.0, size=2)
        rgbj[row] = rng.uniform(-15.0, 15.0, size=3)
        noise[row] = rng.random((IMAGE_SIZE, IMAGE_SIZE), dtype=np.float32)
        bg_order = rng.permutation(len(BACKGROUNDS))
        if fixed:
            for name, value in fixed.items():
                cols[name][row] = value
        # Keep the object visible. Without a fixed background, take the first background (in this image's
        # own order) far enough from the object colour. A fixed background is honoured; the colour is
        # redrawn instead (draws made after all others, so unfixed streams are unchanged).
        if not (fixed and "background" in fixed):
            for b in bg_order:
                if _far(bg_rgb[b], fg_rgb[cols["colour"][row]]):
                    cols["background"][row] = b
                    break
        elif not _far(bg_rgb[cols["background"][row]], fg_rgb[cols["colour"][row]]):
            if "colour" in fixed:
                raise ValueError(
                    f"colour {FAMILIES['colour'][fixed['colour']]!r} on background "
                    f"{FAMILIES['background'][fixed['background']]!r} would be invisible; fix another pair"
                )
            for c in rng.permutation(len(COLOURS)):
                if _far(bg_rgb[cols["background"][row]], fg_rgb[c]):
                    cols["colour"][row] = c
                    break
    return Attributes(**cols), _Draws(rot, jit, rgbj, noise)


def _far(a: np.ndarray, b: np.ndarray) -> bool:
    return bool(np.linalg.norm(a - b) >= _MIN_BG_DIST)


def _shape_mask(shape: int, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Inside test of one shape in unit local coordinates (v points down). Shapes span about [-1, 1]."""
    r2 = u * u + v * v
    name = SHAPES[shape]
    if name == "circle":
        return r2 <= 0.85**2
    if name == "square":
        return np.maximum(np.abs(u), np.abs(v)) <= 0.72
    if name == "triangle":
        return (v <= 0.62) & (v >= -0.9 + 1.75 * np.abs(u))
    if name == "diamond":
        return np.abs(u) / 0.62 + np.abs(v) / 0.98 <= 1.0
    if name == "star":
        phi = np.arctan2(u, -v)
        edge = 0.42 + 0.56 * ((np.cos(5.0 * phi) + 1.0) / 2.0) ** 3
        return np.sqrt(r2) <= edge
    if name == "cross":
        au, av = np.abs(u), np.abs(v)
        return ((au <= 0.27) & (av <= 0.92)) | ((av <= 0.27) & (au <= 0.92))
    if name == "ring":
        return (r2 <= 0.92**2) & (r2 >= 0.48**2)
    if name == "heart":
        x, y = u * 1.25, -v * 1.25 + 0.25
        return (x * x + y * y - 1.0) ** 3 - x * x * y**3 <= 0.0
    if name == "crescent":
        return (r2 <= 0.9**2) & ((u - 0.42) ** 2 + (v + 0.1) ** 2 >= 0.72**2)
    if name == "semicircle":
        return (u * u + (v - 0.42) ** 2 <= 0.98**2) & (v <= 0.42)
    if name == "bar":
        return (np.abs(u) <= 0.95) & (np.abs(v) <= 0.24)
    if name == "arrow":
        shaft = (np.abs(v) <= 0.17) & (u >= -0.92) & (u <= 0.2)
        head = (u >= 0.1) & (u <= 0.92) & (np.abs(v) <= (0.92 - u) * 0.8)
        return shaft | head
    raise AssertionError(name)


def _erode(mask: np.ndarray, steps: int) -> np.ndarray:
    """Binary erosion with a 3x3 cross, ``steps`` times; (N, H, W) -> (N, H, W)."""
    out = mask.copy()
    for _ in range(steps):
        m = np.pad(out, ((0, 0), (1, 1), (1, 1)), constant_values=False)
        out = m[:, 1:-1, 1:-1] & m[:, :-2, 1:-1] & m[:, 2:, 1:-1] & m[:, 1:-1, :-2] & m[:, 1:-1, 2:]
    return out


def _odd(x: np.ndarray) -> np.ndarray:
    """Whether floor(x) is odd (float ``%`` is several times slower than an integer bit test)."""
    return (np.floor(x).astype(np.int32) & 1).astype(bool)


def _contrast_colour(rgb: np.ndarray) -> np.ndarray:
    """A second tone of the same hue for pattern marks: darker for light colours, lighter for dark ones."""
    lum = (rgb @ np.array([0.299, 0.587, 0.114], np.float32)) / 255.0  # (N,)
    dark = rgb * 0.3
    light = rgb * 0.35 + 0.65 * 255.0
    return np.where((lum > 0.45)[:, None], dark, light)


def render(attrs: Attributes, draws: _Draws) -> np.ndarray:
    """Render a batch of clean images.

    Args:
        attrs: discrete attributes from :func:`sample_attributes`.
        draws: the matching continuous draws.

    Returns:
        (N, H, W, 3) float32 array in [0, 255].
    """
    n, size = len(attrs), IMAGE_SIZE
    grid = np.arange(size, dtype=np.float32) + 0.5
    pos = np.array(list(POSITIONS.values()), np.float32)[attrs.position]  # (N, 2)
    scale = _RADIUS_PX * np.array(list(SIZES.values()), np.float32)[attrs.size]  # (N,)
    centre = size / 2 + pos * _OFFSET_PX + draws.jitter_xy  # (N, 2)
    dx = grid[None, None, :] - centre[:, 0, None, None]  # (N, 1, W)
    dy = grid[None, :, None] - centre[:, 1, None, None]  # (N, H, 1)
    cos, sin = np.cos(draws.rot)[:, None, None], np.sin(draws.rot)[:, None, None]
    u = (dx * cos + dy * sin) / scale[:, None, None]  # (N, H, W), object-local, unit size
    v = (-dx * sin + dy * cos) / scale[:, None, None]

    mask = np.zeros((n, size, size), bool)
    for s in np.unique(attrs.shape):
        sel = attrs.shape == s
        mask[sel] = _shape_mask(int(s), u[sel], v[sel])

    fg = np.array(list(COLOURS.values()), np.float32)[attrs.colour] + draws.rgb_jitter  # (N, 3)
    fg = np.clip(fg, 0.0, 255.0)
    bg = np.array(list(BACKGROUNDS.values()), np.float32)[attrs.background]  # (N, 3)
    second = _contrast_colour(fg)
    marks = np.zeros((n, size, size), bool)  # pixels drawn in the second tone
    alpha = mask.astype(np.float32)
    lu = u * scale[:, None, None]  # object-local pixels, so marks rotate with the object
    lv = v * scale[:, None, None]
    for p in np.unique(attrs.pattern):
        sel = attrs.pattern == p
        name = PATTERNS[int(p)]
        pu, pv = lu[sel], lv[sel]
        if name == "striped":
            marks[sel] = _odd(pu / 3.0)
        elif name == "checkered":
            marks[sel] = _odd(pu / 3.5) ^ _odd(pv / 3.5)
        elif name == "dotted":
            marks[sel] = (pu - 5.0 * np.floor(pu / 5.0) - 2.5) ** 2 + (pv - 5.0 * np.floor(pv / 5.0) - 2.5) ** 2 <= 1.5**2
        elif name == "hollow":
            mask[sel] = mask[sel] & ~_erode(mask[sel], 2)
            alpha[sel] = mask[sel].astype(np.float32)
        elif name == "speckled":
            marks[sel] = draws.noise[sel] < 0.4
        elif name == "faded":
            ramp = np.clip((pu + scale[sel, None, None]) / (2 * scale[sel, None, None]), 0.0, 1.0)
            alpha[sel] = mask[sel] * (1.0 - 0.8 * ramp)
        elif name == "wavy":
            marks[sel] = _odd((pv + 2.2 * np.sin(pu * 0.6)) / 3.0)

    a = alpha * mask  # (N, H, W)
    m = marks.astype(np.float32)
    out = np.empty((n, size, size, 3), np.float32)
    for c in range(3):  # per channel: broadcasting over a trailing RGB axis is several times slower
        ink = fg[:, c, None, None] + m * (second[:, c] - fg[:, c])[:, None, None]
        out[..., c] = bg[:, c, None, None] + a * (ink - bg[:, c, None, None])
    return out


def generate(
    seed: int,
    indices: np.ndarray | range,
    fixed: dict[str, int] | None = None,
) -> tuple[np.ndarray, Attributes]:
    """Clean images and labels for images ``indices`` of stream ``seed``.

    Args:
        seed: stream seed; the same ``(seed, index)`` always gives the same image.
        indices: image indices.
        fixed: optional ``{family: label}`` to force some attributes (e.g. a class of a dataset).

    Returns:
        ``(images, attrs)``: (N, H, W, 3) uint8 images and their attribute labels.

    Raises:
        KeyError: a family in ``fixed`` is unknown.
        ValueError: a value in ``fixed`` is out of range.
    """
    for name, value in (fixed or {}).items():
        if name not in FAMILIES:
            raise KeyError(f"unknown attribute family {name!r}; expected one of {sorted(FAMILIES)}")
        if not 0 <= value < len(FAMILIES[name]):
            raise ValueError(f"{name}={value} out of range 0..{len(FAMILIES[name]) - 1}")
    attrs, draws = sample_attributes(seed, np.asarray(indices), fixed)
    images = render(attrs, draws)
    return np.rint(images).astype(np.uint8), attrs
