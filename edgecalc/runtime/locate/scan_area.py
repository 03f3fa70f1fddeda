"""Find the B-mode image rectangle(s) inside an ultrasound machine's screen frame.

A frame grabber delivers the whole screen: the B-mode image plus text, depth marks, a grey bar and
a probe icon. The nodule locator and the model must only see the B-mode image, so this module finds
it with classical image processing (numpy + OpenCV only, no torch, deterministic, ~1 ms):

1. shrink the frame to about 240 px on its long side (area averaging also softens speckle);
2. texture energy: local mean of |pixel - its 3x3 mean|. Speckle is busy everywhere; black
   background and flat UI panels (grey bar, uniform frames) score near zero;
3. threshold, then a morphological opening wider than a text line or a tick mark removes text,
   marks and icons, and a closing fills dark cysts and shadows inside the image;
4. connected components big enough to be an image (dual-window screens give two) are kept;
5. each component's bounding box is tightened with row/column projection profiles of the
   unsmoothed texture map, which drops text or bars glued to the image's side.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from edgecalc.data.preprocess import to_gray_u8

#: The long side of the working image; the frame is shrunk by an integer factor to about this.
WORK_SIZE = 240
#: Texture energy (grey levels) above which a pixel counts as image. Speckle gives 8-30,
#: black background 0, flat panels < 1.
ENERGY_THRESHOLD = 2.0
#: A component must cover this share of the frame to count as an image window...
MIN_AREA_FRACTION = 0.04
#: ...and at least this share of the largest component (so a probe icon never rides along).
MIN_AREA_OF_LARGEST = 0.2
#: A window is at least this share of the frame's width (narrower lit column runs are UI).
MIN_WINDOW_WIDTH = 0.15
#: A box edge sits where the lit share of the row/column drops below this.
EDGE_FILL = 0.5
#: Share of a column's top quarter that, lit, makes it image even when shadowed below.
TOP_FILL = 0.9
#: Grey levels above the screen's background (its 2nd percentile) that count as lit.
LIT_MARGIN = 2


@dataclass(frozen=True)
class ScanArea:
    """A B-mode image rectangle in frame pixels: columns x..x+w-1, rows y..y+h-1.

    ``score`` is the share of textured pixels inside the rectangle (1.0 = speckle throughout).
    """

    x: int
    y: int
    w: int
    h: int
    score: float = 1.0

    @property
    def box(self) -> tuple[int, int, int, int]:
        return (self.x, self.y, self.w, self.h)

    @property
    def area(self) -> int:
        return self.w * self.h

    def slice(self) -> tuple[slice, slice]:
        """``frame[area.slice()]`` is the B-mode image."""
        return (slice(self.y, self.y + self.h), slice(self.x, self.x + self.w))


def texture_energy(gray_small: np.ndarray, window: int) -> np.ndarray:
    """Local mean of the absolute 3x3 high-pass: high on speckle and strokes, ~0 on flat areas."""
    return cv2.boxFilter(_detail(gray_small), cv2.CV_32F, (window, window))


def _detail(gray: np.ndarray) -> np.ndarray:
    return cv2.absdiff(gray, cv2.blur(gray, (3, 3)))


def find_scan_areas(frame: np.ndarray) -> list[ScanArea]:
    """All B-mode image rectangles in a screen frame (gray or BGR/BGRA), sorted left to right.

    Returns [] for a frame without an ultrasound image (black, uniform, only UI).
    Raises ValueError for an input that is not an image (see ``to_gray_u8``).
    """
    gray = to_gray_u8(frame)
    h, w = gray.shape
    f = max(1, int(round(max(h, w) / WORK_SIZE)))
    small = cv2.resize(gray, (max(1, w // f), max(1, h // f)), interpolation=cv2.INTER_AREA) if f > 1 else gray
    sh, sw = small.shape
    if sh < 8 or sw < 8:
        return []
    unit = max(3, int(round(min(sh, sw) / 30)))  # ~6 px at 180 rows: a text line's height
    detail = _detail(small)
    seeds = _seed_boxes(detail, unit)
    if not seeds:
        return []
    level = _lit_level(small)
    lit = (small > level).view(np.uint8)
    seeds = [part for s in seeds for part in _split_columns(lit, *s)]
    boxes = [b for b in (_fit(lit, *s) for s in seeds) if b is not None]
    boxes = _merge_stacked(boxes)
    boxes = [b for b in (_fit(lit, *b) for b in boxes) if b is not None]
    boxes = _merge_stacked(boxes)  # a refit can make two boxes overlap
    if not boxes:
        return []
    largest = max((x1 - x0) * (y1 - y0) for x0, y0, x1, y1 in boxes)
    fine = cv2.boxFilter(detail, cv2.CV_32F, (3, 3)) > ENERGY_THRESHOLD
    lit_full = (gray > level).view(np.uint8) if f > 1 else lit
    out: list[ScanArea] = []
    for x0, y0, x1, y1 in boxes:
        if (x1 - x0) * (y1 - y0) < MIN_AREA_OF_LARGEST * largest:
            continue
        score = float(np.count_nonzero(fine[y0:y1, x0:x1])) / ((x1 - x0) * (y1 - y0))
        X0, Y0 = x0 * f, y0 * f
        X1 = w if x1 == sw else min(w, x1 * f)
        Y1 = h if y1 == sh else min(h, y1 * f)
        if f > 1:  # the working image rounds edges to f pixels; settle them at full resolution
            X0, Y0, X1, Y1 = _settle(lit_full, X0, Y0, X1, Y1, f + 1)
        out.append(ScanArea(X0, Y0, X1 - X0, Y1 - Y0, round(score, 4)))
    out.sort(key=lambda a: (a.x, a.y))
    return out


Box = tuple[int, int, int, int]  # x0, y0, x1, y1 (exclusive) in working pixels


def _seed_boxes(detail: np.ndarray, unit: int) -> list[Box]:
    """Bounding boxes of the big textured blobs: speckle survives an opening, text and marks do not."""
    sh, sw = detail.shape
    energy = cv2.boxFilter(detail, cv2.CV_32F, (2 * unit + 1, 2 * unit + 1))
    coarse = (energy > ENERGY_THRESHOLD).view(np.uint8)
    k_open = cv2.getStructuringElement(cv2.MORPH_RECT, (3 * unit, 3 * unit))
    k_close = cv2.getStructuringElement(cv2.MORPH_RECT, (2 * unit + 1, 2 * unit + 1))
    mask = cv2.morphologyEx(coarse, cv2.MORPH_OPEN, k_open)
    mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, k_close)
    n, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=4)
    out = []
    for x, y, bw, bh, area in stats[1:]:
        if area >= MIN_AREA_FRACTION * sh * sw:
            out.append((int(x), int(y), int(x + bw), int(y + bh)))
    return out


def _lit_level(small: np.ndarray) -> int:
    """Grey level above which a pixel is lit: the screen's background (2nd percentile) + a margin.

    Dim deep tissue and cysts stay mostly above it; the black screen around the image does not.
    """
    hist = cv2.calcHist([small], [0], None, [256], [0, 256]).ravel()
    return int(np.searchsorted(np.cumsum(hist), 0.02 * small.size)) + LIT_MARGIN


def _col_share(lit: np.ndarray, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
    """Lit share of each column, counting a column whose top band is lit as image.

    An acoustic shadow (behind a calcification, the trachea) can blacken a column from some depth
    down, but the near field above it is tissue; text and marks beside the image never fill a
    top band. So a column is in when half of it is lit, or TOP_FILL of its top quarter is.
    """
    full = cv2.reduce(lit[y0:y1, x0:x1], 0, cv2.REDUCE_SUM, dtype=cv2.CV_32S).ravel() / max(1, y1 - y0)
    yt = y0 + max(1, (y1 - y0) // 4)
    top = cv2.reduce(lit[y0:yt, x0:x1], 0, cv2.REDUCE_SUM, dtype=cv2.CV_32S).ravel() / max(1, yt - y0)
    return np.maximum(full, top * (EDGE_FILL / TOP_FILL))


def _row_share(lit: np.ndarray, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
    return cv2.reduce(lit[y0:y1, x0:x1], 1, cv2.REDUCE_SUM, dtype=cv2.CV_32S).ravel() / max(1, x1 - x0)


def _fit(lit: np.ndarray, x0: int, y0: int, x1: int, y1: int) -> Box | None:
    """Grow or shrink a box so each edge sits where the lit share of its row/column drops below half.

    Text, tick marks or a grey bar beside the image light only a small share of the image's height,
    so they stay outside; dim deep tissue is still mostly above the background level, so it is kept.
    """
    H, W = lit.shape
    for _ in range(3):  # columns depend on rows and back; a few rounds settle it
        before = (x0, y0, x1, y1)
        x0, x1 = _run(_col_share(lit, y0, y1, 0, W), x0, x1)
        if x1 <= x0:
            return None
        y0, y1 = _run(_row_share(lit, 0, H, x0, x1), y0, y1, span=True)
        if y1 <= y0:
            return None
        if (x0, y0, x1, y1) == before:
            break
    return x0, y0, x1, y1


def _split_columns(lit: np.ndarray, x0: int, y0: int, x1: int, y1: int) -> list[Box]:
    """Cut a seed at dark column gaps: two windows side by side can merge into one textured blob."""
    on = _col_share(lit, y0, y1, x0, x1) >= EDGE_FILL
    edges = np.flatnonzero(np.diff(np.concatenate(([0], on.view(np.int8), [0]))))
    min_w = max(2, int(MIN_WINDOW_WIDTH * lit.shape[1]))
    parts = [(x0 + int(a), y0, x0 + int(b), y1) for a, b in zip(edges[::2], edges[1::2]) if b - a >= min_w]
    return parts or [(x0, y0, x1, y1)]


def _run(profile: np.ndarray, a: int, b: int, span: bool = False) -> tuple[int, int]:
    """The longest run of profile >= EDGE_FILL that overlaps [a, b), as [start, end).

    With ``span``, from the first to the last run overlapping [a, b): rows crossed by a wide black
    cyst inside the textured blob are still image.
    """
    on = profile >= EDGE_FILL
    if not on[a:b].any():
        return a, a
    edges = np.flatnonzero(np.diff(np.concatenate(([0], on.view(np.int8), [0]))))
    starts, ends = edges[::2], edges[1::2]
    hit = (ends > a) & (starts < b)
    if span:
        return int(starts[hit][0]), int(ends[hit][-1])
    lens = np.where(hit, ends - starts, -1)
    i = int(np.argmax(lens))
    return int(starts[i]), int(ends[i])


def _settle(lit: np.ndarray, x0: int, y0: int, x1: int, y1: int, pad: int) -> Box:
    """Move each edge of a full-resolution box by at most ``pad`` pixels to where lit pixels end."""
    H, W = lit.shape
    a, b = max(0, x0 - pad), min(W, x0 + pad)
    x0 = a + _run_start(_col_share(lit, y0, y1, a, b), x0 - a)
    a, b = max(0, x1 - pad), min(W, x1 + pad)
    x1 = a + _run_end(_col_share(lit, y0, y1, a, b), x1 - a)
    a, b = max(0, y0 - pad), min(H, y0 + pad)
    y0 = a + _run_start(_row_share(lit, a, b, x0, x1), y0 - a)
    a, b = max(0, y1 - pad), min(H, y1 + pad)
    y1 = a + _run_end(_row_share(lit, a, b, x0, x1), y1 - a)
    return x0, y0, x1, y1


def _run_start(profile: np.ndarray, default: int) -> int:
    """Start of the lit run that ends the profile (an edge entering the image going right/down)."""
    on = profile >= EDGE_FILL
    if on.size == 0 or not on[-1]:
        return default
    off = np.flatnonzero(~on)
    return int(off[-1]) + 1 if off.size else 0


def _run_end(profile: np.ndarray, default: int) -> int:
    """End of the lit run that starts the profile (an edge leaving the image going right/down)."""
    on = profile >= EDGE_FILL
    if on.size == 0 or not on[0]:
        return default
    off = np.flatnonzero(~on)
    return int(off[0]) if off.size else on.size


def _merge_stacked(boxes: list[Box]) -> list[Box]:
    """Join boxes that share most of their columns: one image split by a black cyst or shadow.

    Screens put a second window beside the first, never under it, so boxes sharing columns are parts
    of one image.
    """
    boxes = sorted(boxes)
    merged = True
    while merged and len(boxes) > 1:
        merged = False
        for i in range(len(boxes)):
            for j in range(i + 1, len(boxes)):
                a, b = boxes[i], boxes[j]
                shared = min(a[2], b[2]) - max(a[0], b[0])
                if shared > 0.5 * min(a[2] - a[0], b[2] - b[0]):
                    boxes[i] = (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))
                    del boxes[j]
                    merged = True
                    break
            if merged:
                break
    return boxes


def largest_scan_area(frame: np.ndarray) -> ScanArea | None:
    """The biggest B-mode rectangle of a frame, or None when there is none."""
    areas = find_scan_areas(frame)
    return max(areas, key=lambda a: (a.area, -a.x)) if areas else None
