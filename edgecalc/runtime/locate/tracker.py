"""Carry the nodule box between locator runs: the image shift around it, by phase correlation.

The locator costs a few milliseconds, so the live loop runs it every k frames; in between, a box
that stood still would lag behind a moving probe (the crop then cuts the nodule). A 64 x 64 patch
around the box (1.5x its size, Hann-windowed) at the locator's frame is the reference; on every
later frame the same region is cut and ``cv2.phaseCorrelate`` says how far the picture moved
(tens of microseconds). Anatomy moves as a whole under a sliding probe, so a translation is the
right model between two locator runs; a weak correlation peak (the view changed) leaves the box
where it was until the next locator run.
"""

from __future__ import annotations

import cv2
import numpy as np

from edgecalc.data.preprocess import to_gray_u8

Box = tuple[int, int, int, int]

PATCH = 64
CONTEXT = 1.5
#: Below this phase-correlation response the shift is not trusted (0..1; ~0.5 after 30 phantom frames).
MIN_RESPONSE = 0.15


def _patch(frame: np.ndarray, region: Box) -> np.ndarray:
    """``region`` of ``frame`` (zero outside the frame), gray, resized to PATCH x PATCH, float32."""
    x, y, w, h = region
    H, W = frame.shape[:2]
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + w, W), min(y + h, H)
    if x1 <= x0 or y1 <= y0:
        return np.zeros((PATCH, PATCH), np.float32)
    gray = to_gray_u8(frame[y0:y1, x0:x1])
    if (x0, y0, x1, y1) != (x, y, x + w, y + h):
        gray = cv2.copyMakeBorder(gray, y0 - y, y + h - y1, x0 - x, x + w - x1, cv2.BORDER_CONSTANT, value=0)
    return cv2.resize(gray, (PATCH, PATCH), interpolation=cv2.INTER_LINEAR).astype(np.float32)


class BoxTracker:
    """``reset(frame, box)`` at a locator frame; ``shift(frame)`` -> (dx, dy) in frame pixels since then."""

    def __init__(self, min_response: float = MIN_RESPONSE) -> None:
        self.min_response = min_response
        self.window = cv2.createHanningWindow((PATCH, PATCH), cv2.CV_32F)
        self.region: Box | None = None
        self.reference: np.ndarray | None = None
        self.scale = 1.0
        self.last_response = 0.0

    def reset(self, frame: np.ndarray, box: Box) -> None:
        x, y, w, h = box
        side = max(16, int(round(max(w, h) * CONTEXT)))
        cx, cy = x + w / 2.0, y + h / 2.0
        self.region = (int(round(cx - side / 2.0)), int(round(cy - side / 2.0)), side, side)
        self.scale = side / PATCH
        self.reference = _patch(frame, self.region)

    def clear(self) -> None:
        self.region = self.reference = None

    def shift(self, frame: np.ndarray) -> tuple[float, float] | None:
        """How far the picture inside the reference region moved since ``reset``; None if not trusted."""
        if self.region is None or self.reference is None:
            return None
        (dx, dy), response = cv2.phaseCorrelate(self.reference, _patch(frame, self.region), self.window)
        self.last_response = float(response)
        if not response >= self.min_response:
            return None
        return dx * self.scale, dy * self.scale


def moved(box: Box, dx: float, dy: float) -> Box:
    """``box`` translated by (dx, dy), rounded to pixels."""
    return int(round(box[0] + dx)), int(round(box[1] + dy)), box[2], box[3]
