"""The Train panel (train, eval, sweep, compare) on the one error path: bad input exits 2 with one
``error: MESSAGE`` line on stderr that names the file or option, brackets printed as typed (rich markup
would eat ``[red]``), and nothing on stdout but progress lines. A diverged training exits 3 the same way;
an interrupt exits 130 with the resume hint on stdout.

Every input here fails before any training step (the folders are empty or missing; a diverged or
interrupted run is a patched body), so each test takes the CLI's start-up time only.
"""

from __future__ import annotations

import re
import signal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from edgecalc.cli import app

#: The lines the Train panel's bodies print before they find bad input: where the run goes, nothing else.
PROGRESS = re.compile(r"^(run folder |resuming |shipped weights |p = [\d.]+, fold \d+: training into )")


@pytest.fixture(autouse=True)
def keep_sigterm():
    """The bodies treat SIGTERM as Ctrl-C (they install a handler): give pytest its own back."""
    previous = signal.getsignal(signal.SIGTERM)
    yield
    signal.signal(signal.SIGTERM, previous)


@pytest.fixture()
def folders(tmp_path: Path) -> dict[str, Path]:
    """A missing folder, an empty one (not a data set), and an empty one whose name holds rich markup."""
    found = {"missing": tmp_path / "missing", "empty": tmp_path / "empty", "odd": tmp_path / "odd[red]data"}
    found["empty"].mkdir()
    found["odd"].mkdir()
    return found


def invoke(*args: str):
    return CliRunner().invoke(app, [str(a) for a in args], env={"COLUMNS": "400"})


def the_error(res, code: int = 2) -> str:
    """The one ``error:`` line (its continuation lines, a data set's problems, follow it), after the contract:
    exit ``code``, no traceback, nothing on stdout but progress."""
    assert res.exit_code == code, (res.exit_code, res.stdout, res.stderr)
    assert "Traceback" not in res.stdout + res.stderr, res.stderr
    errors = [line for line in res.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, res.stderr
    assert res.stderr.startswith("error: "), res.stderr  # nothing printed before it on stderr
    assert all(PROGRESS.match(line) for line in res.stdout.splitlines() if line.strip()), res.stdout
    return res.stderr[len("error: "):]


# (command line with {missing}/{empty}/{odd} folders and {tmp} for outputs, what the error must name). The
# comma lists (--fractions, --methods, --fold-ids) are refused by the parser instead: tests/test_cli_lists.py.
BAD_INPUT = {
    "train missing folder": (["train", "{missing}", "--out", "{tmp}/run"], ["{missing}", "not a folder"]),
    "train not a data set": (["train", "{empty}", "--out", "{tmp}/run"], ["{empty}/labels.csv", "missing"]),
    "train markup in the path": (["train", "{odd}", "--out", "{tmp}/run[red]"], ["{odd}/labels.csv"]),
    "train neither DATA nor --resume": (["train"], ["DATA", "--resume RUN_DIR"]),
    "train --resume not a run": (["train", "--resume", "{odd}"], ["{odd}/config.json not found"]),
    "eval missing run folder": (["eval", "{missing}"], ["{missing}/final.safetensors not found"]),
    "eval markup in the path": (["eval", "{odd}"], ["{odd}/final.safetensors not found"]),
    "eval shipped weights without --data": (["eval"], ["--data"]),
    "eval shipped weights on not a data set": (["eval", "phantom", "--data", "{odd}", "--out", "{tmp}/ev"],
                                               ["{odd}/labels.csv", "missing"]),
    "sweep markup in the path": (["sweep", "{odd}", "--fractions", "0.5", "--out", "{tmp}/s[red]"], ["{odd}/labels.csv"]),
    "compare missing folder": (["compare", "{missing}", "--out", "{tmp}/c"], ["{missing}"]),
    "compare markup in the path": (["compare", "{odd}", "--out", "{tmp}/c"], ["{odd}/labels.csv"]),
}


@pytest.mark.parametrize("case", list(BAD_INPUT))
def test_bad_input_exits_2_with_one_error_line_naming_it(case, folders, tmp_path):
    args, names = BAD_INPUT[case]
    fill = {**{k: str(v) for k, v in folders.items()}, "tmp": str(tmp_path)}
    res = invoke(*(a.format(**fill) for a in args))
    message = the_error(res)
    for name in names:
        assert name.format(**fill) in message, (name, message)
    if "markup" in case:
        assert "[red]" in message  # printed as typed, not taken for a colour
    assert not (tmp_path / "ev").exists() and not (tmp_path / "c").exists()  # refused before writing results


def test_a_diverged_training_exits_3_on_the_error_path(monkeypatch, tmp_path):
    import edgecalc.train.run as run_mod
    from edgecalc.train.stage import TrainingDiverged

    def diverged(*args, **kwargs):
        raise TrainingDiverged("stage 1 epoch 0 step 3: loss is nan in [red]run")

    monkeypatch.setattr(run_mod, "_run", diverged)
    message = the_error(invoke("train", tmp_path / "data", "--out", tmp_path / "run"), code=3)
    assert message.strip() == "stage 1 epoch 0 step 3: loss is nan in [red]run"


@pytest.mark.parametrize("command", ["sweep", "compare"])
def test_a_diverged_run_in_a_sweep_or_comparison_exits_3(monkeypatch, tmp_path, command):
    import edgecalc.studies.compare as compare_mod
    import edgecalc.studies.sweep as sweep_mod
    from edgecalc.train.stage import TrainingDiverged

    def diverged(*args, **kwargs):
        raise TrainingDiverged("stage 2 epoch 1 step 9: loss is inf")

    monkeypatch.setattr(sweep_mod if command == "sweep" else compare_mod,
                        "run_sweep" if command == "sweep" else "run_compare", diverged)
    message = the_error(invoke(command, tmp_path, "--out", tmp_path / "out"), code=3)
    assert "stage 2 epoch 1 step 9: loss is inf" in message


@pytest.mark.parametrize("signalled", [False, True], ids=["ctrl-c", "sigterm-inside-c-code"])
def test_an_interrupted_sweep_exits_130_with_the_resume_hint(monkeypatch, tmp_path, signalled):
    """Ctrl-C, or SIGTERM whose KeyboardInterrupt came back out of C code (a figure being drawn) as another
    exception: both are the interrupt, not bad input; the hint names the sweep folder as typed."""
    import edgecalc.studies.sweep as sweep_mod
    import edgecalc.train.commands as train_commands

    monkeypatch.setattr(train_commands, "_SIGNALLED", [])

    def interrupted(*args, **kwargs):
        if not signalled:
            raise KeyboardInterrupt
        train_commands._SIGNALLED.append(signal.SIGTERM)  # what the handler records before it raises
        raise ValueError("Invalid affine transformation matrix")

    monkeypatch.setattr(sweep_mod, "run_sweep", interrupted)
    out = tmp_path / "sweep[red]"
    res = invoke("sweep", tmp_path, "--out", out)
    assert res.exit_code == 130, (res.stdout, res.stderr)
    assert "error" not in res.stderr
    assert f"run the same command again to resume the sweep in {out}" in res.stdout


def test_an_earlier_signal_does_not_turn_a_later_commands_error_into_an_interrupt(monkeypatch, folders, tmp_path):
    """A SIGTERM recorded by an earlier command in the same process (a test run, a notebook) is not this one's."""
    import edgecalc.train.commands as train_commands

    monkeypatch.setattr(train_commands, "_SIGNALLED", [signal.SIGTERM])
    the_error(invoke("train", folders["empty"], "--out", tmp_path / "run"))
