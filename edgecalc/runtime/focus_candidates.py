"""Focus candidates: the local maxima of a crop that stand out of their surroundings, with the features a
verifier (``edgecalc.runtime.focus_verifier``) needs to tell an echogenic focus from bright speckle, a
strand or a wall (numpy + OpenCV; no torch).

Why: the model sees its crop at 96 px and its mask misses dim foci (docs/quantification.md); the crop's
own pixels still show them. As in mammography's microcalcification detectors, candidates come first
(every local maximum of the smoothed gray, within ``NMS_MM`` of no brighter one, standing ``MIN_Z``
standard deviations above a ring ``RING_MM`` around it), then a verifier decides which are foci
(docs/quantification.md, "A second look at the crop's pixels").

Lengths are in millimetres; without a pixel spacing there are no candidates (the rings would have no
physical scale).
"""

from __future__ import annotations

import cv2
import numpy as np

SMOOTH_MM = 0.1  #: Gaussian sigma on the gray (a 3x3 blur at 0.08 mm/px, the phantom's focus test)
NMS_MM = 0.3  #: a candidate is the brightest pixel within this radius
RING_MM = (0.5, 1.5)  #: the near reference ring (the local test of docs/experiments/focus_visibility.py)
FAR_RING_MM = (1.5, 3.0)
MIN_Z = 1.0  #: a candidate stands this many ring standard deviations above the ring's mean
REACH_MM = 0.6  #: candidates lie in the nodule or this close to it
PATCH_MM = 1.0  #: half-side of the window each candidate's blob is measured in
SIDE_MM = (0.3, 1.2)  #: the bands above and below a candidate: this far (rows), +-SIDE_HALF_WIDTH_MM wide
SIDE_HALF_WIDTH_MM = 0.4
#: how far past the nodule's box ``candidates`` filters: the reach, the widest ring, a smoothing margin
MARGIN_MM = REACH_MM + FAR_RING_MM[1] + 1.0  # (> PATCH_MM + RING_MM[1] too: the blobs' windows)

#: The feature columns, in order (``y``, ``x``: the candidate's pixel, not for the verifier).
FEATURES = ("y", "x", "mm_per_px", "z_near", "z_far", "lift_nodule", "over_p99", "ratio_ring",
            "prob_peak", "prob_near", "area_half_mm2", "width_mm", "height_mm", "fill",
            "above_z", "below_z", "margin_mm", "n_near", "z_rank")


def _disc(radius: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))


def _ring_stats(g: np.ndarray, inner: int, outer: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation of ``g`` over a ring (inner..outer px) around every pixel."""
    k = _disc(outer).astype(np.float32)
    pad = outer - inner
    k[pad:pad + 2 * inner + 1, pad:pad + 2 * inner + 1] -= _disc(inner)
    k = np.maximum(k, 0)
    k /= k.sum()
    mean = cv2.filter2D(g, -1, k, borderType=cv2.BORDER_REFLECT)
    sq = cv2.filter2D(g * g, -1, k, borderType=cv2.BORDER_REFLECT)
    return mean, np.sqrt(np.maximum(sq - mean * mean, 1e-6))


def _band_mean(g: np.ndarray, y: np.ndarray, x: np.ndarray, d0: int, d1: int, hw: int, sign: int) -> np.ndarray:
    """Mean of ``g`` in the band d0..d1 rows above (sign -1) or below (+1) each point, +-hw columns."""
    H, W = g.shape
    ii = cv2.integral(g)
    ya, yb = (y - d1, y - d0 + 1) if sign < 0 else (y + d0, y + d1 + 1)
    ya, yb = np.clip(ya, 0, H), np.clip(yb, 0, H)
    xa, xb = np.clip(x - hw, 0, W), np.clip(x + hw + 1, 0, W)
    s = ii[yb, xb] - ii[ya, xb] - ii[yb, xa] + ii[ya, xa]
    n = (yb - ya) * (xb - xa)
    return np.where(n > 0, s / np.maximum(n, 1), np.nan)


def _blob(g: np.ndarray, y: int, x: int, level: float, r: int) -> tuple[np.ndarray, int, int]:
    """The pixels of ``g`` at or above ``level`` connected to (y, x), within ``r`` of it, and the window's
    top-left corner."""
    H, W = g.shape
    y0, y1, x0, x1 = max(0, y - r), min(H, y + r + 1), max(0, x - r), min(W, x + r + 1)
    _, pieces = cv2.connectedComponents((g[y0:y1, x0:x1] >= level).astype(np.uint8), connectivity=8)
    return pieces == pieces[y - y0, x - x0], y0, x0


def _smooth(gray: np.ndarray, mm_per_px: float) -> np.ndarray:
    g = gray.astype(np.float32)
    return cv2.GaussianBlur(g, (0, 0), SMOOTH_MM / mm_per_px) if SMOOTH_MM / mm_per_px > 0.25 else g


def _box(shape: tuple[int, int], ys: np.ndarray, xs: np.ndarray, margin: int) -> tuple[int, int, int, int]:
    """Rows y0:y1, columns x0:x1 holding every (ys, xs) and ``margin`` px around them, cut to ``shape``."""
    H, W = shape
    return (max(0, int(ys.min()) - margin), min(H, int(ys.max()) + margin + 1),
            max(0, int(xs.min()) - margin), min(W, int(xs.max()) + margin + 1))


def blobs_mask(gray: np.ndarray, peaks: np.ndarray, mm_per_px: float) -> np.ndarray:
    """The half-maximum blobs (bool, ``gray``'s shape) of the candidates at ``peaks`` (n x 2): what a
    verified candidate adds to the calcification mask. Filtered on the peaks' box and a margin wider
    than every window (``MARGIN_MM``), as ``candidates`` is: the blobs are those of the whole image."""
    out = np.zeros(np.shape(gray), bool)
    if len(peaks) == 0:
        return out
    y0, y1, x0, x1 = _box(out.shape, peaks[:, 0], peaks[:, 1], int(np.ceil(MARGIN_MM / mm_per_px)))
    out[y0:y1, x0:x1] = _blobs_mask(np.asarray(gray)[y0:y1, x0:x1], peaks - np.array([y0, x0]), mm_per_px)
    return out


def _blobs_mask(gray: np.ndarray, peaks: np.ndarray, mm_per_px: float) -> np.ndarray:
    g = _smooth(gray, mm_per_px)
    px = lambda mm: max(1, int(round(mm / mm_per_px)))  # noqa: E731
    near_mean, _ = _ring_stats(g, *(px(r) for r in RING_MM))
    out = np.zeros(g.shape, bool)
    for y, x in peaks:
        own, y0, x0 = _blob(g, int(y), int(x), (g[y, x] + near_mean[y, x]) / 2, px(PATCH_MM))
        out[y0:y0 + own.shape[0], x0:x0 + own.shape[1]] |= own
    return out


def candidates(gray: np.ndarray, prob: np.ndarray, nodule: np.ndarray, mm_per_px: float) -> tuple[np.ndarray, np.ndarray]:
    """The candidates' pixels (n x 2, row and column) and their features (n x len(FEATURES), float32)
    from a crop's gray (2-D uint8), the model's probabilities in its pixels (0 where it did not look)
    and the nodule's mask (bool).

    Only the nodule's box and a margin wider than every window (``MARGIN_MM``) are filtered: every
    window of a candidate lies inside it, so the figures are those of the whole image, at the cost of
    the nodule rather than of the frame."""
    nodule = np.asarray(nodule, bool)
    ys, xs = np.nonzero(nodule)
    if ys.size == 0:
        return np.zeros((0, 2), int), np.zeros((0, len(FEATURES)), np.float32)
    y0, y1, x0, x1 = _box(nodule.shape, ys, xs, int(np.ceil(MARGIN_MM / mm_per_px)))
    peaks, f = _candidates(gray[y0:y1, x0:x1], prob[y0:y1, x0:x1], nodule[y0:y1, x0:x1], mm_per_px)
    peaks = peaks + np.array([y0, x0])
    f[:, FEATURES.index("y")] += y0
    f[:, FEATURES.index("x")] += x0
    return peaks, f


def _candidates(gray: np.ndarray, prob: np.ndarray, nodule: np.ndarray, mm_per_px: float) -> tuple[np.ndarray, np.ndarray]:
    g = _smooth(gray, mm_per_px)
    px = lambda mm: max(1, int(round(mm / mm_per_px)))  # noqa: E731
    nod = nodule.astype(np.uint8)
    empty = np.zeros((0, 2), int), np.zeros((0, len(FEATURES)), np.float32)
    near_mean, near_std = _ring_stats(g, *(px(r) for r in RING_MM))
    far_mean, far_std = _ring_stats(g, *(px(r) for r in FAR_RING_MM))
    z = (g - near_mean) / near_std
    area = cv2.dilate(nod, _disc(px(REACH_MM))) > 0
    peak = (g >= cv2.dilate(g, _disc(px(NMS_MM)))) & area & (z >= MIN_Z)
    ys, xs = np.nonzero(peak)
    if ys.size == 0:
        return empty
    # one candidate per plateau: the first pixel of each connected group of equal maxima
    _, lab = cv2.connectedComponents(peak.astype(np.uint8), connectivity=8)
    _, first = np.unique(lab[ys, xs], return_index=True)
    first.sort()  # raster order: the labels' own order depends on the image's size (OpenCV's labelling)
    ys, xs = ys[first], xs[first]
    inside = g[nodule.astype(bool)]
    med, sd, p99 = float(np.median(inside)), float(inside.std()) + 1e-6, float(np.percentile(inside, 99))
    gp = g[ys, xs]
    prob_near = cv2.dilate(prob.astype(np.float32), _disc(px(0.5)))
    dist_in = cv2.distanceTransform(nod, cv2.DIST_L2, 5)
    dist_out = cv2.distanceTransform(1 - nod, cv2.DIST_L2, 5)
    margin = (dist_in - dist_out)[ys, xs] * mm_per_px
    d0, d1, hw = px(SIDE_MM[0]), px(SIDE_MM[1]), px(SIDE_HALF_WIDTH_MM)
    above = (_band_mean(g, ys, xs, d0, d1, hw, -1) - near_mean[ys, xs]) / near_std[ys, xs]
    below = (_band_mean(g, ys, xs, d0, d1, hw, +1) - near_mean[ys, xs]) / near_std[ys, xs]
    zc = z[ys, xs]
    strong = zc >= 3.0
    d = np.hypot(ys[:, None] - ys[None, :], xs[:, None] - xs[None, :]) * mm_per_px
    n_near = ((d <= 2.0) & strong[None, :]).sum(1) - strong
    rank = np.argsort(np.argsort(-zc)) / max(1, len(zc) - 1)
    # each candidate's blob: its pixels above half its lift over the ring, connected to it
    r = px(PATCH_MM)
    blob = np.zeros((len(ys), 4), np.float32)
    for i, (y, x) in enumerate(zip(ys, xs)):
        own, _, _ = _blob(g, int(y), int(x), (gp[i] + near_mean[y, x]) / 2, r)
        by, bx = np.nonzero(own)
        h, w = int(np.ptp(by)) + 1, int(np.ptp(bx)) + 1
        blob[i] = (own.sum() * mm_per_px ** 2, w * mm_per_px, h * mm_per_px, own.sum() / (w * h))
    feats = np.column_stack([
        ys, xs, np.full(len(ys), mm_per_px), zc, (gp - far_mean[ys, xs]) / far_std[ys, xs], (gp - med) / sd,
        gp - p99, gp / np.maximum(near_mean[ys, xs], 1.0), prob[ys, xs], prob_near[ys, xs], blob,
        np.nan_to_num(above), np.nan_to_num(below), margin, n_near, rank,
    ]).astype(np.float32)
    return np.column_stack([ys, xs]), feats
