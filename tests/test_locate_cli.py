"""``edgecalc locate``: boxes in image pixels, empty rows, bad files named and skipped, exit codes."""

from __future__ import annotations

import csv
import io

import cv2
import numpy as np
from typer.testing import CliRunner

from edgecalc.cli import app
from edgecalc.data.phantom import generate_frame
from edgecalc.locator.evaluate_scan_area import box_iou

runner = CliRunner()


def _rows(text: str) -> dict[str, list[str]]:
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["id", "x", "y", "w", "h", "score", "crop_x", "crop_y", "crop_side"]
    return {r[0]: r[1:] for r in rows[1:]}


def test_locate_folder_with_a_nodule_an_empty_frame_and_bad_files(tmp_path):
    images = tmp_path / "frames"
    images.mkdir()
    f = generate_frame(0, positive=False)
    cv2.imwrite(str(images / "phantom.png"), f.image)
    cv2.imwrite(str(images / "black.png"), np.zeros((360, 560), np.uint8))
    cv2.imwrite(str(images / "grey.png"), np.full((360, 560), 128, np.uint8))
    cv2.imwrite(str(images / "no-nodule.png"), generate_frame(5, positive=False, with_nodule=False).image)
    (images / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    (images / "empty.jpg").write_bytes(b"")
    (images / "notes.txt").write_text("not an image, not looked at")
    # a header claiming 99999 x 99999 pixels: OpenCV asserts (CV_IO_MAX_IMAGE_PIXELS); reported, skipped
    (images / "huge.pgm").write_bytes(b"P5\n99999 99999\n255\n" + bytes(100))
    out, overlays = tmp_path / "boxes.csv", tmp_path / "overlays"
    res = runner.invoke(app, ["locate", str(images), "--out", str(out), "--overlay", str(overlays)])
    assert res.exit_code == 0, res.output
    assert "broken.png" in res.output and "empty.jpg" in res.output and "skipped" in res.output
    assert "huge.pgm" in res.output and "Traceback" not in res.output
    rows = _rows(out.read_text())
    assert set(rows) == {"phantom", "black", "grey", "no-nodule"}
    x, y, w, h, score, cx, cy, side = rows["phantom"]
    assert box_iou((int(x), int(y), int(w), int(h)), f.nodule_box) >= 0.5 and float(score) > 0
    # the crop holds the box and is what the live runtime cuts from the same frame
    assert int(cx) <= int(x) and int(cy) <= int(y) and int(cx) + int(side) >= int(x) + int(w)
    from edgecalc.runtime.locate.cropper import AutoCropper

    assert AutoCropper()(f.image, 0).crop == (int(cx), int(cy), int(side), int(side))
    empty = ["", "", "", "", "0", "", "", ""]
    assert rows["black"] == empty and rows["grey"] == empty
    assert rows["no-nodule"] == empty  # a scan area of thyroid, but no nodule in it
    assert sorted(p.name for p in overlays.iterdir()) == ["black.png", "grey.png", "no-nodule.png", "phantom.png"]
    assert cv2.imread(str(overlays / "phantom.png")).shape == (360, 560, 3)


def test_locate_one_file_prints_csv(tmp_path):
    f = generate_frame(2, positive=False)
    path = tmp_path / "frame 2.png"
    cv2.imwrite(str(path), cv2.cvtColor(f.image, cv2.COLOR_GRAY2BGR))  # colour input works too
    res = runner.invoke(app, ["locate", str(path)])
    assert res.exit_code == 0, res.output
    row = _rows(res.stdout)["frame 2"]
    assert box_iou(tuple(int(v) for v in row[:4]), f.nodule_box) >= 0.5


def test_exit_codes_when_nothing_works(tmp_path):
    (tmp_path / "a.png").write_bytes(b"junk")
    res = runner.invoke(app, ["locate", str(tmp_path)])
    assert res.exit_code == 1 and "a.png" in res.output
    res = runner.invoke(app, ["locate", str(tmp_path / "missing")])
    assert res.exit_code == 2 and "missing" in res.output
    (tmp_path / "b").mkdir()
    assert runner.invoke(app, ["locate", str(tmp_path / "b")]).exit_code == 1
    res = runner.invoke(app, ["locate", str(tmp_path), "--locator", "magic"])
    assert res.exit_code == 2


def test_classical_baseline_through_the_same_command(tmp_path):
    cv2.imwrite(str(tmp_path / "p.png"), generate_frame(3, positive=True).image)
    res = runner.invoke(app, ["locate", str(tmp_path), "--locator", "classical"])
    assert res.exit_code == 0 and "p" in _rows(res.stdout)
