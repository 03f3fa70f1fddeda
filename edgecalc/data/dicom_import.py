"""`edgecalc data import-dicom`: the frames of DICOM files as a data-set folder, with their spacing.

Each frame becomes ``images/<file_id>_<frame>.png`` (gray when the frame is gray), one row of
labels.csv. The ids come from ``file_id`` (a hash of the SOP Instance UID) and the frame number, so
nothing in the folder names a patient: no name, ID, date or UID in clear is written anywhere.

Columns: ``calcification`` is left empty (unlabelled: the data-set format's ``UNLABELLED``; ``data
check`` counts and warns, training leaves such rows out until someone labels them); ``mm_per_px``
when the spacing is known and square (within 0.1 %), ``mm_per_px_x`` / ``mm_per_px_y`` always when
known; ``spacing_source`` (us-regions / pixel-spacing / none); ``file_id``, ``frame``; ``patient`` is
``study-<hash of the StudyInstanceUID>`` (``file-<file_id>`` without one), so cross-validation keeps
a study's frames (near copies of one another) in one fold. The patient is not known without reading
identifiers: two studies of one person stay two groups.
"""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from edgecalc.atomic import atomic_write_png, atomic_write_text
from edgecalc.data.dataset import IMAGES_DIR, LABELS_FILE, MM_PER_PX_COLUMN, REQUIRED_COLUMNS, UNLABELLED
from edgecalc.data.dicom import DicomCine, DicomError, is_dicom, read_dicom

COLUMNS = (*REQUIRED_COLUMNS, MM_PER_PX_COLUMN, "mm_per_px_x", "mm_per_px_y", "spacing_source", "file_id",
           "frame", "patient")
#: spacings closer than this (relative) count as square pixels, written as one mm_per_px
SQUARE_TOLERANCE = 1e-3


@dataclass
class ImportReport:
    """What the import wrote and what it skipped (each skipped file with its reason, no patient data)."""

    out: Path
    files: int = 0
    frames: int = 0
    with_spacing: int = 0
    skipped: list[str] = field(default_factory=list)


def find_dicom_files(root: str | os.PathLike) -> list[Path]:
    """DICOM files under ``root`` (a file, or a folder searched recursively), by their 'DICM' marker."""
    root = Path(root)
    if root.is_file():
        return [root]
    if not root.is_dir():
        raise FileNotFoundError(f"{root} is neither a file nor a folder")
    return sorted(p for p in root.rglob("*") if p.is_file() and is_dicom(p))


def _is_gray(frame: np.ndarray) -> bool:
    return bool((frame[..., 0] == frame[..., 1]).all() and (frame[..., 1] == frame[..., 2]).all())


def _spacing_cells(cine: DicomCine) -> tuple[str, str, str]:
    if cine.spacing_mm is None:
        return "", "", ""
    x, y = cine.spacing_mm
    square = abs(x - y) <= SQUARE_TOLERANCE * max(x, y)
    return (f"{(x + y) / 2:.10g}" if square else "", f"{x:.10g}", f"{y:.10g}")


def import_dicom(src: str | os.PathLike, out: str | os.PathLike, every: int = 1,
                 on_file: Callable[[Path], None] | None = None, paths: Iterable[Path] | None = None) -> ImportReport:
    """Write every ``every``-th frame of each DICOM file under ``src`` into the data-set folder ``out``.

    Unusable files are skipped and reported (path, file_id, reason); a file met twice (same SOP
    Instance UID) is imported once. Raises FileExistsError when ``out`` already holds a labels.csv.
    """
    if every < 1:
        raise ValueError(f"every must be >= 1, got {every}")
    out = Path(out)
    if (out / LABELS_FILE).exists():
        raise FileExistsError(f"{out / LABELS_FILE} exists: import into a new folder")
    files = list(paths) if paths is not None else find_dicom_files(src)
    rep = ImportReport(out)
    rows: list[dict] = []
    seen: set[str] = set()
    for path in files:
        try:
            cine = read_dicom(path)
        except DicomError as exc:
            rep.skipped.append(str(exc))
        else:
            if cine.file_id in seen:
                rep.skipped.append(f"{path} (file_id {cine.file_id}): the same instance as a file already imported")
            else:
                seen.add(cine.file_id)
                rows += _write_frames(cine, path, out, every)
                rep.files += 1
                rep.with_spacing += cine.spacing_mm is not None
        if on_file is not None:
            on_file(path)
    rep.frames = len(rows)
    if rows:
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        atomic_write_text(out / LABELS_FILE, buf.getvalue())
    return rep


def _write_frames(cine: DicomCine, path: Path, out: Path, every: int) -> list[dict]:
    mm, mm_x, mm_y = _spacing_cells(cine)
    group = f"study-{cine.study_id}" if cine.study_id else f"file-{cine.file_id}"
    rows = []
    for i in range(0, cine.n_frames, every):
        frame = cine.frames[i]
        sid = f"{cine.file_id}_{i:04d}"
        atomic_write_png(out / IMAGES_DIR / f"{sid}.png", frame[..., 0] if _is_gray(frame) else frame)
        rows.append({REQUIRED_COLUMNS[0]: sid, REQUIRED_COLUMNS[1]: UNLABELLED, MM_PER_PX_COLUMN: mm,
                     "mm_per_px_x": mm_x, "mm_per_px_y": mm_y, "spacing_source": cine.spacing_source,
                     "file_id": cine.file_id, "frame": i, "patient": group})
    return rows
