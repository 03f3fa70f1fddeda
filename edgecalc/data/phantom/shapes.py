"""Rasterising the blob-like shapes of the phantom on a pixel grid (vectorised numpy, deterministic)."""

from __future__ import annotations

import numpy as np


def radial_blob(grid: tuple[int, int], cy: float, cx: float, ry: float, rx: float, angle: float,
                harmonics: list[tuple[int, float, float]] = ()) -> np.ndarray:
    """Bool mask of an ellipse (semi-axes ry, rx px, rotated by ``angle`` rad) whose radius is modulated
    by ``1 + Σ a cos(nθ + φ)`` for (n, a, φ) in ``harmonics`` (lobulation, irregular margins).

    Only the bounding window is evaluated, so small shapes are cheap.
    """
    h, w = grid
    amp = 1.0 + sum(abs(a) for _, a, _ in harmonics)
    r = max(ry, rx) * amp + 2
    y0, y1 = max(0, int(np.floor(cy - r))), min(h, int(np.ceil(cy + r)) + 1)
    x0, x1 = max(0, int(np.floor(cx - r))), min(w, int(np.ceil(cx + r)) + 1)
    out = np.zeros(grid, dtype=bool)
    if y0 >= y1 or x0 >= x1:
        return out
    yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float64)
    dy, dx = yy - cy, xx - cx
    c, s = np.cos(angle), np.sin(angle)
    u = (dx * c + dy * s) / max(rx, 1e-6)
    v = (-dx * s + dy * c) / max(ry, 1e-6)
    rho = np.sqrt(u * u + v * v)
    theta = np.arctan2(v, u)
    lim = np.ones_like(theta)
    for n, a, ph in harmonics:
        lim += a * np.cos(n * theta + ph)
    out[y0:y1, x0:x1] = rho <= lim
    return out


def boundary(mask: np.ndarray) -> np.ndarray:
    """Pixels of ``mask`` with a 4-neighbour outside it."""
    m = mask
    inner = m.copy()
    inner[1:, :] &= m[:-1, :]
    inner[:-1, :] &= m[1:, :]
    inner[:, 1:] &= m[:, :-1]
    inner[:, :-1] &= m[:, 1:]
    return m & ~inner


def vertical_normal_weight(mask: np.ndarray, power: float = 4.0) -> np.ndarray:
    """|n_z|^power of the outline normal: specular echoes are strongest where the surface faces the beam."""
    from scipy import ndimage

    f = ndimage.gaussian_filter(mask.astype(np.float64), 1.5)
    gy = np.zeros_like(f)
    gx = np.zeros_like(f)
    gy[1:-1] = f[2:] - f[:-2]
    gx[:, 1:-1] = f[:, 2:] - f[:, :-2]
    n = np.sqrt(gx * gx + gy * gy) + 1e-12
    return (np.abs(gy) / n) ** power


def proximal_layer(region: np.ndarray, depth_px: float) -> np.ndarray:
    """The part of ``region`` within ``depth_px`` of its first pixel along each beam (column)."""
    count = np.cumsum(region, axis=0)
    return region & (count <= max(1.0, depth_px))


def random_point(rng: np.random.Generator, mask: np.ndarray) -> tuple[int, int] | None:
    """A uniformly drawn (y, x) inside ``mask``, or None if it is empty."""
    ys, xs = np.nonzero(mask)
    if len(ys) == 0:
        return None
    i = int(rng.integers(len(ys)))
    return int(ys[i]), int(xs[i])


_EDT_CACHE: dict = {}


def distance_inside(mask: np.ndarray) -> np.ndarray:
    """Euclidean distance to the outside of ``mask`` (cached by content: the nodule is eroded often)."""
    import hashlib

    from scipy import ndimage

    key = (mask.shape, hashlib.blake2b(np.packbits(mask).tobytes(), digest_size=16).digest())
    hit = _EDT_CACHE.get(key)
    if hit is None:
        if len(_EDT_CACHE) > 8:
            _EDT_CACHE.clear()
        hit = ndimage.distance_transform_edt(mask)
        hit.setflags(write=False)
        _EDT_CACHE[key] = hit
    return hit


def erode(mask: np.ndarray, r_px: float) -> np.ndarray:
    """Erode by a disk of radius ``r_px`` (distance transform, exact and deterministic)."""
    if r_px <= 0:
        return mask.copy()
    return distance_inside(mask) > r_px
