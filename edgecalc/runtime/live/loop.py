"""`edgecalc live`: capture thread -> prepare / finish + inference worker -> display / record thread, and a summary.

Three or four threads, as on a cart: capture keeps only the newest frame (live sources; files are
read in full); the main thread crops, runs the model and draws — or, pipelined (the default for
GPU engines), crops and preprocesses frame i+1 and draws frame i-1 while an inference worker runs
the model on frame i (with no frame waiting, frame i is finished as soon as its model call
returns); the recorder encodes video and writes the log. The window (OpenCV HighGUI) lives on the main
thread, which GUI toolkits require. Ctrl-C and SIGTERM stop the loop cleanly: the recording is
finalised and the log complete.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from edgecalc.runtime.source.capture import Frame, LatestFrameGrabber, SourceSpec, open_reader, recorded_fps
from edgecalc.runtime.live.pipeline import FramePipeline, FrameResult, Prepared
from edgecalc.runtime.live.modes import LOOP_MODES

WINDOW = "edgecalc live"
KEYS_HELP = "q/Esc quit, space pause, a attention, m mask, r redraw box, c clear box, s snapshot"


@dataclass
class LiveSummary:
    """The end-of-run report (also returned for tests and written as JSON by the CLI)."""

    source: str
    backend: str
    frames_read: int = 0
    processed: int = 0
    dropped: int = 0
    skipped_bad: int = 0
    reconnects: int = 0
    wall_s: float = 0.0
    fps: float = 0.0
    latency_ms_p50: float | None = None
    latency_ms_p99: float | None = None
    infer_ms_p50: float | None = None
    snapshots: list[str] = field(default_factory=list)
    skipped_reasons: dict[str, int] = field(default_factory=dict)
    stopped_by: str = "end of source"
    spacing_mm: list[float] | None = None  #: (x, y) mm per pixel the calcification sizes used; None: pixels
    spacing_source: str = "none"  #: "--mm-per-px", the source's own ("us-regions", "pixel-spacing"), or "none"

    def to_dict(self) -> dict:
        return asdict(self)


def has_display() -> bool:
    """True when a window can be opened (X11/Wayland on Linux; always elsewhere)."""
    if sys.platform.startswith("linux"):
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True


def open_source(spec: SourceSpec, phantom_frames: int = 90, loops: int = 1,
                phantom_fps: float | None = None) -> Callable[[], object]:
    """A zero-argument opener for the grabber (it reopens live sources with it)."""
    if spec.kind == "phantom":
        from edgecalc.runtime.source.phantom import PhantomCineReader

        return lambda: PhantomCineReader(n_frames=phantom_frames, loops=loops, fps=phantom_fps)
    return lambda: open_reader(spec)


class _StopFlag:
    """Set by SIGTERM / SIGINT handlers and the `q` key."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.reason = ""

    def set(self, reason: str) -> None:
        if not self.event.is_set():
            self.reason = reason
            self.event.set()


def run_live(
    spec: SourceSpec,
    pipeline: FramePipeline,
    *,
    backend_name: str,
    headless: bool,
    recorder=None,
    snapshot_dir: str | Path = ".",
    snapshot_every: int = 0,
    max_frames: int | None = None,
    realtime: bool | None = None,
    phantom_frames: int = 90,
    fps_hint: float = 20.0,
    manual_box_picker: Callable[[np.ndarray], tuple[int, int, int, int] | None] | None = None,
    ask_box_first: bool = False,
    on_frame: Callable[[FrameResult], None] | None = None,
    pipelined: bool | None = None,
    opener: Callable[[], object] | None = None,
) -> LiveSummary:
    """Run the loop until the source ends, `max_frames` are processed, `q`, Ctrl-C or SIGTERM.

    ``pipelined``: run the model call on a worker thread, overlapped with this thread's crop and
    overlay of the neighbouring frames (True), or prepare, model call and finish one after the
    other on this thread (False). None (the default): pipelined when the engine runs on a GPU. On a
    CPU the engine's threads and this thread share the cores; measured on 2 cores it lost latency
    and throughput without recording (docs/live.md), so CPU engines run serially.

    ``opener``: a zero-argument callable returning the frame reader, instead of opening ``spec``
    (``edgecalc demo`` passes the phantom reader it built, to keep its ground truth at hand).
    """
    import cv2

    # the per-frame OpenCV work here is on crops of ~100 pixels, too small to gain from OpenCV's own
    # thread pool, which would only compete with the inference engine's threads: one thread while we run
    cv_threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    drop_stale = spec.live if realtime is None else realtime
    # a realtime phantom behaves like a capture card: frames arrive at fps_hint whatever we do
    pacing = fps_hint if (drop_stale and spec.kind == "phantom") else None
    grabber = LatestFrameGrabber(opener or open_source(spec, phantom_frames, phantom_fps=pacing), drop_stale=drop_stale,
                                 reconnect_on_eof=spec.live).start()
    stop = _StopFlag()
    summary = LiveSummary(source=spec.describe(), backend=backend_name)
    _take_source_spacing(pipeline, grabber.reader, summary)
    if recorder is not None and recorder.fps is None:  # no --fps: record at the source's own rate
        recorder.fps = recorded_fps(grabber.reader)
    old_handlers = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            old_handlers[sig] = signal.signal(sig, lambda s, f: stop.set(signal.Signals(s).name))
    latencies, infer_ms = [], []
    paused = False
    snap_dir = Path(snapshot_dir)
    t_start = time.perf_counter()
    last_result: FrameResult | None = None
    fps_ema = None
    # pipelined: the model call of frame i runs on a worker thread while this thread prepares frame
    # i+1 (crop, preprocessing) and finishes frame i-1 (mask, overlay, hand-off to the recorder);
    # the engine releases the GIL, so the two overlap on two cores
    if pipelined is None:
        pipelined = bool(getattr(pipeline.backend, "on_gpu", False))
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="edgecalc-infer") if pipelined else None
    pending: tuple[Frame, Prepared, Future | dict | None] | None = None
    hud_backend = backend_name.split(" (")[0]  # the engine and precision; its provider list is too long for the HUD

    def emit(item: tuple[Frame, Prepared, Future | dict | None]) -> None:
        nonlocal last_result, fps_ema, paused
        frame, prepared, out = item
        res = pipeline.finish(prepared, out.result() if isinstance(out, Future) else out)
        if res.skipped is not None:
            summary.skipped_bad += 1
            summary.skipped_reasons[res.skipped] = summary.skipped_reasons.get(res.skipped, 0) + 1
            return
        summary.processed += 1
        now = time.perf_counter()
        lat = (now - frame.t_capture) * 1000.0
        latencies.append(lat)
        if res.score is not None:
            infer_ms.append(res.infer_ms)
        elapsed = now - t_start
        inst = summary.processed / elapsed if elapsed > 0 else 0.0
        fps_ema = inst if fps_ema is None else 0.9 * fps_ema + 0.1 * inst
        pipeline.overlay.hud = [f"{fps_ema:5.1f} FPS {lat:5.1f} ms", hud_backend, f"crop: {res.crop_source}"]
        if recorder is not None:
            recorder.submit(res.overlay, res.log_record())
        if on_frame is not None:
            on_frame(res)
        last_result = res
        if snapshot_every and summary.processed % snapshot_every == 0:
            summary.snapshots.append(_snapshot(res, snap_dir, summary))
        if not headless:
            cv2.imshow(WINDOW, res.overlay)
            key = cv2.waitKey(1) & 0xFF
            paused = _handle_key(key, pipeline, stop, paused, res, snap_dir, summary, manual_box_picker)
        if max_frames is not None and summary.processed >= max_frames:
            stop.set("max frames")

    try:
        while not stop.event.is_set():
            if paused and not headless:
                if pending is not None:
                    emit(pending)
                    pending = None
                    continue
                key = cv2.waitKey(30) & 0xFF
                paused = _handle_key(key, pipeline, stop, paused, last_result, snap_dir, summary, manual_box_picker)
                continue
            # with a frame in flight, do not wait for the next one: finish this one first
            frame = grabber.get(timeout=0.0 if pending is not None else 0.5)
            if frame is None:
                if pending is not None:
                    emit(pending)
                    pending = None
                    continue
                if grabber.finished:
                    break
                continue
            if ask_box_first and manual_box_picker is not None:
                ask_box_first = False
                box = manual_box_picker(frame.image)
                if box is None:
                    stop.set("no box drawn")
                    continue
                pipeline.cropper.set_manual(box)
            prepared = pipeline.prepare(frame.image, frame.index)
            out: Future | dict | None
            if pool is not None and prepared.batch is not None:
                out = pool.submit(pipeline.infer, prepared)
            else:
                out = pipeline.infer(prepared)
            if pending is not None:
                emit(pending)
                pending = None
                if stop.event.is_set():  # q, max frames: the frame just read is not processed
                    break
            pending = (frame, prepared, out)
            if pool is None:
                emit(pending)
                pending = None
        if pending is not None:  # SIGTERM / Ctrl-C with a frame in flight: it was read and inferred, show it
            emit(pending)
            pending = None
    except KeyboardInterrupt:
        stop.set("SIGINT")
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
        grabber.stop()
        for sig, handler in old_handlers.items():
            signal.signal(sig, handler)
        if recorder is not None:
            recorder.close()
        if not headless:
            cv2.destroyAllWindows()
        cv2.setNumThreads(cv_threads)
    summary.stopped_by = stop.reason or ("source error: " + str(grabber.error) if grabber.error else "end of source")
    summary.wall_s = time.perf_counter() - t_start
    summary.frames_read = grabber.stats.read
    summary.dropped = grabber.stats.dropped
    summary.reconnects = grabber.stats.reconnects
    summary.fps = summary.processed / summary.wall_s if summary.wall_s > 0 else 0.0
    if latencies:
        summary.latency_ms_p50 = float(np.percentile(latencies, 50))
        summary.latency_ms_p99 = float(np.percentile(latencies, 99))
    if infer_ms:
        summary.infer_ms_p50 = float(np.percentile(infer_ms, 50))
    return summary


def _take_source_spacing(pipeline: FramePipeline, reader: object, summary: LiveSummary) -> None:
    """The pixel spacing for calcification sizes: the pipeline's (``--mm-per-px``) or the source's own
    (a DICOM reader's ``spacing_mm``); recorded in the summary with where it came from."""
    from edgecalc.runtime.quantify import check_spacing

    if pipeline.spacing_mm is not None:
        summary.spacing_source = "--mm-per-px"
    else:
        try:
            pipeline.spacing_mm = check_spacing(getattr(reader, "spacing_mm", None))
        except ValueError:
            pipeline.spacing_mm = None
        if pipeline.spacing_mm is not None:
            summary.spacing_source = str(getattr(reader, "spacing_source", None) or "source")
    summary.spacing_mm = None if pipeline.spacing_mm is None else [float(v) for v in pipeline.spacing_mm]


def _snapshot(res: FrameResult, snap_dir: Path, summary: LiveSummary) -> str:
    import cv2

    snap_dir.mkdir(parents=True, exist_ok=True)
    path = snap_dir / f"snapshot_{res.index:06d}.png"
    cv2.imwrite(str(path), res.overlay)
    return str(path)


def _handle_key(key: int, pipeline: FramePipeline, stop: _StopFlag, paused: bool, res: FrameResult | None,
                snap_dir: Path, summary: LiveSummary, picker) -> bool:
    """Apply one key press; returns the new paused state."""
    if key in (ord("q"), 27):
        stop.set("key q")
    elif key == ord(" "):
        return not paused
    elif key == ord("a"):
        pipeline.overlay.show_attention = not pipeline.overlay.show_attention
    elif key == ord("m"):
        pipeline.overlay.show_mask = not pipeline.overlay.show_mask
    elif key == ord("s") and res is not None:
        summary.snapshots.append(_snapshot(res, snap_dir, summary))
    elif key == ord("r") and res is not None and picker is not None and hasattr(pipeline.cropper, "set_manual"):
        box = picker(res.overlay)
        if box is not None:
            pipeline.cropper.set_manual(box)
    elif key == ord("c") and hasattr(pipeline.cropper, "set_manual"):
        pipeline.cropper.set_manual(None)
    return paused


def select_roi_with_mouse(image: np.ndarray) -> tuple[int, int, int, int] | None:
    """Let the user drag a box on the live window (Enter/space confirms, c cancels)."""
    import cv2

    x, y, w, h = cv2.selectROI(WINDOW, image, showCrosshair=True, fromCenter=False)
    return (int(x), int(y), int(w), int(h)) if w > 0 and h > 0 else None
