"""``edgecalc analyze``: still images (and DICOM) through the whole cart path into a report; the HUD stays
off the scan area and the scanner's text."""

from __future__ import annotations

import csv
import json

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from edgecalc.cli import app
from edgecalc.data.phantom.dataset_writer import image_seed
from edgecalc.data.phantom.frames import generate_frame
from edgecalc.runtime.analyze import CSV_HEADER
from edgecalc.runtime.live.overlay import HudPlacer, OverlayOptions, draw_overlay
from edgecalc.runtime.locate.scan_area import find_scan_areas
from edgecalc.runtime.shipped import default_bundle_dir

needs_bundle = pytest.mark.skipif(default_bundle_dir() is None, reason="this build carries no shipped bundle")
runner = CliRunner()


def _frame(index: int = 1) -> np.ndarray:
    return generate_frame(image_seed(7, index), True).image


def _rows(path) -> list[dict]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


@needs_bundle
def test_good_corrupt_and_non_image(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    cv2.imwrite(str(folder / "good.png"), _frame())
    (folder / "broken.png").write_bytes((folder / "good.png").read_bytes()[:200])  # cut short
    (folder / "notes.txt").write_text("not an image\n")
    out, js, ov = tmp_path / "r.csv", tmp_path / "r.json", tmp_path / "ov"
    res = runner.invoke(app, ["analyze", str(folder), "--out", str(out), "--json", str(js), "--overlay", str(ov),
                              "--backend", "onnxruntime"])
    assert res.exit_code == 0, res.output
    rows = _rows(out)
    assert [r["id"] for r in rows] == ["good"] and tuple(rows[0]) == CSV_HEADER
    assert "broken.png" in res.output and "notes.txt" in res.output
    report = json.loads(js.read_text())
    assert len(report["skipped"]) == 2 and {s.split(":")[0] for s in report["skipped"]} == {"broken.png", "notes.txt"}
    row = rows[0]
    assert row["spacing_source"] == "none" and row["mm_per_px"] == "" and row["largest_mm"] == ""
    assert row["crop_side"] != "" and row["decision"] in ("0", "1")
    assert int(row["n_calcifications"]) == len(report["rows"][0]["calcifications"])
    if int(row["n_calcifications"]):  # no spacing: the kinds that need millimetres are unknown, points too
        assert report["rows"][0]["units"] == "px"
    assert (ov / "good.png").is_file()


@needs_bundle
def test_spacing_by_hand_and_from_the_phantom_data_set(tmp_path):
    data = tmp_path / "data"
    (data / "images").mkdir(parents=True)
    cv2.imwrite(str(data / "images" / "00001.png"), _frame())
    (data / "labels.csv").write_text("id,calcification,kinds,mm_per_px\n00001,1,rim,0.13\n")
    (data / "phantom.json").write_text("{}\n")
    out = tmp_path / "a.csv"
    res = runner.invoke(app, ["analyze", str(data / "images"), "--out", str(out), "--backend", "onnxruntime"])
    assert res.exit_code == 0, res.output
    row = _rows(out)[0]
    assert row["spacing_source"] == "phantom" and float(row["mm_per_px"]) == pytest.approx(0.13)
    if int(row["n_calcifications"]):
        assert row["largest_mm"] != "" and float(row["largest_mm"]) == pytest.approx(
            float(row["largest_px"]) * 0.13, rel=0.02)
    res = runner.invoke(app, ["analyze", str(data / "images" / "00001.png"), "--out", str(out), "--mm-per-px", "0.2",
                              "--backend", "onnxruntime"])
    assert res.exit_code == 0, res.output
    row = _rows(out)[0]
    assert row["spacing_source"] == "--mm-per-px" and float(row["mm_per_px_y"]) == pytest.approx(0.2)


def test_bad_arguments_exit_2(tmp_path):
    (tmp_path / "x.png").write_bytes(b"")
    assert runner.invoke(app, ["analyze", str(tmp_path / "missing")]).exit_code == 2
    assert runner.invoke(app, ["analyze", str(tmp_path), "--mm-per-px", "-1"]).exit_code == 2
    res = runner.invoke(app, ["analyze", str(tmp_path), "--refine", "bogus=1"], env={"COLUMNS": "200"})
    assert res.exit_code == 2 and "Invalid value for '--refine'" in res.output and "trim_fraction" in res.output
    res = runner.invoke(app, ["live", "--source", "phantom", "--headless", "--refine", "trim_fraction=2"], env={"COLUMNS": "200"})
    assert res.exit_code == 2 and "Invalid value for '--refine'" in res.output


@needs_bundle
def test_refine_off_measures_the_model_mask_as_drawn(tmp_path):
    """--refine off gives the model's components as drawn; the trim (``verify=false``: the default less the
    focus verifier) cuts them to their focus: the same foci, each no larger (the trim keeps a piece of the
    component); the default only adds the verifier's new foci to those. Four positive frames, so the test
    does not hang on whether the shipped model reports calcifications in one particular frame."""
    (tmp_path / "in").mkdir()
    for i in range(1, 5):
        cv2.imwrite(str(tmp_path / "in" / f"f{i}.png"), _frame(i))
    reports = {}
    for refine in ("off", "verify=false", "default"):
        js = tmp_path / f"{refine}.json"
        res = runner.invoke(app, ["analyze", str(tmp_path / "in"), "--out", str(tmp_path / f"{refine}.csv"),
                                  "--json", str(js), "--mm-per-px", "0.13", "--backend", "onnxruntime", "--refine", refine])
        assert res.exit_code == 0, res.output
        reports[refine] = {r["id"]: r["calcifications"] for r in json.loads(js.read_text())["rows"]}
    off, trimmed, default = reports["off"], reports["verify=false"], reports["default"]
    assert off.keys() == trimmed.keys() == default.keys() and sum(len(c) for c in off.values()) >= 1
    for key in trimmed:  # the verifier's foci touch none of the trimmed ones: those stay as they were
        kept = {(tuple(b["box"]), b["area_px"]) for b in default[key]}
        assert all((tuple(b["box"]), b["area_px"]) in kept for b in trimmed[key]), key
    sizes = []
    for key in off:
        assert len(off[key]) == len(trimmed[key]), key
        for b in trimmed[key]:  # each trimmed focus lies inside the component it was cut from (lists may order them apart)
            (cx, cy) = b["centroid"]
            within = [a for a in off[key] if a["box"][0] <= cx < a["box"][0] + a["box"][2] and a["box"][1] <= cy < a["box"][1] + a["box"][3]]
            assert within, (key, b)
            a = min(within, key=lambda a: (a["centroid"][0] - cx) ** 2 + (a["centroid"][1] - cy) ** 2)
            sizes.append((a["longest_mm"], b["longest_mm"]))
    assert all(b <= a for a, b in sizes) and any(b < a for a, b in sizes), sizes


@needs_bundle
def test_dicom_frames_get_their_file_id_and_spacing(tmp_path):
    pytest.importorskip("pydicom", reason="DICOM needs the [dicom] extra")
    from edgecalc.data.phantom.dicom_writer import write_cine_dicom
    from edgecalc.data.dicom import read_dicom

    path = write_cine_dicom(tmp_path / "cine.dcm", seed=3, n_frames=2, fps=10.0)
    cine = read_dicom(path)
    out = tmp_path / "d.csv"
    res = runner.invoke(app, ["analyze", str(path), "--out", str(out), "--backend", "onnxruntime"])
    assert res.exit_code == 0, res.output
    rows = _rows(out)
    assert [(r["id"], r["frame"]) for r in rows] == [(cine.file_id, "0"), (cine.file_id, "1")]
    assert {r["spacing_source"] for r in rows} == {cine.spacing_source}
    assert float(rows[0]["mm_per_px"]) == pytest.approx(cine.spacing_mm[0])


def test_hud_panel_stays_off_the_scan_area_and_the_screen_text():
    frame = _frame()
    areas = [a.box for a in find_scan_areas(frame)]
    assert areas
    placer = HudPlacer()
    placer.update(frame, areas)
    opts = OverlayOptions(hud=["20.0 FPS 41.0 ms", "onnxruntime fp32", "crop: locator"], placer=placer)
    out = draw_overlay(frame, score=0.9, decision=True, options=opts, extra_hud=["2 calc, max 1.2 mm", "macro",
                                                                                 "TI-RADS EF 1"])
    before = cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
    changed = np.any(out != before, axis=2)
    assert changed.any()
    for x, y, w, h in areas:
        assert not changed[y:y + h, x:x + w].any()  # nothing drawn on the B-mode image
    text = frame > 40
    for x, y, w, h in areas:
        text[y:y + h, x:x + w] = False
    assert text.any() and not changed[text].any()  # the scanner's labels and marks are untouched
    # the old fixed corners did cover the phantom's top-right labels
    old = np.any(draw_overlay(frame, score=0.9, decision=True, options=OverlayOptions(hud=opts.hud)) != before, axis=2)
    assert old[text].any()


class _Blob:
    """A fake engine: a square blob in the crop's centre, score ``score``."""

    name, precision = "blob", "fp32"

    def __init__(self, score: float) -> None:
        self.score = score

    def infer(self, batch):
        mask = np.zeros((1, 1, 32, 32), np.float32)
        mask[:, :, 14:18, 14:18] = 1.0  # 4/32 of a 120 px crop: a ~14 px square, ~2.5 mm across its diagonal
        return {"mask": mask, "score": np.full((1, 1), self.score, np.float32)}


def test_live_pipeline_measures_smooths_and_logs_the_calcifications():
    from edgecalc.runtime.locate.cropper import FixedCropper
    from edgecalc.runtime.live.pipeline import FramePipeline, foci_hud_lines

    frame = _frame()
    p = FramePipeline(backend=_Blob(0.9), input_size=32, cropper=FixedCropper((200, 100, 120, 120)),
                      spacing_mm=(0.13, 0.13))
    assert p.overlay.placer is not None  # the HUD goes outside the scan area by default
    res = [p.process(frame, i) for i in range(3)][-1]
    assert res.decision and res.foci.count == 1 and res.foci.units == "mm"
    assert 2.3 <= res.foci.largest <= 2.7 and res.foci.kinds == ("macro",)  # > 1 mm
    rec = res.log_record()
    assert rec["calcifications"]["count"] == 1 and rec["calcifications"]["units"] == "mm"
    assert rec["calcifications_smoothed"]["count"] == 1
    assert foci_hud_lines(res.shown_foci)[0].startswith("1 calc, max")
    json.dumps(rec)  # the log line is plain JSON
    # a negative call reports no calcifications, whatever the mask holds; the smoothed count decays
    p.backend = _Blob(0.05)
    res = [p.process(frame, 3 + i) for i in range(6)][-1]
    assert not res.decision and res.foci.count == 1 and res.called_foci().count == 0
    assert res.log_record()["calcifications"]["count"] == 0 and res.shown_foci.count == 0
