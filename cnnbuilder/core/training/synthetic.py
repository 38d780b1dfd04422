"""The built-in "shapes" dataset: ten classes of geometric figures, generated in a fraction of a
second, identical for the same seed on every machine, and needing no download.

Each figure is drawn from a signed distance function evaluated on the whole pixel grid of all
samples of a class at once (numpy broadcasting, no per-pixel Python), with a one-pixel soft edge.
Position, size, rotation (small enough that a square never becomes a diamond), stroke width,
brightness, background and noise vary per sample.
"""

from __future__ import annotations

import numpy as np

CLASSES = ("circle", "square", "triangle", "plus", "ring", "diamond", "horizontal bars", "vertical bars",
           "star", "x")
_CHUNK = 2048  # samples per vectorised block: bounds the float32 temporaries to ~25 MB at 28×28


def make_shapes(n: int, seed: int, size: int = 28, channels: int = 1, split: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """n images (uint8, n×channels×size×size) and labels (int64), classes balanced.

    `split` separates independent streams for the same seed (0 = training, 1 = test)."""
    rng = np.random.default_rng([int(seed), int(split), 0x5EA9E5])
    labels = rng.permutation(np.arange(n) % len(CLASSES)).astype(np.int64)
    images = np.empty((n, channels, size, size), dtype=np.uint8)
    for start in range(0, n, _CHUNK):
        stop = min(n, start + _CHUNK)
        images[start:stop] = _render(labels[start:stop], rng, size, channels)
    return images, labels


def _render(labels: np.ndarray, rng: np.random.Generator, size: int, channels: int) -> np.ndarray:
    m = len(labels)
    f32 = np.float32
    radius = rng.uniform(0.45, 0.8, m).astype(f32)
    slack = 0.95 - radius
    cx = (rng.uniform(-1, 1, m) * slack).astype(f32)
    cy = (rng.uniform(-1, 1, m) * slack).astype(f32)
    angle = np.deg2rad(rng.uniform(-15, 15, m)).astype(f32)
    stroke = rng.uniform(0.14, 0.24, m).astype(f32)  # in units of the radius
    if channels == 1:
        fg = rng.uniform(0.6, 1.0, (m, 1)).astype(f32)
        bg = rng.uniform(0.0, 0.25, (m, 1)).astype(f32)
    else:  # a colour figure on a background of a different, darker colour
        fg = rng.uniform(0.45, 1.0, (m, channels)).astype(f32)
        bg = rng.uniform(0.0, 0.3, (m, channels)).astype(f32)
    noise_sd = rng.uniform(0.02, 0.1, m).astype(f32)
    noise = rng.standard_normal((m, channels, size, size), dtype=f32)

    # Pixel centres in [-1, 1], then each sample's own frame: centred, rotated, radius 1.
    grid = (np.arange(size, dtype=f32) + 0.5) / size * 2 - 1
    u = grid[None, None, :] - cx[:, None, None]
    v = grid[None, :, None] - cy[:, None, None]
    cos, sin = np.cos(angle)[:, None, None], np.sin(angle)[:, None, None]
    r = radius[:, None, None]
    x = (u * cos + v * sin) / r
    y = (-u * sin + v * cos) / r
    t = stroke[:, None, None]

    dist = np.empty((m, size, size), dtype=f32)
    for k in range(len(CLASSES)):
        sel = labels == k
        if sel.any():
            dist[sel] = _SDF[k](x[sel], y[sel], t[sel])
    # Distance in pixels (unit frame -> [-1, 1] -> pixels), one-pixel anti-aliased edge.
    alpha = np.clip(0.5 - dist * r * (size / 2), 0.0, 1.0)
    img = bg[:, :, None, None] + (fg - bg)[:, :, None, None] * alpha[:, None] + noise * noise_sd[:, None, None, None]
    return (np.clip(img, 0.0, 1.0) * 255 + 0.5).astype(np.uint8)


def _box(x, y, hx, hy):
    return np.maximum(np.abs(x) - hx, np.abs(y) - hy)


def _circle(x, y, t):
    return np.hypot(x, y) - 1.0


def _square(x, y, t):
    return _box(x, y, 0.78, 0.78)


def _triangle(x, y, t):
    # Equilateral, apex up (y grows downwards in an image): three edges at distance 0.5 from the centre.
    s = np.float32(np.sqrt(3) / 2)
    return np.maximum.reduce([y - 0.55, -0.5 * y + s * x - 0.55, -0.5 * y - s * x - 0.55]) * 1.1


def _plus(x, y, t):
    return np.minimum(_box(x, y, t * 1.2, 1.0), _box(x, y, 1.0, t * 1.2))


def _ring(x, y, t):
    return np.abs(np.hypot(x, y) - 0.78) - t


def _diamond(x, y, t):
    return (np.abs(x) + np.abs(y) - 1.0) * np.float32(0.7071)


def _hbars(x, y, t):
    return _box(x, np.abs(y) - 0.5, 0.95, t * 1.1)


def _vbars(x, y, t):
    return _box(np.abs(x) - 0.5, y, t * 1.1, 0.95)


def _star(x, y, t):
    rho = np.hypot(x, y)
    phi = np.arctan2(y, x) + np.float32(np.pi / 2)  # a point straight up
    wave = np.abs(np.mod(phi * (5 / (2 * np.pi)), 1.0) - 0.5) * 2  # 1 at the points, 0 between
    return (rho - (0.42 + 0.6 * wave)) * 0.8


def _x(x, y, t):
    c = np.float32(0.7071)
    return _plus((x + y) * c, (x - y) * c, t)


_SDF = (_circle, _square, _triangle, _plus, _ring, _diamond, _hbars, _vbars, _star, _x)
