"""One frame through the model: check, crop, preprocess, infer, map back, quantify, smooth, overlay.

Holoscan's ultrasound app chains source -> format conversion -> inference -> post-processing ->
overlay; this is the middle of that chain for one frame, with no threads and no I/O, so it can be
timed and tested on its own. The preprocessing is `edgecalc.data.preprocess.preprocess`, the very
function training used. The mask's calcifications are measured on the frame
(`edgecalc.runtime.quantify`, with `spacing_mm` when known; each component first trimmed to the
focus the frame's own pixels show, `refinement`, `edgecalc.runtime.refine_mask`, and the foci the
mask missed added by the bundle's focus verifier, `verifier`) and, where the decision calls
calcification, shown on the HUD, smoothed like the decision; the HUD panel goes outside the scan
areas, which are looked up every `scan_area_every` frames.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

import numpy as np

from edgecalc.data.preprocess import preprocess, to_gray_u8
from edgecalc.runtime.engine.backends.base import InferenceBackend
from edgecalc.runtime.locate.cropper import CropDecision
from edgecalc.runtime.locate.crop_geometry import Box
from edgecalc.runtime.live.decision import DecisionSmoother, FociSmoother, SmoothedFoci
from edgecalc.runtime.source.frame_check import frame_problem
from edgecalc.runtime.live.overlay import CropMap, HudPlacer, OverlayOptions, crop_map, draw_overlay
from edgecalc.runtime.quantify import NoduleFoci, Spacing, check_spacing, quantify_in_frame
from edgecalc.runtime.refine_mask import DEFAULT_REFINEMENT, Refinement

if TYPE_CHECKING:
    from edgecalc.runtime.focus_verifier import FocusVerifier
from edgecalc.runtime.locate.scan_area import find_scan_areas

#: Which attention channel the overlay shows: Grid-AG 3, closest to the output (the paper's figure).
ATTENTION_CHANNEL = 2


@dataclass
class FrameResult:
    """What happened to one frame; `overlay` is None only for skipped frames."""

    index: int
    skipped: str | None = None
    crop: Box | None = None
    box: Box | None = None
    crop_source: str = "none"
    score: float | None = None
    smoothed: float | None = None
    decision: bool | None = None
    mask_area_px: int = 0
    mask_map: CropMap | None = None  #: the calcification mask over the crop's pixels (bool)
    prob_map: CropMap | None = None  #: the model's mask probabilities over the crop's pixels
    frame_shape: tuple[int, int] | None = None
    overlay: np.ndarray | None = None
    infer_ms: float = 0.0
    total_ms: float = 0.0
    foci: NoduleFoci | None = None  #: every calcification of the mask, measured (None: no model call)
    shown_foci: SmoothedFoci | None = None  #: the HUD's smoothed count, size and kinds

    def called_foci(self) -> NoduleFoci | None:
        """The calcifications reported for this frame: the mask's, where the decision calls calcification; none otherwise."""
        if self.foci is None:
            return None
        return self.foci if self.decision else NoduleFoci((), self.foci.spacing_mm)

    @property
    def mask(self) -> np.ndarray | None:
        """The calcification mask on the whole frame (bool (H, W)); built on demand, not per frame."""
        if self.mask_map is None or self.frame_shape is None:
            return None
        return self.mask_map.full(self.frame_shape)

    def log_record(self) -> dict:
        """The JSON-lines record of this frame (no pixel data)."""
        return {"frame": self.index, "skipped": self.skipped, "box": list(self.box) if self.box else None,
                "crop": list(self.crop) if self.crop else None, "crop_source": self.crop_source,
                "score": None if self.score is None else round(self.score, 5),
                "smoothed": None if self.smoothed is None else round(self.smoothed, 5),
                "decision": self.decision, "mask_area_px": self.mask_area_px,
                "infer_ms": round(self.infer_ms, 3), "total_ms": round(self.total_ms, 3),
                "calcifications": _foci_record(self.called_foci()),
                "calcifications_smoothed": None if self.shown_foci is None else self.shown_foci.to_dict()}


def _foci_record(foci: NoduleFoci | None) -> dict | None:
    """The log's per-frame calcification summary (no per-component detail: one line per frame stays short)."""
    if foci is None:
        return None
    d = foci.to_dict()
    return {k: d[k] for k in ("count", "units", "largest", "kinds", "tirads_ef_points")}


def foci_hud_lines(shown: SmoothedFoci | None) -> list[str]:
    """The HUD's calcification lines: count and largest size, kinds and echogenic-foci points."""
    if shown is None or shown.count == 0:
        return []
    size = "" if shown.largest is None else f", max {shown.largest:.1f} {shown.units}"
    kinds = "+".join(k[:5] if k == "punctate" else k for k in shown.kinds) or "-"
    points = "?" if shown.points is None else str(shown.points)
    # short lines: the panel must fit the narrow margins beside a scan area
    return [f"{shown.count} calc{size}", kinds, f"TI-RADS EF {points}"]


@dataclass
class FramePipeline:
    """Per-frame processing around one backend. `cropper(frame, index) -> CropDecision` (any BGR or gray frame)."""

    backend: InferenceBackend
    input_size: int
    cropper: Callable[[np.ndarray, int], CropDecision]
    threshold: float = 0.5
    mask_threshold: float = 0.5
    overlay: OverlayOptions = field(default_factory=OverlayOptions)
    smoother: DecisionSmoother | None = None
    spacing_mm: Spacing | None = None  #: (x, y) mm per pixel of the frames; None: sizes in pixels
    quantify: bool = True  #: measure the mask's calcifications on every frame with a model call
    foci_smoother: FociSmoother | None = None
    place_hud: bool = True  #: HUD panel outside the scan areas (False: the fixed corners)
    scan_area_every: int = 20  #: frames between two scan-area look-ups (the shadow band's limit, the HUD's place)
    #: measure the calcifications on the mask refined at the frame's own resolution (None: the model's mask as it is)
    refinement: Refinement | None = DEFAULT_REFINEMENT
    #: the bundle's focus verifier (new foci the mask missed; ``edgecalc.runtime.focus_verifier``), if it has one;
    #: consulted on frames the decision calls calcification only, the ones whose foci are reported
    verifier: "FocusVerifier | None" = None

    def __post_init__(self) -> None:
        if self.smoother is None:
            self.smoother = DecisionSmoother(threshold=self.threshold)
        if self.foci_smoother is None:
            self.foci_smoother = FociSmoother(alpha=self.smoother.alpha, band=self.smoother.band)
        self.spacing_mm = check_spacing(self.spacing_mm)
        self.overlay.threshold = self.threshold
        if self.place_hud and self.overlay.placer is None:
            self.overlay.placer = HudPlacer()
        self._areas: list[Box] | None = None
        self._areas_at: int | None = None
        self._shown: SmoothedFoci | None = None  #: the HUD's calcification state, as of the last frame measured

    def scan_areas(self, image: np.ndarray, index: int) -> list[Box]:
        """The frame's scan areas (x, y, w, h), looked up again every ``scan_area_every`` frames."""
        if self._areas is None or self._areas_at is None or abs(index - self._areas_at) >= self.scan_area_every:
            self._areas = [a.box for a in find_scan_areas(image)]
            self._areas_at = index
            if self.overlay.placer is not None:
                self.overlay.placer.update(image, self._areas)
        return self._areas

    def forget_scan_areas(self) -> None:
        """Look the scan areas up again on the next frame (a new still image, a new source)."""
        self._areas = self._areas_at = None

    def process(self, image: np.ndarray, index: int = 0, nodule: np.ndarray | None = None) -> FrameResult:
        """Check, crop, infer, map back, draw. Only the crop is converted to gray and only the
        crop's pixels are mapped back and painted: the per-frame cost outside the model does not
        grow with the screen size (the locator, every few frames, reads the whole frame).
        ``nodule``: the nodule's frame-sized mask where known (the rim test then follows its
        margin; otherwise the box's inscribed ellipse stands for it)."""
        prepared = self.prepare(image, index, nodule)
        return self.finish(prepared, self.infer(prepared))

    def prepare(self, image: np.ndarray, index: int = 0, nodule: np.ndarray | None = None) -> Prepared:
        """Everything before the model call: frame check, crop (the cropper's state advances), the
        shared preprocessing. Runs in frame order; the model call may then run on another thread."""
        t0 = time.perf_counter()
        problem = frame_problem(image)
        if problem is not None:
            return Prepared(FrameResult(index, skipped=problem), image, None, t0)
        dec = self.cropper(image, index)
        shape = (int(image.shape[0]), int(image.shape[1]))
        res = FrameResult(index, crop=dec.crop, box=dec.box, crop_source=dec.source, frame_shape=shape)
        batch = None
        if dec.crop is not None:
            x, y, w, h = dec.crop
            batch = preprocess(to_gray_u8(image[max(y, 0):y + h, max(x, 0):x + w]), self.input_size)[None]
        return Prepared(res, image, batch, t0, nodule)

    def infer(self, prepared: Prepared) -> dict[str, np.ndarray] | None:
        """The model call alone (None when the frame has no crop); thread-safe with respect to
        ``prepare`` / ``finish`` of other frames, which never touch the engine."""
        if prepared.batch is None:
            return None
        t1 = time.perf_counter()
        out = self.backend.infer(prepared.batch)
        prepared.result.infer_ms = (time.perf_counter() - t1) * 1000.0
        return out

    def finish(self, prepared: Prepared, out: dict[str, np.ndarray] | None, measure_foci: bool = True) -> FrameResult:
        """Everything after the model call, in frame order: score smoothing, mask back onto the
        frame, calcifications measured, overlay.

        ``measure_foci=False`` leaves the measuring to ``measure_foci`` after the frame is shown (the
        live loop: the quantification then stays off the capture-to-display path, and the HUD's
        smoothed count, size and kinds are those as of the frame before)."""
        res = prepared.result
        if res.skipped is not None:
            return res
        attention = None
        if out is not None and res.crop is not None:
            res.score = float(np.asarray(out["score"]).reshape(-1)[0])
            res.smoothed, res.decision = self.smoother.update(res.score)
            prepared.prob = crop_map(out["mask"][0, 0], res.crop, res.frame_shape)
            res.mask_map = CropMap(prepared.prob.values > self.mask_threshold, prepared.prob.origin)
            res.prob_map = prepared.prob
            res.mask_area_px = int(np.count_nonzero(res.mask_map.values))
            if self.overlay.show_attention and "attention" in out:
                att = out["attention"][0]
                attention = crop_map(att[min(ATTENTION_CHANNEL, att.shape[0] - 1)], res.crop, res.frame_shape)
            if measure_foci:
                self.measure_foci(prepared)
        else:
            self.smoother.reset()
            self.foci_smoother.reset()
            self._shown = None
        if self.overlay.placer is not None:
            self.scan_areas(prepared.image, res.index)
        res.overlay = draw_overlay(prepared.image, mask=res.mask_map, box=res.box, score=res.smoothed,
                                   decision=res.decision, attention=attention, options=self.overlay,
                                   extra_hud=foci_hud_lines(self._shown if self.quantify else None))
        res.total_ms = (time.perf_counter() - prepared.t0) * 1000.0
        return res

    def measure_foci(self, prepared: Prepared) -> None:
        """Measure the calcifications of a frame ``finish`` has mapped the mask of (``res.foci``), and
        advance the HUD's smoothed count, size and kinds (``res.shown_foci``). No-op without a model
        call or with ``quantify`` off; call it once per frame, in frame order."""
        res = prepared.result
        if not self.quantify or res.mask_map is None or prepared.prob is None or res.foci is not None:
            return
        areas = self.scan_areas(prepared.image, res.index)
        res.foci = quantify_in_frame(prepared.image, res.mask_map.values, res.mask_map.origin,
                                     prepared.nodule if prepared.nodule is not None else res.box,
                                     self.spacing_mm, limit=_area_holding(areas, res.crop),
                                     prob=prepared.prob.values, refinement=self.refinement,
                                     verifier=self.verifier if res.decision else None)
        called = res.called_foci()
        res.shown_foci = self._shown = self.foci_smoother.update(called.count, called.largest, called.kinds, called.units)


@dataclass
class Prepared:
    """A frame between ``prepare`` and ``finish``: its result so far, pixels, model input (or None)."""

    result: FrameResult
    image: np.ndarray
    batch: np.ndarray | None
    t0: float
    nodule: np.ndarray | None = None  #: the nodule's frame-sized mask, where the caller knows it
    prob: CropMap | None = None  #: the model's mask probabilities over the crop (set by ``finish``)


def _area_holding(areas: list[Box], crop: Box | None) -> Box | None:
    """The scan area holding the crop's centre (the shadow band stays inside it); None if none does."""
    if crop is None:
        return None
    cx, cy = crop[0] + crop[2] / 2.0, crop[1] + crop[3] / 2.0
    for a in areas:
        if a[0] <= cx < a[0] + a[2] and a[1] <= cy < a[1] + a[3]:
            return a
    return None
