"""The display/record side of the live loop: a writer thread for the overlaid video and the log.

Encoding a frame costs milliseconds; doing it on the inference thread would eat the frame budget, so
frames go through a short blocking queue to this thread (every processed frame is recorded: nothing
is dropped here, the newest-frame policy lives at capture). `close()` drains the queue and releases
the writer, so a run stopped by Ctrl-C or SIGTERM leaves a playable video and a complete log.

OpenCV's writers do not report a failed write (a full disk): ``close()`` reopens the finished video
and compares the frame count its container holds with the frames handed over; a shortfall is an
OSError naming the file (an unplayable file is removed, not left half-written). A process killed
outright (SIGKILL, power loss) cannot finalise the container: both MP4 (no ``moov`` atom) and
OpenCV's MJPG AVI (buffered until release) are then lost, while the log keeps every whole line
written before the kill (each record is one flushed line). docs/reliability.md has the measurements.
"""

from __future__ import annotations

import json
import os
import queue
import threading
from pathlib import Path

import cv2
import numpy as np

_STOP = object()
DEFAULT_FPS = 20.0  #: the recorded video's rate when neither --fps nor the source gives one


class Recorder:
    """Writes overlay frames to `video_path` (mp4v .mp4 / MJPG .avi) and records to `log_path` (JSONL)."""

    def __init__(self, video_path: str | Path | None, log_path: str | Path | None, fps: float | None = 20.0,
                 queue_size: int = 8) -> None:
        self.video_path = Path(video_path) if video_path else None
        self.log_path = Path(log_path) if log_path else None
        #: the video's frame rate; None = not chosen yet (the live loop sets the source's own rate
        #: before the first frame; DEFAULT_FPS if nobody does)
        self.fps = fps
        self._writer: cv2.VideoWriter | None = None
        self._log = None
        self._log_end = 0  # bytes of the log that hold whole lines
        self._log_failed = False
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            self._log = open(self.log_path, "w", encoding="utf-8")
        if self.video_path is not None:
            self.video_path.parent.mkdir(parents=True, exist_ok=True)
        self.frames_written = 0
        self.records_written = 0
        self.error: BaseException | None = None
        self._q: queue.Queue = queue.Queue(maxsize=queue_size)
        self._thread = threading.Thread(target=self._run, name="edgecalc-recorder", daemon=True)
        self._thread.start()

    def _open_writer(self, frame: np.ndarray) -> None:
        assert self.video_path is not None
        h, w = frame.shape[:2]
        fourcc = "MJPG" if self.video_path.suffix.lower() == ".avi" else "mp4v"
        self._writer = cv2.VideoWriter(str(self.video_path), cv2.VideoWriter_fourcc(*fourcc), self.fps or DEFAULT_FPS, (w, h),
                                       True)
        if not self._writer.isOpened():
            self._writer = None
            raise OSError(f"cannot open {self.video_path} for writing ({fourcc}); try a .avi path")

    def _run(self) -> None:
        while True:
            item = self._q.get()
            if item is _STOP:
                return
            frame, record = item
            try:
                if frame is not None and self.video_path is not None:
                    if self._writer is None:
                        self._open_writer(frame)
                    self._writer.write(frame)
                    self.frames_written += 1
                if record is not None and self._log is not None and not self._log_failed:
                    try:
                        self._log.write(json.dumps(record) + "\n")
                        self._log.flush()
                    except OSError as exc:
                        self._log_failed = True  # stop here; close() cuts the log back to its last whole line
                        raise OSError(exc.errno, f"cannot write {self.log_path}: {exc.strerror or exc}") from exc
                    self._log_end = self._log.tell()
                    self.records_written += 1
            except BaseException as exc:  # noqa: BLE001 - surfaced by close()
                self.error = self.error or exc

    def submit(self, frame: np.ndarray | None, record: dict | None) -> None:
        """Queue one overlay frame and/or one log record (blocks briefly if the writer lags)."""
        if self.video_path is None and self._log is None:
            return
        self._q.put((frame, record))

    def close(self) -> None:
        """Drain, finalise the video container and close the log; OSError naming the file if either failed.

        Safe to call twice.
        """
        if self._thread.is_alive():
            self._q.put(_STOP)
            self._thread.join()
        errors = [self.error] if self.error is not None else []
        self.error = None
        if self._writer is not None:
            self._writer.release()
            self._writer = None
            bad_video = self._check_video()
            if bad_video is not None:
                errors.append(bad_video)
        if self._log is not None:
            try:
                self._log.close()
            except OSError as exc:  # the buffered tail could not be written either
                if not self._log_failed:
                    errors.append(exc)
            self._log = None
            if self._log_failed:
                assert self.log_path is not None
                os.truncate(self.log_path, self._log_end)  # only whole lines stay
        if errors:
            raise OSError("recording failed: " + "; ".join(str(e) for e in errors)) from errors[0]

    def _check_video(self) -> OSError | None:
        """None when the finished video holds every frame written, else the error (unplayable: removed)."""
        assert self.video_path is not None
        cap = cv2.VideoCapture(str(self.video_path))
        held = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) if cap.isOpened() else 0
        cap.release()
        if held >= self.frames_written:
            return None
        if held <= 0:
            self.video_path.unlink(missing_ok=True)
            return OSError(f"{self.video_path} could not be written ({self.frames_written} frames handed over, "
                           "none readable: full disk?); the unplayable file was removed")
        return OSError(f"{self.video_path} holds {held} of the {self.frames_written} frames written (full disk?)")
