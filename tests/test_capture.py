"""Frame sources: parsing, opening errors, newest-frame-only capture, bounded reconnects."""

from __future__ import annotations

import threading
import time

import cv2
import numpy as np
import pytest

from edgecalc.runtime.source.capture import (
    LatestFrameGrabber,
    SourceError,
    SourceStalled,
    open_reader,
    parse_source,
    recorded_fps,
)


def write_video(path, n=12, size=(64, 48)):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25, size)
    assert writer.isOpened()
    for i in range(n):
        img = np.full((size[1], size[0], 3), 20 + 15 * i, np.uint8)
        writer.write(img)
    writer.release()
    return path


class ListReader:
    """A FrameReader over a list; `fail_after` simulates a stream that stops delivering."""

    def __init__(self, frames, delay=0.0):
        self.frames = list(frames)
        self.delay = delay
        self.released = False

    def read(self):
        if self.delay:
            time.sleep(self.delay)
        if not self.frames:
            return False, None
        return True, self.frames.pop(0)

    def release(self):
        self.released = True


@pytest.mark.parametrize(
    "camera,source,kind",
    [(0, None, "camera"), (None, "2", "camera"), (None, "clip.mp4", "file"),
     (None, "rtsp://cart.local/stream", "url"), (None, "v4l2src ! videoconvert ! appsink", "gstreamer"),
     (None, "phantom", "phantom")],
)
def test_parse_source(camera, source, kind):
    assert parse_source(camera, source).kind == kind


def test_parse_source_needs_exactly_one():
    with pytest.raises(SourceError, match="exactly one"):
        parse_source(None, None)
    with pytest.raises(SourceError, match="exactly one"):
        parse_source(0, "clip.mp4")


def test_missing_file_is_named(tmp_path):
    missing = tmp_path / "nope.mp4"
    with pytest.raises(SourceError, match="nope.mp4"):
        open_reader(parse_source(None, str(missing)))


def test_unreadable_file_is_refused(tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"this is not a video")
    with pytest.raises(SourceError, match="bad.mp4"):
        open_reader(parse_source(None, str(bad)))


def test_file_read_in_full_without_drops(tmp_path):
    path = write_video(tmp_path / "clip.avi", n=12)
    grabber = LatestFrameGrabber(lambda: open_reader(parse_source(None, str(path))), drop_stale=False).start()
    got = []
    while (f := grabber.get(timeout=5)) is not None:
        got.append(f.index)
        time.sleep(0.005)  # a slow consumer must not lose frames from a file
    grabber.stop()
    assert got == list(range(12))
    assert grabber.stats.read == 12 and grabber.stats.dropped == 0


def test_live_source_keeps_only_newest():
    frames = [np.full((40, 40), i + 10, np.uint8) for i in range(30)]
    reader = ListReader(frames)
    grabber = LatestFrameGrabber(lambda: reader, drop_stale=True, max_reconnects=0)
    grabber.start()
    deadline = time.monotonic() + 5
    while not grabber.finished and grabber.stats.read < 30 and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.05)
    f = grabber.get(timeout=1)
    grabber.stop()
    assert f is not None and f.index == 29  # the newest, not the oldest
    assert grabber.stats.read == 30
    assert grabber.stats.dropped == 29
    assert reader.released


def test_stream_that_stops_is_reopened_a_bounded_number_of_times():
    opened = []

    def open_fn():
        opened.append(1)
        return ListReader([np.full((40, 40), 50, np.uint8)] * 2)

    grabber = LatestFrameGrabber(open_fn, drop_stale=True, max_reconnects=3, reconnect_delay_s=0.01).start()
    while grabber.get(timeout=5) is not None:
        pass
    grabber.stop()
    assert grabber.stats.reconnects == 3
    assert len(opened) == 4  # the first open + 3 reconnects, then a clean end


def test_stop_unblocks_a_waiting_reader():
    reader = ListReader([np.full((40, 40), 50, np.uint8)] * 100)
    grabber = LatestFrameGrabber(lambda: reader, drop_stale=False).start()
    assert grabber.get(timeout=5) is not None
    t = threading.Thread(target=grabber.stop)
    t.start()
    t.join(timeout=6)
    assert not t.is_alive()
    assert reader.released


def test_reader_errors_reach_the_consumer():
    class Exploding(ListReader):
        def read(self):
            raise OSError("capture card unplugged")

    grabber = LatestFrameGrabber(lambda: Exploding([]), drop_stale=True).start()
    assert grabber.get(timeout=5) is None
    grabber.stop()
    assert isinstance(grabber.error, OSError)


class HangingReader:
    """A stream frozen inside ``read``: the call never returns until the test lets it go."""

    def __init__(self, frames_before_hang: int, gate: threading.Event) -> None:
        self.left = frames_before_hang
        self.gate = gate
        self.released = False

    def read(self):
        if self.left > 0:
            self.left -= 1
            return True, np.full((40, 40), 50, np.uint8)
        self.gate.wait()  # unbounded, as a frozen capture read is (the test sets it at the end)
        return True, np.full((40, 40), 99, np.uint8)

    def release(self):
        self.released = True


def test_a_read_that_never_returns_is_abandoned_and_the_source_reopened_then_ends():
    gate = threading.Event()
    opened = []

    def open_fn():
        opened.append(HangingReader(2, gate))
        return opened[-1]

    grabber = LatestFrameGrabber(open_fn, drop_stale=True, max_reconnects=2, reconnect_delay_s=0.01,
                                 read_timeout_s=0.2).start()
    frames = []
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        f = grabber.get(timeout=0.5)
        if f is not None:
            frames.append(f)
        elif grabber.finished:
            break
    grabber.stop()
    gate.set()  # the abandoned reads return now: their late frames must not be delivered
    time.sleep(0.1)
    assert grabber.finished
    assert isinstance(grabber.error, SourceStalled) and "no frame for 0.2 s" in str(grabber.error)
    assert grabber.stats.stalls == 3 and grabber.stats.reconnects == 2 and len(opened) == 3
    assert grabber.get(timeout=0.1) is None
    assert [f.index for f in frames][-1] == grabber.stats.read - 1 and grabber.stats.read <= 6
    assert all(r.released for r in opened)  # each abandoned reader released once its read came back


def test_a_stream_that_hangs_once_recovers_on_a_fresh_reader():
    gate = threading.Event()
    readers = [HangingReader(1, gate), ListReader([np.full((40, 40), 70, np.uint8)] * 3)]
    grabber = LatestFrameGrabber(lambda: readers.pop(0), drop_stale=False, reconnect_on_eof=True, max_reconnects=1,
                                 reconnect_delay_s=0.01, read_timeout_s=0.2).start()
    got = []
    while (f := grabber.get(timeout=5)) is not None:
        got.append(int(f.image[0, 0]))
    grabber.stop()
    gate.set()
    assert got == [50, 70, 70, 70] and grabber.stats.stalls == 1 and grabber.error is None


def test_files_have_no_read_watchdog_by_default():
    reader = ListReader([np.full((40, 40), 50, np.uint8)] * 2)
    grabber = LatestFrameGrabber(lambda: reader, drop_stale=False)
    assert grabber._watchdog is None
    assert LatestFrameGrabber(lambda: reader, drop_stale=True)._watchdog is not None


def test_recorded_fps_reads_the_sources_own_rate(tmp_path):
    class Cine:
        fps = 30.0

    class Camera:
        fps = 0.0  # what many capture cards report

    assert recorded_fps(Cine()) == 30.0 and recorded_fps(Camera()) is None and recorded_fps(object()) is None
    cap = open_reader(parse_source(None, str(write_video(tmp_path / "v.avi"))))
    assert recorded_fps(cap) == 25.0
    cap.release()
