"""Calcification quantification: each calcification of a predicted mask, measured and named, and the
nodule's ACR TI-RADS echogenic-foci points (numpy + OpenCV; no torch).

A radiologist reports the echogenic foci of a nodule, not a score: how many, how large, which kind.
Each 8-connected component of the calcification mask is one calcification. Per component:

- **area** (mm², or px where no spacing is known) and **longest diameter** (the maximum Feret
  diameter of its pixel squares, with the x and y spacing applied separately: spacing may be
  anisotropic);
- **posterior acoustic shadowing**: ``shadow_ratio`` = mean gray of the pixels *below* the component
  (a band ``SHADOW_DEPTH_MM`` deep, starting ``SHADOW_GAP_MM`` under its lowest row, over its columns)
  divided by the mean gray of the pixels *beside* that band (the same rows, a band as wide as the
  component on each side), calcification pixels left out. 1 = no shadow; the component shadows when
  the ratio is at most ``SHADOW_MAX_RATIO``. None when either band has too few pixels (the component
  sits at the bottom or side edge of the image);
- **the nodule's own**: with the nodule known, a component counts only when at least
  ``NODULE_MIN_SHARE`` of its pixels lie inside the nodule or within ``NODULE_REACH_MM`` outside it
  (a mask over the capsule, a vessel wall or the skin line beside the nodule is not one of its foci:
  the issue quantifies "the predicted mask inside the nodule"); the reach keeps a rim drawn just
  outside an outline that misses the margin by a pixel or two;
- **margin share** and **arc**: the share of its pixels within ``RIM_BAND_MM`` of the nodule's
  margin, and the angle (degrees, about the nodule's centroid) its pixels cover;
- **kind**, in this order: ``rim`` (margin share >= ``RIM_MIN_MARGIN_SHARE`` and arc >=
  ``RIM_MIN_ARC_DEG``; needs the nodule); else ``macro`` when longer than ``MACRO_MIN_MM`` (coarse
  whatever its shadow), or longer than ``PUNCTATE_MAX_MM`` *and* shadowing; else ``punctate``; and
  ``unknown`` where no spacing is known (the millimetres decide; no spacing is ever invented).
  So a focus of at most 1 mm without shadow is punctate and one over 1 mm with a shadow is macro,
  as the definitions say; of the cases they leave open, a focus of at most 1 mm is punctate even
  with a dark band below it (below a millimetre the band is mostly a neighbour's shadow), and one
  between 1 and ``MACRO_MIN_MM`` without a shadow is punctate (the mask measures a focus a pixel or
  two long, 0.1-0.2 mm: there the shadow tells better than the size).

Sources. The categories and points are the ACR TI-RADS white paper's (Tessler FN et al., "ACR
Thyroid Imaging, Reporting and Data System (TI-RADS): White Paper of the ACR TI-RADS Committee",
J Am Coll Radiol 2017;14:587-595): echogenic foci score none or large comet-tail artifacts 0,
macrocalcifications (coarse, with acoustic shadowing) 1, peripheral (rim) calcifications 2,
punctate echogenic foci (smaller than macrocalcifications, non-shadowing) 3, and the points of
several kinds add. The white paper gives no millimetre cut between punctate and macro; the 1 mm
(``PUNCTATE_MAX_MM``) is the microcalcification size convention the kit's issue 17 adopts. The
shadow, rim and arc thresholds are image-analysis choices of this kit, set on phantom seeds other
than the evaluation's and checked against its truth (docs/quantification.md), not clinical values.
Large comet-tail artifacts are not detected (the model has no such class): they never score 0 here
by that route.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import cv2
import numpy as np

from edgecalc.data.measure import longest_diameter
from edgecalc.data.preprocess import to_gray_u8
from edgecalc.runtime.refine_mask import Refinement, refine_mask

if TYPE_CHECKING:
    from edgecalc.runtime.focus_verifier import FocusVerifier

#: (x, y): millimetres per pixel along a row (column spacing) and along a column (row spacing).
Spacing = tuple[float, float]
Box = tuple[int, int, int, int]  # x, y, w, h

#: Longest diameter (mm) up to which a focus is punctate (micro); above it, macro when it shadows.
PUNCTATE_MAX_MM = 1.0
#: Longest diameter (mm) above which a focus is macro, shadow or not (set on the phantom, see above).
MACRO_MIN_MM = 1.5
#: Shadow band: its depth below the component and the gap left under the component's lowest row
#: (the echo's axial blur), in mm; without spacing, in multiples of the component's height.
SHADOW_DEPTH_MM = 2.0
SHADOW_GAP_MM = 0.3
SHADOW_DEPTH_NO_SPACING = 2.0
#: below / beside mean gray at or under which a component shadows (phantom-set, see the docstring).
SHADOW_MAX_RATIO = 0.7
#: Components smaller than this are mask noise, not calcifications: mm² with spacing, else pixels.
MIN_AREA_MM2 = 0.03
MIN_AREA_PX = 2
#: Fewest pixels each shadow band needs for a ratio.
SHADOW_MIN_PIXELS = 6
#: Rim: distance (mm) from the nodule's margin, inside or out, that counts as "along the margin";
#: without spacing, this share of the nodule's equivalent diameter.
RIM_BAND_MM = 1.2
RIM_BAND_FRACTION = 0.1
RIM_MIN_MARGIN_SHARE = 0.6
RIM_MIN_ARC_DEG = 30.0
#: A component is the nodule's when this share of its pixels lies inside the nodule or within
#: NODULE_REACH_MM outside it (without spacing: RIM_BAND_FRACTION of its equivalent diameter); None
#: turns the test off. Set on phantom seed 77 (docs/quantification.md, "Foci outside the nodule").
NODULE_REACH_MM: float | None = 1.2
NODULE_MIN_SHARE = 0.5

KINDS = ("punctate", "macro", "rim", "unknown")
#: ACR TI-RADS echogenic-foci points per kind (Tessler et al. 2017); none (or comet tails) = 0.
EF_POINTS = {"punctate": 3, "rim": 2, "macro": 1}


@dataclass(frozen=True)
class Calcification:
    """One connected component of the calcification mask, in the image's pixels and, with spacing, in mm."""

    centroid: tuple[float, float]  #: (x, y) in image pixels
    box: Box
    area_px: int
    longest_px: float  #: longest diameter in pixels (with anisotropic spacing: of the mm-longest chord)
    area_mm2: float | None
    longest_mm: float | None
    shadow_ratio: float | None
    shadowing: bool | None
    margin_share: float | None
    arc_deg: float | None
    kind: str

    def to_dict(self) -> dict:
        d = asdict(self)
        for k, v in d.items():
            if isinstance(v, float):
                d[k] = round(v, 4)
        d["centroid"] = [round(float(v), 2) for v in self.centroid]
        d["box"] = list(self.box)
        return d


@dataclass(frozen=True)
class NoduleFoci:
    """Every calcification of one nodule and the nodule's echogenic-foci summary."""

    calcifications: tuple[Calcification, ...]
    spacing_mm: Spacing | None

    @property
    def units(self) -> str:
        """'mm' when sizes are physical, 'px' when no spacing is known."""
        return "px" if self.spacing_mm is None else "mm"

    @property
    def count(self) -> int:
        return len(self.calcifications)

    @property
    def largest(self) -> float | None:
        """The longest diameter of the largest calcification, in ``units``; None when there is none."""
        if not self.calcifications:
            return None
        return max(c.longest_px if self.spacing_mm is None else c.longest_mm for c in self.calcifications)

    @property
    def kinds(self) -> tuple[str, ...]:
        """The distinct kinds present, in ``KINDS`` order."""
        present = {c.kind for c in self.calcifications}
        return tuple(k for k in KINDS if k in present)

    @property
    def points(self) -> int | None:
        """ACR TI-RADS echogenic-foci points (kinds add); None when a calcification's kind is unknown."""
        return tirads_points(self.kinds)

    def to_dict(self) -> dict:
        return {"count": self.count, "units": self.units, "largest": None if self.largest is None else round(self.largest, 4),
                "kinds": list(self.kinds), "tirads_ef_points": self.points,
                "spacing_mm": None if self.spacing_mm is None else list(self.spacing_mm),
                "calcifications": [c.to_dict() for c in self.calcifications]}


NO_FOCI = NoduleFoci((), None)


def tirads_points(kinds) -> int | None:
    """Echogenic-foci points of a set of kinds: each distinct kind's points added; None if one is unknown."""
    kinds = set(kinds)
    if "unknown" in kinds:
        return None
    return sum(EF_POINTS[k] for k in kinds)


def check_spacing(spacing_mm) -> Spacing | None:
    """``(x, y)`` mm per pixel as floats, or None; ValueError for anything not two positive finite numbers."""
    if spacing_mm is None:
        return None
    try:
        sx, sy = (float(v) for v in spacing_mm)
    except (TypeError, ValueError):
        raise ValueError(f"pixel spacing must be (x_mm, y_mm); got {spacing_mm!r}") from None
    if not (np.isfinite(sx) and np.isfinite(sy) and sx > 0 and sy > 0):
        raise ValueError(f"pixel spacing must be positive and finite; got {spacing_mm!r}")
    return sx, sy


def shadow_ratio(gray: np.ndarray, calc: np.ndarray, box: Box, depth_px: int, gap_px: int) -> float | None:
    """Mean gray below the box (``gap_px`` under it, ``depth_px`` deep) over the mean beside that band.

    ``calc`` (bool, like ``gray``) marks calcification pixels, which count in neither band. None when
    a band has fewer than ``SHADOW_MIN_PIXELS`` usable pixels.
    """
    H, W = gray.shape
    x, y, w, h = box
    top = y + h + gap_px
    bot = min(H, top + max(1, depth_px))
    if bot <= top:
        return None
    rows = slice(top, bot)

    def mean(x0: int, x1: int) -> tuple[float, int]:
        x0, x1 = max(0, x0), min(W, x1)
        if x1 <= x0:
            return 0.0, 0
        keep = ~calc[rows, x0:x1]
        n = int(np.count_nonzero(keep))
        return (float(gray[rows, x0:x1][keep].sum()), n)

    below, nb = mean(x, x + w)
    side = max(w, 2)
    left, nl = mean(x - gap_px - side, x - gap_px)
    right, nr = mean(x + w + gap_px, x + w + gap_px + side)
    if nb < SHADOW_MIN_PIXELS or nl + nr < SHADOW_MIN_PIXELS:
        return None
    beside = (left + right) / (nl + nr)
    return float(below / nb / max(beside, 1.0))


def ellipse_in_box(shape: tuple[int, int], box: Box) -> np.ndarray:
    """The ellipse inscribed in ``box`` as a bool mask: the nodule's outline when only its box is known."""
    x, y, w, h = (int(v) for v in box)
    out = np.zeros(shape, np.uint8)
    if w > 0 and h > 0:
        cv2.ellipse(out, ((x + w / 2.0 - 0.5, y + h / 2.0 - 0.5), (float(w), float(h)), 0.0), 1, -1)
    return out.astype(bool)


def _arc_degrees(ys: np.ndarray, xs: np.ndarray, cy: float, cx: float) -> float:
    """The angle (degrees) about (cx, cy) the pixels cover: 360 minus the largest empty gap."""
    ang = np.sort(np.degrees(np.arctan2(ys + 0.5 - cy, xs + 0.5 - cx)))
    if ang.size < 2:
        return 0.0
    gaps = np.diff(np.concatenate([ang, ang[:1] + 360.0]))
    return float(360.0 - gaps.max())


class _Margin:
    """Distance to a nodule's margin near each component, the nodule's centroid and the rim band width.

    The distance transforms run on each component's box grown by the band (plus the transform's own
    reach), not on the whole window: the band test only asks whether a margin pixel lies within
    ``band_px`` of a component pixel, and any such pixel lies inside that grown box, so the share is
    the whole-window figure (``tests/test_quantify.py`` checks it) at a fraction of the cost per frame.
    """

    def __init__(self, nodule: np.ndarray, spacing: Spacing | None) -> None:
        self.nod = nodule.astype(np.uint8)
        m = cv2.moments(self.nod, binaryImage=True)
        self.cy, self.cx = m["m01"] / m["m00"] + 0.5, m["m10"] / m["m00"] + 0.5
        if spacing is not None:
            self.band_px = RIM_BAND_MM / float(np.mean(spacing))
        else:
            self.band_px = RIM_BAND_FRACTION * float(np.sqrt(4.0 * m["m00"] / np.pi))
        #: the nodule test's reach in pixels (without spacing: the rim band's share of the diameter)
        self.reach_px = None if NODULE_REACH_MM is None else \
            NODULE_REACH_MM / float(np.mean(spacing)) if spacing is not None else self.band_px

    def distances(self, y0: int, y1: int, x0: int, x1: int, reach_px: float | None = None) -> np.ndarray:
        """Distance (px) of every pixel of rows y0:y1, columns x0:x1 to the margin, valid up to
        ``reach_px`` (default ``band_px``)."""
        pad = int(np.ceil(self.band_px if reach_px is None else reach_px)) + 3
        H, W = self.nod.shape
        wy0, wy1, wx0, wx1 = max(0, y0 - pad), min(H, y1 + pad), max(0, x0 - pad), min(W, x1 + pad)
        nod = self.nod[wy0:wy1, wx0:wx1]
        inside = cv2.distanceTransform(nod, cv2.DIST_L2, 5)
        outside = cv2.distanceTransform(1 - nod, cv2.DIST_L2, 5)
        return np.where(nod > 0, inside, outside)[y0 - wy0:y1 - wy0, x0 - wx0:x1 - wx0]

    def belongs(self, ys: np.ndarray, xs: np.ndarray) -> bool:
        """Whether a component is the nodule's: ``NODULE_MIN_SHARE`` of its pixels inside it or within the reach."""
        if self.reach_px is None:
            return True
        inside = self.nod[ys, xs] > 0
        if inside.mean() >= NODULE_MIN_SHARE:
            return True
        y0, x0 = int(ys.min()), int(xs.min())
        dist = self.distances(y0, int(ys.max()) + 1, x0, int(xs.max()) + 1, self.reach_px)[ys - y0, xs - x0]
        return float(np.mean(inside | (dist <= self.reach_px))) >= NODULE_MIN_SHARE

    def measure(self, ys: np.ndarray, xs: np.ndarray) -> tuple[float, float]:
        y0, x0 = int(ys.min()), int(xs.min())
        dist = self.distances(y0, int(ys.max()) + 1, x0, int(xs.max()) + 1)
        share = float(np.mean(dist[ys - y0, xs - x0] <= self.band_px))
        return share, _arc_degrees(ys, xs, self.cy, self.cx)


def classify(longest_mm: float | None, shadowing: bool | None, margin_share: float | None, arc_deg: float | None) -> str:
    """The kind of one calcification from its measurements (rules in the module docstring)."""
    if margin_share is not None and arc_deg is not None and margin_share >= RIM_MIN_MARGIN_SHARE \
            and arc_deg >= RIM_MIN_ARC_DEG:
        return "rim"
    if longest_mm is None:
        return "unknown"
    if longest_mm > MACRO_MIN_MM or (longest_mm > PUNCTATE_MAX_MM and shadowing):
        return "macro"
    return "punctate"


def quantify(gray: np.ndarray, mask: np.ndarray, nodule: np.ndarray | Box | None = None,
             spacing_mm: Spacing | None = None, origin: tuple[int, int] = (0, 0), min_area_px: int | None = None) -> NoduleFoci:
    """Measure every calcification of ``mask`` (bool, same shape as the 2-D uint8 ``gray``).

    ``nodule``: the nodule's mask (same shape), or its box (x, y, w, h) in these pixels (its inscribed
    ellipse stands for the outline), or None (no rim test). ``spacing_mm``: (x, y) mm per pixel, or
    None (sizes in pixels; kinds needing millimetres are "unknown"). ``origin`` is added to reported
    positions (the array's place in a larger frame). Components smaller than ``min_area_px`` are noise
    (default: ``MIN_AREA_MM2`` with spacing, ``MIN_AREA_PX`` without).
    """
    spacing = check_spacing(spacing_mm)
    gray = np.asarray(gray)
    mask = np.asarray(mask).astype(bool)
    if gray.ndim != 2 or mask.shape != gray.shape:
        raise ValueError(f"quantify needs a 2-D gray image and a mask of its shape; got {gray.shape} and {mask.shape}")
    if not mask.any():
        return NoduleFoci((), spacing)
    if nodule is not None and not isinstance(nodule, np.ndarray):
        nodule = ellipse_in_box(gray.shape, nodule)
    margin = _Margin(nodule, spacing) if nodule is not None and np.asarray(nodule).any() else None
    sx, sy = spacing if spacing is not None else (1.0, 1.0)
    if min_area_px is None:
        min_area_px = max(1, int(np.ceil(MIN_AREA_MM2 / (sx * sy)))) if spacing is not None else MIN_AREA_PX
    # the components of the mask's bounding box only: the same components in the same raster order, and
    # on a live frame's window several times faster than labelling the whole window
    bx, by, bw, bh = cv2.boundingRect(mask.view(np.uint8))
    n, labels, stats, cents = cv2.connectedComponentsWithStats(mask[by:by + bh, bx:bx + bw].view(np.uint8), connectivity=8)
    stats[:, 0] += bx
    stats[:, 1] += by
    cents = cents + (bx, by)
    ox, oy = int(origin[0]), int(origin[1])
    found = []
    for i in range(1, n):
        x, y, w, h, area = (int(v) for v in stats[i])
        if area < min_area_px:
            continue
        ys, xs = np.nonzero(labels[y - by:y - by + h, x - bx:x - bx + w] == i)
        ys, xs = ys + y, xs + x
        if margin is not None and not margin.belongs(ys, xs):
            continue
        longest, longest_px = longest_diameter(ys, xs, sx, sy)
        if spacing is not None:
            depth, gap = int(round(SHADOW_DEPTH_MM / sy)), int(round(SHADOW_GAP_MM / sy))
        else:
            depth, gap = int(round(SHADOW_DEPTH_NO_SPACING * h)), 1
        ratio = shadow_ratio(gray, mask, (x, y, w, h), max(depth, 2), max(gap, 1))
        shadowing = None if ratio is None else ratio <= SHADOW_MAX_RATIO
        share, arc = margin.measure(ys, xs) if margin is not None else (None, None)
        longest_mm = longest if spacing is not None else None
        found.append(Calcification(
            centroid=(float(cents[i][0]) + ox, float(cents[i][1]) + oy), box=(x + ox, y + oy, w, h), area_px=area,
            longest_px=longest_px, area_mm2=area * sx * sy if spacing is not None else None, longest_mm=longest_mm,
            shadow_ratio=ratio, shadowing=shadowing, margin_share=share, arc_deg=arc,
            kind=classify(longest_mm, shadowing, share, arc)))
    found.sort(key=lambda c: -c.area_px)
    return NoduleFoci(tuple(found), spacing)


def quantify_in_frame(gray: np.ndarray, mask_values: np.ndarray, mask_origin: tuple[int, int],
                      nodule: np.ndarray | Box | None, spacing_mm: Spacing | None,
                      limit: Box | None = None, min_area_px: int | None = None, *,
                      prob: np.ndarray | None = None, refinement: Refinement | None = None,
                      verifier: "FocusVerifier | None" = None) -> NoduleFoci:
    """``quantify`` on the part of a frame the crop's mask covers, extended downward by the shadow band.

    ``mask_values`` (bool) lies in the frame with its top-left pixel at ``mask_origin`` (a CropMap);
    ``nodule`` is a frame-sized mask or a box in frame pixels; ``limit`` (x, y, w, h, e.g. the scan
    area) keeps the shadow band off the screen's furniture. Nothing frame-sized is allocated, so the
    live loop can call it on every frame. With ``refinement`` and ``prob`` (the model's probabilities,
    ``mask_values``' shape and place), the components counted are those of the mask refined on the
    frame's own pixels (``edgecalc.runtime.refine_mask``) instead of ``mask_values``, with the new
    foci of ``verifier`` (``edgecalc.runtime.focus_verifier``) where it is given.
    """
    spacing = check_spacing(spacing_mm)
    H, W = gray.shape[:2]
    mh, mw = mask_values.shape[:2]
    x0, y0 = int(mask_origin[0]), int(mask_origin[1])
    lx0, ly0, lx1, ly1 = (0, 0, W, H) if limit is None else (limit[0], limit[1], limit[0] + limit[2], limit[1] + limit[3])
    extra = int(np.ceil((SHADOW_DEPTH_MM + SHADOW_GAP_MM) / spacing[1])) if spacing is not None else mh
    side = max(2, mw // 4)
    wx0, wx1 = max(lx0, x0 - side), min(lx1, W, x0 + mw + side)
    wy0, wy1 = max(ly0, y0), min(ly1, H, y0 + mh + extra)
    if wx1 <= wx0 or wy1 <= wy0:
        return NoduleFoci((), spacing)
    win = np.zeros((wy1 - wy0, wx1 - wx0), bool)
    sub = mask_values.astype(bool)[max(0, wy0 - y0):wy1 - y0, max(0, wx0 - x0):wx1 - x0]
    place = (slice(max(0, y0 - wy0), max(0, y0 - wy0) + sub.shape[0]),
             slice(max(0, x0 - wx0), max(0, x0 - wx0) + sub.shape[1]))
    win[place] = sub
    if isinstance(nodule, np.ndarray):
        nod = nodule[wy0:wy1, wx0:wx1].astype(bool)
    elif nodule is not None:
        nod = (int(nodule[0]) - wx0, int(nodule[1]) - wy0, int(nodule[2]), int(nodule[3]))
    else:
        nod = None
    gray_win = to_gray_u8(gray[wy0:wy1, wx0:wx1])
    if refinement is not None and prob is not None:
        if prob.shape[:2] != mask_values.shape[:2]:
            raise ValueError(f"prob {prob.shape} must have the mask's shape {mask_values.shape}")
        p = np.zeros(win.shape, np.float32)
        p[place] = prob[max(0, wy0 - y0):wy1 - y0, max(0, wx0 - x0):wx1 - x0]
        search = None
        if refinement.search_nodule or (verifier is not None and refinement.verify):
            search = nod if isinstance(nod, np.ndarray) or nod is None else ellipse_in_box(win.shape, nod)
        win = refine_mask(gray_win, p, spacing, refinement, search, verifier)
    return quantify(gray_win, win, nod, spacing, origin=(wx0, wy0), min_area_px=min_area_px)
