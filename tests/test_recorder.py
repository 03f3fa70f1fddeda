"""The recorder's segmented video: segments cut by the clock, the index, the lossless join, the failures.

A fake clock cuts the segments (0.25 s per frame, 1 s segments: 4 frames each), so every count is
exact. The SIGKILL of the real CLI is in tests/test_fault_injection.py.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import decoded
from edgecalc.runtime.live import recorder as recorder_mod
from edgecalc.runtime.live import video_segments
from edgecalc.runtime.live.recorder import DEFAULT_SEGMENT_S, Recorder
from edgecalc.runtime.live.video_segments import INDEX_NAME, INDEX_FORMAT, segments_dir

H, W = 96, 128


class FakeClock:
    """Advances 0.25 s per reading: exact in binary, so a 1 s segment holds exactly 4 frames."""

    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        now, self.t = self.t, self.t + 0.25
        return now


def frame(i: int) -> np.ndarray:
    """Frame i: a flat grey level of 25 * i, told apart after lossy coding (and a second coding)."""
    return np.full((H, W, 3), 25 * i, np.uint8)


def levels(frames: list[np.ndarray]) -> list[int]:
    """Which frame(i) each decoded frame is, by its grey level."""
    return [int(round(float(np.median(f)) / 25)) for f in frames]


def index_of(video: Path) -> dict:
    return json.loads((segments_dir(video) / INDEX_NAME).read_text())


def wait_for(cond, timeout: float = 60.0) -> None:
    """Wait for the writer thread (a bound on a hang, not a timing check)."""
    t0 = time.monotonic()
    while not cond():
        assert time.monotonic() - t0 < timeout, "the recorder's thread did not get there"
        time.sleep(0.01)


def record(tmp_path: Path, n: int, ext: str = ".mp4", **kw) -> tuple[Recorder, Path, Path]:
    video, log = tmp_path / f"out{ext}", tmp_path / "out.jsonl"
    rec = Recorder(video, log, fps=10, segment_s=kw.pop("segment_s", 1.0), clock=FakeClock(), **kw)
    for i in range(n):
        rec.submit(frame(i), {"frame": i})
    return rec, video, log


@pytest.mark.parametrize("ext", [".mp4", ".avi"])
def test_closed_segments_are_indexed_and_play_their_frames_while_recording(tmp_path, ext):
    rec, video, _ = record(tmp_path, 10, ext)  # 4 + 4 closed, 2 in the open segment
    wait_for(lambda: rec.frames_written == 10)  # the third segment opened (and the index names it)
    idx = index_of(video)
    assert idx["format"] == INDEX_FORMAT and idx["video"] == video.name and idx["open"] == f"000002{ext}"
    assert idx["fps"] == 10 and idx["size"] == [W, H] and idx["log"] == "out.jsonl"
    assert idx["segments"] == [
        {"file": f"000000{ext}", "frames": 4, "first_frame": 0, "log_lines": [0, 4]},
        {"file": f"000001{ext}", "frames": 4, "first_frame": 4, "log_lines": [4, 8]},
    ]
    for seg in idx["segments"]:  # what a kill now would leave: each closed segment plays its frames
        got = decoded(segments_dir(video) / seg["file"])
        assert levels(got) == list(range(seg["first_frame"], seg["first_frame"] + seg["frames"]))
    rec.close()


@pytest.mark.parametrize("ext", [".mp4", ".avi"])
def test_clean_close_joins_the_segments_losslessly_into_one_file_and_removes_the_folder(tmp_path, ext):
    rec, video, log = record(tmp_path, 10, ext)
    wait_for(lambda: len(index_of(video)["segments"]) == 2)
    folder = segments_dir(video)
    before = [f for seg in index_of(video)["segments"] for f in decoded(folder / seg["file"])]
    rec.close()
    assert not folder.exists() and video.is_file()
    got = decoded(video)
    assert len(got) == rec.frames_written == 10 and levels(got) == list(range(10))
    assert [s["frames"] for s in rec.segments] == [4, 4, 2]
    assert all(np.array_equal(a, b) for a, b in zip(before, got[:8]))  # stream copy: no re-encoding
    assert len(log.read_text().splitlines()) == 10
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no join temp left
    rec.close()  # twice is fine


def test_one_segment_becomes_the_file(tmp_path):
    rec, video, _ = record(tmp_path, 3, segment_s=DEFAULT_SEGMENT_S)
    rec.close()
    assert not segments_dir(video).exists() and levels(decoded(video)) == [0, 1, 2]


def test_segment_length_zero_writes_one_file_as_before(tmp_path):
    rec, video, _ = record(tmp_path, 6, segment_s=0)
    assert rec.segments_dir is None and not segments_dir(video).exists()
    rec.close()
    assert levels(decoded(video)) == list(range(6))


def test_join_without_raw_stream_support_reencodes(tmp_path, monkeypatch):
    """An OpenCV that cannot copy packets still gets the whole video (decoded and encoded again)."""
    monkeypatch.setattr(video_segments, "_copy_packets", lambda *a: False)
    rec, video, _ = record(tmp_path, 10)
    rec.close()
    assert levels(decoded(video)) == list(range(10)) and not segments_dir(video).exists()


def test_segments_of_an_unfinished_recording_are_not_overwritten(tmp_path):
    video, log = tmp_path / "out.mp4", tmp_path / "out.jsonl"
    segments_dir(video).mkdir()
    log.write_text('{"frame": 0}\n')
    with pytest.raises(OSError, match=r"out\.mp4\.segments exists"):
        Recorder(video, log)
    assert log.read_text() == '{"frame": 0}\n'  # refused before the log was opened


def test_a_short_segment_is_removed_and_stops_the_video_the_rest_kept(tmp_path, monkeypatch):
    """A full disk at the second segment: it is removed, the first kept and indexed, the log goes on."""
    real = recorder_mod.container_frames
    monkeypatch.setattr(recorder_mod, "container_frames",
                        lambda p: real(p) - 1 if p.name.startswith("000001") else real(p))
    rec, video, log = record(tmp_path, 10)
    with pytest.raises(OSError, match=r"000001\.mp4 \(a segment of .*out\.mp4\) holds 3 of the 4") as err:
        rec.close()
    assert "playable segments are kept" in str(err.value) and not video.exists()
    idx = index_of(video)
    assert [s["file"] for s in idx["segments"]] == ["000000.mp4"] and idx["open"] is None
    assert sorted(p.name for p in segments_dir(video).iterdir()) == ["000000.mp4", INDEX_NAME]
    assert len(decoded(segments_dir(video) / "000000.mp4")) == 4
    assert len(log.read_text().splitlines()) == 10
    rec.close()  # reported once; a second close does nothing


def test_a_join_that_falls_short_keeps_the_segments_and_names_the_file(tmp_path, monkeypatch):
    real = video_segments.container_frames
    monkeypatch.setattr(video_segments, "container_frames", lambda p: real(p) - 1)
    rec, video, _ = record(tmp_path, 10)
    with pytest.raises(OSError, match=r"cannot join the segments into .*out\.mp4: .*holds 9 of the 10 frames"):
        rec.close()
    assert not video.exists() and [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    assert [s["frames"] for s in index_of(video)["segments"]] == [4, 4, 2]


def test_a_kill_just_before_the_next_segment_opens_keeps_the_closed_one(tmp_path, monkeypatch):
    """The instant between closing segment 0 and opening segment 1: the index already lists 0 as closed.

    The folder (and the log) is copied at the moment the writer for 000001 is asked for: what a SIGKILL
    then would leave. `recover` on that copy must keep segment 0's four frames (a segment the index still
    called open would be ignored, and with no closed one listed the recording refused).
    """
    from edgecalc.runtime.live.recover import recover_recording

    killed = tmp_path / "killed"
    real = recorder_mod.open_writer

    def open_writer(path, fps, size):
        if path.name == "000001.mp4":
            shutil.copytree(path.parent, killed / path.parent.name)
            shutil.copy(path.parent.parent / "out.jsonl", killed / "out.jsonl")
        return real(path, fps, size)

    monkeypatch.setattr(recorder_mod, "open_writer", open_writer)
    rec, video, _ = record(tmp_path / "run", 6)  # 4 frames in segment 0, then segment 1 opens
    rec.close()
    idx = index_of(killed / video.name)
    assert idx["segments"] == [{"file": "000000.mp4", "frames": 4, "first_frame": 0, "log_lines": [0, 4]}]
    assert idx["open"] is None
    got = recover_recording(killed / video.name)
    assert [(s.file, s.frames, s.problem) for s in got.segments] == [("000000.mp4", 4, None)]
    assert got.folder_removed and levels(decoded(killed / video.name)) == [0, 1, 2, 3]


def test_a_segment_is_synced_before_the_index_lists_it_and_listed_before_the_next_opens(tmp_path, monkeypatch):
    """The order of the writes, recorded: the index never lists a segment whose file is not yet synced,
    and every closed segment is listed (no open one) before the writer of the next is opened."""
    events: list[tuple] = []
    real_sync, real_index, real_open = recorder_mod.sync_file, recorder_mod.write_index, recorder_mod.open_writer
    monkeypatch.setattr(recorder_mod, "sync_file", lambda p: (events.append(("sync", p.name)), real_sync(p))[1])
    monkeypatch.setattr(recorder_mod, "write_index", lambda folder, doc: (
        events.append(("index", tuple(s["file"] for s in doc["segments"]), doc["open"])), real_index(folder, doc))[1])
    monkeypatch.setattr(recorder_mod, "open_writer",
                        lambda p, *a: (events.append(("open", p.name)), real_open(p, *a))[1])
    rec, video, _ = record(tmp_path, 10)  # segments of 4, 4 and 2 frames
    rec.close()
    synced: set[str] = set()
    for k, event in enumerate(events):
        if event[0] == "sync":
            synced.add(event[1])
        elif event[0] == "index":
            assert set(event[1]) <= synced, f"the index listed {set(event[1]) - synced} before its fsync: {events}"
        elif event[1] != "000000.mp4":  # opening segment n: the last index write lists 0..n-1, none open
            n = int(event[1][:6])
            last_index = [e for e in events[:k] if e[0] == "index"][-1]
            assert last_index[1:] == (tuple(f"{i:06d}.mp4" for i in range(n)), None), events
    assert [e[1] for e in events if e[0] == "sync"] == ["000000.mp4", "000001.mp4", "000002.mp4"]
    assert events[-1] == ("index", ("000000.mp4", "000001.mp4", "000002.mp4"), None)  # before the join


def test_bad_segment_length_is_refused(tmp_path):
    with pytest.raises(ValueError, match="segment length"):
        Recorder(tmp_path / "x.mp4", None, segment_s=-1)


def test_cli_default_is_the_recorder_default():
    import typer.main

    from edgecalc.cli import app

    live = typer.main.get_command(app).commands["live"]
    (param,) = [p for p in live.params if p.name == "record_segment"]
    assert param.default == DEFAULT_SEGMENT_S
