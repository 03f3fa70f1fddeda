"""The ``edgecalc`` package (edgecalc/cli/): the same commands in the same help panels as the one-file cli.py had,
choices taken from their tables and refused by the parser, and the one error path.

PANELS was read off the one-file ``edgecalc/cli.py`` (``grep rich_help_panel``) and its rendered
``edgecalc --help`` before the split; a command moved, renamed or dropped from a panel fails here.
"""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
import typer
from typer.testing import CliRunner

from edgecalc.cli import app, deploy
from edgecalc.cli.errors import run
from edgecalc.errors import CommandError
from edgecalc.export.choices import CALIB_METHODS, VIA_CHOICES
from edgecalc.model.config import PRESETS
from edgecalc.model.registry import NETWORKS
from edgecalc.runtime.commands import LOCATORS
from edgecalc.runtime.engine.formats import BACKEND_CHOICES, PRECISIONS
from edgecalc.runtime.live.modes import CROP_MODES, LOOP_MODES
from edgecalc.train.config import AUGMENTS, OPTIMIZERS, PRECISIONS as TRAIN_PRECISIONS, RECIPES, SCHEDULES, SEG_LOSSES

#: Panel -> its commands, in the order ``edgecalc --help`` listed them before the split (and
#: ``fit-verifier``, added to Train on 2026-12-08).
PANELS = {
    "Deploy": ["live", "recover", "demo", "bench", "export", "locate", "analyze"],
    "Train": ["train", "eval", "sweep", "compare", "fit-verifier"],
    "Set-up": ["doctor"],
    "Data and model": ["model", "data"],
}


def _help(*args: str) -> str:
    res = CliRunner().invoke(app, [*args, "--help"], env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    return res.output


def _panels(text: str) -> dict[str, list[str]]:
    """Panel title -> the command names in its rows (the first word of a row that starts in the name column)."""
    found: dict[str, list[str]] = {}
    current = None
    for line in text.splitlines():
        title = re.match(r"╭─ (.+?) ─", line)
        if title:
            current = title.group(1)
            found[current] = []
            continue
        row = re.match(r"│ (\S+)\s", line)
        if current is not None and row:
            found[current].append(row.group(1))
    return found


def test_top_level_help_lists_the_same_commands_in_the_same_panels():
    shown = _panels(_help())
    assert shown.pop("Options") == ["--help"]
    assert list(shown) == list(PANELS)  # the panels in the same order
    assert shown == PANELS


def test_every_group_still_lists_its_subcommands():
    assert _panels(_help("model"))["Commands"] == ["info"]
    assert _panels(_help("data"))["Commands"] == ["phantom", "import-dicom", "check"]


#: (command line before the option, option, the table its choices come from)
CHOICES = [
    (["live", "--source", "phantom"], "--backend", BACKEND_CHOICES),
    (["live", "--source", "phantom"], "--precision", PRECISIONS),
    (["live", "--source", "phantom"], "--crop", CROP_MODES),
    (["live", "--source", "phantom"], "--loop", tuple(LOOP_MODES)),
    (["demo"], "--backend", BACKEND_CHOICES),
    (["demo"], "--precision", PRECISIONS),
    (["analyze", "x.png"], "--backend", BACKEND_CHOICES),
    (["analyze", "x.png"], "--precision", PRECISIONS),
    (["analyze", "x.png"], "--locator", LOCATORS),
    (["locate", "x.png"], "--locator", LOCATORS),
    (["export"], "--precision", PRECISIONS),
    (["export"], "--calib-method", CALIB_METHODS),
    (["export"], "--via", VIA_CHOICES),
    (["model", "info"], "--preset", tuple(PRESETS)),
    (["model", "info"], "--network", tuple(NETWORKS)),
    (["train", "data"], "--recipe", tuple(RECIPES)),
    (["train", "data"], "--network", tuple(NETWORKS)),
    (["train", "data"], "--preset", tuple(PRESETS)),
    (["train", "data"], "--optimizer", OPTIMIZERS),
    (["train", "data"], "--schedule", SCHEDULES),
    (["train", "data"], "--seg-loss", SEG_LOSSES),
    (["train", "data"], "--augment", AUGMENTS),
    (["train", "data"], "--precision", TRAIN_PRECISIONS),
    (["sweep", "data"], "--optimizer", OPTIMIZERS),
    (["compare", "data"], "--seg-loss", SEG_LOSSES),
]


@pytest.mark.parametrize("args, option, table", CHOICES, ids=[f"{a[0]} {o}" for a, o, _ in CHOICES])
def test_a_value_outside_the_table_is_refused_by_the_parser_naming_the_allowed_ones(args, option, table):
    res = CliRunner().invoke(app, [*args, option, "not-a-choice"], env={"COLUMNS": "400"})
    assert res.exit_code == 2, res.output
    out = re.sub(r"[\s│╭╮╰╯─]+", " ", res.output)
    assert f"Invalid value for '{option}'" in out and "'not-a-choice' is not one of" in out, out
    assert all(f"'{value}'" in out for value in table), (table, out)


@pytest.mark.parametrize("args, option, table", CHOICES, ids=[f"{a[0]} {o}" for a, o, _ in CHOICES])
def test_help_lists_the_tables_choices(args, option, table):
    command = [a for a in args if not a.startswith(("-", "x.", "data", "phantom"))] or args[:1]
    row = next(line for line in _help(*command).splitlines() if re.match(rf"│ {re.escape(option)}\s", line))
    assert f"<{'|'.join(table)}>" in row, row


def test_a_valid_choice_reaches_the_body_as_the_plain_string(monkeypatch, tmp_path):
    seen = {}

    def body(console, **options):
        seen.update(options)
        return 0

    monkeypatch.setattr(deploy, "locate_command", body)
    res = CliRunner().invoke(app, ["locate", str(tmp_path), "--locator", "classical"])
    assert res.exit_code == 0, res.output
    assert seen["locator"] == "classical" and type(seen["locator"]) is str
    seen.clear()
    assert CliRunner().invoke(app, ["locate", str(tmp_path)]).exit_code == 0
    assert seen["locator"] == "learned"  # the default as before


def test_run_is_the_one_error_path(capsys):
    def bad(console, **options):
        raise CommandError("first [file].png is broken", "second", code=3)

    with pytest.raises(typer.Exit) as exc:
        run(bad)
    assert exc.value.exit_code == 3
    err = capsys.readouterr().err
    assert "error: first [file].png is broken" in err and "error: second" in err  # markup escaped, one line each


def test_run_exits_with_the_bodys_return_value():
    for returned, code in ((1, 1), (None, 0)):
        with pytest.raises(typer.Exit) as exc:
            run(lambda console: returned)
        assert exc.value.exit_code == code


@pytest.mark.parametrize("module", ["edgecalc", "edgecalc.cli"])
def test_python_dash_m_forms_still_run(module):
    """``python -m edgecalc`` (torchrun's form) and ``python -m edgecalc.cli`` (a background sweep was started
    that way) both answer with the whole command list."""
    res = subprocess.run([sys.executable, "-m", module, "--help"], capture_output=True, text=True, timeout=120,
                         env={"COLUMNS": "200", "PATH": ""})
    assert res.returncode == 0, res.stderr
    assert _panels(res.stdout) == {"Options": ["--help"], **PANELS}


@pytest.mark.parametrize("command, body", [("sweep", "sweep_command"), ("compare", "compare_command")])
def test_the_recipe_group_reaches_the_body_whole(monkeypatch, tmp_path, command, body):
    """sweep and compare take the recipe options as one group: every one arrives, given or defaulted."""
    import edgecalc.studies.commands as commands
    from edgecalc.cli.options import RECIPE_OPTION_NAMES
    from edgecalc.train.config import TRAIN_DEFAULTS

    seen = {}

    def fake(*args, **options):
        seen.update(options)
        return 7

    monkeypatch.setattr(commands, body, fake)
    res = CliRunner().invoke(app, [command, str(tmp_path), "--optimizer", "adam", "--seed", "3", "--size", "64"])
    assert res.exit_code == 7, res.output
    assert set(RECIPE_OPTION_NAMES) <= set(seen)
    assert (seen["optimizer"], seen["seed"], seen["size"]) == ("adam", 3, 64)
    assert seen["recipe"] == TRAIN_DEFAULTS["recipe"] and seen["schedule"] is None and seen["progress"] is True
