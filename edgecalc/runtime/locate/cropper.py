"""Where the nodule crop comes from on each frame: a fixed ROI, a box drawn by hand, or a locator.

The model was trained on the paper's crops (the smallest square holding the nodule), so every mode
ends in `square_crop`. The automatic mode finds the scan area and the nodule every `every` frames
(the rest reuse the last box: the nodule moves slowly under the probe) and smooths the box over
time with an EMA so the crop, and with it the mask, does not jitter. A manual box overrides the
locator until it is cleared.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from edgecalc.runtime.locate.tracker import BoxTracker, moved
from edgecalc.runtime.locate.crop_geometry import Box, square_crop


@dataclass
class CropDecision:
    """The crop for one frame: square (x, y, side, side) in frame pixels, the nodule box, and where it came from."""

    crop: Box | None
    box: Box | None
    source: str  # "fixed" | "manual" | "locator" | "none"
    confidence: float = 1.0


def parse_roi(text: str) -> Box:
    """'x,y,w,h' -> a box; ValueError naming the text otherwise."""
    try:
        x, y, w, h = (int(v) for v in text.replace(" ", "").split(","))
    except ValueError:
        raise ValueError(f"--roi must be x,y,w,h in pixels (e.g. 120,60,200,200); got {text!r}") from None
    if w <= 0 or h <= 0 or x < 0 or y < 0:
        raise ValueError(f"--roi {text!r} needs x, y >= 0 and w, h > 0")
    return x, y, w, h


class FixedCropper:
    """The same ROI on every frame (e.g. a probe held still over a known nodule)."""

    def __init__(self, roi: Box, margin: float = 0.0) -> None:
        self.roi, self.margin = roi, margin

    def __call__(self, frame: np.ndarray, index: int) -> CropDecision:
        try:
            crop = square_crop(self.roi, None, self.margin, frame.shape)
        except ValueError:
            return CropDecision(None, None, "none", 0.0)
        return CropDecision(crop, self.roi, "fixed")


@dataclass
class BoxSmoother:
    """EMA over box corners; a jump larger than `reset_iou` overlap restarts it (a new nodule)."""

    alpha: float = 0.4
    reset_iou: float = 0.2
    state: np.ndarray | None = None

    def update(self, box: Box) -> Box:
        b = np.array([box[0], box[1], box[0] + box[2], box[1] + box[3]], np.float64)
        if self.state is None or _iou(self.state, b) < self.reset_iou:
            self.state = b
        else:
            self.state = self.alpha * b + (1 - self.alpha) * self.state
        x0, y0, x1, y1 = self.state
        return int(round(x0)), int(round(y0)), max(1, int(round(x1 - x0))), max(1, int(round(y1 - y0)))

    def shift(self, dx: float, dy: float) -> None:
        """Move the smoothed box with the picture (motion compensation before the next update)."""
        if self.state is not None:
            self.state = self.state + np.array([dx, dy, dx, dy])

    def reset(self) -> None:
        self.state = None


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


#: Locator cadence of the live loop: the largest k whose box IoU (within 0.01) and crop-holds share
#: (within 0.02) on the phantom sweeps match running it on every frame, with box tracking in between
#: (edgecalc.bench.locator_cadence).
LOCATOR_EVERY = 20

#: A locator takes a frame and returns (box, confidence, scan_area) or None when it finds no nodule;
#: it may add a fourth item, the extent (a box holding ``box`` where the nodule may reach): the crop
#: then holds the extent (``LearnedLocator``).
Locator = Callable[[np.ndarray], "tuple[Box, float, Box | None] | tuple[Box, float, Box | None, Box] | None"]


def extent_pad(box: Box, extent: Box) -> tuple[int, int, int, int]:
    """How far ``extent`` reaches past ``box`` on each side (left, top, right, bottom), never negative."""
    return (max(0, box[0] - extent[0]), max(0, box[1] - extent[1]),
            max(0, extent[0] + extent[2] - box[0] - box[2]), max(0, extent[1] + extent[3] - box[1] - box[3]))


def grown(box: Box, pad: tuple[int, int, int, int]) -> Box:
    """``box`` grown by ``pad`` (left, top, right, bottom)."""
    return box[0] - pad[0], box[1] - pad[1], box[2] + pad[0] + pad[2], box[3] + pad[1] + pad[3]


def classical_frame_locator(frame: np.ndarray) -> tuple[Box, float, Box | None] | None:
    """Scan area + the darkest compact region (edgecalc.runtime.locate.classical)."""
    from edgecalc.runtime.locate.classical import locate_nodule
    from edgecalc.runtime.locate.scan_area import largest_scan_area

    area = largest_scan_area(frame)
    if area is None:
        return None
    found = locate_nodule(frame, area)
    if found is None:
        return None
    return found.box, float(found.confidence), tuple(area.box)


def default_locator() -> Locator:
    """The shipped learned locator (edgecalc.runtime.locate.learned); the classical one, with a
    warning, when the bundle is missing or cannot be loaded here."""
    import warnings

    from edgecalc.runtime.engine.backends import BackendUnavailable
    from edgecalc.runtime.locate.learned import LocatorBundleError, shipped_locator

    try:
        return shipped_locator()
    except (LocatorBundleError, BackendUnavailable, FileNotFoundError) as exc:
        warnings.warn(f"learned nodule locator unavailable ({exc}); using the classical locator", RuntimeWarning,
                      stacklevel=2)
        return classical_frame_locator


@dataclass
class AutoCropper:
    """Locator every `every` frames, box smoothed over time, a manual box overriding it.

    With ``track`` (the default), the frames between two locator runs move the box with the
    picture (``BoxTracker``: phase correlation around the box, ~0.07 ms), and the smoother is moved
    the same way before it takes the next locator box, so a sliding probe does not leave the crop
    behind (measured: ``python -m edgecalc.bench.locator_cadence``, docs/live.md). When the locator
    reports an extent, its reach past the box is kept as a pad that rides with the smoothed box until
    the next run, and the square crop holds the padded box.
    """

    locator: Locator = field(default_factory=default_locator)
    every: int = LOCATOR_EVERY
    margin: float = 0.1
    min_confidence: float = 0.05
    track: bool = True
    smoother: BoxSmoother = field(default_factory=BoxSmoother)
    tracker: BoxTracker = field(default_factory=BoxTracker)
    manual_box: Box | None = None
    _last: CropDecision | None = None
    _last_area: Box | None = None
    _key_box: Box | None = None
    _since: int = 0  #: frames since the locator last ran
    _interval: int = 1  #: frames between locator runs now: 1 while searching, doubling up to `every`
    _pad: tuple[int, int, int, int] = (0, 0, 0, 0)  #: the locator's extent past its box, from its last run

    def __call__(self, frame: np.ndarray, index: int) -> CropDecision:
        if self.manual_box is not None:
            return self._decide(self.manual_box, frame, "manual", 1.0, None, (0, 0, 0, 0))
        # A box in hand: the locator runs again `_interval` frames after its last run. The interval
        # starts at 1 and doubles with each run that finds the nodule, up to `every`: a first guess
        # (often a nodule still entering the view) is checked again soon, a confirmed one rarely.
        # No box (nothing found, or the run just started): it runs on every frame, which costs
        # nothing extra since no crop means no model call on those frames.
        if self._last is not None and self._last.crop is not None and self._since < self._interval:
            self._since += 1
            if not self.track or self._key_box is None:
                return self._last
            d = self.tracker.shift(frame)
            if d is None:
                return self._last
            self._last = self._decide(moved(self._key_box, *d), frame, "locator", self._last.confidence,
                                      self._last_area, self._pad)
            return self._last
        self._since = 1
        found = self.locator(frame)
        if found is None or found[1] < self.min_confidence:
            self._interval = 1
            self.smoother.reset()
            self.tracker.clear()
            self._key_box = None
            self._last = CropDecision(None, None, "none", 0.0)
            return self._last
        box, conf, area = found[:3]
        self._pad = extent_pad(box, found[3]) if len(found) > 3 else (0, 0, 0, 0)
        self._interval = min(max(1, self.every), 2 * self._interval)
        if self.track:
            d = self.tracker.shift(frame)
            if d is not None:
                self.smoother.shift(*d)
        self._last_area = area
        smoothed = self.smoother.update(box)
        if self.track:
            self.tracker.reset(frame, smoothed)
            self._key_box = smoothed
        self._last = self._decide(smoothed, frame, "locator", conf, area, self._pad)
        return self._last

    def _decide(self, box: Box, frame: np.ndarray, source: str, conf: float, area: Box | None,
                pad: tuple[int, int, int, int]) -> CropDecision:
        try:
            crop = square_crop(grown(box, pad), area, self.margin, frame.shape)
        except ValueError:
            return CropDecision(None, None, "none", 0.0)
        return CropDecision(crop, box, source, conf)

    def set_manual(self, box: Box | None) -> None:
        """Override the locator with a hand-drawn box (None clears it and resumes the locator)."""
        self.manual_box = box
        self._last = None
        self._key_box = None
        self._interval = 1
        self.smoother.reset()
        self.tracker.clear()
