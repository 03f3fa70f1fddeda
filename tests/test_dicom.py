"""DICOM ultrasound input: the reader's contract, spacing and frame rate, encodings, bad files, no patient
data anywhere, and the commands built on it (data phantom --dicom, data import-dicom, live --source x.dcm).

Every file is made here, small, from fixed seeds: uncompressed, RLE (pydicom's encoder) and JPEG
Baseline (frames encoded by OpenCV, encapsulated by pydicom)."""

from __future__ import annotations

import csv
import hashlib
import itertools
import json
import textwrap
from pathlib import Path

import cv2
import numpy as np
import pytest

pydicom = pytest.importorskip("pydicom", reason="the DICOM tests need pydicom: pip install 'edgecalc[dicom]'")

from typer.testing import CliRunner  # noqa: E402

from edgecalc.cli import app  # noqa: E402
from edgecalc.data.phantom.dicom_writer import (  # noqa: E402
    PHANTOM_PATIENT_NAME,
    SYNTAXES,
    US_IMAGE_STORAGE,
    US_MULTIFRAME_IMAGE_STORAGE,
    build_us_dataset,
    save_dataset,
    write_cine_dicom,
    write_us_dicom,
)
from edgecalc.data.dicom import DicomCine, DicomError, is_dicom, read_dicom  # noqa: E402

#: distinctive patient data: none of it may appear in any message, log, file name or output
#: (the study UID is not a valid UID on purpose: pydicom's warning about it would quote it)
PHI = {"name": "Zorblatt^Quenthilda", "id": "PID-90817263-QX", "birth": "19010203",
       "sop": "1.2.826.0.1.3680043.8.498.99887766554433221100", "study": "1.2.826.0.1.3680043.8.498.Qx11223344"}


def _gray_frames(n: int = 3, h: int = 40, w: int = 56, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [cv2.GaussianBlur(rng.integers(0, 256, (h, w), dtype=np.uint8), (5, 5), 1.5) for _ in range(n)]


def _color_frames(n: int = 2, h: int = 40, w: int = 56) -> list[np.ndarray]:
    out = []
    for i in range(n):
        f = np.zeros((h, w, 3), np.uint8)
        f[:, : w // 2] = (200, 40, 10 + 20 * i)  # BGR: blue left half
        f[:, w // 2:] = (10, 40, 200)  # red right half
        out.append(f)
    return out


def _bgr(f: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(f, cv2.COLOR_GRAY2BGR) if f.ndim == 2 else f


def _phi_dataset(frames, **kw):
    from pydicom.config import disable_value_validation

    ds = build_us_dataset(frames, spacing_mm=(0.1, 0.1), fps=25.0, patient_name=PHI["name"], patient_id=PHI["id"], **kw)
    ds.PatientBirthDate = PHI["birth"]
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = PHI["sop"]
    with disable_value_validation():
        ds.StudyInstanceUID = PHI["study"]
    return ds


def _cli(args: list[str]):
    """The command as a user runs it, on a console wide enough that rich does not wrap file names."""
    return CliRunner().invoke(app, args, env={"COLUMNS": "400"})


def _assert_no_phi(text: str) -> None:
    for value in (PHI["name"], *PHI["name"].split("^"), PHI["id"], PHI["birth"], PHI["sop"], PHI["study"]):
        assert value not in text, f"patient data {value!r} leaked into: {text[:300]}"


# --- the contract ---------------------------------------------------------------------------------

def test_contract_multiframe_uncompressed(tmp_path):
    frames = _gray_frames(3)
    ds = build_us_dataset(frames, spacing_mm=(0.1, 0.12), fps=30.0, uid_entropy=["contract"])
    path = save_dataset(ds, tmp_path / "cine.dcm")
    cine = read_dicom(path)
    assert isinstance(cine, DicomCine) and cine.n_frames == 3
    for got, want in zip(cine.frames, frames):
        assert got.dtype == np.uint8 and got.shape == (40, 56, 3)
        np.testing.assert_array_equal(got, _bgr(want))
    assert cine.spacing_mm == (0.1, 0.12) and cine.spacing_source == "us-regions"
    assert cine.fps == 30.0
    assert cine.file_id == hashlib.sha256(str(ds.SOPInstanceUID).encode()).hexdigest()[:16]
    assert cine.study_id == hashlib.sha256(str(ds.StudyInstanceUID).encode()).hexdigest()[:16]
    assert cine.region == (0, 0, 55, 39)
    with pytest.raises(AttributeError):
        cine.fps = 1.0  # frozen


def test_is_dicom_goes_by_the_preamble_not_the_name(tmp_path):
    path = write_us_dicom(tmp_path / "no_extension", _gray_frames(1), spacing_mm=None, fps=None)
    assert is_dicom(path)
    fake = tmp_path / "image.dcm"
    cv2.imwrite(str(tmp_path / "x.png"), _gray_frames(1)[0])
    fake.write_bytes((tmp_path / "x.png").read_bytes())
    assert not is_dicom(fake) and not is_dicom(tmp_path / "absent.dcm") and not is_dicom(tmp_path)
    with pytest.raises(DicomError, match=r"image\.dcm: not a DICOM file"):
        read_dicom(fake)
    assert read_dicom(path).n_frames == 1


# --- spacing ------------------------------------------------------------------------------------

def _region(dx_cm, dy_cm, units=(3, 3), data_type=1, spatial=1, box=(0, 0, 55, 39)):
    from pydicom.dataset import Dataset

    r = Dataset()
    r.RegionSpatialFormat, r.RegionDataType, r.RegionFlags = spatial, data_type, 0
    r.RegionLocationMinX0, r.RegionLocationMinY0, r.RegionLocationMaxX1, r.RegionLocationMaxY1 = box
    r.PhysicalUnitsXDirection, r.PhysicalUnitsYDirection = units
    r.PhysicalDeltaX, r.PhysicalDeltaY = dx_cm, dy_cm
    return r


def _read_with(tmp_path, name, regions=None, pixel_spacing=None, **fps_tags):
    ds = build_us_dataset(_gray_frames(2), spacing_mm=None, fps=None)
    if regions is not None:
        ds.SequenceOfUltrasoundRegions = regions
    if pixel_spacing is not None:
        ds.PixelSpacing = pixel_spacing
    for k, v in fps_tags.items():
        setattr(ds, k, v)
    return read_dicom(save_dataset(ds, tmp_path / f"{name}.dcm"))


def test_spacing_from_ultrasound_regions_in_cm(tmp_path):
    c = _read_with(tmp_path, "one", [_region(0.015, 0.02)])
    assert c.spacing_mm == (0.15, 0.2) and c.spacing_source == "us-regions"


def test_spacing_several_regions(tmp_path):
    # a spectral Doppler strip (time x velocity, data type 3) is ignored; of two tissue regions at two
    # zooms the larger is taken and the note says so
    doppler = _region(0.5, 0.9, units=(4, 7), data_type=3, box=(0, 30, 55, 39))
    small = _region(0.02, 0.02, box=(0, 0, 9, 9))
    large = _region(0.01, 0.01, box=(10, 0, 55, 29))
    c = _read_with(tmp_path, "several", [doppler, small, large])
    assert c.spacing_mm == (0.1, 0.1) and c.region == (10, 0, 55, 29)
    assert "different spacings" in c.spacing_note and "region 2" in c.spacing_note
    same = _read_with(tmp_path, "same", [_region(0.01, 0.01, box=(0, 0, 27, 39)), _region(0.01, 0.01, box=(28, 0, 55, 39))])
    assert same.spacing_mm == (0.1, 0.1) and "same spacing" in same.spacing_note
    # a colour-flow region (data type 2) in cm still counts when there is no tissue region
    flow = _read_with(tmp_path, "flow", [_region(0.03, 0.03, data_type=2)])
    assert flow.spacing_mm == (0.3, 0.3) and flow.spacing_source == "us-regions"


def test_spacing_pixel_spacing_is_row_then_column(tmp_path):
    c = _read_with(tmp_path, "ps", pixel_spacing=[0.2, 0.3])
    assert c.spacing_mm == (0.3, 0.2) and c.spacing_source == "pixel-spacing"
    # regions in other units than cm do not give a spacing: PixelSpacing does
    c = _read_with(tmp_path, "ps2", [_region(0.5, 0.5, units=(4, 7))], pixel_spacing=[0.25, 0.25])
    assert c.spacing_mm == (0.25, 0.25) and c.spacing_source == "pixel-spacing"


def test_spacing_none_when_the_file_has_none(tmp_path):
    c = _read_with(tmp_path, "none")
    assert c.spacing_mm is None and c.spacing_source == "none" and c.fps is None
    c = _read_with(tmp_path, "bad", [_region(0.0, 0.01)], pixel_spacing=[0, 0])
    assert c.spacing_mm is None and c.spacing_source == "none"


def test_frame_rate_tags_in_order(tmp_path):
    assert _read_with(tmp_path, "cr", CineRate=24, FrameTime="50").fps == 24.0
    assert _read_with(tmp_path, "rd", RecommendedDisplayFrameRate=15, FrameTime="50").fps == 15.0
    assert _read_with(tmp_path, "ft", FrameTime="40").fps == pytest.approx(25.0)
    assert _read_with(tmp_path, "zero", CineRate=0, FrameTime="0").fps is None


# --- encodings ----------------------------------------------------------------------------------

@pytest.mark.parametrize("syntax", sorted(SYNTAXES))
@pytest.mark.parametrize("color", [False, True], ids=["gray", "color"])
@pytest.mark.parametrize("n", [1, 3], ids=["single", "multi"])
def test_encodings_read_back(tmp_path, syntax, color, n):
    frames = (_color_frames(n) if color else _gray_frames(n))
    path = write_us_dicom(tmp_path / "x.dcm", frames, spacing_mm=(0.13, 0.13), fps=20.0, syntax=syntax,
                          multiframe=n > 1)
    ds = pydicom.dcmread(path)
    assert ds.file_meta.TransferSyntaxUID == SYNTAXES[syntax]
    assert ds.SOPClassUID == (US_MULTIFRAME_IMAGE_STORAGE if n > 1 else US_IMAGE_STORAGE)
    assert ("NumberOfFrames" in ds) == (n > 1)
    if syntax == "jpeg" and color:
        assert ds.PhotometricInterpretation == "YBR_FULL_422"
    cine = read_dicom(path)
    assert cine.n_frames == n and cine.spacing_mm == (0.13, 0.13) and cine.fps == 20.0
    for got, want in zip(cine.frames, frames):
        assert got.shape == (40, 56, 3) and got.dtype == np.uint8
        diff = np.abs(got.astype(int) - _bgr(want).astype(int))
        if syntax == "jpeg":  # lossy: close, and the colours are where they were (BGR, not RGB)
            assert diff.mean() < 3.0, diff.mean()
        else:
            assert diff.max() == 0
    if color:
        left, right = cine.frames[0][:, :20].mean(axis=(0, 1)), cine.frames[0][:, -20:].mean(axis=(0, 1))
        assert left[0] > 150 > left[2] and right[2] > 150 > right[0]


@pytest.mark.parametrize("syntax", ["jpeg", "rle"])
def test_the_extras_decoders_decode(tmp_path, syntax):
    """The [dicom] extra's choice: pylibjpeg (+ libjpeg, + rle) decodes JPEG Baseline and RLE by itself."""
    from pydicom.pixels import pixel_array

    frames = _gray_frames(2)
    ds = pydicom.dcmread(write_us_dicom(tmp_path / "x.dcm", frames, spacing_mm=None, fps=None, syntax=syntax))
    arr = pixel_array(ds, decoding_plugin="pylibjpeg")
    assert arr.shape == (2, 40, 56)
    assert np.abs(arr.astype(int) - np.stack(frames)).mean() < (3.0 if syntax == "jpeg" else 1e-9)


def test_16_bit_samples_are_scaled_to_8_bits(tmp_path):
    frames = _gray_frames(2)
    ds = build_us_dataset(frames, spacing_mm=None, fps=None)
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 12, 11
    ds.PixelData = (np.stack(frames).astype(np.uint16) << 4).tobytes()  # 12-bit values
    cine = read_dicom(save_dataset(ds, tmp_path / "deep.dcm"))
    for got, want in zip(cine.frames, frames):
        np.testing.assert_array_equal(got, _bgr(want))


def test_monochrome1_is_inverted(tmp_path):
    frames = _gray_frames(1)
    ds = build_us_dataset(frames, spacing_mm=None, fps=None)
    ds.PhotometricInterpretation = "MONOCHROME1"
    np.testing.assert_array_equal(read_dicom(save_dataset(ds, tmp_path / "m1.dcm")).frames[0], _bgr(255 - frames[0]))


# --- bad files ----------------------------------------------------------------------------------

def _bad(tmp_path, name: str, ds) -> Path:
    return save_dataset(ds, tmp_path / name)


def _bad_files(tmp_path) -> dict[str, tuple[Path, str]]:
    """name -> (file, what the message must say)."""
    import warnings

    with warnings.catch_warnings():  # writing the invalid study UID: pydicom warns (quoting it) at save
        warnings.simplefilter("ignore")
        return _make_bad_files(tmp_path)


def _make_bad_files(tmp_path) -> dict[str, tuple[Path, str]]:
    out = {}
    good = save_dataset(_phi_dataset(_gray_frames(3)), tmp_path / "good.dcm")
    data = good.read_bytes()
    for frac in (0.5, 0.9):
        p = tmp_path / f"cut{int(frac * 100)}.dcm"
        p.write_bytes(data[: int(len(data) * frac)])
        out[p.name] = (p, "")
    ds = _phi_dataset(_gray_frames(3))
    del ds.PixelData
    out["nopixels"] = (_bad(tmp_path, "nopixels.dcm", ds), "no pixel data")
    ds = _phi_dataset(_gray_frames(3), syntax="jpeg")
    ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.4.102"  # MPEG-4 AVC/H.264: a video, no decoder here
    out["syntax"] = (_bad(tmp_path, "syntax.dcm", ds), "transfer syntax")
    ds = _phi_dataset(_gray_frames(3))
    ds.NumberOfFrames = 5
    out["frames5"] = (_bad(tmp_path, "frames5.dcm", ds), "NumberOfFrames says 5")
    ds = _phi_dataset(_gray_frames(3))
    ds.NumberOfFrames = 2
    out["frames2"] = (_bad(tmp_path, "frames2.dcm", ds), "NumberOfFrames says 2")
    ds = _phi_dataset(_gray_frames(3), syntax="jpeg")
    ds.NumberOfFrames = 4
    out["jpeg4"] = (_bad(tmp_path, "jpeg4.dcm", ds), "NumberOfFrames says 4")
    # native pixels declared as RLE (pydicom refuses to write that: patch the file meta, same length)
    p = tmp_path / "mislabelled.dcm"
    p.write_bytes(data.replace(b"1.2.840.10008.1.2.1\0", b"1.2.840.10008.1.2.5\0", 1))
    out["mislabelled"] = (p, "pixel data")
    ds = _phi_dataset(_gray_frames(1))
    ds.PhotometricInterpretation = "HSV"
    out["hsv"] = (_bad(tmp_path, "hsv.dcm", ds), "photometric")
    return out


def test_bad_files_raise_dicom_error_naming_the_file(tmp_path):
    for name, (path, says) in _bad_files(tmp_path).items():
        with pytest.raises(DicomError) as exc:
            read_dicom(path)
        msg = str(exc.value)
        assert msg.startswith(str(path)), msg
        assert says in msg, (name, msg)


def test_no_patient_data_in_errors_logs_or_output(tmp_path, capfd, caplog):
    """A file whose patient fields are distinctive strings: they appear in no error, no warning, no log
    line, no file name and no file the import writes, nor in the commands' output."""
    import logging
    import warnings

    caplog.set_level(logging.DEBUG)
    files = _bad_files(tmp_path)
    with pytest.warns(UserWarning, match=PHI["study"]):  # what plain pydicom would print: the UID in clear
        assert pydicom.dcmread(tmp_path / "good.dcm").StudyInstanceUID
    caplog.clear()  # pydicom also logged it: that was plain pydicom, not the kit
    capfd.readouterr()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        msgs = []
        for path, _ in files.values():
            with pytest.raises(DicomError) as exc:
                read_dicom(path)
            msgs.append(str(exc.value))
        cine = read_dicom(tmp_path / "good.dcm")
        assert cine.file_id == hashlib.sha256(PHI["sop"].encode()).hexdigest()[:16]
    assert all(cine.file_id in m for m, (p, _) in zip(msgs, files.values()) if not p.name.startswith("cut"))
    r = _cli(["data", "import-dicom", str(tmp_path), "--out", str(tmp_path / "imported")])
    assert r.exit_code == 0, r.output
    r2 = _cli(["live", "--source", str(files["frames5"][0]), "--headless", "--backend", "onnxruntime"])
    assert r2.exit_code == 2 and "frames5.dcm" in r2.output
    captured = capfd.readouterr()
    written = "".join(p.read_text(errors="replace") for p in (tmp_path / "imported").rglob("*.csv"))
    names = " ".join(str(p) for p in (tmp_path / "imported").rglob("*"))
    everything = "\n".join([*msgs, *(str(w.message) for w in caught), caplog.text, captured.out, captured.err,
                            r.output, r2.output, written, names])
    _assert_no_phi(everything)
    assert "good.dcm" not in r.output  # the good file was imported, the bad ones are named
    assert "nopixels.dcm" in r.output and "frames5.dcm" in r.output


# --- data phantom --dicom -----------------------------------------------------------------------

def test_phantom_dicom_round_trip_gives_the_phantoms_millimetres(tmp_path):
    from edgecalc.data.phantom import generate_cine
    from edgecalc.data.phantom.config import config_with

    out = tmp_path / "ph"
    r = _cli(["data", "phantom", "--out", str(out), "--n", "2", "--positive", "1", "--size", "32",
                                 "--workers", "1", "--seed", "3", "--set", "frame_pixel_spacing_mm=0.11", "--dicom"])
    assert r.exit_code == 0, r.output
    assert json.loads((out / "phantom.json").read_text())["dicom_file"] == "cine.dcm"
    cine = read_dicom(out / "cine.dcm")
    assert cine.spacing_mm == (0.11, 0.11) and cine.spacing_source == "us-regions"
    assert cine.n_frames == 60 and cine.fps == 20.0
    ds = pydicom.dcmread(out / "cine.dcm")
    assert ds.SOPClassUID == US_MULTIFRAME_IMAGE_STORAGE and ds.Modality == "US"
    assert str(ds.PatientName) == PHANTOM_PATIENT_NAME and "phantom" in ds.StudyDescription
    cfg = config_with(None, ["frame_pixel_spacing_mm=0.11"])
    want = list(itertools.islice(generate_cine(3, 60, True, config=cfg), 2))
    for got, f in zip(cine.frames, want):
        np.testing.assert_array_equal(got, _bgr(f.image))
    x, y, w, h = want[0].scan_area
    assert cine.region == (x, y, x + w - 1, y + h - 1)


def test_phantom_dicom_is_deterministic(tmp_path):
    a = write_cine_dicom(tmp_path / "a.dcm", seed=1, n_frames=2)
    b = write_cine_dicom(tmp_path / "b.dcm", seed=1, n_frames=2)
    c = write_cine_dicom(tmp_path / "c.dcm", seed=2, n_frames=2)
    assert a.read_bytes() == b.read_bytes() != c.read_bytes()
    assert read_dicom(a).spacing_mm == (0.13, 0.13)  # PhantomConfig's default frame spacing


# --- data import-dicom --------------------------------------------------------------------------

def test_import_dicom_then_data_check(tmp_path):
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    cine = write_us_dicom(src / "cine.dcm", _gray_frames(5), spacing_mm=(0.1, 0.15), fps=20.0, uid_entropy=["a"])
    still = write_us_dicom(src / "sub" / "IMG0001", _color_frames(1), spacing_mm=None, fps=None, uid_entropy=["b"],
                           multiframe=False)
    ds = build_us_dataset(_gray_frames(1), spacing_mm=None, fps=None, uid_entropy=["c"], multiframe=False)
    ds.PixelSpacing = [0.2, 0.2]
    save_dataset(ds, src / "ps.dcm")
    (src / "copy.dcm").write_bytes(cine.read_bytes())  # the same instance twice
    (src / "notes.txt").write_text("not DICOM")
    out = tmp_path / "data"
    r = _cli(["data", "import-dicom", str(src), "--out", str(out), "--every", "2"])
    assert r.exit_code == 0, r.output
    assert "the same instance" in r.output
    rows = list(csv.DictReader((out / "labels.csv").open()))
    ids = {r["file_id"] for r in rows}
    fid = {p.name: read_dicom(p).file_id for p in (cine, still, src / "ps.dcm")}
    assert ids == set(fid.values())
    cine_rows = [r for r in rows if r["file_id"] == fid["cine.dcm"]]
    assert [r["frame"] for r in cine_rows] == ["0", "2", "4"]
    assert [r["id"] for r in cine_rows] == [f"{fid['cine.dcm']}_{i:04d}" for i in (0, 2, 4)]
    c0 = cine_rows[0]
    assert (c0["calcification"], c0["mm_per_px"], c0["mm_per_px_x"], c0["mm_per_px_y"], c0["spacing_source"]) == \
        ("", "", "0.1", "0.15", "us-regions")  # not square: no single mm_per_px
    ps = next(r for r in rows if r["file_id"] == fid["ps.dcm"])
    assert (ps["mm_per_px"], ps["spacing_source"]) == ("0.2", "pixel-spacing")
    st = next(r for r in rows if r["file_id"] == fid["IMG0001"])
    assert (st["mm_per_px"], st["spacing_source"]) == ("", "none")
    assert c0["patient"].startswith("study-") and len({r["patient"] for r in rows}) == 3
    img = cv2.imread(str(out / "images" / f"{c0['id']}.png"), cv2.IMREAD_UNCHANGED)
    assert img.ndim == 2  # gray frames stay gray
    np.testing.assert_array_equal(img, _gray_frames(5)[0])
    assert cv2.imread(str(out / "images" / f"{st['id']}.png"), cv2.IMREAD_UNCHANGED).shape == (40, 56, 3)
    chk = _cli(["data", "check", str(out), "--json"])
    assert chk.exit_code == 0, chk.output
    report = json.loads(chk.output)
    assert report["ok"] and report["summary"]["unlabelled"] == 5 and report["summary"]["images"] == 0
    assert any("without a label" in w["reason"] for w in report["warnings"])
    again = _cli(["data", "import-dicom", str(src), "--out", str(out)])
    assert again.exit_code == 2 and "labels.csv exists" in again.output


def test_unlabelled_rows_are_left_out_of_training(tmp_path):
    from edgecalc.data.dataset import DatasetError, load_dataset

    src = tmp_path / "src"
    write_us_dicom(src / "a.dcm", _gray_frames(2), spacing_mm=(0.1, 0.1), fps=None)
    r = _cli(["data", "import-dicom", str(src), "--out", str(tmp_path / "d")])
    assert r.exit_code == 0, r.output
    with pytest.raises(DatasetError, match="no labelled image"):
        load_dataset(tmp_path / "d", size=32)
    lines = (tmp_path / "d" / "labels.csv").read_text().splitlines()
    lines[1] = lines[1].replace(",,", ",1,", 1)  # someone labels the first frame
    (tmp_path / "d" / "labels.csv").write_text("\n".join(lines) + "\n")
    ids, images, _, labels, _ = load_dataset(tmp_path / "d", size=32)
    assert len(ids) == 1 and labels.tolist() == [1] and images.shape == (1, 1, 32, 32)


def test_import_dicom_exit_codes(tmp_path):
    (tmp_path / "empty").mkdir()
    r = _cli(["data", "import-dicom", str(tmp_path / "empty"), "--out", str(tmp_path / "o")])
    assert r.exit_code == 1 and "no DICOM file" in r.output
    r = _cli(["data", "import-dicom", str(tmp_path / "absent"), "--out", str(tmp_path / "o")])
    assert r.exit_code == 2 and "absent" in r.output
    bad = tmp_path / "bad"
    bad.mkdir()
    ds = build_us_dataset(_gray_frames(2), spacing_mm=None, fps=None)
    del ds.PixelData
    save_dataset(ds, bad / "x.dcm")
    r = _cli(["data", "import-dicom", str(bad), "--out", str(tmp_path / "o")])
    assert r.exit_code == 1 and "x.dcm" in r.output and "no pixel data" in r.output


# --- live --source x.dcm ------------------------------------------------------------------------

def test_parse_source_knows_dicom(tmp_path):
    from edgecalc.runtime.source.capture import open_reader, parse_source

    path = write_us_dicom(tmp_path / "scan", _gray_frames(2), spacing_mm=(0.1, 0.1), fps=10.0)
    assert parse_source(source=str(path)).kind == "dicom"  # by its marker, no extension
    assert parse_source(source=str(tmp_path / "later.dcm")).kind == "dicom"  # by its name
    assert parse_source(source=str(tmp_path / "clip.mp4")).kind == "file"
    reader = open_reader(parse_source(source=str(path)))
    assert reader.spacing_mm == (0.1, 0.1) and reader.spacing_source == "us-regions" and reader.fps == 10.0
    assert reader.read()[0] and reader.read()[0] and not reader.read()[0]


def test_dicom_reader_is_paced_at_the_recorded_frame_rate(monkeypatch, tmp_path):
    """Frames come one every 1/fps s of a fake clock: the reader sleeps exactly the time left."""
    from edgecalc.runtime.source import capture

    path = write_us_dicom(tmp_path / "c.dcm", _gray_frames(4), spacing_mm=None, fps=25.0)
    clock = {"t": 100.0}
    sleeps = []
    monkeypatch.setattr(capture.time, "perf_counter", lambda: clock["t"])

    def fake_sleep(s):
        sleeps.append(round(s, 9))
        clock["t"] += s

    monkeypatch.setattr(capture.time, "sleep", fake_sleep)
    reader = capture.DicomCineReader(path)
    for _ in range(4):
        assert reader.read()[0]
        clock["t"] += 0.01  # the consumer takes 10 ms per frame
    assert sleeps == [0.03, 0.03, 0.03]  # 40 ms per frame at 25 frames/s, 10 ms of it spent consuming
    assert not reader.read()[0]
    unpaced = capture.DicomCineReader(path, pace=False)
    sleeps.clear()
    assert all(unpaced.read()[0] for _ in range(4)) and sleeps == []


def test_live_plays_a_dicom_cine_headless(tmp_path):
    """`edgecalc live --source cine.dcm` with the shipped bundle, torch blocked: the cine's frames, with its spacing."""
    from test_foundation import run_without_torch

    cine = write_cine_dicom(tmp_path / "cine.dcm", n_frames=4, fps=50.0)
    res = run_without_torch(textwrap.dedent(f"""
        import sys
        from typer.testing import CliRunner
        from edgecalc.cli import app
        r = CliRunner().invoke(app, ["live", "--source", {str(cine)!r}, "--headless", "--backend", "onnxruntime",
                                     "--crop", "fixed", "--roi", "150,60,200,200", "--max-frames", "3",
                                     "--log", {str(tmp_path / 'log.jsonl')!r},
                                     "--summary-json", {str(tmp_path / 'summary.json')!r}])
        print(r.output)
        assert r.exit_code == 0, r.output
        assert "torch" not in sys.modules
    """))
    assert res.returncode == 0, res.stdout + res.stderr
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["processed"] == 3 and summary["source"].startswith("dicom ")
    # the sizes on the HUD and in the log use the file's millimetres (the phantom's 0.13 mm per pixel)
    assert summary["spacing_mm"] == [0.13, 0.13] and summary["spacing_source"] == "us-regions"
    assert len((tmp_path / "log.jsonl").read_text().splitlines()) == 3


def test_doctor_lists_pydicom_and_its_decoders():
    from edgecalc.doctor import collect_report

    row = next(lib for lib in collect_report().libraries if lib.name == "pydicom")
    assert row.version == pydicom.__version__
    assert "RLE: " in row.detail and "JPEG Baseline: " in row.detail and "pylibjpeg" in row.detail


def test_pydicom_missing_says_how_to_install(tmp_path):
    """With pydicom absent the modules still import; reading, import-dicom and phantom --dicom say
    `pip install 'edgecalc[dicom]'` (the commands exit 2)."""
    import subprocess
    import sys

    path = write_us_dicom(tmp_path / "a.dcm", _gray_frames(1), spacing_mm=None, fps=None)
    code = textwrap.dedent(f"""
        import sys, importlib.abc
        class _No(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name == "pydicom" or name.startswith("pydicom."):
                    raise ImportError("blocked", name=name)
        sys.meta_path.insert(0, _No())
        from edgecalc.data.dicom import DicomError, read_dicom
        import edgecalc.runtime.source.capture, edgecalc.data.dicom_import
        try:
            read_dicom({str(path)!r})
        except DicomError as exc:
            print(exc)
        from typer.testing import CliRunner
        from edgecalc.cli import app
        r = CliRunner().invoke(app, ["data", "import-dicom", {str(tmp_path)!r}, "--out", {str(tmp_path / 'o')!r}])
        print("exit", r.exit_code, r.output)
        r = CliRunner().invoke(app, ["data", "phantom", "--out", {str(tmp_path / 'ph')!r}, "--n", "2", "--positive", "1", "--dicom"])
        print("phantom exit", r.exit_code, r.output)
        from edgecalc.doctor import collect_report
        print("doctor", next(lib.detail for lib in collect_report().libraries if lib.name == "pydicom"))
    """)
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "a.dcm needs pydicom: pip install 'edgecalc[dicom]'" in res.stdout
    assert "exit 2" in res.stdout and "edgecalc[dicom]" in res.stdout.split("exit 2", 1)[1]
    after = res.stdout.split("phantom exit", 1)[1]
    assert after.startswith(" 2") and "edgecalc[dicom]" in after
    assert not (tmp_path / "ph").exists()  # refused before anything is generated
    assert "doctor not installed (DICOM input: pip install 'edgecalc[dicom]')" in res.stdout
