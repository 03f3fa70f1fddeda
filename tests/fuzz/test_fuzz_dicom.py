"""The DICOM reader under mutated input: a DicomCine, or DicomError naming the file — never a crash.

Seeds are small valid ultrasound DICOM files (uncompressed, RLE and JPEG Baseline; gray and colour;
single- and multi-frame) whose patient fields are distinctive strings; hypothesis flips bytes anywhere
or in the header, and truncates anywhere. Contract of ``data.dicom.read_dicom``: frames of one
shape, H x W x 3 uint8, or a DicomError whose message starts with the file's path and shows no
patient data; ``is_dicom`` never raises.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("hypothesis", reason="the fuzz suite needs hypothesis (pip install -e '.[dev]')")
pytest.importorskip("pydicom", reason="the DICOM fuzz test needs pydicom: pip install 'edgecalc[dicom]'")

from hypothesis import example, given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from edgecalc.data.phantom.dicom_writer import build_us_dataset  # noqa: E402
from edgecalc.data.dicom import DicomCine, DicomError, is_dicom, read_dicom  # noqa: E402
from _fuzz_mutations import mutated_bytes  # noqa: E402

PATIENT_NAME = "Fuzzmann^Ottilie"
PATIENT_ID = "FZ-55501234"
HEADER_BYTES = 700  #: the file meta and the header elements before the pixel data


def _seed_files() -> dict[str, bytes]:
    import io

    rng = np.random.default_rng(0)
    gray = [rng.integers(0, 256, (12, 16), dtype=np.uint8) for _ in range(3)]
    color = [np.dstack([g, g[::-1], 255 - g]) for g in gray]
    cases = {"explicit-multi.dcm": (gray, "explicit"), "explicit-color.dcm": (color[:1], "explicit"),
             "rle-multi.dcm": (gray, "rle"), "rle-color.dcm": (color[:2], "rle"),
             "jpeg-multi.dcm": (gray, "jpeg"), "jpeg-color.dcm": (color[:1], "jpeg")}
    out = {}
    for name, (frames, syntax) in cases.items():
        ds = build_us_dataset(frames, spacing_mm=(0.1, 0.12), fps=25.0, syntax=syntax, uid_entropy=[name],
                              patient_name=PATIENT_NAME, patient_id=PATIENT_ID)
        buf = io.BytesIO()
        ds.save_as(buf, enforce_file_format=True)
        out[name] = buf.getvalue()
    return out


SEEDS = _seed_files()
NAMES = sorted(SEEDS)


def mutated() -> st.SearchStrategy[tuple[str, bytes]]:
    return mutated_bytes(SEEDS, header_bytes=HEADER_BYTES)


def _check(path: Path) -> None:
    assert isinstance(is_dicom(path), bool)
    try:
        cine = read_dicom(path)
    except DicomError as exc:
        msg = str(exc)
        assert msg.startswith(str(path)), msg
        assert PATIENT_NAME not in msg and "Fuzzmann" not in msg and PATIENT_ID not in msg, msg
    else:
        assert isinstance(cine, DicomCine) and cine.n_frames >= 1
        shape = cine.frames[0].shape
        assert len(shape) == 3 and shape[2] == 3
        assert all(f.shape == shape and f.dtype == np.uint8 for f in cine.frames)
        assert cine.spacing_source in ("us-regions", "pixel-spacing", "none")
        assert len(cine.file_id) == 16


@given(mutated())
@example(("explicit-multi.dcm", SEEDS["explicit-multi.dcm"][:200]))  # cut inside the file meta
@example(("jpeg-multi.dcm", SEEDS["jpeg-multi.dcm"][:-40]))  # the last JPEG frame cut short
def test_read_dicom_gives_a_cine_or_a_named_dicom_error(tmp_path_factory, case):
    name, data = case
    path = tmp_path_factory.mktemp("dcm") / name
    path.write_bytes(data)
    _check(path)


@pytest.mark.parametrize("name", NAMES)
def test_every_seed_is_readable(tmp_path, name):
    """The seeds themselves decode (otherwise the mutations above prove little)."""
    path = tmp_path / name
    path.write_bytes(SEEDS[name])
    cine = read_dicom(path)
    assert cine.spacing_mm == (0.1, 0.12) and cine.fps == 25.0
