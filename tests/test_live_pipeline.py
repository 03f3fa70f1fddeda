"""The live pipeline on real engines and phantom video: overlay placement, parity, recording, faults."""

from __future__ import annotations

import json
import os
import signal

import cv2
import numpy as np
import pytest

from conftest import decoded
from edgecalc.data.preprocess import preprocess
from edgecalc.runtime.engine.backends import open_backend
from edgecalc.runtime.source.capture import SourceError, parse_source
from edgecalc.runtime.locate.cropper import AutoCropper, FixedCropper
from edgecalc.runtime.live.loop import LiveHooks, LiveOptions, run_live
from edgecalc.runtime.live.overlay import OverlayOptions
from edgecalc.runtime.live.pipeline import FramePipeline
from edgecalc.runtime.live.recorder import Recorder

ROI = (200, 100, 120, 120)


def phantom_frames(n=6, seed=5):
    from edgecalc.data.phantom import generate_cine

    return [f for f in generate_cine(seed, n, positive=True)]


def make_pipeline(backend, cropper=None, **overlay):
    return FramePipeline(backend=backend, input_size=32, cropper=cropper or FixedCropper(ROI),
                         overlay=OverlayOptions(**overlay))


class SpyBackend:
    """Records the batch it was given; returns a fixed mask in the crop's centre and score 0.9."""

    name, precision = "spy", "fp32"

    def __init__(self, size=32):
        self.size = size
        self.batches = []

    def infer(self, batch):
        self.batches.append(batch.copy())
        mask = np.zeros((batch.shape[0], 1, self.size, self.size), np.float32)
        mask[:, :, 12:20, 12:20] = 1.0
        return {"mask": mask, "score": np.full((batch.shape[0], 1), 0.9, np.float32),
                "attention": np.zeros((batch.shape[0], 3, self.size, self.size), np.float32)}


def test_runtime_input_is_byte_identical_to_training_preprocessing(tmp_path):
    """The batch the engine sees equals what the training loader makes of the same crop."""
    from edgecalc.data.dataset import load_dataset

    frame = phantom_frames(1)[0].image
    spy = SpyBackend()
    make_pipeline(spy).process(frame, 0)
    x, y, w, h = ROI
    crop = frame[y:y + h, x:x + w]
    (tmp_path / "images").mkdir()
    cv2.imwrite(str(tmp_path / "images" / "c0.png"), crop)
    (tmp_path / "labels.csv").write_text("id,calcification\nc0,1\n")
    loaded = load_dataset(tmp_path, size=32)
    images = loaded[1]
    assert spy.batches[0].dtype == np.float32
    assert spy.batches[0].tobytes() == images[0:1].tobytes()
    assert spy.batches[0].tobytes() == preprocess(crop, 32)[None].tobytes()


def test_overlay_pixels_lie_on_the_predicted_mask():
    frame = np.full((360, 560), 90, np.uint8)
    frame[::7, ::5] = 140  # some texture so the frame is not blank
    res = make_pipeline(SpyBackend()).process(frame, 0)
    assert res.mask is not None and res.mask_area_px > 0
    changed = np.any(res.overlay != cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR), axis=2)
    assert changed[res.mask].all()
    # away from the mask, the box outline, the score bar and the HUD nothing is painted
    keep = np.ones_like(changed)
    ys, xs = np.nonzero(res.mask)
    keep[ys.min() - 3:ys.max() + 4, xs.min() - 3:xs.max() + 4] = False
    x, y, w, h = ROI
    keep[y - 2:y + h + 2, x - 2:x + 2] = keep[y - 2:y + h + 2, x + w - 3:x + w + 2] = False
    keep[y - 2:y + 2, x - 2:x + w + 2] = keep[y + h - 3:y + h + 2, x - 2:x + w + 2] = False
    keep[:110, 380:] = False  # score bar, label and HUD panel (no scan area here: top right)
    assert not changed[keep].any()
    # the mask sits in the crop's centre, scaled from 32 px to the 120 px crop
    assert abs(xs.mean() - (x + w / 2)) < 3 and abs(ys.mean() - (y + h / 2)) < 3


def test_bad_frames_are_skipped_not_fatal():
    pipe = make_pipeline(SpyBackend())
    assert pipe.process(np.zeros((360, 560, 3), np.uint8), 0).skipped == "blank (all black)"
    assert "dtype" in pipe.process(np.ones((360, 560), np.float64), 1).skipped
    assert pipe.process(phantom_frames(1)[0].image, 2).skipped is None


def test_onnxruntime_and_torchscript_agree_on_phantom_frames(tiny_model_files):
    d, _, _ = tiny_model_files
    frames = phantom_frames(4)
    with open_backend("onnxruntime", d / "model.onnx") as ort_be, open_backend("torchscript", d / "model.ts") as ts_be:
        a, b = make_pipeline(ort_be), make_pipeline(ts_be)
        for i, f in enumerate(frames):
            ra, rb = a.process(f.image, i), b.process(f.image, i)
            assert abs(ra.score - rb.score) <= 1e-3
            inter = np.logical_and(ra.mask, rb.mask).sum()
            union = np.logical_or(ra.mask, rb.mask).sum()
            assert union == 0 or inter / union >= 0.99


def test_auto_crop_uses_locator_every_k_frames_and_manual_override():
    calls = []

    def locator(frame):
        calls.append(index[0])
        return (100 + len(calls), 80, 90, 90), 0.8, (0, 0, 560, 360)

    index = [0]
    cropper = AutoCropper(locator=locator, every=8)
    frame = np.full((360, 560), 100, np.uint8)
    decisions = []
    for i in range(31):
        index[0] = i
        decisions.append(cropper(frame, i))
    assert calls == [0, 2, 6, 14, 22, 30]  # the interval doubles from 2 up to every=8
    assert all(d.source == "locator" for d in decisions)
    side = decisions[0].crop[2]
    assert decisions[0].crop[3] == side  # square
    cropper.set_manual((10, 10, 50, 60))
    d = cropper(frame, 7)
    assert d.source == "manual" and d.box == (10, 10, 50, 60)
    cropper.set_manual(None)
    index[0] = 40
    assert cropper(frame, 40).source == "locator" and calls[-1] == 40


def test_auto_crop_searches_on_every_frame_until_it_finds_a_nodule():
    answers = [None, None, ((200, 100, 80, 80), 0.9, None), None]
    calls = []

    def locator(frame):
        calls.append(1)
        return answers[min(len(calls) - 1, len(answers) - 1)]

    cropper = AutoCropper(locator=locator, every=15, track=False)
    frame = np.full((360, 560), 100, np.uint8)
    sources = [cropper(frame, i).source for i in range(6)]
    assert sources == ["none", "none", "locator", "locator", "none", "none"]
    assert len(calls) == 5  # frames 0, 1, 2 (found: next run 2 frames later), 4 (lost), 5


def test_auto_crop_holds_the_locator_extent_between_runs():
    """A locator that reports an extent (where the nodule may reach) gets a crop holding it; its reach
    past the box rides with the box on the frames between runs; a manual box has none."""
    from edgecalc.runtime.locate.crop_geometry import square_crop

    box, extent, area = (200, 100, 80, 60), (190, 95, 130, 70), (0, 0, 560, 360)
    cropper = AutoCropper(locator=lambda f: (box, 0.9, area, extent), every=4, track=False)
    frame = np.full((360, 560), 100, np.uint8)
    for i in range(3):
        d = cropper(frame, i)
        assert d.box == box  # the box shown is the nodule's, not the extent
        x, y, w, h = d.crop
        assert x <= 190 and y <= 95 and x + w >= 320 and y + h >= 165, d.crop
        assert d.crop == square_crop(extent, area, cropper.margin, frame.shape)
    plain = AutoCropper(locator=lambda f: (box, 0.9, area), every=4, track=False)
    assert plain(frame, 0).crop == square_crop(box, area, plain.margin, frame.shape)
    cropper.set_manual((10, 10, 50, 60))
    assert cropper(frame, 5).crop == square_crop((10, 10, 50, 60), None, cropper.margin, frame.shape)


def write_phantom_video(path, n=10):
    from edgecalc.data.phantom import write_cine

    return write_cine(path, seed=3, n_frames=n, fps=10)


def test_headless_run_records_one_frame_and_one_log_line_per_processed_frame(tmp_path, tiny_model_files):
    d, _, _ = tiny_model_files
    video = write_phantom_video(tmp_path / "cine.mp4", n=10)
    rec = Recorder(tmp_path / "out.avi", tmp_path / "log.jsonl", fps=10)
    with open_backend("onnxruntime", d / "model.onnx") as be:
        summary = run_live(parse_source(None, str(video)), make_pipeline(be), "onnxruntime",
                           LiveOptions(snapshot_dir=tmp_path / "snaps", snapshot_every=5), LiveHooks(recorder=rec))
    assert summary.frames_read == 10 and summary.processed == 10 and summary.dropped == 0
    assert summary.stopped_by == "end of source"
    cap = cv2.VideoCapture(str(tmp_path / "out.avi"))
    n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    cap.release()
    assert n == summary.processed
    lines = [json.loads(ln) for ln in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert [ln["frame"] for ln in lines] == list(range(10))
    assert all(ln["score"] is not None and ln["box"] == list(ROI) for ln in lines)
    assert len(summary.snapshots) == 2 and all(os.path.exists(p) for p in summary.snapshots)
    assert summary.latency_ms_p50 is not None and summary.latency_ms_p99 >= summary.latency_ms_p50


def test_the_loop_measures_calcifications_after_the_frame_is_drawn_and_logs_that_frame_s(tmp_path, monkeypatch):
    """The live loop keeps the quantification off the capture-to-display path: each frame's log line
    holds that frame's calcifications (as ``process`` measures them), and its HUD shows the smoothed
    state as of the frame before (nothing on the first frame)."""
    import edgecalc.runtime.live.pipeline as lp

    huds = []
    draw = lp.draw_overlay

    def spy(*a, **k):
        huds.append(list(k["extra_hud"]))
        return draw(*a, **k)

    monkeypatch.setattr(lp, "draw_overlay", spy)
    video = write_phantom_video(tmp_path / "cine.mp4", n=6)
    rec = Recorder(None, tmp_path / "log.jsonl")
    run_live(parse_source(None, str(video)), make_pipeline(SpyBackend()), "spy", LiveOptions(pipelined=False),
             LiveHooks(recorder=rec))
    lines = [json.loads(ln) for ln in (tmp_path / "log.jsonl").read_text().splitlines()]
    loop_huds, huds[:] = list(huds), []
    pipe = make_pipeline(SpyBackend())
    direct = [pipe.process(f, i) for i, f in enumerate(decoded(video))]
    assert len(lines) == len(direct) == 6
    assert [ln["calcifications"] for ln in lines] == [lp._foci_record(r.called_foci()) for r in direct]
    assert [ln["calcifications_smoothed"] for ln in lines] == [r.shown_foci.to_dict() for r in direct]
    assert lines[0]["calcifications"]["count"] == 1  # the spy's square: one calcification on every frame
    assert huds[0] and loop_huds[0] == []  # process() shows frame 0's own; the loop, nothing measured yet
    assert loop_huds[1:] == huds[:-1]  # then the loop's HUD is one frame behind


class ThreadSpy(SpyBackend):
    """A SpyBackend that notes which thread each model call ran on; ``on_gpu`` as asked."""

    def __init__(self, on_gpu=False):
        super().__init__()
        self.on_gpu = on_gpu
        self.threads = []

    def infer(self, batch):
        import threading

        self.threads.append(threading.current_thread().name)
        return super().infer(batch)


def _log_run(tmp_path, name, backend, pipelined, cropper=None, **kw):
    rec = Recorder(None, tmp_path / f"{name}.jsonl")
    video = tmp_path / "cine.mp4"
    if not video.exists():
        write_phantom_video(video, n=12)
    summary = run_live(parse_source(None, str(video)), make_pipeline(backend, cropper), "spy",
                       LiveOptions(pipelined=pipelined, **kw), LiveHooks(recorder=rec))
    lines = [json.loads(ln) for ln in (tmp_path / f"{name}.jsonl").read_text().splitlines()]
    return summary, [{k: ln[k] for k in ("frame", "box", "crop", "score", "smoothed", "decision", "mask_area_px")}
                     for ln in lines]


def test_pipelined_loop_gives_the_serial_loop_s_results_frame_by_frame(tmp_path, tiny_model_files):
    """The inference worker changes when the model runs, not what comes out: same frames, same
    order, same boxes, scores, smoothed decisions and mask areas as one-after-the-other."""
    d, _, _ = tiny_model_files
    from edgecalc.runtime.locate.classical import (
        locate_nodule,  # a real locator: state advances per frame
    )

    def locator(frame):
        found = locate_nodule(frame)
        return None if found is None else (found.box, found.confidence, None)

    with open_backend("onnxruntime", d / "model.onnx") as be:
        s_serial, serial = _log_run(tmp_path, "serial", be, False, AutoCropper(locator=locator, every=3, track=True))
        s_pipe, piped = _log_run(tmp_path, "piped", be, True, AutoCropper(locator=locator, every=3, track=True))
    assert s_serial.processed == s_pipe.processed == 12
    assert sum(ln["score"] is not None for ln in serial) >= 6  # the model ran on most frames
    assert len({ln["crop"] and tuple(ln["crop"]) for ln in serial}) > 1  # and the crop moved
    assert piped == serial


def test_pipelined_loop_runs_the_model_on_its_worker_and_honours_max_frames(tmp_path):
    spy = ThreadSpy()
    summary, lines = _log_run(tmp_path, "a", spy, True, max_frames=7)
    assert summary.processed == 7 and [ln["frame"] for ln in lines] == list(range(7))
    assert set(spy.threads) == {"edgecalc-infer_0"}
    serial = ThreadSpy()
    _log_run(tmp_path, "b", serial, False, max_frames=3)
    assert set(serial.threads) == {"MainThread"}


def test_loop_default_is_pipelined_for_gpu_engines_only(tmp_path):
    gpu, cpu = ThreadSpy(on_gpu=True), ThreadSpy(on_gpu=False)
    _log_run(tmp_path, "gpu", gpu, None, max_frames=2)
    _log_run(tmp_path, "cpu", cpu, None, max_frames=2)
    assert set(gpu.threads) == {"edgecalc-infer_0"} and set(cpu.threads) == {"MainThread"}


@pytest.mark.parametrize("pipelined", [False, True], ids=["serial", "pipelined"])
def test_sigterm_finalises_recording_and_log(tmp_path, pipelined):
    video = write_phantom_video(tmp_path / "cine.mp4", n=30)
    rec = Recorder(tmp_path / "out.avi", tmp_path / "log.jsonl", fps=10)
    seen = []

    def on_frame(res):
        seen.append(res.index)
        if len(seen) == 5:
            os.kill(os.getpid(), signal.SIGTERM)

    summary = run_live(parse_source(None, str(video)), make_pipeline(SpyBackend()), "spy",
                       LiveOptions(pipelined=pipelined), LiveHooks(recorder=rec, on_frame=on_frame))
    assert summary.stopped_by == "SIGTERM"
    assert 5 <= summary.processed < 30
    cap = cv2.VideoCapture(str(tmp_path / "out.avi"))
    ok, first = cap.read()
    n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    cap.release()
    assert ok and first.shape == (360, 560, 3)
    assert n == summary.processed
    assert len((tmp_path / "log.jsonl").read_text().splitlines()) == summary.processed


def test_unopenable_source_is_named(tmp_path):
    with pytest.raises(SourceError, match="missing.mp4"):
        run_live(parse_source(None, str(tmp_path / "missing.mp4")), make_pipeline(SpyBackend()), "spy")


def test_phantom_source_runs_without_files():
    summary = run_live(parse_source(None, "phantom"), make_pipeline(SpyBackend()), "spy",
                       LiveOptions(phantom_frames=4))
    assert summary.processed == 4 and summary.skipped_bad == 0


def test_phantom_source_is_a_positive_scan_then_a_negative_one():
    from edgecalc.data.phantom.cine import DEMO_MIN_CALC_PX
    from edgecalc.runtime.source.phantom import PhantomCineReader

    r = PhantomCineReader(n_frames=5)
    pos, neg = r.segments
    assert (pos.name, pos.label, pos.first, pos.n_frames) == ("positive", 1, 0, 3)
    assert (neg.name, neg.label, neg.first, neg.n_frames) == ("negative", 0, 3, 2)
    assert r.labels == [1, 1, 1, 0, 0]
    # the positive's calcifications are the clearly visible kind; the negative has none, frame by frame
    assert pos.criteria_met and {"macro", "rim"} & set(pos.calcification_kinds)
    assert pos.calc_px_first_frame >= DEMO_MIN_CALC_PX and neg.calcification_kinds == []
    assert all(t is not None and t[2].any() for t in r.truth[:3]) and r.truth[3:] == [None, None]
    assert [r.segment_of(i).name for i in range(7)] == ["positive"] * 3 + ["negative"] * 2 + ["positive"] * 2
    frames = [r.read()[1] for _ in range(5)]
    assert all(f.shape == (360, 560, 3) for f in frames) and r.read() == (False, None)
    assert not np.array_equal(frames[2], frames[3])  # another nodule, another neck
    single = PhantomCineReader(seed=5, n_frames=2, positive=False)
    assert single.segments is None and single.labels == [0, 0] and single.segment_of(0) is None


def test_demo_tally_counts_mask_pixels_on_the_true_calcification():
    from edgecalc.runtime.live.demo import mask_px_on_truth
    from edgecalc.runtime.live.overlay import CropMap

    truth = (50, 60, np.ones((2, 2), bool))  # true calcification at rows 50-51, cols 60-61
    drawn = np.zeros((10, 10), bool)
    drawn[7, 6] = True  # frame (y 52, x 61): 1 px below the calcification
    drawn[0, 0] = True  # frame (y 45, x 55): 5 px up and 5 px left of its corner, 7.1 px away
    m = CropMap(drawn, (55, 45))  # origin (x0, y0)
    assert mask_px_on_truth(m, truth, 0) == 0
    assert mask_px_on_truth(m, truth, 1) == 1
    assert mask_px_on_truth(m, truth, 5) == 1
    assert mask_px_on_truth(m, truth, 7.5) == 2
    assert mask_px_on_truth(m, None, 5) == 0 and mask_px_on_truth(None, truth, 5) == 0


def test_realtime_source_drops_stale_frames_instead_of_queueing():
    """A paced source faster than the pipeline: frames are dropped and counted, never queued."""
    import time

    class SlowSpy(SpyBackend):
        def infer(self, batch):
            time.sleep(0.05)
            return super().infer(batch)

    summary = run_live(parse_source(None, "phantom"), make_pipeline(SlowSpy()), "spy",
                       LiveOptions(phantom_frames=40, realtime=True, fps_hint=200.0))
    assert summary.dropped > 0
    assert summary.frames_read == summary.processed + summary.dropped + summary.skipped_bad


def test_bad_frames_in_a_stream_are_skipped_and_counted(monkeypatch):
    import edgecalc.runtime.live.loop as live_mod

    good = phantom_frames(3)
    stream = [good[0].image, np.zeros((360, 560, 3), np.uint8), np.ones((360, 560), np.float64),
              good[1].image, np.zeros((5, 5), np.uint8), good[2].image]

    class Reader:
        def __init__(self):
            self.items = list(stream)

        def read(self):
            return (True, self.items.pop(0)) if self.items else (False, None)

        def release(self):
            pass

    monkeypatch.setattr(live_mod, "open_source", lambda spec, *a, **k: Reader)
    summary = run_live(parse_source(None, "clip.mp4"), make_pipeline(SpyBackend()), "spy")
    assert summary.processed == 3 and summary.skipped_bad == 3
    assert sum(summary.skipped_reasons.values()) == 3 and "blank (all black)" in summary.skipped_reasons
