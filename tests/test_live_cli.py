"""`edgecalc live` as a user runs it: exit codes, a torch-free headless run, a tampered bundle."""

from __future__ import annotations

import json
import shutil

from typer.testing import CliRunner

from edgecalc.cli import app
from test_foundation import run_without_torch


def test_unopenable_source_exits_2_naming_it(tiny_bundle, tmp_path):
    bundle, _ = tiny_bundle
    r = CliRunner().invoke(app, ["live", "--source", str(tmp_path / "nope.mp4"), "--bundle", str(bundle),
                                 "--headless", "--backend", "onnxruntime"])
    assert r.exit_code == 2
    assert "nope.mp4" in r.output


def test_no_source_exits_2():
    r = CliRunner().invoke(app, ["live", "--headless"])
    assert r.exit_code == 2 and "exactly one" in r.output


def test_tampered_bundle_is_refused(tiny_bundle, tmp_path):
    bundle, _ = tiny_bundle
    bad = tmp_path / "bundle"
    shutil.copytree(bundle, bad)
    onnx = bad / "model.fp32.onnx"
    data = bytearray(onnx.read_bytes())
    data[len(data) // 2] ^= 0xFF
    onnx.write_bytes(bytes(data))
    r = CliRunner().invoke(app, ["live", "--source", "phantom", "--bundle", str(bad), "--headless"])
    assert r.exit_code == 2
    assert "model.fp32.onnx" in r.output and "changed" in r.output


def test_headless_phantom_run_without_torch(tiny_bundle, tmp_path):
    bundle, _ = tiny_bundle
    res = run_without_torch(f"""
        import sys
        from typer.testing import CliRunner
        from edgecalc.cli import app
        r = CliRunner().invoke(app, ["live", "--source", "phantom", "--bundle", {str(bundle)!r}, "--headless",
                                     "--phantom-frames", "6", "--crop", "fixed", "--roi", "150,60,200,200",
                                     "--precision", "int8", "--backend", "onnxruntime",
                                     "--record", {str(tmp_path / 'out.avi')!r}, "--log", {str(tmp_path / 'log.jsonl')!r},
                                     "--summary-json", {str(tmp_path / 'summary.json')!r}])
        print(r.output)
        assert r.exit_code == 0, r.output
        assert "torch" not in sys.modules
    """)
    assert res.returncode == 0, res.stdout + res.stderr
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["processed"] == 6 and summary["skipped_bad"] == 0
    assert len((tmp_path / "log.jsonl").read_text().splitlines()) == 6
    assert (tmp_path / "out.avi").stat().st_size > 0


def test_demo_writes_video_log_snapshots_and_summary(tiny_bundle, tmp_path):
    bundle, _ = tiny_bundle
    out = tmp_path / "demo"
    r = CliRunner().invoke(app, ["demo", "--bundle", str(bundle), "--frames", "6", "--out", str(out),
                                 "--backend", "onnxruntime"])
    assert r.exit_code == 0, r.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["processed"] == 6
    assert (out / "demo.mp4").stat().st_size > 0
    assert len((out / "log.jsonl").read_text().splitlines()) == 6
    # the cine: a positive scan (frames 0-2), then a negative one (3-5); a snapshot of each, named by segment
    segs = summary["demo"]["segments"]
    assert [(s["segment"], s["ground_truth"], s["frames"], s["processed"]) for s in segs] == [
        ("positive", "calcification", "0-2", 3), ("negative", "no calcification", "3-5", 3)]
    assert segs[0]["frames_with_true_calcification"] == 3 and segs[1]["frames_with_true_calcification"] == 0
    for s in segs:
        assert 0 <= s["called_positive_share"] <= 1 and isinstance(s["overlay_drew_calcification"], bool)
    names = sorted(p.name for p in (out / "snapshots").glob("*.png"))
    assert "positive_0001.png" in names and "negative_0004.png" in names, names
    assert sorted(p.rsplit("/", 1)[-1] for p in summary["snapshots"]) == names


def test_shipped_bundle_verifies_and_matches_shipped_weights():
    from edgecalc.runtime.engine.bundle import load_bundle, sha256_file
    from edgecalc.runtime.shipped import default_bundle_dir

    path = default_bundle_dir()
    assert path is not None, "the package must ship edgecalc/assets/bundle"
    bundle = load_bundle(path)
    assert {(a.kind, a.precision) for a in bundle.manifest.artifacts} >= {("onnx", "fp32"), ("onnx", "int8"),
                                                                          ("torchscript", "fp32")}
    try:
        from edgecalc.model.shipped import default_weights_path
    except ImportError:
        return
    assert bundle.manifest.source_weights["sha256"] == sha256_file(default_weights_path())


def test_demo_on_the_shipped_bundle_without_torch(tmp_path):
    res = run_without_torch(f"""
        from typer.testing import CliRunner
        from edgecalc.cli import app
        r = CliRunner().invoke(app, ["demo", "--frames", "5", "--out", {str(tmp_path / 'demo')!r}])
        assert r.exit_code == 0, r.output
    """)
    assert res.returncode == 0, res.stdout + res.stderr
    summary = json.loads((tmp_path / "demo" / "summary.json").read_text())
    assert summary["processed"] == 5
    assert [s["processed"] for s in summary["demo"]["segments"]] == [3, 2]


def test_live_locator_cadence_default_is_the_measured_one():
    """`edgecalc live --locator-every` defaults to the k the cadence benchmark chose (cropper.LOCATOR_EVERY)."""
    import inspect

    from edgecalc.cli.deploy import live
    from edgecalc.runtime.locate.cropper import LOCATOR_EVERY

    assert inspect.signature(live).parameters["locator_every"].default.default == LOCATOR_EVERY


def test_no_extent_crops_around_the_box_alone(tmp_path):
    """`--no-extent`: the live crop holds the locator's box alone; by default it holds the extent,
    which is never smaller."""
    from edgecalc.data.phantom import generate_frame
    from edgecalc.runtime.live.build import build_pipeline

    frame = generate_frame(1, positive=True).image  # a frame whose extent reaches well past the box
    crops = {}
    for extent in (True, False):
        setup = build_pipeline(None, backend="onnxruntime", extent=extent)
        d = setup.pipeline.cropper(frame, 0)
        setup.selection.backend.close()
        crops[extent] = d.crop
        assert d.box is not None
    from edgecalc.runtime.locate.crop_geometry import square_crop
    from edgecalc.runtime.locate.learned import shipped_locator

    found = shipped_locator().locate(frame)
    area = shipped_locator()(frame)[2]
    assert crops[False] == square_crop(found.box, area, 0.1, frame.shape)
    assert crops[True] == square_crop(found.extent, area, 0.1, frame.shape)
    assert found.extent != found.box and crops[True][2] > crops[False][2]


def test_the_recording_keeps_the_sources_frame_rate_unless_fps_is_given(tiny_bundle, tmp_path):
    import cv2
    import numpy as np

    bundle, _ = tiny_bundle
    src = tmp_path / "cine.avi"
    writer = cv2.VideoWriter(str(src), cv2.VideoWriter_fourcc(*"MJPG"), 25, (320, 240))
    for i in range(4):
        writer.write(np.full((240, 320, 3), 40 + 20 * i, np.uint8))
    writer.release()
    for extra, want in (([], 25.0), (["--fps", "10"], 10.0)):
        out = tmp_path / f"rec{len(extra)}.avi"
        r = CliRunner().invoke(app, ["live", "--source", str(src), "--bundle", str(bundle), "--headless",
                                     "--backend", "onnxruntime", "--crop", "fixed", "--roi", "60,40,160,160",
                                     "--record", str(out), *extra])
        assert r.exit_code == 0, r.output
        cap = cv2.VideoCapture(str(out))
        assert cap.get(cv2.CAP_PROP_FPS) == want and int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 4
        cap.release()
