"""Frame sources for the live runtime, and a capture thread that never queues stale frames.

On a cart the frame grabber delivers 30-60 frames/s whether or not inference keeps up. Queueing
frames would add latency without bound, so a live source keeps only the newest frame and counts
the ones it overwrote (as Holoscan's and GStreamer's `leaky` queues do). A file may instead be
read frame by frame with nothing dropped (``drop_stale=False``), which is what offline runs and
tests want. A source that stops delivering is reopened a bounded number of times.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Protocol

import numpy as np


class SourceError(RuntimeError):
    """A frame source that cannot be opened; the message names it."""


class FrameReader(Protocol):
    """What a source must offer: cv2.VideoCapture's `read` and `release`."""

    def read(self) -> tuple[bool, np.ndarray | None]: ...

    def release(self) -> None: ...


@dataclass(frozen=True)
class SourceSpec:
    """A parsed `--camera N` / `--source X`: what kind of source and how to open it."""

    kind: str  # "camera" | "file" | "dicom" | "url" | "gstreamer" | "phantom"
    target: str | int

    @property
    def live(self) -> bool:
        """Live sources drop stale frames; files are read in full unless asked otherwise."""
        return self.kind in ("camera", "url", "gstreamer")

    def describe(self) -> str:
        return f"{self.kind} {self.target!s}"


def parse_source(camera: int | None = None, source: str | None = None) -> SourceSpec:
    """Turn the CLI's `--camera` / `--source` into a SourceSpec (exactly one must be given)."""
    if (camera is None) == (source is None):
        raise SourceError("give exactly one of --camera N or --source PATH_OR_URL (or --source phantom)")
    if camera is not None:
        if camera < 0:
            raise SourceError(f"camera index must be >= 0, got {camera}")
        return SourceSpec("camera", int(camera))
    assert source is not None
    s = source.strip()
    if s == "phantom":
        return SourceSpec("phantom", "phantom")
    if s.isdigit():
        return SourceSpec("camera", int(s))
    if "://" in s:
        return SourceSpec("url", s)
    if "!" in s:  # GStreamer pipelines are "elem ! elem ! appsink"
        return SourceSpec("gstreamer", s)
    from edgecalc.data.dicom import DICOM_SUFFIXES, is_dicom

    if s.lower().endswith(DICOM_SUFFIXES) or is_dicom(s):
        return SourceSpec("dicom", s)
    return SourceSpec("file", s)


class MemoryFrameReader:
    """A FrameReader over frames held in memory, served like a video file, ``loops`` times over.

    With ``fps`` set, ``read`` paces itself like a frame grabber: one frame every 1 / fps s from the
    first read, sleeping when early, never catching up by skipping (a consumer slower than that sees
    every frame, later; with ``--realtime`` the grabber drops the stale ones).
    """

    def __init__(self, frames: list[np.ndarray], loops: int = 1, fps: float | None = None) -> None:
        self.frames = frames
        self.loops = max(1, int(loops))
        self.period = 1.0 / fps if fps else 0.0
        self._next: float | None = None
        self._i = 0

    def read(self) -> tuple[bool, np.ndarray | None]:
        if self._i >= len(self.frames) * self.loops:
            return False, None
        if self.period:
            now = time.perf_counter()
            self._next = now if self._next is None else self._next
            if self._next > now:
                time.sleep(self._next - now)
            self._next += self.period
        frame = self.frames[self._i % len(self.frames)]
        self._i += 1
        return True, frame

    def release(self) -> None:
        self._i = len(self.frames) * self.loops


class DicomCineReader(MemoryFrameReader):
    """A DICOM cine (or image) played at its recorded frame rate (no recorded rate: unpaced).

    The file is decoded once (``read_dicom``). ``spacing_mm`` / ``spacing_source`` / ``fps`` /
    ``file_id`` are the file's, for the HUD and the log; the file is named by path and ``file_id``
    only, never by patient data.
    """

    def __init__(self, path: str | Path, loops: int = 1, pace: bool = True) -> None:
        from edgecalc.data.dicom import DicomError, read_dicom

        try:
            cine = read_dicom(path)
        except DicomError as exc:
            raise SourceError(str(exc)) from None
        super().__init__(cine.frames, loops, cine.fps if pace else None)
        self.path = Path(path)
        self.spacing_mm = cine.spacing_mm
        self.spacing_source = cine.spacing_source
        self.fps = cine.fps
        self.file_id = cine.file_id


def open_reader(spec: SourceSpec) -> FrameReader:
    """Open a cv2.VideoCapture for a camera/file/URL/GStreamer source (a DicomCineReader for a DICOM
    file), or raise SourceError."""
    if spec.kind == "dicom":
        path = Path(str(spec.target))
        if not path.exists():
            raise SourceError(f"DICOM file {path} does not exist")
        return DicomCineReader(path)
    import cv2

    if spec.kind == "file":
        path = Path(str(spec.target))
        if not path.exists():
            raise SourceError(f"video file {path} does not exist")
        cap = cv2.VideoCapture(str(path))
    elif spec.kind == "camera":
        cap = cv2.VideoCapture(int(spec.target))
    elif spec.kind == "gstreamer":
        cap = cv2.VideoCapture(str(spec.target), cv2.CAP_GSTREAMER)
    elif spec.kind == "url":
        cap = cv2.VideoCapture(str(spec.target), cv2.CAP_FFMPEG)
    else:
        raise SourceError(f"source kind {spec.kind!r} is not opened by OpenCV")
    if not cap.isOpened():
        cap.release()
        raise SourceError(f"cannot open {spec.describe()} (OpenCV VideoCapture refused it)")
    return cap


@dataclass
class Frame:
    """One captured frame: its index in the source, capture time (perf_counter, s) and pixels."""

    index: int
    t_capture: float
    image: np.ndarray


def recorded_fps(reader: object) -> float | None:
    """The frame rate the source itself records (a DICOM cine's ``fps``, a video file's container rate),
    or None when it has none worth trusting (cameras often report 0; outside 1-240 fps is taken as unknown)."""
    fps = getattr(reader, "fps", None)
    if fps is None and hasattr(reader, "get"):
        import cv2

        try:
            fps = float(reader.get(cv2.CAP_PROP_FPS))  # type: ignore[attr-defined]
        except (TypeError, ValueError, cv2.error):
            fps = None
    try:
        fps = float(fps) if fps is not None else None
    except (TypeError, ValueError):
        return None
    return fps if fps is not None and 1.0 <= fps <= 240.0 else None


#: a live source whose ``read`` has not returned for this long is abandoned and reopened: a frozen
#: RTSP stream or a capture card that lost its signal can block inside OpenCV's read indefinitely
READ_TIMEOUT_S = 5.0


@dataclass
class CaptureStats:
    read: int = 0
    dropped: int = 0
    reconnects: int = 0
    failed_reads: int = 0
    stalls: int = 0  #: reads abandoned by the watchdog after ``read_timeout_s``


class SourceStalled(SourceError):
    """The source's ``read`` hung past the read timeout and reopening it did not help."""


_DEFAULT = object()


class LatestFrameGrabber:
    """Background capture thread holding at most one pending frame.

    ``drop_stale=True`` (live sources): a new frame overwrites an unconsumed one, counted in
    ``stats.dropped``. ``drop_stale=False`` (files): the reader waits for the consumer, so every
    frame is delivered. When ``read`` fails, the source is reopened up to ``max_reconnects`` times
    (live sources) before the grabber reports the end; for files a failed read is the end.

    A ``read`` that never returns cannot be interrupted from Python, so a watchdog thread (live
    sources, ``read_timeout_s``, default ``READ_TIMEOUT_S``) abandons the reader thread stuck in it,
    opens the source afresh on a new thread (from the same reconnect budget) and, once the budget is
    spent, ends the grabber with a ``SourceStalled`` error. The abandoned thread is a daemon: if its
    read ever returns, it releases its reader and exits without delivering anything.
    """

    def __init__(
        self,
        open_fn: Callable[[], FrameReader],
        *,
        drop_stale: bool,
        max_reconnects: int = 3,
        reconnect_delay_s: float = 0.5,
        reconnect_on_eof: bool | None = None,
        read_timeout_s: float | None | object = _DEFAULT,
    ) -> None:
        self._open_fn = open_fn
        self._drop_stale = drop_stale
        self._max_reconnects = max_reconnects
        self._reconnect_delay_s = reconnect_delay_s
        self._reconnect_on_eof = drop_stale if reconnect_on_eof is None else reconnect_on_eof
        timeout = (READ_TIMEOUT_S if drop_stale else None) if read_timeout_s is _DEFAULT else read_timeout_s
        self._read_timeout_s: float | None = None if timeout is None else float(timeout)  # type: ignore[arg-type]
        self._cond = threading.Condition()
        self._pending: Frame | None = None
        self._finished = False
        self._stop = threading.Event()
        self._generation = 0  #: the reader thread allowed to deliver; older ones were abandoned
        self._reading_since: float | None = None
        self._index = 0
        self.error: BaseException | None = None
        self.stats = CaptureStats()
        self._reader = open_fn()  # opening errors surface here, in the caller's thread
        self._thread = threading.Thread(target=self._run, args=(0, self._reader), name="edgecalc-capture", daemon=True)
        self._watchdog = (threading.Thread(target=self._watch, name="edgecalc-capture-watchdog", daemon=True)
                          if self._read_timeout_s else None)

    def start(self) -> "LatestFrameGrabber":
        self._thread.start()
        if self._watchdog is not None:
            self._watchdog.start()
        return self

    def _run(self, generation: int, reader: FrameReader) -> None:
        try:
            while not self._stop.is_set():
                with self._cond:
                    self._reading_since = time.monotonic()
                ok, img = reader.read()
                with self._cond:
                    if generation != self._generation:
                        return  # abandoned while stuck in read: a fresh reader took over
                    self._reading_since = None
                if not ok or img is None:
                    self.stats.failed_reads += 1
                    reopened = self._reconnect(reader)
                    if reopened is None:
                        break
                    reader = reopened
                    continue
                with self._cond:
                    frame = Frame(self._index, time.perf_counter(), img)
                    self._index += 1
                    self.stats.read += 1
                    if not self._drop_stale:
                        while self._pending is not None and not self._stop.is_set():
                            self._cond.wait(0.1)
                    elif self._pending is not None:
                        self.stats.dropped += 1
                    self._pending = frame
                    self._cond.notify_all()
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, not lost in a thread
            if generation == self._generation:
                self.error = exc
        finally:
            try:
                reader.release()
            finally:
                with self._cond:
                    if generation == self._generation:
                        self._finished = True
                    self._cond.notify_all()

    def _reopen(self) -> FrameReader | None:
        """Open the source again, from the reconnect budget; None when it is spent or we stop."""
        while self.stats.reconnects < self._max_reconnects and not self._stop.is_set():
            self.stats.reconnects += 1
            if self._stop.wait(self._reconnect_delay_s):
                return None
            try:
                return self._open_fn()
            except SourceError:
                continue
        return None

    def _reconnect(self, reader: FrameReader) -> FrameReader | None:
        """After a failed read: the reopened reader, or None when the source has ended."""
        if not self._reconnect_on_eof:
            return None
        reader.release()
        reopened = self._reopen()
        if reopened is not None:
            self._reader = reopened
        return reopened

    def _watch(self) -> None:
        """Abandon a reader stuck in ``read`` for longer than the timeout, and start a fresh one."""
        assert self._read_timeout_s is not None
        period = min(0.1, self._read_timeout_s / 4)
        while not self._stop.wait(period):
            with self._cond:
                if self._finished:
                    return
                since = self._reading_since
                if since is None or time.monotonic() - since <= self._read_timeout_s:
                    continue
                self.stats.stalls += 1
                self._generation += 1
                self._reading_since = None
                generation = self._generation
            reader = self._reopen() if self._reconnect_on_eof else None
            if reader is None:
                with self._cond:
                    if not self._stop.is_set():
                        self.error = SourceStalled(
                            f"no frame for {self._read_timeout_s:g} s ({self.stats.stalls} stalled read(s), "
                            f"{self.stats.reconnects} reconnect(s)): the source stopped delivering")
                    self._finished = True
                    self._cond.notify_all()
                return
            self._reader = reader
            self._thread = threading.Thread(target=self._run, args=(generation, reader), name="edgecalc-capture",
                                            daemon=True)
            self._thread.start()

    def get(self, timeout: float | None = None) -> Frame | None:
        """The newest frame not yet taken; None once the source has ended (or on timeout)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while self._pending is None and not self._finished:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return None
                self._cond.wait(remaining if remaining is not None else 0.1)
            frame, self._pending = self._pending, None
            self._cond.notify_all()
            return frame

    @property
    def reader(self) -> FrameReader:
        """The reader now open: its attributes (a DICOM reader's ``spacing_mm``, ``spacing_source``) for the HUD."""
        return self._reader

    @property
    def finished(self) -> bool:
        """True when the source ended and no frame is pending."""
        with self._cond:
            return self._finished and self._pending is None

    def stop(self) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
