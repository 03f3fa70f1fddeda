"""Run the real ``edgecalc`` CLI in a subprocess and kill it at a chosen moment, or starve it of disk.

Used by ``tests/test_fault_injection.py``. ``run_and_kill`` starts the command, waits until a
``started`` condition holds (e.g. the run folder exists: killing during Python's imports proves
nothing), sleeps a seeded-random delay, then sends the signal; ``run_cli`` runs to the end, with an
optional file-size limit (``RLIMIT_FSIZE``, SIGXFSZ ignored so that a write past it fails with
EFBIG, as on a full disk). Kill moments come from ``kill_delays(seed, n, span)``: reproducible.
"""

from __future__ import annotations

import os
import random
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

#: The CLI as a user runs it (the console script's entry point), with this interpreter.
CLI = [sys.executable, "-c", "import sys; from edgecalc.cli import main; sys.argv[0] = 'edgecalc'; main()"]


@dataclass
class Outcome:
    """How one run ended: its exit status (negative: killed by that signal), output, and when the signal went."""

    returncode: int
    stdout: str
    stderr: str
    signalled_after_s: float | None

    @property
    def output(self) -> str:
        return " ".join((self.stdout + "\n" + self.stderr).split())


def kill_delays(seed: int, n: int, span: float, low: float = 0.0) -> list[float]:
    """``n`` reproducible kill moments in ``[low, span)`` seconds (sorted, so the trials sweep the run)."""
    rng = random.Random(seed)
    return sorted(round(low + rng.random() * (span - low), 3) for _ in range(n))


def _env(extra: dict[str, str] | None) -> dict[str, str]:
    env = dict(os.environ)
    env.update({"PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1", "COLUMNS": "200", "NO_COLOR": "1"})
    env.update(extra or {})
    return env


def _limits(fsize: int | None) -> Callable[[], None] | None:
    if fsize is None:
        return None

    def apply() -> None:  # runs in the child between fork and exec
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead of killing
        resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))

    return apply


def run_cli(args: Sequence[str], *, cwd: Path, timeout: float = 240.0, fsize: int | None = None,
            env: dict[str, str] | None = None) -> Outcome:
    """Run ``edgecalc ARGS`` to its end (``fsize``: the largest file it may write, in bytes)."""
    # errors="replace": FFmpeg's warnings on a damaged stream may carry raw bytes
    res = subprocess.run([*CLI, *map(str, args)], cwd=cwd, capture_output=True, text=True, errors="replace",
                         timeout=timeout, env=_env(env), preexec_fn=_limits(fsize))
    return Outcome(res.returncode, res.stdout, res.stderr, None)


def run_and_kill(args: Sequence[str], *, cwd: Path, sig: int, delay: float, started: Callable[[], bool],
                 timeout: float = 240.0, env: dict[str, str] | None = None, poll: float = 0.02,
                 program: Sequence[str] = CLI) -> Outcome:
    """Start ``edgecalc ARGS``; once ``started()`` holds, wait ``delay`` s and send ``sig``; collect the end.

    The process may finish before the signal (the delay overshot the work left): ``signalled_after_s``
    is None then and the caller checks a completed run instead. ``program``: another command line to
    start with ARGS (a child that drives one writer as the CLI does, where the CLI takes too long to get there).
    """
    proc = subprocess.Popen([*program, *map(str, args)], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, errors="replace", env=_env(env))
    t0 = time.monotonic()
    sent: float | None = None
    try:
        while not started():
            if proc.poll() is not None or time.monotonic() - t0 > timeout:
                break
            time.sleep(poll)
        t_ready = time.monotonic()
        while proc.poll() is None and time.monotonic() - t_ready < delay:
            time.sleep(min(poll, delay))
        if proc.poll() is None:
            proc.send_signal(sig)
            sent = round(time.monotonic() - t_ready, 3)
        out, err = proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    if sig == signal.SIGKILL and proc.returncode != -signal.SIGKILL:
        sent = None  # it exited between the last poll and the kill: the signal reached a finished process
    outcome = Outcome(proc.returncode, out, err, sent)
    _record(args, sig, delay, outcome)
    return outcome


def _record(args: Sequence[str], sig: int, delay: float, outcome: Outcome) -> None:
    """Append the trial to ``$EDGECALC_FAULT_LOG`` (JSON lines), where docs/reliability.md's counts come from."""
    path = os.environ.get("EDGECALC_FAULT_LOG")
    if path:
        import json

        with open(path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps({"command": " ".join(map(str, args[:2])), "signal": signal.Signals(sig).name,
                                 "delay_s": delay, "signalled_after_s": outcome.signalled_after_s,
                                 "returncode": outcome.returncode}) + "\n")


def note(**fields: object) -> None:
    """Append what a test measured after a trial (e.g. the segments a SIGKILL left) to ``$EDGECALC_FAULT_LOG``."""
    path = os.environ.get("EDGECALC_FAULT_LOG")
    if path:
        import json

        with open(path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(fields) + "\n")


def leftovers(folder: Path, name: str) -> list[str]:
    """Hidden staging files or folders a writer left beside ``folder/name`` (``.name.*``)."""
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(f".{name}."))
