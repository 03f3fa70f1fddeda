"""The display/record side of the live loop: a writer thread for the overlaid video and the log.

Encoding a frame costs milliseconds; doing it on the inference thread would eat the frame budget, so
frames go through a short blocking queue to this thread (every processed frame is recorded: nothing
is dropped here, the newest-frame policy lives at capture). `close()` drains the queue and releases
the writer, so a run stopped by Ctrl-C or SIGTERM leaves a playable video and a complete log.

A process killed outright (SIGKILL, power loss) cannot finalise a container (MP4 has no ``moov``
atom, OpenCV's MJPG AVI is buffered until release), so the video is written in segments of
``segment_s`` seconds of the run (by the wall clock when each frame was submitted; 0 = one file): after a kill the closed
segments in ``<video>.segments/`` play and hold exactly the frames their ``index.json`` lists, and
only the open segment is lost; a clean stop joins them losslessly into the file asked for
(``video_segments.py`` has the layout; segments and index are fsynced for a power loss). The log keeps every whole line written before a kill (each
record is one flushed line).

OpenCV's writers do not report a failed write (a full disk): each closed segment (and the joined
file, or the single file) is reopened and the frame count its container holds compared with the
frames handed over; a shortfall is an OSError naming the file (an unplayable file is removed, not
left half-written) and stops the video (the log goes on). docs/reliability.md has the measurements.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from edgecalc.atomic import sync_file
from edgecalc.runtime.live.video_segments import (
    INDEX_NAME,
    container_frames,
    join_segments,
    open_writer,
    segment_name,
    segments_dir,
    signals_held,
    write_index,
)

_STOP = object()
DEFAULT_FPS = 20.0  #: the recorded video's rate when neither --fps nor the source gives one
DEFAULT_SEGMENT_S = 10.0  #: seconds per closed segment: what a SIGKILL can cost at most (plus the queue)


class Recorder:
    """Writes overlay frames to `video_path` (mp4v .mp4 / MJPG .avi) and records to `log_path` (JSONL).

    ``segment_s`` > 0 writes the video as segments of that many seconds, joined at ``close()``;
    ``clock`` is the wall clock that cuts them, read when a frame is submitted (injectable for tests).
    """

    def __init__(self, video_path: str | Path | None, log_path: str | Path | None, fps: float | None = 20.0,
                 queue_size: int = 8, segment_s: float = DEFAULT_SEGMENT_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if not segment_s >= 0:
            raise ValueError(f"the segment length must be 0 (one file) or a positive number of seconds; got {segment_s}")
        self.video_path = Path(video_path) if video_path else None
        self.log_path = Path(log_path) if log_path else None
        #: the video's frame rate; None = not chosen yet (the live loop sets the source's own rate
        #: before the first frame; DEFAULT_FPS if nobody does)
        self.fps = fps
        self.segment_s = segment_s
        #: where the segments go; None when the video is one file (or there is none)
        self.segments_dir = segments_dir(self.video_path) if self.video_path is not None and segment_s > 0 else None
        self._clock = clock
        self._writer = None
        self._size: tuple[int, int] | None = None
        self._video_failed = False
        self._closed: list[dict] = []  # the index's entries of closed, verified segments
        self._seg_frames = 0
        self._seg_t0 = 0.0
        self._seg_log0 = 0
        self._log = None
        self._log_end = 0  # bytes of the log that hold whole lines
        self._log_failed = False
        self._finished = False
        if self.video_path is not None:
            self.video_path.parent.mkdir(parents=True, exist_ok=True)
        if self.segments_dir is not None:  # before the log is opened: a refusal must not truncate a log
            if self.segments_dir.exists():
                raise OSError(f"{self.segments_dir} exists: the segments of a recording that did not finish "
                              f"(see its {INDEX_NAME}); play or move them, then record again")
            self.segments_dir.mkdir()
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            self._log = open(self.log_path, "w", encoding="utf-8")
        self.frames_written = 0
        self.records_written = 0
        self.error: BaseException | None = None
        self._q: queue.Queue = queue.Queue(maxsize=queue_size)
        self._thread = threading.Thread(target=self._run, name="edgecalc-recorder", daemon=True)
        self._thread.start()

    # --- the writer thread ------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            item = self._q.get()
            if item is _STOP:
                return
            frame, record, t = item
            if frame is not None and self.video_path is not None and not self._video_failed:
                try:
                    self._write_frame(frame, t)
                except BaseException as exc:  # noqa: BLE001 - surfaced by close()
                    self._video_failed = True
                    self.error = self.error or exc
            if record is not None and self._log is not None and not self._log_failed:
                try:
                    self._write_record(record)
                except BaseException as exc:  # noqa: BLE001 - surfaced by close()
                    self.error = self.error or exc

    def _write_frame(self, frame: np.ndarray, now: float) -> None:
        if self.segments_dir is None:
            if self._writer is None:
                self._size = (frame.shape[1], frame.shape[0])
                self._writer = open_writer(self.video_path, self.fps or DEFAULT_FPS, self._size)
        else:
            if self._writer is not None and now - self._seg_t0 >= self.segment_s:
                self._close_segment()
            if self._writer is None:
                self._open_segment(frame, now)
        self._writer.write(frame)
        self._seg_frames += 1
        self.frames_written += 1

    def _write_record(self, record: dict) -> None:
        try:
            self._log.write(json.dumps(record) + "\n")
            self._log.flush()
        except OSError as exc:
            self._log_failed = True  # stop here; close() cuts the log back to its last whole line
            raise OSError(exc.errno, f"cannot write {self.log_path}: {exc.strerror or exc}") from exc
        self._log_end = self._log.tell()
        self.records_written += 1

    def _segment_path(self, k: int) -> Path:
        assert self.segments_dir is not None and self.video_path is not None
        return self.segments_dir / segment_name(k, self.video_path.suffix)

    def _open_segment(self, frame: np.ndarray, now: float) -> None:
        if self._size is None:
            self._size = (frame.shape[1], frame.shape[0])
        path = self._segment_path(len(self._closed))
        self._writer = open_writer(path, self.fps or DEFAULT_FPS, self._size)
        self._seg_frames, self._seg_t0, self._seg_log0 = 0, now, self.records_written
        self._write_index(open_name=path.name)

    def _close_segment(self) -> None:
        """Release the open segment, check it holds its frames, list it in the index (else remove it).

        The order is what a kill at any instant relies on: the file is complete and fsynced before the
        index lists it, and the index on disk lists it (``open`` None) before the next segment is opened,
        so no moment leaves a complete segment that the index still calls open (recover ignores those).
        """
        path = self._segment_path(len(self._closed))
        self._writer.release()
        self._writer = None
        held = container_frames(path)
        if held != self._seg_frames:
            path.unlink(missing_ok=True)
            self._write_index(open_name=None)
            raise OSError(f"{path} (a segment of {self.video_path}) holds {held} of the {self._seg_frames} frames "
                          "written (full disk?); the segment was removed and the recording stopped there")
        sync_file(path)  # on disk before the index lists it
        first = self._closed[-1]["first_frame"] + self._closed[-1]["frames"] if self._closed else 0
        log_lines = [self._seg_log0, self.records_written] if self._log is not None else None
        entry = {"file": path.name, "frames": held, "first_frame": first, "log_lines": log_lines}
        self._write_index(open_name=None, segments=[*self._closed, entry])
        self._closed.append(entry)  # only once the index on disk lists it (a failed write: not listed)

    def _write_index(self, open_name: str | None, segments: list[dict] | None = None) -> None:
        """Write the index listing ``segments`` (default: the closed ones) and the open segment's name."""
        assert self.segments_dir is not None and self.video_path is not None
        write_index(self.segments_dir, {
            "video": self.video_path.name, "fps": self.fps or DEFAULT_FPS, "size": list(self._size or ()),
            "segment_s": self.segment_s, "log": self.log_path.name if self.log_path is not None else None,
            "segments": self._closed if segments is None else segments, "open": open_name,
        })

    # --- the caller's side -------------------------------------------------------------------

    @property
    def segments(self) -> list[dict]:
        """The closed, verified segments (the index's entries; after close(): what was joined)."""
        return [dict(s) for s in self._closed]

    def submit(self, frame: np.ndarray | None, record: dict | None) -> None:
        """Queue one overlay frame and/or one log record (blocks briefly if the writer lags)."""
        if self.video_path is None and self._log is None:
            return
        self._q.put((frame, record, self._clock() if frame is not None else 0.0))

    def close(self) -> None:
        """Drain, close the log, finalise the video (join the segments); OSError naming the file if any failed.

        Safe to call twice (the second call does nothing).
        """
        if self._finished:
            return
        self._finished = True
        if self._thread.is_alive():
            self._q.put(_STOP)
            self._thread.join()
        errors = [self.error] if self.error is not None else []
        self.error = None
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
        if self.segments_dir is not None:
            bad_video = self._finish_segments()
        elif self._writer is not None:
            self._writer.release()
            self._writer = None
            bad_video = self._check_video()
        else:
            bad_video = None
        if bad_video is not None:
            errors.append(bad_video)
        if errors:
            raise OSError("recording failed: " + "; ".join(str(e) for e in errors)) from errors[0]

    def _finish_segments(self) -> OSError | None:
        """Close the last segment and join them all into the video; None when it holds every frame."""
        assert self.segments_dir is not None and self.video_path is not None
        error = None
        if self._writer is not None:
            try:
                self._close_segment()  # and the index written without an open segment
            except OSError as exc:
                self._video_failed, error = True, exc
        if not self._closed:  # nothing playable was recorded
            shutil.rmtree(self.segments_dir)
            return error
        if self._video_failed:
            return OSError(f"{error or 'the video failed'}; the {len(self._closed)} playable segments are kept in "
                           f"{self.segments_dir} (listed in its {INDEX_NAME}), {self.video_path} was not written")
        paths = [self.segments_dir / s["file"] for s in self._closed]
        with signals_held():  # a SIGTERM now (a second one in `live`) acts once the file is whole, the folder gone
            try:
                join_segments(paths, self.video_path, self.fps or DEFAULT_FPS, self._size, self.frames_written)
            except OSError as exc:
                return OSError(f"cannot join the segments into {self.video_path}: {exc}; the recording is kept as "
                               f"{len(paths)} segments in {self.segments_dir} (listed in its {INDEX_NAME})")
            shutil.rmtree(self.segments_dir)
        return None

    def _check_video(self) -> OSError | None:
        """None when the finished video holds every frame written, else the error (unplayable: removed)."""
        assert self.video_path is not None
        held = container_frames(self.video_path)
        if held >= self.frames_written:
            return None
        if held <= 0:
            self.video_path.unlink(missing_ok=True)
            return OSError(f"{self.video_path} could not be written ({self.frames_written} frames handed over, "
                           "none readable: full disk?); the unplayable file was removed")
        return OSError(f"{self.video_path} holds {held} of the {self.frames_written} frames written (full disk?)")
