"""Short cine loops for the live demo: the probe drifts slowly sideways over a fixed neck, and the
speckle decorrelates from frame to frame (out-of-plane motion), as on a real scanner."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from edgecalc.data.phantom.config import PhantomConfig
from edgecalc.data.phantom.fields import uniform
from edgecalc.data.phantom.frames import PhantomFrame, build_frame_scene, compose_frame, layout
from edgecalc.data.phantom.imaging import speckle_field


def generate_cine(seed: int, n_frames: int, positive: bool = True, width: int = 560, height: int = 360,
                  drift_mm_per_frame: float = 0.08, speckle_correlation: float = 0.9,
                  config: PhantomConfig | None = None) -> Iterator[PhantomFrame]:
    """Yield ``n_frames`` frames of one scan; ``speckle_correlation`` is the frame-to-frame correlation
    of the scatterer phasors (1 = frozen speckle, 0 = independent)."""
    cfg = config or PhantomConfig()
    rng = np.random.default_rng([int(seed), int(bool(positive)), 0xC1])
    area = layout(rng, width, height)
    ws, hs = area[2], area[3]
    sp = cfg.frame_pixel_spacing_mm
    travel = int(np.ceil(abs(drift_mm_per_frame) * max(n_frames - 1, 0) / sp))
    wide = (hs, ws + travel)
    built = build_frame_scene(rng, cfg, wide, positive, nodule_x_range=(0.3, 0.7))
    built["positive"] = bool(positive)
    imaging = {"tgc_error_db_per_mm": round(uniform(rng, cfg.tgc_error_db_per_mm), 4),
               "dynamic_range_db": round(uniform(rng, cfg.dynamic_range_db), 3),
               "gain_db": round(uniform(rng, cfg.gain_db), 3)}
    rho = float(np.clip(speckle_correlation, 0.0, 1.0))
    speckle = speckle_field(rng, wide)
    style = None
    for t in range(n_frames):
        if t:
            speckle = rho * speckle + np.sqrt(1 - rho * rho) * speckle_field(rng, wide)
        noise = speckle_field(rng, wide)
        x_off = int(round(t * abs(drift_mm_per_frame) / sp))
        x_off = min(x_off, travel)
        frame, style = compose_frame(built, cfg, area, width, height, speckle, noise, imaging, style, rng, x_off)
        frame.meta.update({"seed": int(seed), "frame_index": t, "probe_offset_mm": round(x_off * sp, 3)})
        yield frame


def write_cine(path: str | os.PathLike, seed: int = 0, n_frames: int = 60, fps: float = 20.0,
               positive: bool = True, width: int = 560, height: int = 360,
               config: PhantomConfig | None = None) -> Path:
    """Write a cine loop as ``mp4v`` .mp4 (MJPG .avi if that writer cannot open); verify it reads back.

    Returns the path actually written (the suffix changes on fallback).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tries = [(path.with_suffix(".mp4"), "mp4v"), (path.with_suffix(".avi"), "MJPG")]
    for out, fourcc in tries:
        tmp = out.with_name(f".{out.stem}.tmp{out.suffix}")
        writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*fourcc), fps, (width, height), True)
        if not writer.isOpened():
            writer.release()
            tmp.unlink(missing_ok=True)
            continue
        for f in generate_cine(seed, n_frames, positive, width, height, config=config):
            writer.write(cv2.cvtColor(f.image, cv2.COLOR_GRAY2BGR))
        writer.release()
        cap = cv2.VideoCapture(str(tmp))
        ok, first = cap.read()
        cap.release()
        if ok and first is not None and first.shape[:2] == (height, width):
            os.replace(tmp, out)
            return out
        tmp.unlink(missing_ok=True)
    raise RuntimeError(f"could not write a readable video at {path} with mp4v (.mp4) or MJPG (.avi)")
