"""Writing the default data set (the paper's 1,207 crops, 551 with calcification) in the kit's format."""

from __future__ import annotations

import json
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict
from pathlib import Path

import cv2
import numpy as np

from edgecalc.atomic import atomic_write_png, atomic_write_text
from edgecalc.data.phantom.config import PhantomConfig
from edgecalc.data.phantom.truth import CALCIFICATIONS_KEY

#: Per-frame truth of ``--frames`` (id, mm_per_px, calcifications), beside ``frames/boxes.csv``.
FRAMES_META = "frames/meta.jsonl"


def labels_for(n: int, positive: int, seed: int) -> np.ndarray:
    """Which ids are positive: exactly ``positive`` of ``n``, shuffled by ``seed``."""
    if not 0 <= positive <= n:
        raise ValueError(f"positive={positive} must lie in [0, n={n}]")
    lab = np.zeros(n, dtype=np.int64)
    lab[:positive] = 1
    return np.random.default_rng([int(seed), 0x1AB]).permutation(lab)


def image_seed(seed: int, index: int) -> int:
    """Per-image seed: output does not depend on worker count or order."""
    return int(seed) * 1_000_003 + int(index)


def _crop_meta(sid: str, meta: dict) -> dict:
    """The per-crop line of ``meta.jsonl``: what was drawn (each calcification's kind, size and position)
    and how visible the calcification is."""
    keys = ("label", "calcification_kinds", "low_contrast", "confounders", "visibility_boost_db",
            "visibility_margin_gray", "visibility_redraws", CALCIFICATIONS_KEY)
    return {"id": sid, **{k: meta.get(k) for k in keys}}


def _one(job: tuple) -> tuple[str, int, str, str, float, dict, dict | None]:
    out, idx, label, size, seed, cfg_dict, frames = job
    from edgecalc.data.phantom.crops import generate_crop
    from edgecalc.data.phantom.frames import generate_frame

    cfg = PhantomConfig(**cfg_dict)
    out = Path(out)
    sid = f"{idx:05d}"
    s = generate_crop(image_seed(seed, idx), bool(label), size, cfg)
    atomic_write_png(out / "images" / f"{sid}.png", s.image)
    atomic_write_png(out / "masks" / f"{sid}.png", s.mask)
    atomic_write_png(out / "nodules" / f"{sid}.png", s.nodule_mask)
    mm_px = round(s.meta["crop_side_mm"] / size, 6)  # mm per pixel of the written crop (labels.csv mm_per_px)
    if frames:
        f = generate_frame(image_seed(seed, idx), bool(label), config=cfg)
        atomic_write_png(out / "frames" / "images" / f"{sid}.png", f.image)
        atomic_write_png(out / "frames" / "masks" / f"{sid}.png", f.mask)
        atomic_write_png(out / "frames" / "nodules" / f"{sid}.png", f.nodule_mask)
        box = ",".join(str(v) for v in f.nodule_box)
        fmeta = {"id": sid, "label": f.label, "mm_per_px": f.meta["mm_per_px"],
                 CALCIFICATIONS_KEY: f.meta[CALCIFICATIONS_KEY]}
        return (sid, int(label), "|".join(s.meta["calcification_kinds"]), f"{box};" + ",".join(str(v) for v in f.scan_area),
                mm_px, _crop_meta(sid, s.meta), fmeta)
    return sid, int(label), "|".join(s.meta["calcification_kinds"]), "", mm_px, _crop_meta(sid, s.meta), None


def write_phantom_dataset(out_dir: str | os.PathLike, n: int = 1207, positive: int = 551, size: int = 192,
                          seed: int = 0, frames: bool = False, video: bool = False, progress: bool = True,
                          workers: int | None = None, config: PhantomConfig | None = None, dicom: bool = False) -> Path:
    """Write ``images/``, ``masks/``, ``nodules/`` (nodule masks), ``labels.csv``, ``meta.jsonl`` (per crop:
    kinds, low contrast, confounders, the visibility boost and margins, every calcification's kind,
    size and position) and ``phantom.json``.

    With ``frames`` also full screen frames under ``frames/`` (with ``frames/boxes.csv`` and
    ``frames/meta.jsonl``: each frame's mm per pixel and calcifications); with
    ``video`` a cine loop ``cine.mp4`` (or ``.avi``); with ``dicom`` the same cine as a multi-frame
    ultrasound DICOM ``cine.dcm`` (the [dicom] extra). ``phantom.json`` names both. Identical output for
    any ``workers``.
    """
    cfg = config or PhantomConfig()
    out = Path(out_dir)
    # labels.csv is the completion mark, written last: a run stopped anywhere before (kill, full disk)
    # leaves a folder `edgecalc data check` refuses; one from an earlier run must not vouch for this one
    for stale in ("labels.csv", "phantom.json"):
        (out / stale).unlink(missing_ok=True)
    for sub in ("images", "masks", "nodules") + (("frames/images", "frames/masks", "frames/nodules") if frames else ()):
        (out / sub).mkdir(parents=True, exist_ok=True)
    labels = labels_for(n, positive, seed)
    cfg_dict = asdict(cfg)
    jobs = [(str(out), i, int(labels[i]), size, seed, cfg_dict, frames) for i in range(n)]
    workers = workers if workers is not None else min(os.cpu_count() or 1, 8)
    rows: list[tuple] = []

    def run(it):
        if not progress:
            return list(it)
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TimeRemainingColumn,
        )

        got = []
        with Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                      TimeRemainingColumn()) as bar:
            task = bar.add_task("phantom crops" + (" + frames" if frames else ""), total=n)
            for r in it:
                got.append(r)
                bar.advance(task)
        return got

    if workers > 1 and n > 8:
        with ProcessPoolExecutor(max_workers=workers) as ex:
            rows = run(ex.map(_one, jobs, chunksize=8))
    else:
        rows = run(map(_one, jobs))
    lines = ["id,calcification,kinds,mm_per_px"] + [f"{sid},{lab},{kinds},{mm}" for sid, lab, kinds, _, mm, *_ in rows]
    atomic_write_text(out / "meta.jsonl", "".join(json.dumps(r[5], sort_keys=True) + "\n" for r in rows))
    if frames:
        blines = ["id,calcification,nodule_x,nodule_y,nodule_w,nodule_h,scan_x,scan_y,scan_w,scan_h"]
        for sid, lab, _, fb, *_ in rows:
            box, area = fb.split(";")
            blines.append(f"{sid},{lab},{box},{area}")
        atomic_write_text(out / "frames" / "boxes.csv", "\n".join(blines) + "\n")
        atomic_write_text(out / FRAMES_META, "".join(json.dumps(r[6], sort_keys=True) + "\n" for r in rows))
    video_path = None
    if video:
        from edgecalc.data.phantom.cine import write_cine

        video_path = write_cine(out / "cine.mp4", seed=seed, config=cfg)
    dicom_path = None
    if dicom:
        from edgecalc.data.phantom.dicom_writer import write_cine_dicom

        dicom_path = write_cine_dicom(out / "cine.dcm", seed=seed, config=cfg)
    meta = {"generator": "edgecalc.data.phantom", "format_version": 1, "n": n, "positive": positive,
            "negative": n - positive, "size": size, "seed": seed, "frames": frames, "video": video,
            "video_file": video_path.name if video_path else None,
            "dicom_file": dicom_path.name if dicom_path else None,
            "image_seed": "seed * 1000003 + index", "config": cfg_dict,
            "versions": {"numpy": np.__version__, "opencv": cv2.__version__}}
    atomic_write_text(out / "phantom.json", json.dumps(meta, indent=2) + "\n")
    atomic_write_text(out / "labels.csv", "\n".join(lines) + "\n")  # last: the data set is complete
    return out
