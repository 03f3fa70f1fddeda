"""Kill the real CLI mid-write (SIGKILL, SIGTERM) or starve it of disk, then check what is on disk.

Each write that matters is run as a user runs it (a subprocess of ``edgecalc``, ``tests/_kill_harness.py``)
and stopped at seeded-random moments after its first write began:

- ``train``: the run folder's config loads and ``--resume`` ends with weights bit-identical to an
  uninterrupted run;
- ``export``: ``--out`` holds the complete, verified bundle or nothing (staging folders stay hidden
  beside it and the next export removes them);
- ``data phantom``: ``data check`` passes only on the complete data set (labels.csv is written last);
- ``live --record``: after SIGTERM the segments are joined into one video holding every frame the log
  records and the log has only whole lines; after SIGKILL, a few seconds in with 1 s segments, at least
  one closed segment is left, every segment the index lists plays exactly the frames it says, and those
  frames and their log lines match the whole lines of the log;
- the join of a recording's segments (``edgecalc recover``, and the recorder's clean stop), SIGKILLed
  while it writes the joined file: the segments and ``index.json`` are intact, OUT is absent or whole,
  and ``recover`` then writes exactly the indexed frames and leaves no temporary file; SIGTERMed there:
  the join and the folder's removal finish first (OUT holds exactly the indexed frames, no temporary
  file), then ``recover`` exits 130 and the recorder's process ends by the signal;
- a full disk (``RLIMIT_FSIZE``, SIGXFSZ ignored: writes fail with EFBIG) and a read-only folder:
  exit 2, an error naming the path, nothing half-written.

The default run tries one kill moment per signal and command (measured: 99 s CPU, 3.6 min wall on a busy 2-core machine);
``EDGECALC_FAULT_TRIALS=N`` tries N per signal (docs/reliability.md lists the runs made).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import zlib
from pathlib import Path

import pytest

from _kill_harness import Outcome, kill_delays, leftovers, note, run_and_kill, run_cli

TRIALS = int(os.environ.get("EDGECALC_FAULT_TRIALS", "1"))
SIGNALS = {"SIGKILL": signal.SIGKILL, "SIGTERM": signal.SIGTERM}
CASES = [(name, k) for name in SIGNALS for k in range(TRIALS)]
CASE_IDS = [f"{name}-{k}" for name, k in CASES]
TRAIN_ARGS = ["--size", "32", "--steps-stage1", "4", "--steps-stage2", "4", "--eval-every", "2", "--warmup-steps", "1",
              "--batch-size", "4", "--folds", "4", "--val-fraction", "0.25", "--mask-fraction", "0.5", "--no-progress",
              "--threads", "1", "--precision", "fp32"]
ROOT_SKIP = ("running as root, where chmod does not stop writes, and `chattr +i` (the immutable attribute) is not "
             "available on this file system: no read-only folder can be made here")


def _delay(command: str, sig: str, k: int, span: float, low: float = 0.0) -> float:
    """The k-th seeded kill moment of this command and signal, in [low, span) s after its first write."""
    return kill_delays(zlib.crc32(f"{command}/{sig}".encode()), TRIALS, span, low)[k]


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    """Tiny phantom data, a tiny CS-AGnet's weights and one uninterrupted training run (the reference)."""
    torch = pytest.importorskip("torch", reason="training and export need torch (the [train] extra)")
    from edgecalc.model import CSAGNet, get_preset
    from edgecalc.model.weights import save_model
    from train_helpers import make_tiny_phantom

    root = tmp_path_factory.mktemp("faults")
    make_tiny_phantom(root / "data")
    torch.manual_seed(0)
    save_model(CSAGNet(get_preset("lite", 32).with_(width=0.125)).eval(), root / "weights" / "model.safetensors")
    t0 = time.monotonic()
    ref = run_cli(["train", "data", *TRAIN_ARGS, "--out", "ref"], cwd=root)
    assert ref.returncode == 0, ref.output
    (root / "ref_seconds").write_text(f"{time.monotonic() - t0:.2f}")
    return root


# --- train ------------------------------------------------------------------------------------


@pytest.mark.parametrize("sig,k", CASES, ids=CASE_IDS)
def test_killed_training_resumes_to_identical_weights(work, sig, k):
    from edgecalc.train.config import TrainConfig
    from train_helpers import assert_identical

    run = work / f"run-{sig}-{k}"
    span = max(1.0, float((work / "ref_seconds").read_text()) - 3.0)  # minus the imports before config.json
    out = run_and_kill(["train", "data", *TRAIN_ARGS, "--out", run.name], cwd=work, sig=SIGNALS[sig],
                       delay=_delay("train", sig, k, span), started=(run / "config.json").is_file)
    finished = out.returncode == 0 or (run / "metrics.json").is_file()  # the signal came after the work was done
    assert out.signalled_after_s is None or out.returncode in (-SIGNALS[sig], 130) or finished, out.output
    TrainConfig.read(run / "config.json")  # the run folder is loadable
    if not finished:
        resumed = run_cli(["train", "--resume", run.name, "--no-progress"], cwd=work)
        assert resumed.returncode == 0, resumed.output
    assert_identical(work / "ref" / "final.safetensors", run / "final.safetensors")
    assert [p.name for p in run.rglob(".*.tmp*")] == []  # no temporary file of an atomic write survives a resume


# --- export -----------------------------------------------------------------------------------


def _bundle_complete_or_absent(out: Path) -> None:
    from edgecalc.runtime.engine.bundle import load_bundle

    if out.exists():
        bundle = load_bundle(out)  # every listed file present, with its checksum
        kinds = {(a.kind, a.precision) for a in bundle.manifest.artifacts}
        assert {("torchscript", "fp32"), ("onnx", "fp32"), ("report", None)} <= kinds, kinds


@pytest.mark.parametrize("sig,k", CASES, ids=CASE_IDS)
def test_killed_export_leaves_the_whole_bundle_or_none(work, sig, k):
    out = work / f"bundle-{sig}-{k}"
    result = run_and_kill(["export", "weights", "--out", out.name, "--no-engine", "--parity-size", "8"], cwd=work,
                          sig=SIGNALS[sig], delay=_delay("export", sig, k, 4.0),
                          started=lambda: bool(leftovers(work, out.name)) or out.exists())
    _bundle_complete_or_absent(out)
    if result.signalled_after_s is None:
        assert result.returncode == 0, result.output
        assert out.exists()
    if sig != "SIGKILL" or k:  # one complete re-export is enough to show the leftovers go (the rest is the same)
        return
    again = run_cli(["export", "weights", "--out", out.name, "--no-engine", "--parity-size", "8"], cwd=work)
    assert again.returncode == 0, again.output
    _bundle_complete_or_absent(out)
    assert out.exists() and leftovers(work, out.name) == []  # the killed run's staging folder was removed


# --- data phantom -----------------------------------------------------------------------------

PHANTOM_N = 8


def _complete_or_refused(folder: Path, seed: int) -> bool:
    """True when ``data check`` passes (then the set is whole, and the run's own), False when it refuses."""
    from edgecalc.data.dataset import check_dataset

    rep = check_dataset(folder)
    if rep.ok:
        rows = (folder / "labels.csv").read_text().splitlines()[1:]
        assert len(rows) == PHANTOM_N, rows
        meta = json.loads((folder / "phantom.json").read_text())
        assert (meta["n"], meta["seed"]) == (PHANTOM_N, seed), "an earlier run's files vouch for this one"
        assert len((folder / "meta.jsonl").read_text().splitlines()) == PHANTOM_N
    return rep.ok


PHANTOM_CASES = [(sig, k, False) for sig, k in CASES] + [("SIGKILL", k, True) for k in range(TRIALS)]


@pytest.mark.parametrize("sig,k,over_old", PHANTOM_CASES,
                         ids=[f"{s}-{k}-{'over-a-complete-one' if o else 'fresh'}" for s, k, o in PHANTOM_CASES])
def test_killed_phantom_is_complete_or_refused_by_data_check(work, sig, k, over_old):
    out = work / f"phantom-{sig}-{k}-{int(over_old)}"
    args = ["data", "phantom", "--out", out.name, "--n", str(PHANTOM_N), "--positive", "3", "--size", "64"]
    if over_old:  # a complete set from an earlier run must not vouch for the interrupted rewrite
        assert run_cli(args + ["--seed", "1"], cwd=work).returncode == 0
        assert _complete_or_refused(out, seed=1)
    first = out / "images" / "00000.png"
    before = first.stat().st_mtime_ns if over_old else -1

    def started() -> bool:  # the first crop of this run is on disk
        try:
            return first.stat().st_mtime_ns > before
        except FileNotFoundError:
            return False

    result = run_and_kill(args, cwd=work, sig=SIGNALS[sig], delay=_delay("phantom", sig, k, 2.0), started=started)
    complete = _complete_or_refused(out, seed=0)
    if result.signalled_after_s is None:
        assert result.returncode == 0 and complete, result.output


# --- live --record ----------------------------------------------------------------------------

LIVE_ARGS = ["live", "--source", "phantom", "--headless", "--phantom-frames", "60", "--backend", "onnxruntime",
             "--crop", "fixed", "--roi", "150,60,200,200"]


def _whole_lines(log: Path) -> list[dict]:
    text = log.read_text(encoding="utf-8")
    assert text == "" or text.endswith("\n"), f"{log} ends in a partial line: {text[-80:]!r}"
    return [json.loads(line) for line in text.splitlines()]


def _frames_in(video: Path) -> int:
    import cv2

    cap = cv2.VideoCapture(str(video))
    n = 0
    while cap.isOpened():
        ok, _ = cap.read()
        if not ok:
            break
        n += 1
    cap.release()
    return n


def _lines_at_least(log: Path, n: int):
    return lambda: log.is_file() and log.read_bytes().count(b"\n") >= n


@pytest.mark.parametrize("ext", [".avi", ".mp4"])
def test_sigterm_leaves_a_playable_recording_and_a_whole_log(work, ext):
    """0.25 s segments, so the clean stop joins several into the one file asked for."""
    from edgecalc.runtime.live.video_segments import segments_dir

    video, log = work / f"term{ext}", work / f"term{ext}.jsonl"
    result = run_and_kill([*LIVE_ARGS, "--record", video.name, "--log", log.name, "--record-segment", "0.25"],
                          cwd=work, sig=signal.SIGTERM, delay=_delay("live" + ext, "SIGTERM", 0, 1.5),
                          started=_lines_at_least(log, 2))
    assert result.signalled_after_s is not None and result.returncode == 0, result.output
    records = _whole_lines(log)
    assert len(records) >= 2
    assert _frames_in(video) == len(records)  # every processed frame was recorded, up to the signal
    assert not segments_dir(video).exists()


#: a paced phantom (20 frames/s, 5 s of frames) so that a kill 2.5-4 s in finds closed 1 s segments
LIVE_PACED = [*LIVE_ARGS[:5], "100", *LIVE_ARGS[6:], "--realtime", "--fps", "20", "--record-segment", "1"]


@pytest.mark.parametrize("k", range(TRIALS))
@pytest.mark.parametrize("ext", [".avi", ".mp4"])
def test_sigkill_keeps_the_closed_segments_and_whole_log_lines(work, ext, k):
    from edgecalc.runtime.live.video_segments import INDEX_NAME, segments_dir

    video, log = work / f"kill{k}{ext}", work / f"kill{k}{ext}.jsonl"
    result = run_and_kill([*LIVE_PACED, "--record", video.name, "--log", log.name], cwd=work, sig=signal.SIGKILL,
                          delay=_delay("live" + ext, "SIGKILL", k, 4.0, low=2.5),
                          started=_lines_at_least(log, 2))
    assert result.returncode == -signal.SIGKILL, result.output
    records = _whole_lines(log)
    assert len(records) >= 2
    assert not video.exists()  # only a clean stop writes the joined file
    index = json.loads((segments_dir(video) / INDEX_NAME).read_text())
    segments = index["segments"]
    assert segments, index  # killed 2.5-4 s in with 1 s segments: one closed at least
    first = 0
    for seg in segments:  # each closed segment plays exactly the frames the index says, in order
        assert seg["first_frame"] == first and seg["log_lines"][1] - seg["log_lines"][0] == seg["frames"] > 0
        assert _frames_in(segments_dir(video) / seg["file"]) == seg["frames"], seg
        lines = records[seg["log_lines"][0]:seg["log_lines"][1]]
        assert len(lines) == seg["frames"]  # the log lines they cover were written whole before the kill
        first += seg["frames"]
    assert first <= len(records)
    note(measured="live --record SIGKILL", ext=ext, killed_after_s=result.signalled_after_s, segments=len(segments),
         frames_kept=first, frames_logged=len(records))
    open_segment = segments_dir(video) / index["open"] if index["open"] else None
    if open_segment is not None and open_segment.exists():
        _frames_in(open_segment)  # the open segment may be unreadable; reading it must not crash


# --- the join of a recording's segments -------------------------------------------------------

#: one frame a segment (a clock that advances 1 s a frame, 1 s segments): the join of this many copies
#: 400 small files, 0.4-0.6 s measured, a window the seeded kill moments (0-0.25 s after the join's
#: temporary file appears beside OUT) land in
JOIN_FRAMES, JOIN_SIZE = 400, (160, 120)
JOIN_DELAY_S = 0.25
#: the recorder's clean stop, driven as the live loop drives it (the CLI would need 20 s of inference
#: for as many segments on this machine): Recorder.close() joins the segments, then removes the folder
RECORD_AND_STOP = [sys.executable, "-c", f"""
import itertools, sys
import numpy as np
from edgecalc.runtime.live.recorder import Recorder
tick = itertools.count()
rec = Recorder(sys.argv[1], None, fps=20, segment_s=1.0, clock=lambda: float(next(tick)))
for i in range({JOIN_FRAMES}):
    rec.submit(np.full(({JOIN_SIZE[1]}, {JOIN_SIZE[0]}, 3), (7 * i) % 256, np.uint8), None)
rec.close()
"""]


def _join_temp_appeared(video: Path):
    return lambda: bool(leftovers(video.parent, video.name))


@pytest.fixture(scope="module")
def killed_recording(tmp_path_factory) -> Path:
    """The segment folder a SIGKILL of a recording leaves: JOIN_FRAMES - 1 closed one-frame segments, one open."""
    import itertools

    import numpy as np

    from edgecalc.runtime.live.recorder import Recorder
    from edgecalc.runtime.live.video_segments import segments_dir

    root = tmp_path_factory.mktemp("join")
    video, tick = root / "live" / "rec.mp4", itertools.count()
    rec = Recorder(video, None, fps=20, segment_s=1.0, clock=lambda: float(next(tick)))
    for i in range(JOIN_FRAMES):
        rec.submit(np.full((JOIN_SIZE[1], JOIN_SIZE[0], 3), (7 * i) % 256, np.uint8), None)
    t0 = time.monotonic()
    while rec.frames_written < JOIN_FRAMES:  # the writer thread's work (a bound on a hang, not a timing check)
        assert time.monotonic() - t0 < 120, "the recorder did not write its frames"
        time.sleep(0.01)
    shutil.copytree(segments_dir(video), root / "pristine")  # as a kill now leaves it on disk
    rec.close()
    return root / "pristine"


def _snapshot(folder: Path) -> dict[str, int]:
    return {p.name: zlib.crc32(p.read_bytes()) for p in sorted(folder.iterdir())}


def _after_a_killed_join(video: Path, result: Outcome, frames: int, writer: str, k: int,
                         sig: signal.Signals = signal.SIGKILL, code: int = -signal.SIGKILL) -> None:
    """The target is absent or complete, never partial; then `recover` leaves exactly the indexed frames and
    no temporary file. ``code``: the exit status when ``sig`` landed. A SIGTERM is held until the join and
    the folder's removal are done, so after one OUT is whole, with no temporary file and no folder."""
    from edgecalc.runtime.live.video_segments import read_index, segments_dir

    folder = segments_dir(video)
    temps = leftovers(video.parent, video.name)
    landed = ("finished first" if result.signalled_after_s is None else
              "held, the join finished" if sig == signal.SIGTERM and video.exists() and not temps else
              "after the rename" if video.exists() else "during the join's write" if temps else "before the join")
    note(measured=f"join {sig.name}", writer=writer, trial=k, killed_after_s=result.signalled_after_s, landed=landed,
         temps_left=len(temps), returncode=result.returncode)
    if result.signalled_after_s is None:
        assert result.returncode == 0, result.output
    else:
        assert result.returncode == code, result.output
    if sig == signal.SIGTERM:  # the join was not cut: it finished, cleaned up, and only then did the signal act
        assert video.exists() and temps == [] and not folder.exists(), (landed, temps, result.output)
    if video.exists():  # the rename happened: the whole file, and no temporary one
        assert _frames_in(video) == frames and temps == []
        again = run_cli(["recover", video.name], cwd=video.parent)
        if folder.exists():  # killed before the folder was removed: recover refuses to replace OUT, naming it
            assert again.returncode == 2 and video.name in again.stderr, again.output
        else:  # the job is done: nothing to recover, OUT untouched
            assert again.returncode == 0 and "nothing to recover" in again.output, again.output
            assert _frames_in(video) == frames
        return
    index = read_index(folder, video.suffix)  # intact, and every segment it lists plays its frames
    assert sum(s["frames"] for s in index["segments"]) == frames
    again = run_cli(["recover", video.name], cwd=video.parent)
    assert again.returncode == 0, again.output
    assert _frames_in(video) == frames  # exactly the indexed frames
    assert leftovers(video.parent, video.name) == [] and not folder.exists()
    assert [t for t in temps if t in again.stderr] == temps  # the killed join's temporary file, reported removed


@pytest.mark.parametrize("k", range(TRIALS))
def test_sigkill_during_the_join_of_recover_loses_nothing(tmp_path, killed_recording, k):
    """`edgecalc recover` killed while it writes the joined file: the segments and index.json byte for byte
    as before, no partial file under the final name; the next `recover` finishes the job."""
    from edgecalc.runtime.live.video_segments import segments_dir

    video = tmp_path / "rec.mp4"
    shutil.copytree(killed_recording, segments_dir(video))
    before = _snapshot(segments_dir(video))
    result = run_and_kill(["recover", video.name], cwd=tmp_path, sig=signal.SIGKILL, poll=0.005,
                          delay=_delay("join-recover", "SIGKILL", k, JOIN_DELAY_S),
                          started=_join_temp_appeared(video))
    if not video.exists():  # the join wrote only its temporary file: nothing else was touched
        assert _snapshot(segments_dir(video)) == before
    _after_a_killed_join(video, result, JOIN_FRAMES - 1, "recover", k)


@pytest.mark.parametrize("k", range(TRIALS))
def test_sigkill_during_the_clean_stop_join_loses_nothing(tmp_path, k):
    """The recorder's own clean stop killed while it joins: the folder keeps the complete index it wrote before
    the join (no open segment), and `recover` joins every frame."""
    from edgecalc.runtime.live.video_segments import read_index, segments_dir

    video = tmp_path / "rec.mp4"
    result = run_and_kill([video.name], cwd=tmp_path, sig=signal.SIGKILL, poll=0.005, program=RECORD_AND_STOP,
                          delay=_delay("join-close", "SIGKILL", k, JOIN_DELAY_S), started=_join_temp_appeared(video))
    if not video.exists():
        index = read_index(segments_dir(video), video.suffix)
        assert index["open"] is None and len(index["segments"]) == JOIN_FRAMES
    _after_a_killed_join(video, result, JOIN_FRAMES, "Recorder.close", k)


@pytest.mark.parametrize("k", range(TRIALS))
def test_sigterm_during_the_join_of_recover_finishes_it_then_exits_130(tmp_path, killed_recording, k):
    """`edgecalc recover` SIGTERMed while it writes the joined file: the join and the folder's removal
    finish first, then it exits 130 with its report (a SIGTERM after the report: the process ends by it)."""
    from edgecalc.runtime.live.video_segments import segments_dir

    video = tmp_path / "rec.mp4"
    shutil.copytree(killed_recording, segments_dir(video))
    result = run_and_kill(["recover", video.name], cwd=tmp_path, sig=signal.SIGTERM, poll=0.005,
                          delay=_delay("join-recover", "SIGTERM", k, JOIN_DELAY_S),
                          started=_join_temp_appeared(video))
    assert f"kept {JOIN_FRAMES - 1} segment(s)" in result.output, result.output  # the report, in every case
    if result.returncode == -signal.SIGTERM:  # it landed after the report, as the process was ending
        code = -signal.SIGTERM
    else:
        code = 130
        # a SIGTERM in the join says so; one that lands while the finished job's report is printed
        # (signals held there) sets the code alone: the report is then the plain one, whole
        if result.signalled_after_s is not None and "the join and the clean-up were finished first" not in result.output:
            last = result.output.strip().splitlines()[-1]
            assert last.startswith("removed ") and last.endswith(f"{video.name}.segments"), result.output
    _after_a_killed_join(video, result, JOIN_FRAMES - 1, "recover", k, signal.SIGTERM, code)


@pytest.mark.parametrize("k", range(TRIALS))
def test_sigterm_during_the_clean_stop_join_finishes_it_then_ends_by_the_signal(tmp_path, k):
    """The recorder's clean stop SIGTERMed while it joins (as a second SIGTERM reaches `live`, whose handler
    is gone by then): the joined file holds every frame, the folder is gone, then the signal ends the process."""
    video = tmp_path / "rec.mp4"
    result = run_and_kill([video.name], cwd=tmp_path, sig=signal.SIGTERM, poll=0.005, program=RECORD_AND_STOP,
                          delay=_delay("join-close", "SIGTERM", k, JOIN_DELAY_S), started=_join_temp_appeared(video))
    _after_a_killed_join(video, result, JOIN_FRAMES, "Recorder.close", k, signal.SIGTERM, -signal.SIGTERM)


# --- a full disk, a read-only folder ----------------------------------------------------------


def _assert_clear_failure(out: Outcome, *names: str) -> None:
    """Exit 2 through the one error path: an ``error:`` line on stderr naming the file, no traceback."""
    assert out.returncode == 2, out.output
    assert "Traceback" not in out.stdout + out.stderr, out.output
    assert any(line.startswith("error: ") for line in out.stderr.splitlines()), out.output
    assert any(n in out.stderr.replace(" ", "") for n in names), out.output


def test_full_disk_export(work):
    out = work / "full-bundle"
    res = run_cli(["export", "weights", "--out", out.name, "--no-engine", "--parity-size", "8"], cwd=work, fsize=200_000)
    _assert_clear_failure(res, "cannotwritethebundle")
    assert not out.exists() and leftovers(work, out.name) == []


def test_full_disk_phantom(work):
    from edgecalc.data.dataset import check_dataset

    out = work / "full-phantom"
    res = run_cli(["data", "phantom", "--out", out.name, "--n", "4", "--positive", "2", "--size", "64"], cwd=work,
                  fsize=3000)
    _assert_clear_failure(res, out.name)
    assert not check_dataset(out).ok
    assert [p.name for p in out.rglob(".*.tmp*")] == []


def test_full_disk_live_recording(work):
    """3 kB: the log runs out first (cut back to whole lines), the video has no room at all (removed)."""
    video, log = work / "full.avi", work / "full.jsonl"
    res = run_cli([*LIVE_ARGS[:5], "30", *LIVE_ARGS[6:], "--record", video.name, "--log", log.name], cwd=work,
                  fsize=3_000)
    _assert_clear_failure(res, log.name)
    assert video.name in res.output.replace(" ", ""), res.output
    _whole_lines(log)
    assert not video.exists() or _frames_in(video) > 0  # an unplayable file is not left behind
    from edgecalc.runtime.live.video_segments import segments_dir

    assert not segments_dir(video).exists()  # no segment was playable: none is kept


def test_full_disk_training(work):
    run = work / "full-run"
    res = run_cli(["train", "data", *TRAIN_ARGS, "--out", run.name], cwd=work, fsize=30_000)
    _assert_clear_failure(res, run.name)
    assert [p.name for p in run.rglob(".*.tmp*")] == []


def _make_read_only(folder: Path) -> list[str] | None:
    """Make ``folder`` unwritable; the command that undoes it, or None when this machine cannot.

    chmod 555 for a normal user; root ignores modes, so for root the immutable attribute
    (``chattr +i``, ext4/xfs/btrfs with CAP_LINUX_IMMUTABLE) — checked by trying to write.
    """
    if os.geteuid() != 0:
        folder.chmod(0o555)
        return ["chmod", "755", str(folder)]
    if shutil.which("chattr") is None or subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode:
        return None
    try:
        (folder / "probe").touch()
    except OSError:
        return ["chattr", "-i", str(folder)]
    (folder / "probe").unlink()
    subprocess.run(["chattr", "-i", str(folder)], check=True)
    return None


@pytest.fixture
def read_only(work):
    folder = work / "read-only"
    folder.mkdir(exist_ok=True)
    undo = _make_read_only(folder)
    if undo is None:
        pytest.skip(ROOT_SKIP)
    yield folder
    subprocess.run(undo, check=True)


@pytest.mark.parametrize("command", ["export", "phantom", "live", "train"])
def test_read_only_output_folder(work, read_only, command):
    rel = read_only.name
    args = {"export": ["export", "weights", "--out", f"{rel}/b", "--no-engine", "--parity-size", "8"],
            "phantom": ["data", "phantom", "--out", f"{rel}/p", "--n", "4", "--positive", "2", "--size", "64"],
            "live": [*LIVE_ARGS[:5], "5", *LIVE_ARGS[6:], "--record", f"{rel}/r.avi", "--log", f"{rel}/r.jsonl"],
            "train": ["train", "data", *TRAIN_ARGS, "--out", f"{rel}/run"]}[command]
    res = run_cli(args, cwd=work)
    _assert_clear_failure(res, rel)
    assert list(read_only.iterdir()) == []


def test_sigterm_inside_c_code_still_reads_as_an_interrupt(monkeypatch, tmp_path):
    """Found by the kill runs: SIGTERM while matplotlib drew the final figures came back as a ValueError
    ("Invalid affine transformation matrix") and was reported as bad input (exit 2), not as the interrupt."""
    pytest.importorskip("torch", reason="the training command needs torch (the [train] extra)")
    import edgecalc.train.commands as commands
    import edgecalc.train.run as run_mod

    def interrupted_in_c(*args, **kwargs):
        commands._SIGNALLED.append(signal.SIGTERM)  # what the handler records before raising
        raise ValueError("Invalid affine transformation matrix")

    monkeypatch.setattr(commands, "_SIGNALLED", [])
    monkeypatch.setattr(commands, "sigterm_as_interrupt", lambda: None)  # keep pytest's own SIGTERM handling
    monkeypatch.setattr(run_mod, "resume_training", interrupted_in_c)
    (tmp_path / "config.json").write_text("{}")
    assert commands.train_cmd(tmp_path) == 130
