"""Ultrasound DICOM files with known millimetres: the phantom cine as a scanner would export it.

Real scanners deliver pixel spacing in DICOM, in the ultrasound regions
(``SequenceOfUltrasoundRegions``: PhysicalDeltaX/Y in cm per pixel). Writing the phantom cine the same
way gives the DICOM path (``edgecalc.data.dicom.read_dicom``, ``live --source x.dcm``,
``data import-dicom``) an end-to-end test whose millimetres are known exactly
(``PhantomConfig.frame_pixel_spacing_mm``). The patient fields are synthetic and say so; the UIDs are
derived from the generator's parameters, so the same seed gives a byte-identical file.

Pixel data: uncompressed (Explicit VR Little Endian, the default, or Implicit), RLE Lossless (pydicom's own
encoder) or JPEG Baseline 8-bit (frames encoded by OpenCV, encapsulated by ``pydicom.encaps``): the
encodings ultrasound archives hold. Needs pydicom (the ``[dicom]`` extra).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np

from edgecalc.atomic import atomic_write
from edgecalc.data.phantom.config import PhantomConfig
from edgecalc.data.dicom import require_pydicom

US_MULTIFRAME_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.3.1"
US_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.6.1"
#: ``syntax`` names -> transfer syntax UIDs
SYNTAXES = {
    "explicit": "1.2.840.10008.1.2.1",  # Explicit VR Little Endian
    "implicit": "1.2.840.10008.1.2",  # Implicit VR Little Endian (DICOM's default)
    "rle": "1.2.840.10008.1.2.5",  # RLE Lossless
    "jpeg": "1.2.840.10008.1.2.4.50",  # JPEG Baseline (Process 1), 8 bit
}
#: the synthetic patient: no person, and the fields say so
PHANTOM_PATIENT_NAME = "PHANTOM^EDGECALC"
PHANTOM_PATIENT_ID = "EDGECALC-PHANTOM"
PHANTOM_DESCRIPTION = "edgecalc ultrasound phantom (synthetic images, no patient)"
#: DICOM code of PhysicalUnitsX/YDirection for centimetres (PS3.3 C.8.5.5.1.15)
UNITS_CM = 3
JPEG_QUALITY = 95


def build_us_dataset(frames: Sequence[np.ndarray], *, spacing_mm: tuple[float, float] | None,
                     fps: float | None, region: tuple[int, int, int, int] | None = None, syntax: str = "explicit",
                     uid_entropy: Sequence[str] = ("edgecalc",), patient_name: str = PHANTOM_PATIENT_NAME,
                     patient_id: str = PHANTOM_PATIENT_ID, description: str = PHANTOM_DESCRIPTION,
                     multiframe: bool | None = None):
    """A pydicom Dataset of an ultrasound image or cine: gray (H x W) or BGR (H x W x 3) uint8 frames.

    ``spacing_mm`` (x, y) goes into one 2-D tissue region (``region`` = x0, y0, x1, y1 inclusive, default
    the whole frame) in cm, as scanners write it; ``fps`` into CineRate and FrameTime. ``multiframe``:
    Ultrasound Multi-frame Image Storage (default when there is more than one frame) or the single-frame
    SOP class. Returned unsaved so callers (tests) can alter it before writing.
    """
    require_pydicom("writing a DICOM file")
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.encaps import encapsulate
    from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, UID, generate_uid

    if syntax not in SYNTAXES:
        raise ValueError(f"syntax must be one of {', '.join(SYNTAXES)}; got {syntax!r}")
    if not frames:
        raise ValueError("no frames to write")
    first = frames[0]
    if any(f.shape != first.shape or f.dtype != np.uint8 for f in frames) or first.ndim not in (2, 3):
        raise ValueError("frames must be uint8 arrays of one shape, H x W or H x W x 3")
    color = first.ndim == 3
    rows, cols = first.shape[:2]
    n = len(frames)
    multi = n > 1 if multiframe is None else multiframe
    if not multi and n != 1:
        raise ValueError("a single-frame SOP class holds one frame")
    entropy = [str(e) for e in uid_entropy]
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    sop_class = US_MULTIFRAME_IMAGE_STORAGE if multi else US_IMAGE_STORAGE
    ds.file_meta.MediaStorageSOPClassUID = UID(sop_class)
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid(entropy_srcs=entropy + ["sop"])
    ds.file_meta.TransferSyntaxUID = UID(SYNTAXES[syntax])
    ds.file_meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = generate_uid(entropy_srcs=entropy + ["study"])
    ds.SeriesInstanceUID = generate_uid(entropy_srcs=entropy + ["series"])
    ds.Modality = "US"
    ds.PatientName = patient_name
    ds.PatientID = patient_id
    ds.PatientBirthDate = ""
    ds.PatientSex = ""
    ds.StudyDate = ""
    ds.StudyTime = ""
    ds.StudyID = ""
    ds.AccessionNumber = ""
    ds.ReferringPhysicianName = ""
    ds.SeriesNumber = 1
    ds.InstanceNumber = 1
    ds.StudyDescription = description
    ds.SeriesDescription = description
    ds.Manufacturer = "edgecalc"
    ds.ManufacturerModelName = "edgecalc phantom"
    ds.ImageType = ["DERIVED", "SECONDARY"]
    ds.BurnedInAnnotation = "NO"
    ds.Rows, ds.Columns = rows, cols
    ds.SamplesPerPixel = 3 if color else 1
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    if color:
        ds.PlanarConfiguration = 0
    if multi:
        ds.NumberOfFrames = n
        ds.FrameIncrementPointer = 0x00181063  # FrameTime
    if fps:
        ds.CineRate = int(round(fps))
        ds.RecommendedDisplayFrameRate = int(round(fps))
        ds.FrameTime = f"{1000.0 / fps:.6g}"
    if spacing_mm is not None:
        x0, y0, x1, y1 = region if region is not None else (0, 0, cols - 1, rows - 1)
        reg = Dataset()
        reg.RegionSpatialFormat = 1  # 2-D
        reg.RegionDataType = 1  # tissue
        reg.RegionFlags = 0
        reg.RegionLocationMinX0, reg.RegionLocationMinY0 = int(x0), int(y0)
        reg.RegionLocationMaxX1, reg.RegionLocationMaxY1 = int(x1), int(y1)
        reg.PhysicalUnitsXDirection = UNITS_CM
        reg.PhysicalUnitsYDirection = UNITS_CM
        reg.PhysicalDeltaX = float(spacing_mm[0]) / 10.0
        reg.PhysicalDeltaY = float(spacing_mm[1]) / 10.0
        ds.SequenceOfUltrasoundRegions = [reg]
    import cv2

    pixels = [cv2.cvtColor(f, cv2.COLOR_BGR2RGB) if color else f for f in frames]
    if syntax == "jpeg":
        ds.PhotometricInterpretation = "YBR_FULL_422" if color else "MONOCHROME2"
        params = [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]
        if color:
            params += [cv2.IMWRITE_JPEG_SAMPLING_FACTOR, cv2.IMWRITE_JPEG_SAMPLING_FACTOR_422]
        encoded = []
        for f in frames:  # OpenCV encodes BGR input as YCbCr JPEG
            ok, buf = cv2.imencode(".jpg", f, params)
            if not ok:
                raise ValueError("OpenCV could not encode a frame as JPEG")
            encoded.append(buf.tobytes())
        ds.PixelData = encapsulate(encoded)
        ds["PixelData"].VR = "OB"
        ds["PixelData"].is_undefined_length = True
        ds.LossyImageCompression = "01"
        ds.LossyImageCompressionRatio = f"{rows * cols * ds.SamplesPerPixel * n / sum(map(len, encoded)):.4g}"
        ds.LossyImageCompressionMethod = "ISO_10918_1"
        return ds
    arr = np.stack(pixels) if multi else pixels[0]
    ds.PhotometricInterpretation = "RGB" if color else "MONOCHROME2"
    ds.PixelData = np.ascontiguousarray(arr).tobytes()
    ds["PixelData"].VR = "OB"
    if syntax == "rle":
        ds.file_meta.TransferSyntaxUID = UID(SYNTAXES["explicit"])
        ds.compress(UID(SYNTAXES["rle"]), arr, generate_instance_uid=False)
    return ds


def save_dataset(ds, path: str | os.PathLike) -> Path:
    """Write a Dataset as a DICOM file (128-byte preamble, 'DICM', file meta) atomically."""
    return atomic_write(path, lambda p: ds.save_as(p, enforce_file_format=True))


def write_us_dicom(path: str | os.PathLike, frames: Sequence[np.ndarray], **kwargs) -> Path:
    """``build_us_dataset(frames, **kwargs)`` written atomically to ``path``."""
    return save_dataset(build_us_dataset(frames, **kwargs), path)


def write_cine_dicom(path: str | os.PathLike, seed: int = 0, n_frames: int = 60, fps: float = 20.0,
                     positive: bool = True, width: int = 560, height: int = 360,
                     config: PhantomConfig | None = None, syntax: str = "explicit") -> Path:
    """The phantom cine ``generate_cine(seed, n_frames, positive)`` (the frames ``--video`` writes) as a
    multi-frame ultrasound DICOM: one tissue region over the scan area with the frames' exact spacing
    ``frame_pixel_spacing_mm``, CineRate / FrameTime from ``fps``, synthetic patient fields."""
    from edgecalc.data.phantom.cine import generate_cine

    cfg = config or PhantomConfig()
    frames = list(generate_cine(seed, n_frames, positive, width, height, config=cfg))
    x, y, w, h = (int(v) for v in frames[0].scan_area)  # the probe drifts, the screen layout stays
    region = (x, y, x + w - 1, y + h - 1)
    sp = float(cfg.frame_pixel_spacing_mm)
    entropy = ["edgecalc-phantom-cine", seed, n_frames, fps, positive, width, height, sp, syntax]
    return write_us_dicom(path, [f.image for f in frames], spacing_mm=(sp, sp), fps=fps, region=region,
                          syntax=syntax, uid_entropy=entropy)
