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


@dataclass
class LiveOptions:
    """How the loop runs: the ``edgecalc live`` flags that are neither the source, the engine nor a hook."""

    headless: bool = True  #: no window (no display, CI, a recording-only cart)
    snapshot_dir: Path = Path(".")  #: where ``s`` and ``snapshot_every`` write PNGs
    snapshot_every: int = 0  #: a snapshot every N processed frames; 0 never
    max_frames: int | None = None  #: stop after this many processed frames
    realtime: bool | None = None  #: drop stale frames (keep only the newest); None: for live sources only
    phantom_frames: int = 90  #: length of the phantom cine
    fps_hint: float = 20.0  #: the pace of a realtime phantom (frames arrive at it, as from a capture card)
    ask_box_first: bool = False  #: ``--crop manual``: ask for the box on the first frame
    #: the model call on a worker thread, overlapped with the neighbouring frames' crop and overlay (True),
    #: or prepare, model call and finish one after the other (False). None: pipelined when the engine runs
    #: on a GPU. On a CPU the engine's threads and this thread share the cores; measured on 2 cores it lost
    #: latency and throughput without recording (docs/live.md), so CPU engines run serially.
    pipelined: bool | None = None


@dataclass
class LiveHooks:
    """What a caller plugs into the loop; each is optional."""

    recorder: object | None = None  #: a ``Recorder``: the overlay video and the per-frame log
    on_frame: Callable[[FrameResult], None] | None = None  #: called with every processed frame
    #: draws a box on an image (the window's mouse): ``r`` and ``ask_box_first`` use it
    manual_box_picker: Callable[[np.ndarray], tuple[int, int, int, int] | None] | None = None
    #: a zero-argument callable returning the frame reader, instead of opening ``spec``
    #: (``edgecalc demo`` passes the phantom reader it built, to keep its ground truth at hand)
    opener: Callable[[], object] | None = None


def run_live(spec: SourceSpec, pipeline: FramePipeline, backend_name: str, options: LiveOptions | None = None,
             hooks: LiveHooks | None = None) -> LiveSummary:
    """Run the loop until the source ends, ``max_frames`` are processed, ``q``, Ctrl-C or SIGTERM."""
    return _LiveLoop(spec, pipeline, backend_name, options or LiveOptions(), hooks or LiveHooks()).run()


class _LiveLoop:
    """One run of the loop: its threads, its counters and the frame in flight (pipelined)."""

    def __init__(self, spec: SourceSpec, pipeline: FramePipeline, backend_name: str, options: LiveOptions,
                 hooks: LiveHooks) -> None:
        self.spec, self.pipeline, self.opt, self.hooks = spec, pipeline, options, hooks
        self.summary = LiveSummary(source=spec.describe(), backend=backend_name)
        self.hud_backend = backend_name.split(" (")[0]  # the engine and precision; its provider list is too long for the HUD
        self.stop = _StopFlag()
        self.latencies: list[float] = []
        self.infer_ms: list[float] = []
        self.paused = False
        self.ask_box_first = options.ask_box_first
        self.snap_dir = Path(options.snapshot_dir)
        self.last_result: FrameResult | None = None
        self.fps_ema: float | None = None
        self.t_start = 0.0

    def run(self) -> LiveSummary:
        import cv2

        # the per-frame OpenCV work here is on crops of ~100 pixels, too small to gain from OpenCV's own
        # thread pool, which would only compete with the inference engine's threads: one thread while we run
        cv_threads = cv2.getNumThreads()
        cv2.setNumThreads(1)
        opt, recorder = self.opt, self.hooks.recorder
        drop_stale = self.spec.live if opt.realtime is None else opt.realtime
        # a realtime phantom behaves like a capture card: frames arrive at fps_hint whatever we do
        pacing = opt.fps_hint if (drop_stale and self.spec.kind == "phantom") else None
        opener = self.hooks.opener or open_source(self.spec, opt.phantom_frames, phantom_fps=pacing)
        try:
            self.grabber = LatestFrameGrabber(opener, drop_stale=drop_stale, reconnect_on_eof=self.spec.live).start()
        except BaseException:  # a source that cannot be opened: leave OpenCV's threads as they were
            cv2.setNumThreads(cv_threads)
            raise
        _take_source_spacing(self.pipeline, self.grabber.reader, self.summary)
        if recorder is not None and recorder.fps is None:  # no --fps: record at the source's own rate
            recorder.fps = recorded_fps(self.grabber.reader)
        old_handlers = {}
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                old_handlers[sig] = signal.signal(sig, lambda s, f: self.stop.set(signal.Signals(s).name))
        pipelined = opt.pipelined
        if pipelined is None:
            pipelined = bool(getattr(self.pipeline.backend, "on_gpu", False))
        # pipelined: the model call of frame i runs on a worker thread while this thread prepares frame
        # i+1 (crop, preprocessing) and finishes frame i-1 (mask, overlay, hand-off to the recorder);
        # the engine releases the GIL, so the two overlap on two cores
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="edgecalc-infer") if pipelined else None
        self.t_start = time.perf_counter()
        try:
            self._frames(pool)
        except KeyboardInterrupt:
            self.stop.set("SIGINT")
        finally:
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)
            self.grabber.stop()
            try:
                if recorder is not None:
                    # still under the loop's handlers: a SIGTERM now only sets the stop flag, so the
                    # recording is finalised whole (it used to end the process between the loop and here)
                    recorder.close()
            finally:
                for sig, handler in old_handlers.items():
                    signal.signal(sig, handler)
                if not opt.headless:
                    cv2.destroyAllWindows()
                cv2.setNumThreads(cv_threads)
        return self._summarise()

    def _frames(self, pool: ThreadPoolExecutor | None) -> None:
        """Read, prepare, infer and emit frames until stopped; with ``pool``, one frame's model call in flight."""
        import cv2

        pipeline, stop = self.pipeline, self.stop
        pending: tuple[Frame, Prepared, Future | dict | None] | None = None
        while not stop.event.is_set():
            if self.paused and not self.opt.headless:
                if pending is not None:
                    self._emit(pending)
                    pending = None
                    continue
                key = cv2.waitKey(30) & 0xFF
                self._key(key, self.last_result)
                continue
            # with a frame in flight, do not wait for the next one: finish this one first
            frame = self.grabber.get(timeout=0.0 if pending is not None else 0.5)
            if frame is None:
                if pending is not None:
                    self._emit(pending)
                    pending = None
                    continue
                if self.grabber.finished:
                    break
                continue
            if self.ask_box_first and self.hooks.manual_box_picker is not None:
                self.ask_box_first = False
                box = self.hooks.manual_box_picker(frame.image)
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
                self._emit(pending)
                pending = None
                if stop.event.is_set():  # q, max frames: the frame just read is not processed
                    return
            pending = (frame, prepared, out)
            if pool is None:
                self._emit(pending)
                pending = None
        if pending is not None:  # SIGTERM / Ctrl-C with a frame in flight: it was read and inferred, show it
            self._emit(pending)

    def _emit(self, item: tuple[Frame, Prepared, Future | dict | None]) -> None:
        """Finish one frame (mask, overlay), count it, hand it to the recorder, the hook and the window."""
        frame, prepared, out = item
        summary, opt = self.summary, self.opt
        # the calcifications are measured once the frame is shown (below): off the capture-to-display path
        res = self.pipeline.finish(prepared, out.result() if isinstance(out, Future) else out, measure_foci=False)
        if res.skipped is not None:
            summary.skipped_bad += 1
            summary.skipped_reasons[res.skipped] = summary.skipped_reasons.get(res.skipped, 0) + 1
            return
        summary.processed += 1
        now = time.perf_counter()
        lat = (now - frame.t_capture) * 1000.0
        self.latencies.append(lat)
        if res.score is not None:
            self.infer_ms.append(res.infer_ms)
        elapsed = now - self.t_start
        inst = summary.processed / elapsed if elapsed > 0 else 0.0
        self.fps_ema = inst if self.fps_ema is None else 0.9 * self.fps_ema + 0.1 * inst
        self.pipeline.overlay.hud = [f"{self.fps_ema:5.1f} FPS {lat:5.1f} ms", self.hud_backend, f"crop: {res.crop_source}"]
        if not opt.headless:  # shown first (HighGUI paints in waitKey), then measured
            import cv2

            cv2.imshow(WINDOW, res.overlay)
            self._key(cv2.waitKey(1) & 0xFF, res)
        self.pipeline.measure_foci(prepared)  # this frame's calcifications: the log's, and the next HUD's
        if self.hooks.recorder is not None:
            self.hooks.recorder.submit(res.overlay, res.log_record())
        if self.hooks.on_frame is not None:
            self.hooks.on_frame(res)
        self.last_result = res
        if opt.snapshot_every and summary.processed % opt.snapshot_every == 0:
            summary.snapshots.append(_snapshot(res, self.snap_dir, summary))
        if opt.max_frames is not None and summary.processed >= opt.max_frames:
            self.stop.set("max frames")

    def _key(self, key: int, res: FrameResult | None) -> None:
        self.paused = _handle_key(key, self.pipeline, self.stop, self.paused, res, self.snap_dir, self.summary,
                                  self.hooks.manual_box_picker)

    def _summarise(self) -> LiveSummary:
        summary, grabber = self.summary, self.grabber
        summary.stopped_by = self.stop.reason or ("source error: " + str(grabber.error) if grabber.error else "end of source")
        summary.wall_s = time.perf_counter() - self.t_start
        summary.frames_read = grabber.stats.read
        summary.dropped = grabber.stats.dropped
        summary.reconnects = grabber.stats.reconnects
        summary.fps = summary.processed / summary.wall_s if summary.wall_s > 0 else 0.0
        if self.latencies:
            summary.latency_ms_p50 = float(np.percentile(self.latencies, 50))
            summary.latency_ms_p99 = float(np.percentile(self.latencies, 99))
        if self.infer_ms:
            summary.infer_ms_p50 = float(np.percentile(self.infer_ms, 50))
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
