"""`edgecalc demo`: the shipped bundle on the two-scan phantom cine, with the ground truth beside it.

The cine (``PhantomCineReader``'s default, ``generate_demo_cine``) is a positive nodule with clearly
visible calcifications, then a negative nodule. Every processed frame is tallied against its
segment's truth: the model's score, whether it is called positive (the smoothed label the overlay
shows, and the raw score above the threshold), whether the overlay drew calcification pixels, and
how many of them lie on the true calcification (within ``ON_TRUTH_MM`` of it). Snapshots are named
by segment: ``positive_0022.png`` (the segment's middle frame), ``positive_best_0031.png`` (the
frame with the most mask pixels on the true calcification, if any and not the middle one),
``negative_0067.png`` and ``negative_worst_0050.png`` (the frame with the most mask pixels drawn on
the negative, if any). Frames where the locator finds no nodule get no score (``frames_scored``).
Numpy + OpenCV only (no torch): it runs on the cart install.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

#: What the demo writes into its folder (``edgecalc demo --out``): the overlaid video, the per-frame log, the summary
#: and the snapshots named by segment.
DEMO_VIDEO, DEMO_LOG, DEMO_SUMMARY, DEMO_SNAPSHOTS = "demo.mp4", "log.jsonl", "summary.json", "snapshots"

ON_TRUTH_MM = 1.0  #: a drawn mask pixel within this distance of a true calcification pixel counts as on it


@dataclass
class SegmentTally:
    name: str
    label: int
    first: int
    n_frames: int
    threshold: float
    scores: list[float] = field(default_factory=list)
    called: int = 0  #: frames whose smoothed decision (the overlay's label) is positive (of all processed)
    raw_positive: int = 0  #: frames whose score exceeds the threshold
    with_mask: int = 0  #: frames where the overlay drew calcification pixels
    mask_px: int = 0
    on_truth_frames: int = 0  #: frames with at least one drawn pixel on the true calcification
    on_truth_px: int = 0
    truth_frames: int = 0  #: frames whose truth holds calcification pixels
    processed: int = 0
    best: tuple[int, int, Any] | None = None  #: (pixels, frame index, overlay copy) for the extra snapshot

    def to_dict(self, segment: Any) -> dict[str, Any]:
        n = self.processed
        return {
            "segment": self.name, "ground_truth": "calcification" if self.label else "no calcification",
            "frames": f"{self.first}-{self.first + self.n_frames - 1}", "n_frames": self.n_frames,
            "processed": n, "frames_scored": len(self.scores), "seed": segment.seed, "calcification_kinds": segment.calcification_kinds,
            "confounders": segment.confounders, "seed_criteria_met": segment.criteria_met,
            "mean_score": float(np.mean(self.scores)) if self.scores else None,
            "min_score": float(np.min(self.scores)) if self.scores else None,
            "max_score": float(np.max(self.scores)) if self.scores else None,
            "called_positive_share": self.called / n if n else None,
            "score_above_threshold_share": self.raw_positive / n if n else None,
            "threshold": self.threshold,
            "frames_with_mask": self.with_mask, "frames_with_mask_share": self.with_mask / n if n else None,
            "overlay_drew_calcification": self.with_mask > 0,
            "mask_px_total": self.mask_px,
            "frames_mask_on_true_calcification": self.on_truth_frames,
            "mask_px_on_true_calcification": self.on_truth_px,
            "mask_px_on_true_calcification_share": self.on_truth_px / self.mask_px if self.mask_px else None,
            "on_truth_tolerance_mm": ON_TRUTH_MM,
            "frames_with_true_calcification": self.truth_frames,
        }


def mask_px_on_truth(mask_map: Any, truth: tuple[int, int, np.ndarray] | None, radius_px: float) -> int:
    """Pixels of the drawn mask (a CropMap of bools) within ``radius_px`` of the true calcification
    (``(y0, x0, bool mask over its bounding box)`` in frame pixels)."""
    import cv2

    if mask_map is None or truth is None or not mask_map.values.any():
        return 0
    ty0, tx0, tm = truth
    r = max(0, int(math.ceil(radius_px)))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
    dil = cv2.dilate(np.pad(tm.astype(np.uint8), r), kernel) > 0
    dy0, dx0 = ty0 - r, tx0 - r
    px0, py0 = mask_map.origin
    pv = mask_map.values
    y0, y1 = max(dy0, py0), min(dy0 + dil.shape[0], py0 + pv.shape[0])
    x0, x1 = max(dx0, px0), min(dx0 + dil.shape[1], px0 + pv.shape[1])
    if y1 <= y0 or x1 <= x0:
        return 0
    return int(np.count_nonzero(dil[y0 - dy0:y1 - dy0, x0 - dx0:x1 - dx0] & pv[y0 - py0:y1 - py0, x0 - px0:x1 - px0]))


class DemoTally:
    """The ``on_frame`` callback of the demo: per-segment tallies and the segment-named snapshots."""

    def __init__(self, reader: Any, snapshot_dir: Path, threshold: float, frame_spacing_mm: float) -> None:
        self.reader = reader
        self.snap_dir = Path(snapshot_dir)
        self.radius_px = ON_TRUTH_MM / frame_spacing_mm
        self.tallies = {s.name: SegmentTally(s.name, s.label, s.first, s.n_frames, threshold) for s in reader.segments}
        self.middles = {s.first + s.n_frames // 2: s.name for s in reader.segments}
        self.snapshots: list[str] = []

    def _write(self, name: str, index: int, image: np.ndarray) -> None:
        import cv2

        self.snap_dir.mkdir(parents=True, exist_ok=True)
        path = self.snap_dir / f"{name}_{index:04d}.png"
        cv2.imwrite(str(path), image)
        self.snapshots.append(str(path))

    def __call__(self, res: Any) -> None:
        seg = self.reader.segment_of(res.index)
        t = self.tallies[seg.name]
        t.processed += 1
        i = res.index % len(self.reader.frames)
        truth = self.reader.truth[i]
        t.truth_frames += truth is not None
        if res.score is not None:
            t.scores.append(float(res.score))
            t.raw_positive += res.score > t.threshold
        t.called += bool(res.decision)
        if res.mask_area_px:
            t.with_mask += 1
            t.mask_px += int(res.mask_area_px)
        on = mask_px_on_truth(res.mask_map, truth, self.radius_px) if seg.label else 0
        if on:
            t.on_truth_frames += 1
            t.on_truth_px += on
        extra = on if seg.label else int(res.mask_area_px)  # positive: most on truth; negative: most drawn
        if extra and res.overlay is not None and (t.best is None or extra > t.best[0]):
            t.best = (extra, res.index, res.overlay.copy())
        if res.index in self.middles and res.overlay is not None:
            self._write(self.middles[res.index], res.index, res.overlay)

    def finish(self) -> list[str]:
        """Write the best / worst snapshots; return every snapshot path."""
        for t in self.tallies.values():
            if t.best is not None and t.best[1] not in self.middles:
                self._write(f"{t.name}_{'best' if t.label else 'worst'}", t.best[1], t.best[2])
                t.best = None
        return self.snapshots

    def segments(self) -> list[dict[str, Any]]:
        return [self.tallies[s.name].to_dict(s) for s in self.reader.segments]


def run_demo(setup: Any, out: Path, frames: int, console: Any = None) -> dict[str, Any]:
    """Run the demo on a built pipeline (``live.build.build_pipeline``); write the video, log, snapshots and
    summary (``DEMO_*``) into ``out``; return the summary dict."""
    import json

    from edgecalc.data.phantom.config import PhantomConfig
    from edgecalc.runtime.source.capture import parse_source
    from edgecalc.runtime.live.loop import LiveHooks, LiveOptions, run_live
    from edgecalc.runtime.source.phantom import PhantomCineReader
    from edgecalc.runtime.live.recorder import Recorder

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    reader = PhantomCineReader(n_frames=frames)
    render_s = time.perf_counter() - t0
    tally = DemoTally(reader, out / DEMO_SNAPSHOTS, setup.pipeline.threshold, PhantomConfig().frame_pixel_spacing_mm)
    recorder = Recorder(out / DEMO_VIDEO, out / DEMO_LOG, fps=20.0)
    summary = run_live(parse_source(None, "phantom"), setup.pipeline, setup.selection.backend.describe(),
                       LiveOptions(headless=True, snapshot_every=0, phantom_frames=frames),
                       LiveHooks(recorder=recorder, on_frame=tally, opener=lambda: reader))
    summary.snapshots = tally.finish()
    data = summary.to_dict()
    data["demo"] = {"cine_render_s": round(render_s, 3), "total_s": round(time.perf_counter() - t0, 3),
                    "segments": tally.segments()}
    (out / DEMO_SUMMARY).write_text(json.dumps(data, indent=2) + "\n")
    if console is not None:
        print_segments(data["demo"]["segments"], console)
    return data


def print_segments(segments: list[dict[str, Any]], console: Any) -> None:
    from rich.table import Table

    t = Table(title="edgecalc demo: the phantom cine, segment by segment", title_justify="left")
    for col in ("segment (truth)", "frames", "mean score", "called positive", "frames with mask",
                "mask on true calcification"):
        t.add_column(col, justify="right")
    pct = lambda v: "-" if v is None else f"{100 * v:.0f}%"  # noqa: E731
    for s in segments:
        on = f"{s['frames_mask_on_true_calcification']} frames, {s['mask_px_on_true_calcification']} px" if s["ground_truth"] == "calcification" else "-"
        t.add_row(f"{s['segment']} ({', '.join(s['calcification_kinds']) or 'none'})", s["frames"],
                  "-" if s["mean_score"] is None else f"{s['mean_score']:.3f}", pct(s["called_positive_share"]),
                  f"{s['frames_with_mask']} ({pct(s['frames_with_mask_share'])})", on)
    console.print(t)
