"""``edgecalc recover OUT.mp4``: finish a recording that a SIGKILL or a power loss left as segments.

A clean stop of ``live --record`` joins ``OUT.mp4.segments/`` into OUT.mp4 and removes the folder; a
kill leaves the folder, its index and no OUT.mp4 (or, killed during the join, a hidden temporary file
beside it). Recovery does what the clean stop had left to do, trusting nothing: each segment the index
lists must decode to the frames it says, the open segment (not in the index: a kill leaves it
unfinished) is only reported, and the good segments are joined with the recorder's own lossless join.
The folder is removed only when every listed segment went into OUT, so nothing that could still be
used is destroyed; a second run finds nothing to do (or refuses to replace the OUT it made).
SIGTERM stops it as Ctrl-C does (exit 130, saying how far it got); from the join to the folder's removal
both wait until that is done (`signals_held`), so an interrupt leaves the folder as it was or the job
finished, never in between. Torch-free, like the rest of the runtime. Run it only once the recording
process is gone.
"""

from __future__ import annotations

import shutil
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgecalc.atomic import remove_stale_temps, remove_stale_temps_of
from edgecalc.errors import CommandError
from edgecalc.runtime.live.video_segments import (
    INDEX_NAME,
    SegmentIndexError,
    decoded_frames,
    join_segments,
    read_index,
    segments_dir,
    signals_held,
)


class RecoveryRefused(Exception):
    """Recovery would destroy or invent something: the message names the file and the reason."""


class RecoveryInterrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM stopped ``recover``; ``recovery`` says how far it got (``joined``: the join had begun,
    so it was finished first, with the folder's removal)."""

    def __init__(self, recovery: Recovery) -> None:
        super().__init__(f"interrupted while recovering {recovery.video}")
        self.recovery = recovery


@dataclass
class Segment:
    """One segment the index lists, and what checking it found (``problem`` None: it plays as indexed)."""

    file: str
    first_frame: int
    frames: int
    problem: str | None = None


@dataclass
class Recovery:
    """What ``recover`` found and did; ``joined`` False = nothing to do (already joined)."""

    video: Path
    fps: float = 0.0
    segments: list[Segment] = field(default_factory=list)
    open_segment: str | None = None  # the index's open segment, when it is on disk
    open_decodable: int = 0  # frames of it that decode (a killed writer's file: usually none)
    logged_after: int | None = None  # frames the log beside OUT records after the last closed segment
    temps_removed: list[Path] = field(default_factory=list)
    joined: bool = False
    folder_removed: bool = False
    replaced: int | None = None  # frames of the OUT that --force replaced

    @property
    def kept(self) -> list[Segment]:
        return [s for s in self.segments if s.problem is None]

    @property
    def lost(self) -> list[Segment]:
        return [s for s in self.segments if s.problem is not None]

    def seconds(self, frames: int) -> float:
        return frames / self.fps if self.fps else 0.0


def recover_recording(video: Path, force: bool = False,
                      progress: Callable[[int, int], None] | None = None) -> Recovery:
    """Check the segments of ``video`` against their index and join the good ones into ``video``.

    ``progress(done, total)`` after each segment checked. RecoveryRefused when there is no index, the
    index is not one, no listed segment plays, or ``video`` exists (unless ``force``; never replaced by a
    file holding fewer frames). OSError naming ``video`` when the join fails (a full disk).
    RecoveryInterrupted (a KeyboardInterrupt) on Ctrl-C, or SIGTERM where it raises one, with what was done.
    """
    rec = Recovery(Path(video))
    try:
        _recover(rec, force, progress)
    except KeyboardInterrupt as exc:
        raise RecoveryInterrupted(rec) from exc
    return rec


def _recover(rec: Recovery, force: bool, progress: Callable[[int, int], None] | None) -> None:
    """`recover_recording`'s work, recorded in ``rec`` as it goes (an interrupt reports what was done)."""
    video = rec.video
    folder = segments_dir(video)
    if not folder.is_dir():
        if video.is_file():
            return  # joined already (a clean stop, or an earlier recover)
        raise RecoveryRefused(f"no recording to recover at {video}: neither it nor {folder} exists")
    try:
        index = read_index(folder, video.suffix)
    except SegmentIndexError as exc:
        raise RecoveryRefused(f"{exc}; {_no_index_hint(video, folder)}") from None
    rec.fps = float(index["fps"])
    entries = index["segments"]
    for k, entry in enumerate(entries):
        seg = Segment(entry["file"], entry["first_frame"], entry["frames"])
        path = folder / seg.file
        if not path.is_file():
            seg.problem = "missing"
        else:
            held = decoded_frames(path)
            if held != seg.frames:
                seg.problem = f"decodes to {held} of its {seg.frames} frames"
        rec.segments.append(seg)
        if progress is not None:
            progress(k + 1, len(entries))
    if index.get("open") and (folder / index["open"]).is_file():
        rec.open_segment = index["open"]
        rec.open_decodable = decoded_frames(folder / index["open"])
    rec.logged_after = _logged_after(video, index)
    kept = rec.kept
    if not entries:
        raise RecoveryRefused(f"{folder / INDEX_NAME} lists no closed segment: the recording was killed within its "
                              f"first one, which a kill leaves unplayable; nothing to join (remove {folder})")
    if not kept:
        raise RecoveryRefused(f"{folder / INDEX_NAME} lists {len(entries)} segment(s) and none plays as indexed"
                              + (": " + "; ".join(f"{s.file} {s.problem}" for s in rec.lost) if rec.lost else "")
                              + "; nothing to join")
    frames = sum(s.frames for s in kept)
    if video.exists():
        held = decoded_frames(video)
        if not force:
            raise RecoveryRefused(f"{video} exists ({held} frames decode; the index lists {_total(rec)}"
                                  + (": a join finished before the kill" if held == _total(rec) else "")
                                  + f"); recover would replace it: check it, then remove {folder}, or pass --force")
        if held > frames:
            raise RecoveryRefused(f"{video} exists with {held} frames; --force would replace it with the {frames} "
                                  f"frames its segments still hold; move it away first if that is what you want")
        rec.replaced = held
    size = (int(index["size"][0]), int(index["size"][1]))
    with signals_held():  # from here to the folder's removal an interrupt waits: all of it is done, or none
        rec.temps_removed = remove_stale_temps_of(video)  # a join killed before its rename
        try:
            join_segments([folder / s.file for s in kept], video, rec.fps, size, frames)
        except OSError as exc:  # a full disk, a read-only folder: the segments are as they were
            raise OSError(f"cannot join the segments into {video}: {exc}; {folder} is unchanged") from exc
        rec.joined = True
        if rec.lost:
            rec.temps_removed += remove_stale_temps(folder)  # the folder stays: what could not be joined is kept
            return
        try:
            shutil.rmtree(folder)
        except OSError as exc:
            raise OSError(f"{video} holds the {frames} frames joined, but {folder} could not be removed ({exc}): "
                          "remove it") from exc
        rec.folder_removed = True


def _total(rec: Recovery) -> int:
    return sum(s.frames for s in rec.segments)


def _no_index_hint(video: Path, folder: Path) -> str:
    if video.is_file():
        return (f"{video} exists: a join finished and the removal of {folder} was cut short; check {video.name} "
                f"plays, then remove the folder")
    if not any(folder.iterdir()):
        return f"{folder} is empty (a recording killed before its first frame): remove it"
    return f"the segments in {folder} cannot be told apart from other files without it; nothing was changed"


def _logged_after(video: Path, index: dict[str, Any]) -> int | None:
    """Lines of the run's log (looked for beside ``video``) after those of the last closed segment, when
    the log is there and agrees with the index (else None: the loss of the open segment is unknown)."""
    segments = index["segments"]  # read_index checked log_lines and the log's name
    if not index.get("log") or not segments or segments[-1].get("log_lines") is None:
        return None
    end = segments[-1]["log_lines"][1]
    try:
        lines = (video.parent / index["log"]).read_bytes().count(b"\n")
    except OSError:
        return None
    return lines - end if lines >= end else None


def recover_command(console: Any, video: Path, force: bool) -> int:
    """The body of ``edgecalc recover``: recover, then print what was kept and lost (frames, seconds)."""
    from rich.markup import escape
    from rich.progress import Progress

    rec: Recovery | None = None
    interrupted = False
    with _sigterm_interrupts():
        try:
            with Progress(console=console, transient=True) as bar:
                task = bar.add_task("checking segments", total=None)
                rec = recover_recording(video, force,
                                        lambda done, total: bar.update(task, completed=done, total=total))
        except RecoveryRefused as exc:
            raise CommandError(str(exc)) from exc
        except OSError as exc:  # the join (a full disk, a read-only folder) or the folder's removal, named
            raise CommandError(str(exc)) from exc
        except RecoveryInterrupted as exc:
            rec, interrupted = exc.recovery, True
        except KeyboardInterrupt:  # as the progress bar started or ended, outside the recovery's own steps
            interrupted = True
        rec = rec or Recovery(Path(video))
        with signals_held(deliver=False) as arrived:  # the report is printed whole; a signal now sets the code
            for line in interrupted_lines(rec) if interrupted else recovery_lines(rec):
                console.print(escape(line), soft_wrap=True)
    return 130 if interrupted or arrived else 0


@contextmanager
def _sigterm_interrupts() -> Iterator[None]:
    """SIGTERM raises KeyboardInterrupt while ``recover`` runs, as Ctrl-C does: it stops with its report
    (`interrupted_lines`), not silently with a temporary file left behind."""
    def interrupt(signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    try:
        previous = signal.signal(signal.SIGTERM, interrupt)
    except ValueError:  # not the main thread: the signal is not ours to handle
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)


def interrupted_lines(rec: Recovery) -> list[str]:
    """What an interrupted ``recover`` leaves: nothing changed (before the join), or the finished job's report."""
    folder = segments_dir(rec.video)
    if not rec.joined:
        return [f"interrupted before the join: nothing was changed ({folder} is as it was); run "
                f"`edgecalc recover {rec.video}` again"]
    return [*recovery_lines(rec), "interrupted once the join had begun: the join and the clean-up were finished first"]


def recovery_lines(rec: Recovery) -> list[str]:
    """The report: what went into the file, what was lost and why, what was cleaned up."""
    if not rec.joined:
        return [f"nothing to recover: {rec.video} is there and {segments_dir(rec.video)} is not (already joined)"]
    kept = sum(s.frames for s in rec.kept)
    lines = [f"kept {len(rec.kept)} segment(s), {kept} frames ({rec.seconds(kept):.2f} s at {rec.fps:g} fps) -> "
             f"{rec.video}" + (f" (replaced a file of {rec.replaced} frames)" if rec.replaced is not None else "")]
    for s in rec.lost:
        last = s.first_frame + s.frames - 1
        lines.append(f"lost {s.file}: {s.problem}; frames {s.first_frame}-{last} ({s.frames}, "
                     f"{rec.seconds(s.frames):.2f} s) are not in {rec.video.name}")
    if rec.open_segment is not None:
        lines.append(f"ignored {rec.open_segment}: the segment being written when the recording was killed (not in "
                     f"the index; {rec.open_decodable} frames of it decode)")
    if rec.logged_after is not None:
        lines.append(f"the log records {rec.logged_after} frames after the last closed segment "
                     f"({rec.seconds(rec.logged_after):.2f} s): lost with the open segment")
    elif rec.open_segment is not None:
        lines.append("how many frames the open segment held is unknown (no log beside the video)")
    for p in rec.temps_removed:
        lines.append(f"removed {p} (a temporary file of a join or index write that was killed)")
    folder = segments_dir(rec.video)
    lines.append(f"removed {folder}" if rec.folder_removed else
                 f"kept {folder}: it holds what could not be joined (move it away before recording to "
                 f"{rec.video.name} again)")
    return lines
