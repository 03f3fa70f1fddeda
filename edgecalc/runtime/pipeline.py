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
from edgecalc.runtime.overlay import OverlayOptions, draw_overlay, paste_crop

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
    mask: np.ndarray | None = None
    overlay: np.ndarray | None = None
    infer_ms: float = 0.0
    total_ms: float = 0.0

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
    """Per-frame processing around one backend. `cropper(gray, index) -> CropDecision`."""

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
        t0 = time.perf_counter()
        problem = frame_problem(image)
        if problem is not None:
            return FrameResult(index, skipped=problem)
        gray = to_gray_u8(image)
        dec = self.cropper(gray, index)
        res = FrameResult(index, crop=dec.crop, box=dec.box, crop_source=dec.source)
        attention_full = None
        if dec.crop is not None:
            x, y, w, h = dec.crop
            batch = preprocess(gray[y:y + h, x:x + w], self.input_size)[None]
            t1 = time.perf_counter()
            out = self.backend.infer(batch)
            res.infer_ms = (time.perf_counter() - t1) * 1000.0
            res.score = float(np.asarray(out["score"]).reshape(-1)[0])
            res.smoothed, res.decision = self.smoother.update(res.score)
            res.mask = paste_crop(out["mask"][0, 0], dec.crop, gray.shape) > self.mask_threshold
            res.mask_area_px = int(res.mask.sum())
            if self.overlay.show_attention and "attention" in out:
                att = out["attention"][0]
                attention_full = paste_crop(att[min(ATTENTION_CHANNEL, att.shape[0] - 1)], dec.crop, gray.shape)
        else:
            self.smoother.reset()
        res.overlay = draw_overlay(image, mask=res.mask, box=res.box, score=res.smoothed,
                                   decision=res.decision, attention=attention_full, options=self.overlay)
        res.total_ms = (time.perf_counter() - t0) * 1000.0
        return res
