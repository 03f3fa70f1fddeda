"""Synthetic ultrasound screens with known scan rectangles (shared by the scan-area tests)."""

from __future__ import annotations

import cv2
import numpy as np


def speckle(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Rayleigh speckle, blurred anisotropically (axial < lateral), log-compressed to uint8."""
    env = rng.rayleigh(1.0, (h, w)).astype(np.float32)
    env = cv2.GaussianBlur(env, (0, 0), sigmaX=1.6, sigmaY=0.8)
    db = 20 * np.log10(env + 1e-3)
    img = np.clip((db + 30) / 40 * 255, 0, 255)
    img *= np.linspace(1.0, 0.6, h, dtype=np.float32)[:, None]  # deeper = dimmer
    return img.astype(np.uint8)


def screen(rects: list[tuple[int, int, int, int]], seed: int = 0, width: int = 560, height: int = 360) -> np.ndarray:
    """A black screen with speckle pasted at ``rects`` plus text, depth ticks, a grey bar and an icon."""
    rng = np.random.default_rng(seed)
    frame = np.zeros((height, width), np.uint8)
    for x, y, w, h in rects:
        frame[y:y + h, x:x + w] = speckle(rng, h, w)
    for k, line in enumerate(("P100", "12L6", "9.0", "31fps", "DR65", "2DG")):
        cv2.putText(frame, line, (width - 50, 14 + 13 * k), cv2.FONT_HERSHEY_SIMPLEX, 0.35, 230, 1)
    cv2.putText(frame, "LT LOBE", (40, height - 10), cv2.FONT_HERSHEY_SIMPLEX, 0.5, 255, 1)
    for k in range(8):
        cv2.circle(frame, (8, 10 + 40 * k), 1, 255, -1)
    frame[100:170, 4:12] = np.linspace(255, 0, 70, dtype=np.uint8)[:, None]
    cv2.ellipse(frame, (width - 30, height - 20), (16, 10), 0, 0, 360, 255, 1)
    return frame
