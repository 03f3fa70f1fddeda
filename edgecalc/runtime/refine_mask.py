"""The calcification mask refined at the crop's native resolution before its components are measured
(numpy + OpenCV; no torch).

The ``lite`` model sees its crop at 96 px, so one model pixel spans 0.1-0.3 mm of a phantom crop, and
its mask, upsampled to the crop's pixels, is a blurred outline a model pixel or two wider than the
focus. The crop's own gray pixels, at full resolution, show the focus itself. The model's mask says
*where* calcification is; the gray pixels say how big it is (and, optionally, how many foci):

- **trim** (``trim_fraction``; the default): each component of the model's mask is cut to its pixels
  at least ``trim_fraction`` of the way from the local mean gray (a square window ``window_mm`` wide,
  the gray smoothed with a Gaussian of ``smooth_mm``) up to the component's brightest pixel, and of
  those to the connected piece holding that pixel: one component in, one out, so the count is the
  model's and the size, the shadow and the kind follow the focus (the "half maximum" outline of a
  blurred bright spot at ``trim_fraction`` 0.5); only where that brightest pixel stands
  ``trim_min_contrast`` local standard deviations above the local mean (elsewhere the pixels show no
  focus and the model's outline stays);
- **bright test** (``k`` set; measured, not adopted: docs/quantification.md): pixels of the region
  (probability > ``region_threshold``, dilated by ``dilate_mm``; with ``search_nodule`` the nodule's
  interior too) brighter than local mean + ``k`` × local standard deviation and than ``min_ratio`` ×
  local mean are added as calcification; a component found this way alone (touching no model pixel)
  must cover ``new_min_area_mm2`` and reach ``new_min_ratio`` × the region's median gray;
- **split** (``split_mm`` > 0; measured, not adopted): components split at separate intensity maxima
  at least ``split_mm`` apart (a marker watershed on the smoothed gray), before the trim;
- **new foci** (``verify``; on where the bundle carries a focus verifier): after the trim, the focus
  candidates the verifier keeps (``edgecalc.runtime.focus_verifier``) add their half-maximum blobs
  where they touch none of the mask's components.

Lengths are in millimetres. Without a pixel spacing the mask is left as the model drew it: the
windows would have no physical scale, and the parameters were chosen (on phantom seed 77 only, with
its spacing known) in millimetres.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import TYPE_CHECKING

import cv2
import numpy as np

if TYPE_CHECKING:
    from edgecalc.runtime.focus_verifier import FocusVerifier


@dataclass(frozen=True)
class Refinement:
    """Parameters of the native-resolution refinement (see the module docstring); the defaults are
    the adopted ones (phantom seed 77, docs/quantification.md)."""

    model_threshold: float = 0.5  #: the model's mask: probability above this
    trim_fraction: float = 0.6  #: 0: no trim
    #: trim only a component whose brightest pixel stands this many local standard deviations above
    #: the local mean (a focus out of the speckle); elsewhere the pixels say nothing of its size
    trim_min_contrast: float = 2.5
    window_mm: float = 6.0  #: local mean (and standard deviation) window
    smooth_mm: float = 0.2  #: Gaussian sigma on the gray before any test (0: none)
    k: float | None = None  #: bright test: local mean + k x std (None: no bright test)
    region_threshold: float = 0.3
    dilate_mm: float = 0.2
    min_ratio: float = 0.0
    search_nodule: bool = False
    new_min_area_mm2: float = 0.0
    new_min_ratio: float = 0.0
    split_mm: float = 0.0  #: 0: no split
    #: new foci from the bundle's focus verifier, where it has one (and the nodule and spacing are known)
    verify: bool = True

    def __post_init__(self) -> None:
        if not 0.0 < self.model_threshold < 1.0 or not 0.0 <= self.region_threshold < 1.0:
            raise ValueError(f"refinement thresholds must lie in (0, 1); got {self.model_threshold}, "
                             f"{self.region_threshold}")
        if not 0.0 <= self.trim_fraction < 1.0:
            raise ValueError(f"trim_fraction must lie in [0, 1); got {self.trim_fraction}")
        if self.window_mm <= 0 or min(self.dilate_mm, self.smooth_mm, self.split_mm, self.min_ratio,
                                      self.new_min_area_mm2, self.new_min_ratio, self.trim_min_contrast) < 0:
            raise ValueError(f"refinement lengths and ratios must be >= 0 (the window > 0); got {self}")

    @classmethod
    def parse(cls, text: str) -> "Refinement | None":
        """``off`` -> None; ``default`` -> the defaults; ``name=value,...`` -> the defaults with those
        fields changed (``k=none`` for no bright test). ValueError naming the bad field."""
        text = text.strip()
        if text == "off":
            return None
        if text in ("", "default", "on"):
            return cls()
        types = {f.name: f.type for f in fields(cls)}
        kw: dict = {}
        for item in text.split(","):
            name, sep, value = item.partition("=")
            name, value = name.strip(), value.strip()
            if not sep or name not in types:
                raise ValueError(f"refinement: {item!r} is not name=value with a name among {', '.join(types)}")
            if name in ("search_nodule", "verify"):
                if value.lower() not in ("true", "false", "1", "0"):
                    raise ValueError(f"refinement: {name} must be true or false; got {value!r}")
                kw[name] = value.lower() in ("true", "1")
            elif name == "k" and value.lower() == "none":
                kw[name] = None
            else:
                try:
                    kw[name] = float(value)
                except ValueError:
                    raise ValueError(f"refinement: {name} must be a number; got {value!r}") from None
        return cls(**kw)


#: What ``analyze`` and ``live`` use (``FramePipeline.refinement``); None would count the model's mask as it is.
DEFAULT_REFINEMENT: Refinement | None = Refinement()


def _px(mm: float, mm_per_px: float) -> int:
    return int(round(mm / mm_per_px))


def _disc(radius: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))


def refine_mask(gray: np.ndarray, prob: np.ndarray, spacing_mm: tuple[float, float] | None,
                params: Refinement, nodule: np.ndarray | None = None,
                verifier: "FocusVerifier | None" = None) -> np.ndarray:
    """The refined calcification mask (bool, ``gray``'s shape) from the crop's gray (2-D uint8) and the
    model's probabilities upsampled to the same pixels (float, 0 where the model did not look);
    ``nodule`` (bool, the same shape) is searched too where ``params.search_nodule``, and for new foci
    where ``verifier`` is given and ``params.verify``. Without ``spacing_mm`` (x, y mm per pixel), the
    model's mask unchanged."""
    refined = _refine(gray, prob, spacing_mm, params, nodule)
    if verifier is not None and params.verify and spacing_mm is not None and nodule is not None:
        refined = verifier.add_new_foci(refined, np.asarray(gray), np.asarray(prob, dtype=np.float32),
                                        np.asarray(nodule, bool), float(np.mean(spacing_mm)))
    return refined


def _refine(gray: np.ndarray, prob: np.ndarray, spacing_mm: tuple[float, float] | None,
            params: Refinement, nodule: np.ndarray | None) -> np.ndarray:
    """The model's mask trimmed (and bright-tested, split) as ``params`` says: ``refine_mask`` before new foci."""
    gray = np.asarray(gray)
    prob = np.asarray(prob, dtype=np.float32)
    if gray.ndim != 2 or prob.shape != gray.shape:
        raise ValueError(f"refine_mask needs a 2-D gray image and a probability map of its shape; "
                         f"got {gray.shape} and {prob.shape}")
    model = prob > params.model_threshold
    if spacing_mm is None:
        return model
    mm = float(np.mean(spacing_mm))
    region = model.astype(np.uint8)
    if params.k is not None:
        region = (prob > params.region_threshold).astype(np.uint8)
        dil = _px(params.dilate_mm, mm)
        if dil > 0 and region.any():
            region = cv2.dilate(region, _disc(dil))
        if params.search_nodule and nodule is not None:
            region |= np.asarray(nodule).astype(np.uint8)
    if not region.any():
        return model
    # work on the region's box and a window around it only: the cost follows the foci, not the frame
    win = max(3, _px(params.window_mm, mm) | 1)
    ys, xs = np.nonzero(region)
    H, W = gray.shape
    y0, y1 = max(0, int(ys.min()) - win), min(H, int(ys.max()) + win + 1)
    x0, x1 = max(0, int(xs.min()) - win), min(W, int(xs.max()) + win + 1)
    g = gray[y0:y1, x0:x1].astype(np.float32)
    if params.smooth_mm / mm > 0.25:
        g = cv2.GaussianBlur(g, (0, 0), params.smooth_mm / mm)
    mean = cv2.blur(g, (win, win), borderType=cv2.BORDER_REFLECT)
    sub = model[y0:y1, x0:x1].copy()
    if params.k is not None:
        inside = region[y0:y1, x0:x1] > 0
        std = np.sqrt(np.maximum(cv2.blur(g * g, (win, win), borderType=cv2.BORDER_REFLECT) - mean * mean, 0.0))
        bright = inside & (g > mean + params.k * std) & (g > params.min_ratio * mean)
        if params.new_min_area_mm2 > 0 or params.new_min_ratio > 0:
            bright = _filter_new(bright, g, sub, inside, params, mm)
        sub |= bright
    if params.split_mm > 0 and sub.any():
        sub = _split_at_maxima(g, sub, max(1, _px(params.split_mm, mm)))
    if params.trim_fraction > 0 and sub.any():
        floor = None
        if params.trim_min_contrast > 0:
            std = np.sqrt(np.maximum(cv2.blur(g * g, (win, win), borderType=cv2.BORDER_REFLECT) - mean * mean, 0.0))
            floor = params.trim_min_contrast * std
        sub = _trim(sub, g, mean, params.trim_fraction, floor)
    out = np.zeros(gray.shape, bool)
    out[y0:y1, x0:x1] = sub
    return out


def _trim(mask: np.ndarray, g: np.ndarray, mean: np.ndarray, fraction: float,
          floor: np.ndarray | None = None) -> np.ndarray:
    """Each component of ``mask`` cut to its pixels with g - mean >= fraction x (that lift at its
    brightest pixel), and of those to the connected piece holding that pixel: one component in, one out
    (a component whose brightest pixel lifts no more than ``floor`` there, or not at all, is kept whole)."""
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    out = np.zeros_like(mask)
    for i in range(1, n):
        x, y, w, h = (int(v) for v in stats[i, :4])
        own = labels[y:y + h, x:x + w] == i
        lift = g[y:y + h, x:x + w] - mean[y:y + h, x:x + w]
        peak = np.unravel_index(int(np.argmax(np.where(own, g[y:y + h, x:x + w], -np.inf))), own.shape)
        top = float(lift[peak])
        if top <= 0 or (floor is not None and top < float(floor[y:y + h, x:x + w][peak])):
            out[y:y + h, x:x + w] |= own
            continue
        keep = own & (lift >= fraction * top)
        _, pieces = cv2.connectedComponents(keep.astype(np.uint8), connectivity=8)
        out[y:y + h, x:x + w] |= pieces == pieces[peak]
    return out


def _filter_new(bright: np.ndarray, g: np.ndarray, model: np.ndarray, inside: np.ndarray, params: Refinement,
                mm: float) -> np.ndarray:
    """``bright`` without its components that touch no model pixel and are too small or too faint."""
    n, labels, stats, _ = cv2.connectedComponentsWithStats(bright.astype(np.uint8), connectivity=8)
    if n <= 1:
        return bright
    touch = np.zeros(n, bool)
    touch[np.unique(labels[model & bright])] = True
    area = stats[:, cv2.CC_STAT_AREA]
    ref = float(np.median(g[inside])) if inside.any() else 0.0
    mean_gray = np.bincount(labels.ravel(), weights=g.ravel(), minlength=n) / np.maximum(area, 1)
    keep = touch | ((area * mm * mm >= params.new_min_area_mm2) & (mean_gray >= params.new_min_ratio * ref))
    keep[0] = False
    return keep[labels]


def _split_at_maxima(g: np.ndarray, mask: np.ndarray, sep_px: int) -> np.ndarray:
    """``mask`` less the watershed lines between its separate intensity maxima.

    A maximum is a mask pixel equal to the largest gray within ``sep_px`` of it; one marker per
    connected group of such pixels; the watershed of the gray floods from them inside the mask, and
    line pixels (label -1) between two basins leave the mask, so touching foci come apart.
    """
    peaks = (g >= cv2.dilate(g, _disc(sep_px))) & mask
    n_peaks, markers = cv2.connectedComponents(peaks.astype(np.uint8), connectivity=8)
    if n_peaks <= 2:  # one maximum (or none) in the whole mask: nothing to split
        return mask
    markers = markers.astype(np.int32) + 1  # 1: background, 2..: the maxima
    markers[~mask] = 1
    markers[mask & ~peaks] = 0  # to be flooded
    lo, hi = float(g.min()), float(g.max())
    img = np.zeros(g.shape, np.uint8) if hi <= lo else (255.0 * (hi - g) / (hi - lo)).astype(np.uint8)
    cv2.watershed(cv2.cvtColor(img, cv2.COLOR_GRAY2BGR), markers)
    # a line pixel touching one basin only lies between that basin and the background: it stays
    basin = np.where(markers > 1, markers, 0).astype(np.float32)
    top = cv2.dilate(basin, np.ones((3, 3), np.uint8))
    bottom = -cv2.dilate(np.where(markers > 1, -basin, np.float32(-1e9)), np.ones((3, 3), np.uint8))
    edge_only = (markers == -1) & (top > 0) & (top == bottom)
    return mask & ((markers > 1) | edge_only)
