"""One frame through the model: check, crop, preprocess, infer, map back, smooth, overlay.

Holoscan's ultrasound app chains source -> format conversion -> inference -> post-processing ->
overlay; this is the middle of that chain for one frame, with no threads and no I/O, so it can be
timed and tested on its own. The preprocessing is `edgecalc.data.preprocess.preprocess`, the very
function training used.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from edgecalc.data.preprocess import preprocess, to_gray_u8
from edgecalc.runtime.backends.base import InferenceBackend
from edgecalc.runtime.cropper import CropDecision
from edgecalc.runtime.crop import Box
from edgecalc.runtime.decision import DecisionSmoother
from edgecalc.runtime.frame_check import frame_problem
from edgecalc.runtime.overlay import CropMap, OverlayOptions, crop_map, draw_overlay

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
    frame_shape: tuple[int, int] | None = None
    overlay: np.ndarray | None = None
    infer_ms: float = 0.0
    total_ms: float = 0.0

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
                "infer_ms": round(self.infer_ms, 3), "total_ms": round(self.total_ms, 3)}


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

    def __post_init__(self) -> None:
        if self.smoother is None:
            self.smoother = DecisionSmoother(threshold=self.threshold)
        self.overlay.threshold = self.threshold

    def process(self, image: np.ndarray, index: int = 0) -> FrameResult:
        """Check, crop, infer, map back, draw. Only the crop is converted to gray and only the
        crop's pixels are mapped back and painted: the per-frame cost outside the model does not
        grow with the screen size (the locator, every few frames, reads the whole frame)."""
        prepared = self.prepare(image, index)
        return self.finish(prepared, self.infer(prepared))

    def prepare(self, image: np.ndarray, index: int = 0) -> Prepared:
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
        return Prepared(res, image, batch, t0)

    def infer(self, prepared: Prepared) -> dict[str, np.ndarray] | None:
        """The model call alone (None when the frame has no crop); thread-safe with respect to
        ``prepare`` / ``finish`` of other frames, which never touch the engine."""
        if prepared.batch is None:
            return None
        t1 = time.perf_counter()
        out = self.backend.infer(prepared.batch)
        prepared.result.infer_ms = (time.perf_counter() - t1) * 1000.0
        return out

    def finish(self, prepared: Prepared, out: dict[str, np.ndarray] | None) -> FrameResult:
        """Everything after the model call, in frame order: score smoothing, mask back onto the
        frame, overlay."""
        res = prepared.result
        if res.skipped is not None:
            return res
        attention = None
        if out is not None and res.crop is not None:
            res.score = float(np.asarray(out["score"]).reshape(-1)[0])
            res.smoothed, res.decision = self.smoother.update(res.score)
            prob = crop_map(out["mask"][0, 0], res.crop, res.frame_shape)
            res.mask_map = CropMap(prob.values > self.mask_threshold, prob.origin)
            res.mask_area_px = int(np.count_nonzero(res.mask_map.values))
            if self.overlay.show_attention and "attention" in out:
                att = out["attention"][0]
                attention = crop_map(att[min(ATTENTION_CHANNEL, att.shape[0] - 1)], res.crop, res.frame_shape)
        else:
            self.smoother.reset()
        res.overlay = draw_overlay(prepared.image, mask=res.mask_map, box=res.box, score=res.smoothed,
                                   decision=res.decision, attention=attention, options=self.overlay)
        res.total_ms = (time.perf_counter() - prepared.t0) * 1000.0
        return res


@dataclass
class Prepared:
    """A frame between ``prepare`` and ``finish``: its result so far, pixels, model input (or None)."""

    result: FrameResult
    image: np.ndarray
    batch: np.ndarray | None
    t0: float
