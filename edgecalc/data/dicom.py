"""DICOM ultrasound input: frames as BGR uint8, the physical pixel spacing, the frame rate.

Scanners deliver their millimetres in DICOM, so this is where sizes in mm come from for real data.
Spacing, in order of trust:

1. ``SequenceOfUltrasoundRegions`` (PS3.3 C.8.5.5): PhysicalDeltaX/Y in the units of
   PhysicalUnitsX/YDirection (3 = cm, converted to mm). Only regions in cm in both directions count.
   The 2-D (RegionSpatialFormat 1) tissue region (RegionDataType 1) is preferred; without one, any
   2-D region in cm. Several candidates with the same spacing agree and are taken; with different
   spacings (a dual view at two zooms) the largest region by area is taken and ``spacing_note`` says so.
2. ``PixelSpacing`` (row spacing, column spacing in mm: y first!).
3. none: ``spacing_mm`` is None; sizes must then stay in pixels.

Frame rate: CineRate, else RecommendedDisplayFrameRate, else 1000 / FrameTime (ms).

Patient identifiers never leave this module: errors and logs name the file by its path and
``file_id`` (16 hex digits of sha256 of the SOP Instance UID), never by a name, an ID, a date or a UID
in clear, and pydicom's own warnings (which may quote element values) are silenced while reading.

Torch-free; pydicom is imported when a file is read (``pip install 'edgecalc[dicom]'``).
"""

from __future__ import annotations

import hashlib
import logging
import math
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

INSTALL_HINT = "pip install 'edgecalc[dicom]'"
SPACING_SOURCES = ("us-regions", "pixel-spacing", "none")
#: the encodings ultrasound files come in (label -> transfer syntax UID), as ``edgecalc doctor`` lists them
DECODED_SYNTAXES = {
    "uncompressed": "1.2.840.10008.1.2.1",
    "RLE": "1.2.840.10008.1.2.5",
    "JPEG Baseline": "1.2.840.10008.1.2.4.50",
}
#: file-name endings taken for DICOM without looking inside (others are checked by their preamble)
DICOM_SUFFIXES = (".dcm", ".dicom")
#: DICOM code of PhysicalUnitsX/YDirection for centimetres (PS3.3 C.8.5.5.1.15)
UNITS_CM = 3
#: refuse files whose header claims more decoded bytes than this (a corrupt Rows/Columns/NumberOfFrames)
MAX_DECODED_BYTES = 4 * 1024 ** 3
#: compressed pixel data claiming more than this many decoded bytes per stored byte is taken as corrupt
#: and nothing is allocated for it (RLE cannot pass 64:1: two bytes code at most a 128-byte run; the
#: bound leaves lossy JPEG ample room)
MAX_COMPRESSION_RATIO = 1000


class DicomError(ValueError):
    """A DICOM file that cannot be used; the message names the file (path, file_id) and the reason."""


@dataclass(frozen=True)
class DicomCine:
    """The frames and the physical facts of one DICOM file (single-frame: one frame)."""

    frames: list[np.ndarray]  #: H x W x 3 uint8 BGR (grayscale and YBR/RGB converted)
    spacing_mm: tuple[float, float] | None  #: (x, y) mm per pixel; None when the file has none
    spacing_source: str  #: "us-regions" | "pixel-spacing" | "none"
    fps: float | None
    file_id: str  #: 16 hex of sha256(SOPInstanceUID): never patient data
    spacing_note: str = ""  #: how the spacing was chosen (which region, conflicts)
    region: tuple[int, int, int, int] | None = None  #: the chosen ultrasound region (x0, y0, x1, y1), inclusive
    study_id: str = ""  #: 16 hex of sha256(StudyInstanceUID), '' without one: groups a study's files

    @property
    def n_frames(self) -> int:
        return len(self.frames)


def require_pydicom(what: str):
    """Import pydicom, or raise DicomError saying how to install it."""
    try:
        import pydicom
    except ImportError as exc:
        raise DicomError(f"{what} needs pydicom: {INSTALL_HINT}") from exc
    return pydicom


def is_dicom(path: str | Path) -> bool:
    """True when the file carries the DICOM Part 10 marker 'DICM' at byte 128 (whatever its name)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(132)
    except (OSError, ValueError):
        return False
    return len(head) == 132 and head[128:] == b"DICM"


def hashed_id(uid: str) -> str:
    """16 hex digits of sha256 of a UID: identifies a file or study without showing the UID."""
    return hashlib.sha256(uid.strip().encode("ascii", "replace")).hexdigest()[:16]


@contextmanager
def _quiet() -> Iterator[None]:
    """Silence pydicom's warnings and log records while reading: they may quote element values."""
    logger = logging.getLogger("pydicom")
    level, propagate = logger.level, logger.propagate
    logger.setLevel(logging.CRITICAL + 1)
    logger.propagate = False
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)
        logger.propagate = propagate


def _number(ds, keyword: str, index: int | None = None) -> float | None:
    """A numeric element as a finite float, or None when absent, empty or not a number."""
    try:
        value = ds.get(keyword)
        if value is None or value == "":
            return None
        if index is not None:
            value = value[index]
        out = float(value)
    except (TypeError, ValueError, IndexError, KeyError, AttributeError, OverflowError):
        return None
    return out if math.isfinite(out) else None


def _region_candidates(ds) -> list[dict]:
    out = []
    try:
        regions = list(ds.get("SequenceOfUltrasoundRegions") or [])
    except (TypeError, ValueError, AttributeError):
        return out
    for i, reg in enumerate(regions):
        ux, uy = _number(reg, "PhysicalUnitsXDirection"), _number(reg, "PhysicalUnitsYDirection")
        dx, dy = _number(reg, "PhysicalDeltaX"), _number(reg, "PhysicalDeltaY")
        if ux != UNITS_CM or uy != UNITS_CM or not dx or not dy:
            continue
        dx, dy = abs(dx), abs(dy)  # a negative delta is a flipped axis; the size per pixel is the same
        box = tuple(_number(reg, k) for k in ("RegionLocationMinX0", "RegionLocationMinY0",
                                               "RegionLocationMaxX1", "RegionLocationMaxY1"))
        region = tuple(int(v) for v in box) if all(v is not None for v in box) else None
        area = (region[2] - region[0] + 1) * (region[3] - region[1] + 1) if region else 0
        out.append({"index": i, "mm": (round(dx * 10.0, 10), round(dy * 10.0, 10)), "region": region,
                    "area": max(area, 0), "tissue": _number(reg, "RegionDataType") == 1,
                    "two_d": _number(reg, "RegionSpatialFormat") == 1})
    return out


def spacing_of(ds) -> tuple[tuple[float, float] | None, str, str, tuple[int, int, int, int] | None]:
    """(spacing (x, y) mm or None, source, note, region) of a pydicom Dataset, by the rules above."""
    cands = _region_candidates(ds)
    pool = [c for c in cands if c["two_d"] and c["tissue"]] or [c for c in cands if c["two_d"]]
    if pool:
        kind = "2-D tissue" if pool[0]["tissue"] else "2-D (no tissue region in cm)"
        spacings = {c["mm"] for c in pool}
        best = max(pool, key=lambda c: c["area"])
        if len(pool) == 1:
            note = f"ultrasound region {best['index']} ({kind})"
        elif len(spacings) == 1:
            note = f"{len(pool)} {kind} regions with the same spacing; region {best['index']} (largest)"
        else:
            note = (f"{len(pool)} {kind} regions with different spacings; region {best['index']} "
                    f"(the largest, {best['area']} px) taken")
        return best["mm"], "us-regions", note, best["region"]
    row = _number(ds, "PixelSpacing", 0)
    col = _number(ds, "PixelSpacing", 1)
    if row and col and row > 0 and col > 0:
        return (col, row), "pixel-spacing", "PixelSpacing (row, column) in mm", None
    note = "no ultrasound region in cm and no PixelSpacing" if not cands else \
        "ultrasound regions in cm but none 2-D; no PixelSpacing"
    return None, "none", note, None


def fps_of(ds) -> float | None:
    """Frames per second: CineRate, RecommendedDisplayFrameRate, or 1000 / FrameTime (ms)."""
    for keyword in ("CineRate", "RecommendedDisplayFrameRate"):
        v = _number(ds, keyword)
        if v and v > 0:
            return v
    ft = _number(ds, "FrameTime")
    if ft and ft > 0:
        return 1000.0 / ft
    return None


def _fail(path: Path, file_id: str | None, reason: str) -> DicomError:
    who = f"{path} (file_id {file_id})" if file_id else str(path)
    return DicomError(f"{who}: {reason}")


def _frame_count(ds, path: Path, fid: str) -> int:
    raw = ds.get("NumberOfFrames", 1)
    try:
        n = int(raw) if raw not in (None, "") else 1
    except (TypeError, ValueError):
        raise _fail(path, fid, "NumberOfFrames is not a whole number") from None
    if n < 1:
        raise _fail(path, fid, f"NumberOfFrames is {n}")
    return n


def _check_native_length(ds, path: Path, fid: str, n: int, rows: int, cols: int, spp: int) -> None:
    bits = int(ds.get("BitsAllocated") or 0)
    if bits not in (8, 16):
        raise _fail(path, fid, f"BitsAllocated {bits} is not supported (8 or 16)")
    frame_bytes = rows * cols * spp * bits // 8
    have = len(ds.PixelData)
    whole = have // frame_bytes
    if have < frame_bytes * n:
        raise _fail(path, fid, f"pixel data holds {whole} whole frame(s) of {rows}x{cols}, "
                               f"but NumberOfFrames says {n} (file truncated or frame count wrong)")
    if whole > n:
        raise _fail(path, fid, f"pixel data holds {whole} frames of {rows}x{cols}, but NumberOfFrames says {n}")


def _check_encapsulated_count(ds, path: Path, fid: str, n: int) -> None:
    """The offset table (when present) or the fragments must be able to hold NumberOfFrames frames."""
    import io

    from pydicom.encaps import parse_basic_offsets, parse_fragments

    buf = io.BytesIO(ds.PixelData)
    offsets = parse_basic_offsets(buf)
    n_frag = parse_fragments(buf)[0]
    if n_frag == 0:
        raise _fail(path, fid, "the encapsulated pixel data holds no fragment")
    if offsets and len(offsets) != n:
        raise _fail(path, fid, f"the offset table lists {len(offsets)} frame(s), but NumberOfFrames says {n}")
    if not offsets and n_frag < n:
        raise _fail(path, fid, f"the pixel data holds {n_frag} fragment(s), fewer than NumberOfFrames ({n})")


def _to_uint8(arr: np.ndarray, ds, path: Path, fid: str) -> np.ndarray:
    if arr.dtype == np.uint8:
        return arr
    if arr.dtype.kind == "u":
        stored = int(ds.get("BitsStored") or 16)
        shift = max(stored - 8, 0)
        return (arr >> shift).clip(0, 255).astype(np.uint8)
    raise _fail(path, fid, f"pixel type {arr.dtype} (signed or float) is not an ultrasound image this reads")


def _to_bgr(arr: np.ndarray, photometric: str, ds, path: Path, fid: str) -> np.ndarray:
    """(N, H, W[, 3]) decoded pixels -> (N, H, W, 3) uint8 BGR."""
    import cv2

    if photometric == "PALETTE COLOR":
        from pydicom.pixels import apply_color_lut

        arr = apply_color_lut(arr, ds)
        if arr.dtype != np.uint8:  # 16-bit palettes: the high byte
            arr = (arr >> 8).astype(np.uint8)
        photometric = "RGB"
    arr = _to_uint8(arr, ds, path, fid)
    if photometric in ("MONOCHROME1", "MONOCHROME2"):
        if arr.ndim != 3:
            raise _fail(path, fid, f"{photometric} pixel data has {arr.shape[-1]} samples per pixel")
        if photometric == "MONOCHROME1":  # 0 is white
            arr = 255 - arr
        return np.stack([cv2.cvtColor(f, cv2.COLOR_GRAY2BGR) for f in arr])
    if photometric in ("RGB", "YBR_FULL", "YBR_FULL_422", "YBR_ICT", "YBR_RCT"):
        if arr.ndim != 4 or arr.shape[-1] != 3:
            raise _fail(path, fid, f"{photometric} pixel data is not 3 samples per pixel")
        return np.ascontiguousarray(arr[..., ::-1])  # pydicom hands colour over as RGB
    raise _fail(path, fid, f"photometric interpretation {photometric[:32]!r} is not supported")


def read_dicom(path: str | Path) -> DicomCine:
    """Read a DICOM image or cine; DicomError (naming the file and the reason) for anything unusable."""
    path = Path(path)
    if not path.is_file():
        raise _fail(path, None, "no such file")
    if not is_dicom(path):
        raise _fail(path, None, "not a DICOM file (no 'DICM' marker at byte 128)")
    pydicom = require_pydicom(f"reading {path}")
    from pydicom.errors import InvalidDicomError

    with _quiet():
        try:
            ds = pydicom.dcmread(path)
            uid = str(ds.get("SOPInstanceUID") or "")
        except InvalidDicomError:
            raise _fail(path, None, "not a valid DICOM file") from None
        except Exception as exc:  # noqa: BLE001 - pydicom raises many kinds on corrupt headers
            raise _fail(path, None, f"cannot be parsed as DICOM ({type(exc).__name__}: truncated or corrupt "
                                    f"header)") from None
        fid = hashed_id(uid) if uid else hashlib.sha256(path.read_bytes()).hexdigest()[:16]
        try:
            return _decode(ds, path, fid)
        except DicomError:
            raise
        except MemoryError:
            raise _fail(path, fid, "the pixel data is too large to decode") from None
        except Exception as exc:  # noqa: BLE001 - decoders raise many kinds on corrupt pixel data
            raise _fail(path, fid, f"pixel data cannot be decoded ({type(exc).__name__}: corrupt, truncated or "
                                   f"inconsistent with its header)") from None


def _decode(ds, path: Path, fid: str) -> DicomCine:
    from pydicom.pixels import get_decoder

    if "PixelData" not in ds:
        raise _fail(path, fid, "no pixel data (PixelData element missing, or the file is cut off before it)")
    meta = getattr(ds, "file_meta", None)
    tsyntax = meta.get("TransferSyntaxUID") if meta is not None else None
    if not tsyntax:
        raise _fail(path, fid, "no transfer syntax in the file meta information")
    try:
        decoder = get_decoder(tsyntax)
    except NotImplementedError:
        name = getattr(tsyntax, "name", "") or "unknown"
        raise _fail(path, fid, f"transfer syntax {str(tsyntax)[:64]!r} ({name}) is not supported") from None
    if not decoder.is_available:
        missing = "; ".join(decoder.missing_dependencies) or "a decoder plugin"
        raise _fail(path, fid, f"transfer syntax {tsyntax.name} needs {missing} ({INSTALL_HINT})")
    rows, cols = int(ds.get("Rows") or 0), int(ds.get("Columns") or 0)
    spp = int(ds.get("SamplesPerPixel") or 1)
    if rows <= 0 or cols <= 0:
        raise _fail(path, fid, f"image size {cols}x{rows} is empty")
    if spp not in (1, 3):
        raise _fail(path, fid, f"SamplesPerPixel {spp} is not 1 or 3")
    n = _frame_count(ds, path, fid)
    if rows * cols * spp * n * 2 > MAX_DECODED_BYTES:
        raise _fail(path, fid, f"the header claims {n} frame(s) of {cols}x{rows}x{spp}: too large to decode")
    if tsyntax.is_compressed:
        if rows * cols * spp * n > MAX_COMPRESSION_RATIO * max(len(ds.PixelData), 1):
            raise _fail(path, fid, f"the header claims {n} frame(s) of {cols}x{rows}x{spp}, more than "
                                   f"{len(ds.PixelData)} bytes of compressed pixel data can hold")
        _check_encapsulated_count(ds, path, fid, n)
    else:
        _check_native_length(ds, path, fid, n, rows, cols, spp)
    photometric = str(ds.get("PhotometricInterpretation") or "").strip().upper()
    arr = ds.pixel_array  # YBR is converted to RGB here (pydicom's default)
    want = (n, rows, cols) if spp == 1 else (n, rows, cols, 3)
    if arr.shape == want[1:] and n == 1:
        arr = arr[None]
    if arr.shape != want:
        raise _fail(path, fid, f"decoded pixel data has shape {arr.shape}, expected {want} from the header")
    frames = _to_bgr(arr, photometric, ds, path, fid)
    spacing, source, note, region = spacing_of(ds)
    study = str(ds.get("StudyInstanceUID") or "")
    return DicomCine(frames=list(frames), spacing_mm=spacing, spacing_source=source, fps=fps_of(ds),
                     file_id=fid, spacing_note=note, region=region, study_id=hashed_id(study) if study else "")
