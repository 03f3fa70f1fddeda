"""A classical nodule locator: the darkest compact region inside the scan area.

Most thyroid nodules are hypoechoic (darker than the surrounding gland), so a smoothed image,
thresholded at a few dark levels, gives candidate blobs; each is scored by how much darker it is than
its surroundings, how compact it is, whether its size is plausible and whether it stays off the image
border (the far-field shadow and side drop-off are dark too, but touch the border). It is the
baseline a learned locator must beat, and a fallback that needs no model (numpy + OpenCV only).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from edgecalc.data.preprocess import to_gray_u8
from edgecalc.runtime.locate.scan_area import ScanArea, largest_scan_area

#: The scan area is shrunk by an integer factor to about this long side before the search.
WORK_SIZE = 160
#: Dark thresholds tried, as percentiles of the smoothed scan area.
PERCENTILES = (15, 30, 45)
#: Plausible nodule size, as a share of the scan area (the score falls off outside it; bigger is likelier up
#: to 15 %: DDTI nodules are mostly large).
MIN_AREA, MAX_AREA = 0.01, 0.5


@dataclass(frozen=True)
class Located:
    """One nodule guess: a frame-sized bool mask, its box (x, y, w, h) and a confidence in [0, 1].

    ``extent`` (learned locator): where the nodule may reach, a box holding ``box``; the square crop
    is cut around it (``crop_box``), so an under-segmented edge does not leave part of the nodule out.
    """

    mask: np.ndarray
    box: tuple[int, int, int, int]
    confidence: float
    extent: tuple[int, int, int, int] | None = None

    @property
    def crop_box(self) -> tuple[int, int, int, int]:
        """The box the crop must hold: the extent when there is one, else the box."""
        return self.extent if self.extent is not None else self.box


def locate_nodule(frame: np.ndarray, scan_area: ScanArea | tuple[int, int, int, int] | None = None) -> Located | None:
    """The most nodule-like dark region in the frame's scan area, or None where there is none.

    ``scan_area`` defaults to ``largest_scan_area(frame)``. Raises ValueError for a non-image input
    or a scan area outside the frame.
    """
    gray = to_gray_u8(frame)
    H, W = gray.shape
    if scan_area is None:
        scan_area = largest_scan_area(gray)
        if scan_area is None:
            return None
    if isinstance(scan_area, ScanArea):
        sx, sy, sw, sh = scan_area.box
    else:
        sx, sy, sw, sh = (int(v) for v in scan_area)
    if sw <= 0 or sh <= 0 or sx < 0 or sy < 0 or sx + sw > W or sy + sh > H:
        raise ValueError(f"scan area {(sx, sy, sw, sh)} does not lie inside a frame of {W}x{H}")
    roi = gray[sy:sy + sh, sx:sx + sw]
    f = max(1, int(round(max(sw, sh) / WORK_SIZE)))
    small = cv2.resize(roi, (max(1, sw // f), max(1, sh // f)), interpolation=cv2.INTER_AREA) if f > 1 else roi
    if min(small.shape) < 16:
        return None
    best = _best_blob(small)
    if best is None:
        return None
    blob, conf = best
    mask = np.zeros((H, W), dtype=bool)
    up = cv2.resize(blob.view(np.uint8), (sw, sh), interpolation=cv2.INTER_NEAREST) if f > 1 else blob.view(np.uint8)
    mask[sy:sy + sh, sx:sx + sw] = up.astype(bool)
    ys, xs = np.nonzero(mask)
    if ys.size == 0:
        return None
    box = (int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1))
    return Located(mask, box, conf)


def _best_blob(small: np.ndarray) -> tuple[np.ndarray, float] | None:
    """Search dark components over several thresholds; return the best mask and its confidence."""
    h, w = small.shape
    k = max(3, (min(h, w) // 16) | 1)  # median window: kills speckle, keeps nodule edges
    smooth = cv2.GaussianBlur(cv2.medianBlur(small, k), (0, 0), k / 2.0)
    levels = np.percentile(smooth, PERCENTILES)
    total = float(h * w)
    ring_k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * k + 1, 2 * k + 1))
    open_k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))
    spread = float(np.percentile(smooth, 90) - np.percentile(smooth, 10)) + 1.0
    best, best_score = None, 0.0
    for level in levels:
        dark = cv2.morphologyEx((smooth <= level).view(np.uint8), cv2.MORPH_OPEN, open_k)
        n, labels, stats, _ = cv2.connectedComponentsWithStats(dark, connectivity=4)
        for i in range(1, n):
            x, y, bw, bh, area = (int(v) for v in stats[i])
            share = area / total
            if share < MIN_AREA * 0.5 or share > MAX_AREA * 1.5:
                continue
            comp = labels == i
            comp_u8 = comp.view(np.uint8)
            ring = cv2.dilate(comp_u8, ring_k).view(bool) & ~comp
            if not ring.any():
                continue
            contrast = (float(smooth[ring].mean()) - float(smooth[comp].mean())) / spread
            if contrast <= 0:
                continue
            contours, _ = cv2.findContours(comp_u8, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
            hull = cv2.contourArea(cv2.convexHull(max(contours, key=cv2.contourArea)))
            solidity = area / hull if hull > 0 else 0.0
            touches = (x == 0) + (y == 0) + (x + bw == w) + 2 * (y + bh == h)  # bottom = far-field shadow
            size_ok = 1.0 if MIN_AREA <= share <= MAX_AREA else 0.5
            depth = 1.0 - 0.5 * max(0.0, (y + bh / 2) / h - 0.6)  # nodules sit in the gland, not deep
            score = min(1.0, contrast) * solidity ** 2 * size_ok * depth * 0.5 ** touches * min(1.0, share / 0.15) ** 0.5
            if score > best_score:
                best, best_score = comp.copy(), score
    if best is None:
        return None
    filled = np.zeros_like(best, dtype=np.uint8)
    contours, _ = cv2.findContours(best.view(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    cv2.drawContours(filled, contours, -1, 1, thickness=-1)  # fill bright specks inside the nodule
    return filled.view(bool), round(float(min(1.0, best_score)), 4)
