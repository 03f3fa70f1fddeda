"""``edgecalc analyze``: the whole cart path on still images and DICOM files, one report row per frame.

Each image (each frame of a multi-frame DICOM) goes scan area -> nodule locator -> the runtime's
crop (``locate.images.locate_one``, as ``edgecalc locate``) -> the model (the live loop's
``FramePipeline``, here without smoothing: a still is judged on its own score) -> quantification of
the calcification mask (``edgecalc.runtime.quantify``) with the nodule's own mask for the rim test.
The calcifications are reported where the model calls calcification (``FrameResult.called_foci``).

Pixel spacing, never invented: ``--mm-per-px`` when given; else a DICOM file's own (its ultrasound
regions or PixelSpacing); else the spacing the image's data set records (``labels.csv``
``mm_per_px`` / ``mm_per_px_x`` + ``mm_per_px_y``, or ``meta.jsonl`` ``mm_per_px``: a phantom's crops
and frames, an imported DICOM folder); else none, and sizes stay in pixels. Files that cannot be
read are reported by name with the reason and skipped. No torch.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from edgecalc.atomic import atomic_write_bytes, atomic_write_json
from edgecalc.data.dataset import LABELS_FILE, MM_PER_PX_COLUMN
from edgecalc.data.preprocess import to_gray_u8
from edgecalc.runtime.locate.cropper import CropDecision
from edgecalc.runtime.live.decision import DecisionSmoother, FociSmoother
from edgecalc.runtime.locate.images import (IMAGE_SUFFIXES, LocateFn, LocateResult, natural_key, locate_one, read_image,
                                             write_png_atomic)
from edgecalc.runtime.locate.images import csv_text as rows_csv_text
from edgecalc.runtime.live.overlay import draw_foci
from edgecalc.runtime.live.pipeline import FramePipeline, FrameResult
from edgecalc.runtime.quantify import NoduleFoci, Spacing, check_spacing

CSV_HEADER = ("id", "frame", "x", "y", "w", "h", "crop_x", "crop_y", "crop_side", "score", "decision",
              "n_calcifications", "largest_mm", "largest_px", "kinds", "tirads_ef_points", "mm_per_px",
              "mm_per_px_y", "spacing_source")
#: ``spacing_source`` of a still image: given by hand, recorded by its phantom / data set, or none.
SPACING_GIVEN, SPACING_PHANTOM, SPACING_DATASET, SPACING_NONE = "--mm-per-px", "phantom", "data-set", "none"
NO_DICOM = "DICOM support not installed (pip install 'edgecalc[dicom]')"
META_FILE = "meta.jsonl"


@dataclass(frozen=True)
class Still:
    """One image (or DICOM frame) to analyze, with its spacing and where that came from."""

    id: str
    frame: int
    image: np.ndarray
    spacing_mm: Spacing | None
    spacing_source: str
    n_frames: int = 1


@dataclass
class Analysis:
    """One report row: where the nodule is, what the model says, what the calcifications measure."""

    still: Still
    result: FrameResult | None  #: None: no nodule found (no crop, no model call)
    box: tuple[int, int, int, int] | None
    crop: tuple[int, int, int, int] | None
    located_score: float = 0.0

    @property
    def foci(self) -> NoduleFoci:
        called = self.result.called_foci() if self.result is not None else None
        return called if called is not None else NoduleFoci((), self.still.spacing_mm)

    def csv_row(self) -> list[str]:
        s, foci, res = self.still, self.foci, self.result
        box = [""] * 4 if self.box is None else [str(v) for v in self.box]
        crop = [""] * 3 if self.crop is None else [str(v) for v in self.crop[:3]]
        scored = res is not None and res.score is not None
        largest_mm = max((c.longest_mm for c in foci.calcifications), default=None) if s.spacing_mm else None
        largest_px = max((c.longest_px for c in foci.calcifications), default=None)
        points = foci.points
        sx, sy = s.spacing_mm if s.spacing_mm is not None else ("", "")
        return [s.id, str(s.frame), *box, *crop, f"{res.score:.4f}" if scored else "",
                ("1" if res.decision else "0") if scored else "", str(foci.count),
                "" if largest_mm is None else f"{largest_mm:.3f}", "" if largest_px is None else f"{largest_px:.1f}",
                "|".join(foci.kinds), "" if points is None else str(points), _num(sx), _num(sy), s.spacing_source]

    def to_dict(self) -> dict:
        res = self.result
        return {"id": self.still.id, "frame": self.still.frame, "box": None if self.box is None else list(self.box),
                "crop": None if self.crop is None else list(self.crop), "locator_score": round(self.located_score, 4),
                "score": None if res is None or res.score is None else round(res.score, 5),
                "decision": None if res is None else res.decision,
                "spacing_mm": None if self.still.spacing_mm is None else list(self.still.spacing_mm),
                "spacing_source": self.still.spacing_source, **self.foci.to_dict()}


def _num(v) -> str:
    return "" if v == "" else f"{float(v):.6g}"


def list_inputs(path: str | Path) -> list[Path]:
    """``path`` itself, or every visible regular file directly inside the folder (natural order): the
    ones that are neither images nor DICOM are reported by name, not silently passed over."""
    path = Path(path)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise FileNotFoundError(f"{path} is neither a file nor a folder")
    return sorted((p for p in path.iterdir() if p.is_file() and not p.name.startswith(".")), key=natural_key)


def _dicom_module():
    """``edgecalc.data.dicom``, or None where DICOM support is not installed."""
    try:
        from edgecalc.data import dicom
    except ImportError:
        return None
    return dicom


def _looks_dicom(path: Path, dicom) -> bool:
    """A DICOM file by its name ending, or (any other name but an image's) by its 'DICM' preamble."""
    if path.suffix.lower() in (dicom.DICOM_SUFFIXES if dicom is not None else (".dcm",)):
        return True
    return dicom is not None and path.suffix.lower() not in IMAGE_SUFFIXES and dicom.is_dicom(path)


def read_stills(path: Path, mm_per_px: float | None = None) -> Iterator[Still]:
    """The still(s) of one file; ValueError naming the file and the reason when it cannot be used."""
    given = check_spacing((mm_per_px, mm_per_px)) if mm_per_px is not None else None
    dicom = _dicom_module()
    if _looks_dicom(path, dicom):
        if dicom is None:
            raise ValueError(f"{path.name}: {NO_DICOM}")
        try:
            cine = dicom.read_dicom(path)
        except ImportError:
            raise ValueError(f"{path.name}: {NO_DICOM}") from None
        except dicom.DicomError as exc:
            raise ValueError(str(exc)) from None
        spacing = given or check_spacing(cine.spacing_mm)
        source = SPACING_GIVEN if given else (cine.spacing_source if spacing is not None else SPACING_NONE)
        for i, frame in enumerate(cine.frames):
            yield Still(cine.file_id, i, frame, spacing, source, len(cine.frames))
        return
    if path.suffix.lower() not in IMAGE_SUFFIXES:
        raise ValueError(f"{path.name}: not an image or DICOM file (by its name ending {path.suffix or '(none)'})")
    gray = read_image(path)
    if given is not None:
        yield Still(path.stem, 0, gray, given, SPACING_GIVEN)
        return
    spacing, source = recorded_spacing(path)
    yield Still(path.stem, 0, gray, spacing, source)


def recorded_spacing(image_path: Path) -> tuple[Spacing | None, str]:
    """The spacing the image's data set records for it (``DATA/images/<id>.png``: ``DATA/labels.csv``
    ``mm_per_px`` or ``mm_per_px_x``/``_y``, else ``DATA/meta.jsonl`` ``mm_per_px``) and its source."""
    if image_path.parent.name != "images":
        return None, SPACING_NONE
    table = _spacing_table(image_path.parent.parent.resolve())
    got = table.get(image_path.stem)
    return (got[0], got[1]) if got is not None else (None, SPACING_NONE)


@lru_cache(maxsize=16)
def _spacing_table(root: Path) -> dict[str, tuple[Spacing, str]]:
    """id -> (spacing, source) from a data-set folder's labels.csv, else its meta.jsonl (read once)."""
    default = SPACING_PHANTOM if (root / "phantom.json").is_file() or (root.parent / "phantom.json").is_file() \
        else SPACING_DATASET
    out: dict[str, tuple[Spacing, str]] = {}
    labels = root / LABELS_FILE
    if labels.is_file():
        try:
            with labels.open(newline="", encoding="utf-8-sig") as fh:
                for row in csv.DictReader(fh):
                    sp = _row_spacing(row)
                    if sp is not None and row.get("id"):
                        out[row["id"]] = (sp, row.get("spacing_source") or default)
        except (OSError, csv.Error, UnicodeDecodeError):
            return {}
        if out:
            return out
    meta = root / META_FILE
    if meta.is_file():
        try:
            for line in meta.read_text(encoding="utf-8").splitlines():
                rec = json.loads(line) if line.strip() else {}
                sp = _row_spacing(rec) if isinstance(rec, dict) else None
                if sp is not None and rec.get("id"):
                    out[str(rec["id"])] = (sp, default)
        except (OSError, ValueError):
            return {}
    return out


def _row_spacing(row: dict) -> Spacing | None:
    try:
        if row.get("mm_per_px_x") not in (None, "") and row.get("mm_per_px_y") not in (None, ""):
            return check_spacing((row["mm_per_px_x"], row["mm_per_px_y"]))
        v = row.get(MM_PER_PX_COLUMN)
        return check_spacing((v, v)) if v not in (None, "") else None
    except ValueError:
        return None


class StillAnalyzer:
    """The cart's path for stills around one open engine: locator, crop, model, quantification."""

    def __init__(self, pipeline: FramePipeline, locate: LocateFn, margin: float = 0.1) -> None:
        self.pipeline, self.locate, self.margin = pipeline, locate, margin
        # a still is judged on its own score: no history, no hysteresis
        pipeline.smoother = DecisionSmoother(threshold=pipeline.threshold, band=0.0, alpha=1.0)
        pipeline.foci_smoother = FociSmoother(alpha=1.0, band=0.0)

    def analyze(self, still: Still) -> Analysis:
        """Locate the nodule, crop, run the model, measure the calcifications."""
        located, found = locate_one(still.id, to_gray_u8(still.image), self.locate, self.margin)
        return self._run(still, located, None if found is None else found.mask)

    def analyze_crop(self, still: Still, nodule: np.ndarray) -> Analysis:
        """The image is already the nodule's crop (a data set's crops): no locator; ``nodule`` is its mask."""
        ys, xs = np.nonzero(nodule)
        h, w = still.image.shape[:2]
        box = (int(xs.min()), int(ys.min()), int(np.ptp(xs)) + 1, int(np.ptp(ys)) + 1) if ys.size else (0, 0, w, h)
        located = LocateResult(still.id, box, 1.0, None, (0, 0, w, h))
        return self._run(still, located, nodule.astype(bool))

    def _run(self, still: Still, located: LocateResult, nodule: np.ndarray | None) -> Analysis:
        p = self.pipeline
        p.smoother.reset()
        p.foci_smoother.reset()
        p.forget_scan_areas()
        p.spacing_mm = still.spacing_mm
        if located.crop is None:
            p.cropper = lambda frame, index: CropDecision(None, None, "none", 0.0)
        else:
            p.cropper = lambda frame, index: CropDecision(located.crop, located.box, "locator", located.score)
        res = p.process(still.image, still.frame, nodule=nodule)
        return Analysis(still, res if located.crop is not None else None, located.box, located.crop, located.score)


def overlay_of(a: Analysis) -> np.ndarray | None:
    """The report overlay: the live overlay (mask, box, score panel outside the scan area, HUD) with
    each reported calcification outlined and labelled, and the crop in blue."""
    if a.result is None or a.result.overlay is None:
        return None
    import cv2

    out = a.result.overlay.copy()
    if a.crop is not None:
        x, y, w, h = a.crop
        cv2.rectangle(out, (x, y), (x + w - 1, y + h - 1), (255, 160, 0), 1)
    return draw_foci(out, a.foci)


def overlay_name(s: Still) -> str:
    return f"{s.id}.png" if s.n_frames == 1 else f"{s.id}_f{s.frame:04d}.png"


def analyze_paths(paths: list[Path], analyzer: StillAnalyzer, mm_per_px: float | None = None,
                  overlay_dir: Path | None = None,
                  on_progress: Callable[[Path], None] | None = None) -> tuple[list[Analysis], list[str]]:
    """Analyze every still of every file; returns the rows and one ``name: reason`` per skipped file."""
    rows: list[Analysis] = []
    bad: list[str] = []
    if overlay_dir is not None:
        overlay_dir.mkdir(parents=True, exist_ok=True)
    for p in paths:
        try:
            for still in read_stills(p, mm_per_px):
                a = analyzer.analyze(still)
                rows.append(a)
                if overlay_dir is not None:
                    img = overlay_of(a)
                    if img is None:
                        import cv2

                        img = cv2.cvtColor(to_gray_u8(still.image), cv2.COLOR_GRAY2BGR)
                    write_png_atomic(overlay_dir / overlay_name(still), img)
        except ValueError as exc:
            bad.append(str(exc))
        if on_progress is not None:
            on_progress(p)
    return rows, bad


def csv_text(rows: list[Analysis]) -> str:
    return rows_csv_text(rows, CSV_HEADER)


def write_reports(rows: list[Analysis], out_csv: Path | None, out_json: Path | None, skipped: list[str]) -> None:
    """The CSV (``CSV_HEADER``) and the JSON (every calcification of every row, and the skipped files), atomically."""
    if out_csv is not None:
        atomic_write_bytes(out_csv, csv_text(rows).encode())
    if out_json is not None:
        atomic_write_json(out_json, {"rows": [r.to_dict() for r in rows], "skipped": skipped})
