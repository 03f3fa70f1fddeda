"""Sizes of pixel sets in millimetres: one measure for the phantom's ground truth (``phantom/truth.py``)
and the runtime's calcification quantification (``runtime/quantify.py``), so the two agree by construction.
"""

from __future__ import annotations

import cv2
import numpy as np


def longest_diameter(ys: np.ndarray, xs: np.ndarray, sx: float = 1.0, sy: float = 1.0) -> tuple[float, float]:
    """(longest diameter in the units of ``sx``/``sy``, the same chord in pixels) of a set of pixels.

    The longest chord between pixel centres (x scaled by ``sx``, y by ``sy``), plus one pixel step
    along it, so a bar of n pixels measures n pixels and a single pixel its spacing (the geometric
    mean of ``sx`` and ``sy``).
    """
    pts = np.stack([xs, ys], axis=1).astype(np.float32)
    hull = cv2.convexHull(pts).reshape(-1, 2).astype(np.float64) if len(pts) > 2 else pts.astype(np.float64)
    d = hull[:, None, :] - hull[None, :, :]
    scaled = np.hypot(d[..., 0] * sx, d[..., 1] * sy)
    i, j = np.unravel_index(int(np.argmax(scaled)), scaled.shape)
    chord, chord_px = float(scaled[i, j]), float(np.hypot(d[i, j, 0], d[i, j, 1]))
    if chord_px == 0.0:
        return float(np.sqrt(sx * sy)), 1.0
    return chord + chord / chord_px, chord_px + 1.0
