"""Video files and frame sources under fuzzing: frames processed or skipped by reason — never a crash.

Seeds are small MJPG AVI and mp4v MP4 files written with OpenCV's VideoWriter, cut at any byte (and
a few bytes flipped); a raw MJPEG stream whose frames change resolution half-way; and fake readers
(the grabber's ``FrameReader`` protocol) that deliver frames of every dtype, channel count and size,
all black or all white, or that stall. Contracts:

- ``edgecalc live --source FILE --headless``: exit 0 having processed what the file holds, or exit 2
  naming the file (OpenCV cannot open it) — never a traceback;
- ``run_live`` over any frames: returns, with every delivered frame either processed or counted in
  ``skipped_bad`` with a reason;
- a stalled live source (each read waits, then fails): the grabber reconnects the documented number
  of times (``max_reconnects`` = 3) and the loop ends cleanly ("end of source").
"""

from __future__ import annotations

import threading
from pathlib import Path

import cv2
import numpy as np
import pytest

pytest.importorskip("hypothesis", reason="the fuzz suite needs hypothesis (pip install -e '.[dev]')")

from hypothesis import example, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from edgecalc.runtime.source.capture import LatestFrameGrabber, SourceSpec  # noqa: E402
from edgecalc.runtime.live.loop import LiveHooks, LiveOptions, run_live  # noqa: E402

W, H = 320, 240
ROI = "60,40,160,160"
#: The CLI fuzz runs a whole `edgecalc live` per example: a sixth of the profile's budget.
CLI_BUDGET = settings(max_examples=max(4, settings().max_examples // 6))


def _frames(n: int = 12, w: int = W, h: int = H, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        f = (rng.random((h, w)) * 60 + 40).astype(np.uint8)
        cv2.circle(f, (w // 2 + i, h // 2), min(w, h) // 5, 20, -1)
        cv2.circle(f, (w // 2 + i, h // 2), 6, 250, -1)
        out.append(cv2.cvtColor(f, cv2.COLOR_GRAY2BGR))
    return out


def _video_bytes(ext: str, frames: list[np.ndarray]) -> bytes:
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / f"seed{ext}"
        h, w = frames[0].shape[:2]
        vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*("MJPG" if ext == ".avi" else "mp4v")), 10, (w, h))
        for f in frames:
            vw.write(f)
        vw.release()
        return path.read_bytes()


def _mjpeg_stream(parts: list[list[np.ndarray]]) -> bytes:
    """A raw MJPEG stream (concatenated JPEGs): its frames may change size, which a container forbids."""
    return b"".join(cv2.imencode(".jpg", f)[1].tobytes() for part in parts for f in part)


SEEDS = {".avi": _video_bytes(".avi", _frames()), ".mp4": _video_bytes(".mp4", _frames()),
         ".mjpeg": _mjpeg_stream([_frames(4), _frames(4, 200, 150, seed=1), _frames(4)])}


@pytest.fixture(scope="module")
def live_setup():
    """The shipped bundle on onnxruntime with a fixed crop, built once (what `edgecalc live` builds per run)."""
    from edgecalc.runtime.live.build import build_pipeline

    setup = build_pipeline(None, backend="onnxruntime", crop="fixed", roi=ROI, threads=1)
    yield setup
    setup.selection.backend.close()


def _live_cli(source: Path | str, *extra: str):
    from typer.testing import CliRunner

    from edgecalc.cli import app

    return CliRunner().invoke(app, ["live", "--source", str(source), "--headless", "--backend", "onnxruntime",
                                    "--crop", "fixed", "--roi", ROI, "--threads", "1", *extra])


@st.composite
def damaged_videos(draw) -> tuple[str, bytes]:
    ext = draw(st.sampled_from(sorted(SEEDS)))
    data = bytearray(SEEDS[ext])
    if draw(st.booleans()):
        for _ in range(draw(st.integers(1, 6))):
            data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    return ext, bytes(data[: draw(st.integers(0, len(data)))])


def _assert_cli_contract(tmp: Path, ext: str, data: bytes) -> None:
    path = tmp / f"clip{ext}"
    path.write_bytes(data)
    log = tmp / "log.jsonl"
    res = _live_cli(path, "--log", str(log), "--summary-json", str(tmp / "summary.json"))
    assert res.exception is None or isinstance(res.exception, SystemExit), repr(res.exception)
    assert res.exit_code in (0, 2), res.output
    if res.exit_code == 2:
        assert path.name in " ".join(res.output.split()).replace(" ", ""), res.output
    else:
        import json

        summary = json.loads((tmp / "summary.json").read_text())
        assert summary["processed"] + summary["skipped_bad"] <= summary["frames_read"]
        assert len(log.read_text().splitlines()) == summary["processed"]


@CLI_BUDGET
@given(damaged_videos())
@example((".avi", SEEDS[".avi"][: len(SEEDS[".avi"]) // 2]))  # truncated mid-stream: the index is gone
@example((".mp4", SEEDS[".mp4"][: len(SEEDS[".mp4"]) // 2]))  # truncated: no moov atom
@example((".mp4", b""))
def test_live_cli_on_a_damaged_video(tmp_path_factory, case):
    ext, data = case
    _assert_cli_contract(tmp_path_factory.mktemp("v"), ext, data)


@pytest.mark.parametrize("ext", sorted(SEEDS))
def test_live_cli_reads_every_seed_whole(tmp_path, ext):
    """The seeds play (otherwise cutting them proves little); the MJPEG stream changes resolution half-way."""
    path = tmp_path / f"clip{ext}"
    path.write_bytes(SEEDS[ext])
    res = _live_cli(path, "--summary-json", str(tmp_path / "s.json"))
    assert res.exit_code == 0, res.output
    import json

    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["processed"] == 12 and summary["skipped_bad"] == 0, summary


# --- fake readers: any frame, a stall ------------------------------------------------------------


class ListReader:
    """A FrameReader over given frames (anything, even non-arrays), then the end."""

    def __init__(self, frames: list) -> None:
        self.frames = list(frames)

    def read(self):
        return (True, self.frames.pop(0)) if self.frames else (False, None)

    def release(self) -> None:
        pass


DTYPES = st.sampled_from([np.uint8, np.uint16, np.int8, np.int32, np.float32, np.float64, np.bool_])


@st.composite
def odd_frames(draw) -> object:
    kind = draw(st.sampled_from(["array", "array", "array", "black", "white", "none", "list"]))
    if kind == "none":
        return None
    if kind == "list":
        return [[1, 2], [3, 4]]
    h = draw(st.sampled_from([0, 1, 31, 32, 120, H]))
    w = draw(st.sampled_from([0, 1, 31, 32, 160, W]))
    channels = draw(st.sampled_from([None, 1, 2, 3, 4, 5]))
    dtype = draw(DTYPES)
    shape = (h, w) if channels is None else (h, w, channels)
    if kind == "black":
        return np.zeros(shape, dtype)
    if kind == "white":
        return np.full(shape, np.iinfo(dtype).max if np.issubdtype(dtype, np.integer) else 1, dtype)
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    hi = np.iinfo(dtype).max if np.issubdtype(dtype, np.integer) else 1.0
    return (rng.random(shape) * hi).astype(dtype)


def _run_frames(setup, frames: list, spec: SourceSpec | None = None, **kw):
    return run_live(spec or SourceSpec("file", "fake"), setup.pipeline, "onnxruntime", LiveOptions(realtime=False, **kw),
                    LiveHooks(opener=lambda: ListReader(frames)))


@given(st.lists(odd_frames(), min_size=1, max_size=6))
@example([np.zeros((H, W, 3), np.uint8), np.full((H, W, 3), 255, np.uint8)])  # all black, all white
@example([np.zeros((H, W, 3), np.float64), np.zeros((H, W, 2), np.uint8), np.zeros((H, W), np.uint16)])
@example([_frames(1)[0], _frames(1, 200, 150)[0], _frames(1)[0]])  # the resolution changes mid-stream
@example([(np.random.default_rng(0).random((H, W, 3)) * 65535).astype(np.uint16)])  # found: a 16-bit frame crashed the overlay
def test_run_live_processes_or_skips_every_frame(live_setup, frames):
    summary = _run_frames(live_setup, frames)
    delivered = sum(f is not None for f in frames[: next((i for i, f in enumerate(frames) if f is None), len(frames))])
    assert summary.processed + summary.skipped_bad == delivered, summary
    assert sum(summary.skipped_reasons.values()) == summary.skipped_bad


def test_a_blank_frame_is_skipped_by_reason(live_setup):
    summary = _run_frames(live_setup, [np.zeros((H, W, 3), np.uint8)])
    assert summary.skipped_bad == 1 and any("blank" in r for r in summary.skipped_reasons)


class StallingReader:
    """A live source that hangs for ``stall_s`` on every read and then fails, as a frozen stream does."""

    opened = 0

    def __init__(self, stall_s: float) -> None:
        type(self).opened += 1
        self.stall_s = stall_s
        self._released = threading.Event()

    def read(self):
        self._released.wait(self.stall_s)  # bounded: the fake never hangs a test
        return False, None

    def release(self) -> None:
        self._released.set()


def test_a_stalled_stream_reconnects_then_ends_cleanly(live_setup):
    StallingReader.opened = 0
    summary = run_live(SourceSpec("url", "rtsp://stalled.invalid/stream"), live_setup.pipeline,
                       "onnxruntime", hooks=LiveHooks(opener=lambda: StallingReader(0.2)))
    assert summary.reconnects == 3 and StallingReader.opened == 4  # the first open and three reconnects
    assert summary.processed == 0 and summary.stopped_by == "end of source"


def test_a_stream_that_recovers_after_a_stall_goes_on(live_setup):
    """The reconnect is worth it: a source that fails once and then delivers frames is read to its end."""
    opens = []

    def opener():  # stalls, then three frames, then stalls for good
        opens.append(1)
        return ListReader(_frames(3)) if len(opens) == 2 else StallingReader(0.05)

    summary = run_live(SourceSpec("url", "rtsp://flaky.invalid/stream"), live_setup.pipeline, "onnxruntime",
                       LiveOptions(realtime=False), LiveHooks(opener=opener))
    assert summary.processed == 3 and summary.reconnects == 3 and summary.stopped_by == "end of source"
