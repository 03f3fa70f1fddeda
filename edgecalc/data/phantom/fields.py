"""Smooth random fields for tissue texture, deterministic float64 (SciPy bilinear zoom, no SIMD paths)."""

from __future__ import annotations

import numpy as np
from scipy import ndimage


def smooth_field(rng: np.random.Generator, shape: tuple[int, int], corr_px: float) -> np.ndarray:
    """Zero-mean, unit-std random field with correlation length ~``corr_px`` pixels."""
    h, w = shape
    gh = max(2, int(np.ceil(h / max(corr_px, 1.0))) + 2)
    gw = max(2, int(np.ceil(w / max(corr_px, 1.0))) + 2)
    coarse = rng.standard_normal((gh, gw))
    f = ndimage.zoom(coarse, (h / (gh - 1), w / (gw - 1)), order=1, mode="nearest", grid_mode=False)
    f = f[:h, :w]
    if f.shape != (h, w):
        f = np.pad(f, ((0, h - f.shape[0]), (0, w - f.shape[1])), mode="edge")
    s = f.std()
    return (f - f.mean()) / (s if s > 0 else 1.0)


def uniform(rng: np.random.Generator, lo_hi) -> float:
    """Draw from a ``[low, high]`` pair."""
    lo, hi = float(lo_hi[0]), float(lo_hi[1])
    return float(lo + (hi - lo) * rng.random())
