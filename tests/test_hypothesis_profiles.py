"""The hypothesis profiles of tests/conftest.py: CI's is reproducible, the long one is really random.

A profile registered without a parent inherits the loaded one, so "long" once silently inherited
"default"'s ``derandomize=True``: every long run replayed the same examples and ``--hypothesis-seed``
changed nothing. The settings are checked here, against the budgets docs/reliability.md states, and the
behaviour in a child pytest (the project's conftest beside a tiny property test that logs its draws):
seeded long runs replay and differ by seed, the default profile ignores the seed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO_ROOT

hypothesis = pytest.importorskip("hypothesis", reason="the fuzz profiles need hypothesis (the [dev] extra)")
settings = hypothesis.settings

RELIABILITY = REPO_ROOT / "docs" / "reliability.md"

DRAWS_TEST = '''
import os
from hypothesis import given, settings, strategies as st

@settings(max_examples=30)  # the loaded profile's other settings (derandomize, database) stay
@given(st.integers(0, 2 ** 62))
def test_draws(x):
    with open(os.environ["DRAWS_LOG"], "a") as fh:
        fh.write(f"{x}\\n")
'''


def doc_command(fragment: str) -> str:
    """The line of docs/reliability.md's command block that runs ``fragment``."""
    lines = [line for line in RELIABILITY.read_text(encoding="utf-8").splitlines()
             if line.startswith("python -m pytest tests/fuzz ") and fragment in line]
    assert len(lines) == 1, f"{RELIABILITY} has no single command line with {fragment!r}: {lines}"
    return lines[0]


def test_default_is_derandomised_with_the_documented_budget():
    default = settings.get_profile("default")
    assert default.derandomize is True and default.database is None and default.deadline is None
    assert f"derandomised, {default.max_examples} examples a test" in doc_command("# the fuzz suite")


def test_long_is_random_with_the_long_budget():
    long = settings.get_profile("long")
    assert long.derandomize is False and long.database is None and long.print_blob is True
    assert long.max_examples > settings.get_profile("default").max_examples
    long_line = doc_command("--hypothesis-profile long --hypothesis-show-statistics")
    assert f"{long.max_examples} a test, random seeds" in long_line
    assert long.suppress_health_check == settings.get_profile("default").suppress_health_check


def draws(tmp_path: Path, name: str, *options: str) -> list[int]:
    """The integers the tiny property test drew in a child pytest run with ``options``."""
    folder = tmp_path / "child"
    if not folder.is_dir():
        folder.mkdir()
        shutil.copy(Path(__file__).with_name("conftest.py"), folder / "conftest.py")
        (folder / "test_draws.py").write_text(DRAWS_TEST, encoding="utf-8")
    log = tmp_path / f"{name}.txt"
    env = {**os.environ, "DRAWS_LOG": str(log)}
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_draws.py", *options]
    res = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr
    return [int(v) for v in log.read_text().split()]


def test_a_seeded_long_run_replays_and_another_seed_draws_other_examples(tmp_path):
    first = draws(tmp_path, "long1", "--hypothesis-profile", "long", "--hypothesis-seed", "1")
    again = draws(tmp_path, "long1again", "--hypothesis-profile", "long", "--hypothesis-seed", "1")
    other = draws(tmp_path, "long2", "--hypothesis-profile", "long", "--hypothesis-seed", "2")
    assert len(first) == 30 and first == again
    assert other != first


def test_the_default_profile_ignores_the_seed(tmp_path):
    one = draws(tmp_path, "default1", "--hypothesis-seed", "1")
    two = draws(tmp_path, "default2", "--hypothesis-seed", "2")
    assert len(one) == 30 and one == two
