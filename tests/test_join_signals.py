"""SIGTERM and Ctrl-C during the join of a recording's segments wait until the join and the clean-up are done.

In-process and exact: the signal is raised from inside the join (a wrapped ``join_segments``) or from
the segment checks before it. The real CLI SIGTERMed at random moments is tests/test_fault_injection.py.
"""

from __future__ import annotations

import io
import os
import signal

import pytest

from edgecalc.runtime.live import recorder as recorder_mod
from edgecalc.runtime.live import recover as recover_mod
from edgecalc.runtime.live.recover import RecoveryInterrupted, interrupted_lines, recover_command, recover_recording
from edgecalc.runtime.live.video_segments import segments_dir, signals_held
from test_recorder import decoded, levels, record
from test_recover import killed_recording


@pytest.fixture(autouse=True)
def ctrl_c_raises_keyboard_interrupt():
    """Python's own SIGINT handler for each test. A process started in the background by a shell without job
    control (``pytest &``, ``nohup``, some CI runners) inherits SIGINT ignored, and Python then installs no
    handler: a raised SIGINT would vanish, and these tests would read that as the hold swallowing it."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def snapshot(folder) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def signalling_join(monkeypatch, module, signum: int) -> None:
    """``module.join_segments`` raises ``signum`` at this process, then joins."""
    real = module.join_segments

    def join(*args, **kwargs):
        signal.raise_signal(signum)
        return real(*args, **kwargs)

    monkeypatch.setattr(module, "join_segments", join)


def test_a_signal_inside_the_block_is_held_then_delivered_once_to_the_handler_before(monkeypatch):
    seen: list[int] = []
    previous = signal.signal(signal.SIGTERM, lambda signum, _frame: seen.append(signum))
    try:
        with signals_held() as arrived:
            os.kill(os.getpid(), signal.SIGTERM)
            os.kill(os.getpid(), signal.SIGTERM)
            assert seen == [] and arrived == [signal.SIGTERM, signal.SIGTERM]
        assert seen == [signal.SIGTERM]
        assert signal.getsignal(signal.SIGTERM) is not None and signal.getsignal(signal.SIGTERM) != signal.SIG_DFL
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_ctrl_c_during_the_join_of_recover_lets_it_finish_and_reports_what_was_done(tmp_path, monkeypatch):
    video, _ = killed_recording(tmp_path, 10)  # 4 + 4 closed, 2 open
    signalling_join(monkeypatch, recover_mod, signal.SIGINT)
    with pytest.raises(RecoveryInterrupted) as info:
        recover_recording(video)
    rec = info.value.recovery
    assert rec.joined and rec.folder_removed and not segments_dir(video).exists()
    assert levels(decoded(video)) == list(range(8))
    assert [p.name for p in video.parent.iterdir() if p.name.startswith(".")] == []  # no join temp left
    assert interrupted_lines(rec)[-1] == "interrupted once the join had begun: the join and the clean-up were finished first"


def test_an_interrupt_while_the_segments_are_checked_changes_nothing(tmp_path):
    video, _ = killed_recording(tmp_path, 10)
    before = snapshot(segments_dir(video))

    def progress(done: int, total: int) -> None:
        if done == 1:
            signal.raise_signal(signal.SIGINT)

    with pytest.raises(RecoveryInterrupted) as info:
        recover_recording(video, progress=progress)
    assert not info.value.recovery.joined and not video.exists() and snapshot(segments_dir(video)) == before
    (line,) = interrupted_lines(info.value.recovery)
    assert line.startswith("interrupted before the join: nothing was changed")


def test_sigterm_during_the_join_of_the_recover_command_exits_130_after_the_join(tmp_path, monkeypatch):
    from rich.console import Console

    video, _ = killed_recording(tmp_path, 10)
    signalling_join(monkeypatch, recover_mod, signal.SIGTERM)
    before = signal.getsignal(signal.SIGTERM)
    out = io.StringIO()
    assert recover_command(Console(file=out, width=400), video, False) == 130
    text = " ".join(out.getvalue().split())
    assert "kept 2 segment(s), 8 frames" in text and "the join and the clean-up were finished first" in text, text
    assert levels(decoded(video)) == list(range(8)) and not segments_dir(video).exists()
    assert signal.getsignal(signal.SIGTERM) == before  # the command's SIGTERM handler is gone again


def test_ctrl_c_during_the_clean_stop_join_is_raised_once_the_file_is_whole(tmp_path, monkeypatch):
    rec, video, _ = record(tmp_path, 10)
    signalling_join(monkeypatch, recorder_mod, signal.SIGINT)
    with pytest.raises(KeyboardInterrupt):
        rec.close()
    assert levels(decoded(video)) == list(range(10)) and not segments_dir(video).exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_sigterm_while_the_report_is_printed_prints_it_whole_and_exits_130(tmp_path, monkeypatch):
    from rich.console import Console

    video, _ = killed_recording(tmp_path, 10)
    real = recover_mod.recovery_lines

    def lines(rec):
        signal.raise_signal(signal.SIGTERM)
        return real(rec)

    monkeypatch.setattr(recover_mod, "recovery_lines", lines)
    out = io.StringIO()
    assert recover_command(Console(file=out, width=400), video, False) == 130
    text = " ".join(out.getvalue().split())
    assert "kept 2 segment(s), 8 frames" in text and f"removed {segments_dir(video)}" in text, text
