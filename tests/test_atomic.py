"""Atomic writes: the temporary file a killed writer leaves is recognised and removed, nothing else."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from edgecalc.atomic import atomic_write_text, remove_stale_temps


def test_a_killed_writer_leaves_a_temp_that_remove_stale_temps_takes_away(tmp_path):
    # a real SIGKILL between the temporary file's creation and its rename
    code = ("import os, signal, sys; from edgecalc.atomic import atomic_write; "
            "atomic_write(sys.argv[1], lambda p: (p.write_text('half'), os.kill(os.getpid(), signal.SIGKILL)))")
    target = tmp_path / "eval" / "attention.png"
    proc = subprocess.run([sys.executable, "-c", code, str(target)], capture_output=True)
    assert proc.returncode == -signal.SIGKILL
    left = [p.name for p in target.parent.iterdir()]
    assert not target.exists() and len(left) == 1 and left[0].startswith(".attention.png.") and left[0].endswith(".tmp.png")
    keep = [tmp_path / "eval" / ".hidden", tmp_path / "notes.tmp.txt", tmp_path / ".config.json"]
    for p in keep:
        p.write_text("mine")
    atomic_write_text(tmp_path / "config.json", "{}")
    removed = remove_stale_temps(tmp_path)
    assert [p.name for p in removed] == left
    assert all(p.exists() for p in keep) and (tmp_path / "config.json").read_text() == "{}"
    assert remove_stale_temps(tmp_path) == []
    assert os.listdir(target.parent) == [".hidden"]
