"""``edgecalc recover``: a killed recording's segments checked against their index and joined; the refusals.

What a SIGKILL leaves is made exactly: a recorder (fake clock: 4 frames a segment) is stopped on
frames in its open segment and its folder copied as it is on disk at that moment (closed, synced
segments, the index, the open segment's unfinished file), then the recorder is closed. The kill of
the real CLI during the join is in tests/test_fault_injection.py.
"""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from edgecalc.cli import app
from edgecalc.runtime.live.recorder import Recorder
from edgecalc.runtime.live.recover import recover_recording, RecoveryRefused
from edgecalc.runtime.live.video_segments import INDEX_NAME, SegmentIndexError, read_index, segments_dir
from test_recorder import FakeClock, decoded, frame, levels, wait_for


def killed_recording(tmp_path: Path, n: int, ext: str = ".mp4", segment_s: float = 1.0) -> tuple[Path, Path]:
    """(video, log) as a SIGKILL after ``n`` frames (10 fps, 4 a segment; 2 with ``segment_s`` 0.5) leaves them
    in ``tmp_path/killed``."""
    live, killed = tmp_path / "live", tmp_path / "killed"
    killed.mkdir()
    video, log = live / f"out{ext}", live / "out.jsonl"
    rec = Recorder(video, log, fps=10, segment_s=segment_s, clock=FakeClock())
    for i in range(n):
        rec.submit(frame(i), {"frame": i})
    wait_for(lambda: rec.frames_written == n and rec.records_written == n)
    shutil.copytree(segments_dir(video), segments_dir(killed / video.name))
    shutil.copy(log, killed / log.name)
    rec.close()
    return killed / video.name, killed / log.name


def cli(*args: str):
    return CliRunner().invoke(app, ["recover", *map(str, args)], env={"COLUMNS": "400"})


def one_line(text: str) -> str:
    return " ".join(text.split())


@pytest.mark.parametrize("ext", [".mp4", ".avi"])
def test_a_killed_recording_is_joined_from_its_closed_segments_and_the_open_one_reported(tmp_path, ext):
    video, _ = killed_recording(tmp_path, 10, ext)  # 4 + 4 closed, 2 in the open segment
    res = cli(video)
    assert res.exit_code == 0, res.output
    assert levels(decoded(video)) == list(range(8)) and not segments_dir(video).exists()
    out = one_line(res.output)
    assert f"kept 2 segment(s), 8 frames (0.80 s at 10 fps) -> {video}" in out, out
    assert f"ignored 000002{ext}: the segment being written" in out and "0 frames of it decode" in out, out
    assert "the log records 2 frames after the last closed segment (0.20 s): lost with the open segment" in out, out
    assert [p.name for p in video.parent.iterdir() if p.name.startswith(".")] == []


def test_recover_is_idempotent(tmp_path):
    video, _ = killed_recording(tmp_path, 10)
    assert cli(video).exit_code == 0
    before = video.read_bytes()
    again = cli(video)
    assert again.exit_code == 0, again.output
    assert "nothing to recover" in one_line(again.output) and video.read_bytes() == before


def test_a_clean_stop_still_joins_and_leaves_recover_nothing_to_do(tmp_path):
    video = tmp_path / "out.mp4"
    rec = Recorder(video, None, fps=10, segment_s=1.0, clock=FakeClock())
    for i in range(10):
        rec.submit(frame(i), None)
    rec.close()
    assert levels(decoded(video)) == list(range(10)) and not segments_dir(video).exists()
    rec = recover_recording(video)
    assert not rec.joined and levels(decoded(video)) == list(range(10))


def test_a_missing_and_a_short_segment_are_reported_the_rest_joined_and_the_folder_kept(tmp_path):
    video, _ = killed_recording(tmp_path, 10, segment_s=0.5)  # 4 closed segments of 2 frames, 2 frames open
    folder = segments_dir(video)
    (folder / "000001.mp4").unlink()
    rec = recover_recording(video)
    assert levels(decoded(video)) == [0, 1, 4, 5, 6, 7]
    assert [(s.file, s.problem) for s in rec.lost] == [("000001.mp4", "missing")]
    assert folder.is_dir() and (folder / INDEX_NAME).is_file()  # what was not joined is not destroyed
    res = cli(video, "--force")  # same segments: the same file again, the loss reported again
    assert res.exit_code == 0, res.output
    assert "lost 000001.mp4: missing; frames 2-3 (2, 0.20 s) are not in out.mp4" in one_line(res.output)
    assert "replaced a file of 6 frames" in one_line(res.output)


def test_a_segment_that_decodes_short_is_not_joined(tmp_path):
    video, _ = killed_recording(tmp_path, 10, ".avi")
    seg = segments_dir(video) / "000000.avi"
    seg.write_bytes(seg.read_bytes()[: seg.stat().st_size // 2])  # a damaged disk, not a kill
    rec = recover_recording(video)
    (lost,) = rec.lost
    assert lost.file == "000000.avi" and lost.problem.startswith("decodes to ") and lost.problem.endswith("of its 4 frames")
    assert levels(decoded(video)) == [4, 5, 6, 7]


def test_the_temporary_file_of_a_killed_join_is_removed_and_no_one_elses(tmp_path):
    video, _ = killed_recording(tmp_path, 10)
    mine, other = video.parent / f".{video.name}.k1ll3d_.tmp.mp4", video.parent / ".notes.mp4.abc.tmp.mp4"
    mine.write_bytes(b"\0" * 100)
    other.write_bytes(b"\0" * 100)
    res = cli(video)
    assert res.exit_code == 0, res.output
    assert not mine.exists() and other.exists()
    assert f"removed {mine}" in one_line(res.output)


def test_refused_when_there_is_nothing_to_recover(tmp_path):
    res = cli(tmp_path / "none.mp4")
    assert res.exit_code == 2
    assert "no recording to recover at" in one_line(res.output) and "none.mp4" in res.output


def test_refused_when_the_folder_has_no_index(tmp_path):
    video = tmp_path / "out.mp4"
    segments_dir(video).mkdir()
    res = cli(video)
    assert res.exit_code == 2
    out = one_line(res.output)
    assert f"{segments_dir(video) / INDEX_NAME} is missing" in out and "is empty" in out, out


#: (what is wrong, a change to a good index, the reason the error gives)
BAD_INDEXES = [
    ("not JSON", None, "is not readable JSON"),
    ("other format", {"format": "something/1"}, "its format is not"),
    ("fps zero", {"fps": 0}, "is not a positive frame rate"),
    ("fps a string", {"fps": "20"}, "is not a positive frame rate"),
    ("size of one number", {"size": [64]}, "is not [width, height]"),
    ("segments not a list", {"segments": {"file": "000000.mp4"}}, "'segments' is not a list"),
    ("a segment outside the folder", {"segments": [{"file": "../../etc/passwd", "frames": 4, "first_frame": 0}]},
     "segment 0 is not"),
    ("an absolute segment path", {"segments": [{"file": "/tmp/000000.mp4", "frames": 4, "first_frame": 0}]},
     "segment 0 is not"),
    ("frames not a count", {"segments": [{"file": "000000.mp4", "frames": True, "first_frame": 0}]},
     "do not follow"),
    ("a gap in the frames", {"segments": [{"file": "000000.mp4", "frames": 4, "first_frame": 0},
                                          {"file": "000001.mp4", "frames": 4, "first_frame": 5}]}, "do not follow"),
    ("an open segment outside the folder", {"open": "../000002.mp4"}, "is not the next segment's name"),
    ("a log path", {"log": "/var/log/x.jsonl"}, "is not a plain file name"),
]


@pytest.mark.parametrize("change, reason", [b[1:] for b in BAD_INDEXES], ids=[b[0] for b in BAD_INDEXES])
def test_a_broken_index_is_refused_naming_it_and_nothing_changes(tmp_path, change, reason):
    video, _ = killed_recording(tmp_path, 10)
    index = segments_dir(video) / INDEX_NAME
    if change is None:
        index.write_bytes(index.read_bytes()[:40])
    else:
        index.write_text(json.dumps({**json.loads(index.read_text()), **change}))
    before = sorted(p.name for p in segments_dir(video).iterdir())
    with pytest.raises(SegmentIndexError, match=str(index).replace(".", r"\.")) as err:
        read_index(segments_dir(video), video.suffix)
    assert reason in str(err.value)
    res = cli(video)
    assert res.exit_code == 2 and reason in one_line(res.output), res.output
    assert not video.exists() and sorted(p.name for p in segments_dir(video).iterdir()) == before


def test_an_existing_file_is_not_replaced_without_force(tmp_path):
    video, _ = killed_recording(tmp_path, 10)
    video.write_bytes(b"someone else's recording")
    res = cli(video)
    assert res.exit_code == 2
    assert f"{video} exists (0 frames decode; the index lists 8)" in one_line(res.output), res.output
    assert video.read_bytes() == b"someone else's recording" and segments_dir(video).is_dir()
    assert cli(video, "--force").exit_code == 0
    assert levels(decoded(video)) == list(range(8))


def test_force_never_replaces_a_file_with_fewer_frames(tmp_path):
    """A kill during the clean-up after a finished join: OUT holds every frame, a segment is already gone."""
    video, _ = killed_recording(tmp_path, 10, segment_s=0.5)  # 4 closed segments, 8 frames
    shutil.copytree(segments_dir(video), tmp_path / "copy")
    assert recover_recording(video).joined and levels(decoded(video)) == list(range(8))
    shutil.copytree(tmp_path / "copy", segments_dir(video))  # the folder as the cut-short clean-up left it
    (segments_dir(video) / "000003.mp4").unlink()
    refused = cli(video)
    assert refused.exit_code == 2, refused.output
    assert "(8 frames decode; the index lists 8: a join finished before the kill)" in one_line(refused.output)
    with pytest.raises(RecoveryRefused, match=r"exists with 8 frames; --force would replace it with the 6"):
        recover_recording(video, force=True)
    assert levels(decoded(video)) == list(range(8))


def test_no_segment_that_plays_is_refused(tmp_path):
    video, _ = killed_recording(tmp_path, 10)
    for name in ("000000.mp4", "000001.mp4"):
        (segments_dir(video) / name).unlink()
    res = cli(video)
    assert res.exit_code == 2
    assert "lists 2 segment(s) and none plays as indexed" in one_line(res.output) and not video.exists()


# --- the index as a reader: fuzzed ----------------------------------------------------------------

hypothesis = pytest.importorskip("hypothesis", reason="the index fuzz needs hypothesis (pip install -e '.[dev]')")
from hypothesis import event, example, given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

ODD = st.sampled_from([None, "", "x", [], [1, 2], [[]], {}, {"a": 1}, 0, -1, 2, 10**30, 1.5, float("nan"),
                       float("inf"), True, "000000.mp4"]).map(copy.deepcopy)  # a later step may change it in place
ESCAPES = st.sampled_from(["../outside.jsonl", "/etc/hostname", "sub/../../outside.jsonl", "..", ".", "",
                           "out.jsonl\x00", "a\\b", "a" * 300, "000009.mp4", "out.jsonl"])
INDEX_KEYS = ["format", "video", "fps", "size", "segment_s", "log", "segments", "open"]
SEGMENT_KEYS = ["file", "frames", "first_frame", "log_lines"]


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> Path:
    """A killed recording's folder (4 closed segments of 2 frames, 2 open) and its log, kept as the seed."""
    video, _ = killed_recording(tmp_path_factory.mktemp("seed"), 10, segment_s=0.5)
    return video.parent


@st.composite
def damaged_indexes(draw) -> bytes:
    """The seed's index with keys dropped and retyped, segment fields retyped, names pointing out, or its
    bytes cut or flipped."""
    doc: object = json.loads(SEED_INDEX)
    for _ in range(draw(st.integers(1, 3))):
        what = draw(st.sampled_from(["drop", "retype", "segment", "segment_file", "escape", "segments", "whole"]))
        if not isinstance(doc, dict):
            break
        segs = doc.get("segments")
        if what == "drop":
            doc.pop(draw(st.sampled_from(INDEX_KEYS)), None)
        elif what == "retype":
            doc[draw(st.sampled_from(INDEX_KEYS))] = draw(ODD)
        elif what in ("segment", "segment_file") and isinstance(segs, list) and segs:
            seg = segs[draw(st.integers(0, len(segs) - 1))]
            if isinstance(seg, dict):
                key = "file" if what == "segment_file" else draw(st.sampled_from(SEGMENT_KEYS))
                seg[key] = draw(ESCAPES if what == "segment_file" else ODD)
        elif what == "escape":
            doc[draw(st.sampled_from(["open", "log"]))] = draw(ESCAPES)
        elif what == "segments":
            doc["segments"] = draw(st.one_of(ODD, st.lists(ODD, max_size=3)))
        else:
            doc = draw(ODD)
    raw = json.dumps(doc, allow_nan=True).encode()
    if draw(st.booleans()):
        return raw
    cut = draw(st.integers(0, max(len(raw) - 1, 0)))
    if draw(st.booleans()):
        return raw[:cut]
    return raw[:cut] + bytes([raw[cut] ^ draw(st.integers(1, 255))]) + raw[cut + 1:] if raw else raw


SEED_INDEX = json.dumps({"format": "edgecalc.recording-segments/1", "video": "out.mp4", "fps": 10, "size": [128, 96],
                         "segment_s": 0.5, "log": "out.jsonl", "open": "000004.mp4",
                         "segments": [{"file": f"00000{k}.mp4", "frames": 2, "first_frame": 2 * k,
                                       "log_lines": [2 * k, 2 * k + 2]} for k in range(4)]})


def test_the_fuzz_seed_is_the_recorders_index(pristine):
    assert json.loads((segments_dir(pristine / "out.mp4") / INDEX_NAME).read_text()) == json.loads(SEED_INDEX)


@given(damaged_indexes())
@example(json.dumps({**json.loads(SEED_INDEX), "segments": [{**json.loads(SEED_INDEX)["segments"][0],
                                                              "log_lines": []}]}).encode())  # found: IndexError
@example(json.dumps({**json.loads(SEED_INDEX), "log": "out.jsonl\x00"}).encode())  # found: ValueError (NUL byte)
@example(json.dumps({**json.loads(SEED_INDEX), "open": "a" * 300}).encode())  # found: OSError, name too long
def test_recover_joins_or_refuses_naming_the_file_on_any_index(pristine, tmp_path_factory, raw):
    """Contract: a Recovery whose file holds exactly the frames it kept, or RecoveryRefused naming the index or
    the video; never another exception, and nothing read or written outside the recording's folder."""
    root = tmp_path_factory.mktemp("fuzz")
    (root / "outside.jsonl").write_text('{"frame": 0}\n' * 1000)  # read through an escaping 'log': 992 "lost"
    shutil.copytree(pristine, root / "rec")
    video = root / "rec" / "out.mp4"
    (segments_dir(video) / INDEX_NAME).write_bytes(raw)
    try:
        rec = recover_recording(video)
    except RecoveryRefused as exc:
        assert str(segments_dir(video)) in str(exc) or str(video) in str(exc), exc
        event("refused")
        return
    event("joined")
    assert rec.joined and rec.logged_after in (None, 2)
    assert len(decoded(video)) == sum(s.frames for s in rec.kept) > 0
    assert sorted(p.name for p in root.iterdir()) == ["outside.jsonl", "rec"]


def test_a_join_that_fails_exits_2_naming_the_file_and_leaves_the_segments(tmp_path, monkeypatch):
    """A full disk during the join (the joined file comes out short): exit 2, no OUT, the folder as it was."""
    from edgecalc.runtime.live import video_segments

    video, _ = killed_recording(tmp_path, 10)
    before = sorted(p.name for p in segments_dir(video).iterdir())
    real = video_segments.container_frames
    monkeypatch.setattr(video_segments, "container_frames", lambda p: real(p) - 1)
    res = cli(video)
    assert res.exit_code == 2
    out = one_line(res.output)
    assert f"cannot join the segments into {video}" in out and "holds 7 of the 8 frames" in out, out
    assert not video.exists() and sorted(p.name for p in segments_dir(video).iterdir()) == before
    assert [p.name for p in video.parent.iterdir() if p.name.startswith(".")] == []


def test_a_recording_killed_in_its_first_segment_is_refused_saying_so(tmp_path):
    video, _ = killed_recording(tmp_path, 3)  # 3 frames, all in the open segment
    res = cli(video)
    assert res.exit_code == 2 and "lists no closed segment" in one_line(res.output), res.output


def test_paths_are_printed_literally(tmp_path):
    """A file name holding rich markup (``[red]``) is printed as it is, in the report and in a refusal."""
    video, _ = killed_recording(tmp_path, 10)
    odd = video.with_name("[red]out.mp4")
    segments_dir(video).rename(segments_dir(odd))
    res = cli(odd)
    assert res.exit_code == 0 and f"-> {odd}" in one_line(res.output), res.output
    refused = cli(tmp_path / "[bold]none.mp4")
    assert refused.exit_code == 2 and "[bold]none.mp4" in refused.output, refused.output
