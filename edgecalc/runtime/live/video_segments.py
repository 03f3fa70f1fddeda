"""The segmented recording's layout on disk, its index, and the lossless join into one file.

A video container is playable only once finalised (MP4 writes its ``moov`` atom at release, OpenCV's
MJPG AVI writer buffers until release), so a SIGKILL or a power loss takes the whole file with it.
The recorder therefore closes a segment every few seconds: ``<video>.segments/000000.mp4, 000001.mp4
…`` (same container and codec as the file asked for) and, after every closed segment, rewrites
``index.json`` atomically with the segments that are closed and verified, the frames each holds and
the log lines it covers. After a kill, every segment the index lists plays; the one it names as
``open`` may not. On a clean stop the segments are joined into the file asked for and the folder is
removed; after a kill ``edgecalc recover`` (``recover.py``) does that join, reading the index back with
`read_index`, which accepts only the names the recorder writes (no name in it leads out of the folder).

The join copies the encoded packets (OpenCV's raw-stream read, ``CAP_PROP_FORMAT = -1``, and raw
write, ``VIDEOWRITER_PROP_RAW_VIDEO``): no re-encoding, so it costs milliseconds and the joined frames
decode bit-identical to the segments'. MPEG-4 Part 2 keeps its VOL header in the container's
extradata, which the raw writer does not carry over; it is put in-band before each segment's first
packet, where decoders read it. An OpenCV without raw-stream support gets a decode + re-encode join.
Both callers run the join and the folder's removal under `signals_held`: SIGTERM and Ctrl-C wait until
they are done. Standard library, numpy and OpenCV only: this is the torch-free runtime.
"""

from __future__ import annotations

import json
import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Sequence

import cv2
import numpy as np

from edgecalc.atomic import atomic_write, atomic_write_text, sync_file

INDEX_NAME = "index.json"  #: the segment folder's index
INDEX_FORMAT = "edgecalc.recording-segments/1"


def segments_dir(video: Path) -> Path:
    """Where the segments of ``video`` are written while it records (and kept after a kill)."""
    return video.with_name(video.name + ".segments")


def segment_name(k: int, suffix: str) -> str:
    """File name of the k-th segment (0-based), in the container of the video asked for."""
    return f"{k:06d}{suffix}"


def fourcc_for(path: Path) -> str:
    """The codec the recorder writes into ``path``'s container: MJPG in .avi, else mp4v."""
    return "MJPG" if path.suffix.lower() == ".avi" else "mp4v"


def open_writer(path: Path, fps: float, size: tuple[int, int]) -> cv2.VideoWriter:
    """An OpenCV writer for colour frames of ``size`` (w, h); OSError naming ``path`` if it cannot open."""
    fourcc = fourcc_for(path)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, size, True)
    if not writer.isOpened():
        raise OSError(f"cannot open {path} for writing ({fourcc}); try a .avi path")
    return writer


def container_frames(path: Path) -> int:
    """The frame count ``path``'s container declares (0: unreadable or missing)."""
    cap = cv2.VideoCapture(str(path))
    held = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) if cap.isOpened() else 0
    cap.release()
    return max(held, 0)


def decoded_frames(path: Path) -> int:
    """The frames of ``path`` that decode, counted one by one (a container's declared count can be wrong
    for a damaged file; `container_frames` is the cheap check of a file just written)."""
    cap = cv2.VideoCapture(str(path))
    n = 0
    while cap.isOpened() and cap.grab():
        n += 1
    cap.release()
    return n


class SegmentIndexError(ValueError):
    """An ``index.json`` that is missing, unreadable or not a segment index: the message names the file."""


def read_index(folder: Path, suffix: str) -> dict[str, Any]:
    """The folder's index, checked against the layout `write_index` and the recorder write.

    ``suffix`` is the container of the video the segments belong to: every listed segment must be named
    as the recorder names them (`segment_name`, in order), so no name in the file can point outside
    ``folder``. SegmentIndexError naming the index and what is wrong.
    """
    path = folder / INDEX_NAME
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SegmentIndexError(f"{path} is missing") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise SegmentIndexError(f"{path} is not readable JSON ({exc})") from None

    def bad(why: str) -> SegmentIndexError:
        return SegmentIndexError(f"{path} is not a segment index: {why}")

    if not isinstance(doc, dict) or doc.get("format") != INDEX_FORMAT:
        raise bad(f"its format is not {INDEX_FORMAT!r}")
    fps, size, segments = doc.get("fps"), doc.get("size"), doc.get("segments")
    if isinstance(fps, bool) or not isinstance(fps, (int, float)) or not 0 < fps < 1e6:
        raise bad(f"fps {fps!r} is not a positive frame rate")
    if not (isinstance(size, list) and len(size) == 2 and all(_count(v) and 0 < v <= 1 << 16 for v in size)):
        raise bad(f"size {size!r} is not [width, height] in pixels")
    if not isinstance(segments, list):
        raise bad("'segments' is not a list")
    first = 0
    for k, seg in enumerate(segments):
        name = segment_name(k, suffix)
        if not isinstance(seg, dict) or seg.get("file") != name:
            raise bad(f"segment {k} is not {{'file': {name!r}, ...}}: {str(seg)[:120]}")
        if not (_count(seg.get("frames")) and seg["frames"] > 0 and seg.get("first_frame") == first):
            raise bad(f"{name}: frames {seg.get('frames')!r} / first_frame {seg.get('first_frame')!r} do not follow "
                      f"the segments before it (first frame {first})")
        lines = seg.get("log_lines")
        if lines is not None and not (isinstance(lines, list) and len(lines) == 2 and all(map(_count, lines))
                                      and lines[0] <= lines[1]):
            raise bad(f"{name}: log_lines {lines!r} is not [first, end) of the log")
        first += seg["frames"]
    opened, log = doc.get("open"), doc.get("log")
    if opened is not None and opened != segment_name(len(segments), suffix):  # the one after the closed ones
        raise bad(f"'open' {str(opened)[:80]!r} is not the next segment's name, {segment_name(len(segments), suffix)!r}")
    if log is not None and not (isinstance(log, str) and log and Path(log).name == log
                                and log not in (".", "..") and not set(log) & {"\\", "\0"}):
        raise bad(f"'log' {str(log)[:80]!r} is not a plain file name")
    return doc


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def write_index(folder: Path, doc: dict[str, Any]) -> Path:
    """Rewrite the folder's index atomically and durably (a kill or a power loss leaves the previous
    index or this one; `atomic_write` syncs it and the folder, with a new segment's directory entry)."""
    return atomic_write_text(folder / INDEX_NAME, json.dumps({"format": INDEX_FORMAT, **doc}, indent=2) + "\n")


@contextmanager
def signals_held(signums: Sequence[int] = (signal.SIGTERM, signal.SIGINT), deliver: bool = True) -> Iterator[list[int]]:
    """Hold SIGTERM and Ctrl-C while the join and the removal of the segment folder run, then deliver them.

    Cut in between, the join would leave its temporary file behind, or OUT beside the folder (which
    recover then refuses to replace), or a folder half removed. The join copies packets (seconds for a
    10-minute recording), so it finishes first; each signal that arrived is then raised once, for the
    handler that was there before (the default SIGTERM ends the process). Only the main thread can set
    handlers: elsewhere nothing is held. SIGKILL cannot be held; what it leaves is the temporary file.
    Yields the signals that arrived, in order; ``deliver`` False only records them (the caller acts).
    """
    arrived: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield arrived
        return
    previous = {s: signal.signal(s, lambda signum, _frame: arrived.append(signum)) for s in signums}
    try:
        yield arrived
    finally:
        for s, handler in previous.items():
            signal.signal(s, signal.SIG_DFL if handler is None else handler)  # None: set outside Python
        for s in dict.fromkeys(arrived if deliver else ()):
            signal.raise_signal(s)


def join_segments(segments: Sequence[Path], target: Path, fps: float, size: tuple[int, int], frames: int) -> None:
    """Join closed segments into ``target`` (atomically), checked to hold ``frames`` decodable frames.

    One segment is renamed into place. OSError naming ``target`` if the joined file falls short (a
    full disk); the segments are left as they are either way, the caller removes them on success
    (``target`` is synced to disk first, so a power loss right after cannot take both).
    """
    if len(segments) == 1:
        os.replace(segments[0], target)  # the segment was synced when it closed
        sync_file(target.parent)
        return

    def write(tmp: Path) -> None:
        if not _copy_packets(segments, tmp, fps, size):
            _reencode(segments, tmp, fps, size)
        held = container_frames(tmp)
        cap = cv2.VideoCapture(str(tmp))
        first_ok = cap.isOpened() and cap.read()[0]
        cap.release()
        if held != frames or not first_ok:
            raise OSError(f"{target}: the joined file holds {held} of the {frames} frames of its "
                          f"{len(segments)} segments{'' if first_ok else ', none decodable'} (full disk?)")

    atomic_write(target, write)  # synced, and the folder after the rename


def _copy_packets(segments: Sequence[Path], out_path: Path, fps: float, size: tuple[int, int]) -> bool:
    """Stream copy; False (nothing usable written) where this OpenCV cannot read or write raw packets."""
    raw_prop = getattr(cv2, "VIDEOWRITER_PROP_RAW_VIDEO", None)
    key_prop = getattr(cv2, "VIDEOWRITER_PROP_KEY_FLAG", None)
    if raw_prop is None or key_prop is None:
        return False
    fourcc = fourcc_for(out_path)
    out = cv2.VideoWriter(str(out_path), cv2.CAP_FFMPEG, cv2.VideoWriter_fourcc(*fourcc), fps, size, [raw_prop, 1])
    if not out.isOpened():
        return False
    try:
        for seg in segments:
            cap = cv2.VideoCapture(str(seg), cv2.CAP_FFMPEG)
            try:
                if not (cap.isOpened() and cap.set(cv2.CAP_PROP_FORMAT, -1)):
                    return False
                header = _in_band_header(cap) if fourcc == "mp4v" else None
                while True:
                    ok, packet = cap.read()
                    if not ok:
                        break
                    if header is not None:  # the segment's VOL, before its first packet
                        packet, header = np.concatenate([header, packet.reshape(1, -1)], axis=1), None
                    out.set(key_prop, 1 if cap.get(cv2.CAP_PROP_LRF_HAS_KEY_FRAME) else 0)
                    out.write(packet)
            finally:
                cap.release()
    finally:
        out.release()
    return True


def _in_band_header(cap: cv2.VideoCapture) -> np.ndarray | None:
    """The codec extradata (MPEG-4 Part 2: the VOS/VOL start-code headers) as one packet row, if any."""
    index = getattr(cv2, "CAP_PROP_CODEC_EXTRADATA_INDEX", None)
    if index is None:
        return None
    ok, extra = cap.retrieve(flag=int(cap.get(index)))
    return extra.reshape(1, -1) if ok and extra is not None and extra.size else None


def _reencode(segments: Sequence[Path], out_path: Path, fps: float, size: tuple[int, int]) -> None:
    writer = open_writer(out_path, fps, size)
    try:
        for seg in segments:
            cap = cv2.VideoCapture(str(seg))
            while True:
                ok, frame = cap.read()
                if not ok:
                    break
                writer.write(frame)
            cap.release()
    finally:
        writer.release()
