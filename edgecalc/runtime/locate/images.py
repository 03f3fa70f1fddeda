"""``edgecalc locate``: the nodule box of every image in a folder (or one file), as CSV and overlays.

One row per readable image, ``id,x,y,w,h,score,crop_x,crop_y,crop_side`` in the image's own pixels
(``id`` = file name without extension): the nodule box, and the square crop the runtime cuts from
it and feeds the model (``square_crop`` of the locator's extent with the margin, inside the scan
area; where the scan area is too narrow for a square, ``crop_side`` is the crop's width and its
height the area's). An empty box and crop and score 0 when no nodule is found. Unreadable images are
collected with the reason and skipped, so one bad file does not cost a whole folder. numpy +
OpenCV + onnxruntime; no torch.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import cv2
import numpy as np

from edgecalc.atomic import atomic_write_bytes
from edgecalc.data.png_chunks import png_chunk_problem
from edgecalc.data.preprocess import to_gray_u8
from edgecalc.runtime.locate.classical import Located
from edgecalc.runtime.locate.crop_geometry import square_crop
from edgecalc.runtime.locate.scan_area import ScanArea, largest_scan_area

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".pgm", ".ppm", ".webp")
CSV_HEADER = ("id", "x", "y", "w", "h", "score", "crop_x", "crop_y", "crop_side")

#: (frame, scan area) -> Located | None: LearnedLocator.locate or classical.locate_nodule.
LocateFn = Callable[[np.ndarray, ScanArea], "Located | None"]


@dataclass(frozen=True)
class LocateResult:
    """One image's answer: box (x, y, w, h) or None, the score, the scan area used and the model's crop."""

    id: str
    box: tuple[int, int, int, int] | None
    score: float
    scan_area: tuple[int, int, int, int] | None
    crop: tuple[int, int, int, int] | None = None  #: (x, y, w, h) the runtime cuts for the model

    def csv_row(self) -> list[str]:
        if self.box is None:
            return [self.id, "", "", "", "", "0", "", "", ""]
        crop = ["", "", ""] if self.crop is None else [str(self.crop[0]), str(self.crop[1]), str(self.crop[2])]
        return [self.id, *(str(v) for v in self.box), f"{self.score:.4f}", *crop]


def natural_key(p: Path) -> tuple:
    """Sort key that orders frame2 before frame10 (digits compared as numbers)."""
    return tuple(int(t) if t.isdigit() else t for t in re.split(r"(\d+)", p.name))


def list_images(path: str | Path) -> list[Path]:
    """The image files to locate: ``path`` itself, or the image files directly inside the folder
    (by extension, in natural order). FileNotFoundError when the path does not exist."""
    path = Path(path)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise FileNotFoundError(f"{path} is neither an image file nor a folder")
    return sorted((p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES), key=natural_key)


def read_image(path: Path) -> np.ndarray:
    """The image as 2-D uint8 gray; ValueError naming the file and what is wrong."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ValueError(f"{path.name}: unreadable ({exc.strerror or exc})") from None
    problem = png_chunk_problem(data)
    if problem is not None:
        raise ValueError(f"{path.name}: not decodable ({problem})")
    try:
        img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED) if data else None
    except cv2.error as exc:  # e.g. a header claiming more pixels than CV_IO_MAX_IMAGE_PIXELS
        reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else "OpenCV refused it"
        raise ValueError(f"{path.name}: not decodable ({reason})") from None
    if img is None:
        raise ValueError(f"{path.name}: not a readable image (empty, truncated or not an image format OpenCV reads)")
    try:
        return to_gray_u8(img)
    except ValueError as exc:
        raise ValueError(f"{path.name}: {exc}") from None


def locate_one(image_id: str, gray: np.ndarray, locate: LocateFn, margin: float = 0.1) -> tuple[LocateResult, Located | None]:
    area = largest_scan_area(gray)
    found = locate(gray, area) if area is not None else None
    box_area = tuple(area.box) if area is not None else None
    if found is None:
        return LocateResult(image_id, None, 0.0, box_area), None
    crop = model_crop(found, box_area, margin, gray.shape)
    return LocateResult(image_id, tuple(int(v) for v in found.box), float(found.confidence), box_area, crop), found


def model_crop(found: Located, scan_area, margin: float, shape: tuple[int, ...]) -> tuple[int, int, int, int] | None:
    """The crop the runtime feeds the model for this locator answer (as ``AutoCropper`` cuts it); None if none fits."""
    try:
        return square_crop(found.crop_box, scan_area, margin, shape)
    except ValueError:
        return None


def draw_located(gray: np.ndarray, result: LocateResult, found: Located | None, margin: float) -> np.ndarray:
    """A BGR overlay: scan area green, nodule contour and box amber, the square crop blue, the score."""
    bgr = cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR)
    if result.scan_area is not None:
        x, y, w, h = result.scan_area
        cv2.rectangle(bgr, (x, y), (x + w - 1, y + h - 1), (0, 180, 0), 1)
    if found is not None and result.box is not None:
        contours, _ = cv2.findContours(found.mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        cv2.drawContours(bgr, contours, -1, (0, 220, 255), 1)
        x, y, w, h = result.box
        cv2.rectangle(bgr, (x, y), (x + w - 1, y + h - 1), (0, 220, 255), 1)
        crop = result.crop or model_crop(found, result.scan_area, margin, gray.shape)
        if crop is not None:
            cx, cy, cw, ch = crop
            cv2.rectangle(bgr, (cx, cy), (cx + cw - 1, cy + ch - 1), (255, 160, 0), 1)
    text = "no nodule found" if result.box is None else f"nodule {result.score:.2f}"
    cv2.putText(bgr, text, (6, gray.shape[0] - 8), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 0), 1, cv2.LINE_AA)
    return bgr


def write_png_atomic(path: Path, image: np.ndarray) -> None:
    ok, buf = cv2.imencode(".png", image)
    if not ok:
        raise OSError(f"cannot encode {path.name} as PNG")
    atomic_write_bytes(path, buf.tobytes())




def csv_text(results: Iterable[LocateResult], header: tuple[str, ...] = CSV_HEADER) -> str:
    """``header`` and each result's ``csv_row()`` (``edgecalc analyze`` writes its rows the same way)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    for r in results:
        w.writerow(r.csv_row())
    return buf.getvalue()


def write_csv(path: str | Path, results: Iterable[LocateResult]) -> None:
    """``CSV_HEADER`` rows, written atomically."""
    atomic_write_bytes(Path(path), csv_text(results).encode())


def locate_paths(paths: list[Path], locate: LocateFn, overlay_dir: Path | None = None, margin: float = 0.1,
                 on_progress: Callable[[Path], None] | None = None) -> tuple[list[LocateResult], list[str]]:
    """Locate the nodule in every image; returns the results and one ``name: reason`` per skipped file."""
    results: list[LocateResult] = []
    bad: list[str] = []
    for p in paths:
        try:
            gray = read_image(p)
        except ValueError as exc:
            bad.append(str(exc))
        else:
            result, found = locate_one(p.stem, gray, locate, margin)
            results.append(result)
            if overlay_dir is not None:
                write_png_atomic(overlay_dir / f"{p.stem}.png", draw_located(gray, result, found, margin))
        if on_progress is not None:
            on_progress(p)
    return results, bad
