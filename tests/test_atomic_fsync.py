"""Every write that matters is fsynced, the file and then its folder, before anything relies on it.

A power loss cannot be simulated here; what can be watched is the calls that make a write survive one.
``os.fsync`` is wrapped and each call's path read back from ``/proc/self/fd``; ``os.replace`` is wrapped
too, so the order is checked: a file is synced before it is renamed into place (its data on disk before
a name points at it) and its folder right after (the rename itself). This proves the kit asks for
durability in the right order; it does not prove the disk honours fsync (a drive's volatile cache, a
virtual disk's cache mode), which only a real power cut on the cart's hardware can show.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np
import pytest

from edgecalc.atomic import atomic_write_bytes, atomic_write_json, atomic_write_png, atomic_write_text
from edgecalc.runtime.live.video_segments import INDEX_NAME, segments_dir
from test_recorder import decoded, levels, record

PROC_FD = Path("/proc/self/fd")


@pytest.fixture
def disk_events(monkeypatch) -> list[tuple[str, ...]]:
    """("fsync", path) and ("replace", src, dst, listed) as they happen (listed: the segments an index lists)."""
    if not PROC_FD.is_dir():
        pytest.skip("no /proc/self/fd here to name the file an fsync was called on")
    events: list[tuple] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        events.append(("fsync", os.readlink(PROC_FD / str(fd))))
        real_fsync(fd)

    def replace(src, dst, **kw) -> None:
        src, dst = str(Path(src).resolve()), str(Path(dst).resolve())
        listed = ()
        if Path(dst).name == INDEX_NAME:
            listed = tuple(s["file"] for s in json.loads(Path(src).read_text())["segments"])
        real_replace(src, dst, **kw)
        events.append(("replace", src, dst, listed))

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    return events


def assert_durable_renames(events: list[tuple]) -> None:
    """Each rename's source was fsynced before it, and the destination's folder right after it."""
    renames = [k for k, e in enumerate(events) if e[0] == "replace"]
    assert renames, events
    for k in renames:
        _, src, dst, _ = events[k]
        assert ("fsync", src) in events[:k], f"{src} renamed onto {dst} before it was fsynced: {events}"
        assert events[k + 1:k + 2] == [("fsync", str(Path(dst).parent))], \
            f"the folder of {dst} was not fsynced right after the rename: {events}"


@pytest.mark.parametrize("write", [
    lambda p: atomic_write_bytes(p, b"\x00\x01"),
    lambda p: atomic_write_text(p, "text"),
    lambda p: atomic_write_json(p, {"a": 1}),
    lambda p: atomic_write_png(p, np.zeros((4, 4), np.uint8)),
], ids=["bytes", "text", "json", "png"])
def test_an_atomic_write_syncs_its_file_then_renames_then_syncs_the_folder(tmp_path, disk_events, write):
    target = (tmp_path / "sub" / "out.png").resolve()
    write(target)
    assert len(disk_events) == 3, disk_events
    (_, tmp), (_, src, dst, _), (_, folder) = disk_events
    assert re.fullmatch(r"\.out\.png\.[A-Za-z0-9_]+\.tmp\.png", Path(tmp).name) and Path(tmp).parent == target.parent
    assert (src, dst, folder) == (tmp, str(target), str(target.parent))


def test_a_recording_syncs_each_segment_before_the_index_lists_it_and_the_join(tmp_path, disk_events):
    """Segments of 4, 4 and 2 frames: each closed segment is fsynced before an index that lists it is
    renamed into place; every index write and the join are synced file, rename, folder."""
    rec, video, _ = record(tmp_path, 10)
    rec.close()
    assert levels(decoded(video)) == list(range(10))
    folder = str(segments_dir(video).resolve())
    for k, event in enumerate(disk_events):
        if event[0] == "replace" and event[3]:
            synced = {Path(e[1]).name for e in disk_events[:k] if e[0] == "fsync" and str(Path(e[1]).parent) == folder}
            assert set(event[3]) <= synced, f"the index listed {set(event[3]) - synced} before their fsync: {disk_events}"
    assert_durable_renames(disk_events)
    joins = [e for e in disk_events if e[0] == "replace" and e[2] == str(video.resolve())]
    assert len(joins) == 1, disk_events


def test_one_segment_renamed_into_place_is_synced_and_so_is_its_new_folder(tmp_path, disk_events):
    rec, video, _ = record(tmp_path, 3, segment_s=60.0)  # one segment: the join is a rename of it
    rec.close()
    assert levels(decoded(video)) == [0, 1, 2]
    assert_durable_renames(disk_events)
    assert disk_events[-2][2] == str(video.resolve()) and Path(disk_events[-2][1]).name == "000000.mp4"
