"""The comma-separated options (compare --methods, bench --backends / --batch, sweep --fractions, --fold-ids)
parsed once, in edgecalc/cli/options.py: a bad item, an empty item or one given twice is refused by the parser
(exit 2, ``Invalid value for '--OPTION': ...`` naming the allowed values where there is a table) before the
command's body runs; good values reach the body as the right tuple.

The bodies are replaced by a recorder, so each case costs the CLI's start-up only.
"""

from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

from edgecalc.cli import app, deploy
from edgecalc.cli.options import Items, comma_list, integer
from edgecalc.studies.compare import DEFAULT_METHODS, METHODS
from edgecalc.runtime.engine.formats import BENCH_BACKENDS

BODIES = {"sweep": "sweep_command", "compare": "compare_command"}


@pytest.fixture()
def calls(monkeypatch) -> list[dict]:
    """Every body call's arguments (positional ones by name), the body doing nothing."""
    import edgecalc.studies.commands as study_commands

    seen: list[dict] = []
    names = {"sweep_command": ("data", "fractions", "folds", "fold_ids", "out"),
             "compare_command": ("data", "methods", "folds", "fold_ids", "out")}

    def recorder(name):
        def body(*args, **options):
            seen.append({**dict(zip(names.get(name, ()), args)), **options})
            return 0
        return body

    for name in BODIES.values():
        monkeypatch.setattr(study_commands, name, recorder(name))
    monkeypatch.setattr(deploy, "bench_command", recorder("bench_command"))
    return seen


def invoke(*args: str):
    return CliRunner().invoke(app, list(args), env={"COLUMNS": "2000"})


def refusal(res) -> str:
    """The parser's refusal, its panel's frame taken out: exit 2, one message."""
    assert res.exit_code == 2, (res.exit_code, res.output)
    assert "Traceback" not in res.output
    return re.sub(r"[\s│╭╮╰╯─]+", " ", res.output)


COMMAND = {"--methods": ["compare", "data"], "--backends": ["bench"], "--batch": ["bench"],
           "--fractions": ["sweep", "data"], "--fold-ids": ["sweep", "data"]}

# (option, value, what the refusal must say after "Invalid value for '--option': ")
BAD = [
    ("--methods", "labels-only,foo", "'foo' is not one of " + ", ".join(f"'{m}'" for m in METHODS) + "."),
    ("--methods", "two-stage,[red]bogus", "'[red]bogus' is not one of"),  # printed as typed, not taken for markup
    ("--backends", "onnxruntime,cuda", "'cuda' is not one of " + ", ".join(f"'{b}'" for b in BENCH_BACKENDS) + "."),
    ("--batch", "1,x", "'x' is not an integer"),
    ("--batch", "4,0", "'0' is below 1"),
    ("--batch", "1.5", "'1.5' is not an integer"),
    ("--fractions", "0.5,2", "'2' is not in (0, 1]"),
    ("--fractions", "0", "'0' is not in (0, 1]"),
    ("--fractions", "a,b", "'a' is not a number"),
    ("--fractions", "nan", "'nan' is not in (0, 1]"),
    ("--fold-ids", "x", "'x' is not an integer"),
    ("--fold-ids", "-1", "'-1' is below 0"),
]
# every list option: an empty item, an empty list, an item given twice
for _option, _good in (("--methods", "brightness"), ("--backends", "onnxruntime"), ("--batch", "4"),
                       ("--fractions", "0.5"), ("--fold-ids", "1")):
    BAD += [(_option, f"{_good},,{_good}", f"an empty item in '{_good},,{_good}'"),
            (_option, f"{_good},", f"an empty item in '{_good},'"),
            (_option, "", "needs at least one item"),
            (_option, f"{_good},{_good}", f"'{_good}' is given twice in '{_good},{_good}'")]
BAD += [("--fractions", "0.5,0.50", "'0.50' is given twice"), ("--batch", "4, 04", "'04' is given twice")]


@pytest.mark.parametrize("option, value, reason", BAD, ids=[f"{o} {v!r}" for o, v, _ in BAD])
def test_a_bad_list_is_refused_by_the_parser_before_the_body(calls, option, value, reason):
    out = refusal(invoke(*COMMAND[option], option, value))
    assert f"Invalid value for '{option}': {reason}" in out, out
    assert not calls, "the body ran"


@pytest.mark.parametrize("order", ["--fold-ids first", "--folds first"])
@pytest.mark.parametrize("command", ["sweep", "compare"])
def test_a_fold_outside_folds_is_refused_before_the_body(calls, command, order):
    pair = [["--fold-ids", "0,3,4"], ["--folds", "3"]]
    args = pair[0] + pair[1] if order == "--fold-ids first" else pair[1] + pair[0]
    out = refusal(invoke(command, "data", *args))
    assert "Invalid value for '--fold-ids': 3, 4 outside 0..2 (--folds 3)" in out, out
    assert not calls


# (command line, what the body receives: name -> value, its type too)
GOOD = [
    (["compare", "data", "--methods", "brightness,labels-only"], {"methods": ("brightness", "labels-only")}),
    (["compare", "data"], {"methods": tuple(DEFAULT_METHODS), "fold_ids": (0, 1, 2, 3, 4)}),
    (["compare", "data", "--folds", "3", "--fold-ids", "2,0"], {"fold_ids": (2, 0), "folds": 3}),
    (["bench", "--backends", "onnxruntime"], {"backends": ("onnxruntime",), "batch": (1, 4)}),
    (["bench"], {"backends": tuple(BENCH_BACKENDS)}),
    (["bench", "--batch", " 8, 1 "], {"batch": (8, 1)}),
    (["sweep", "data", "--fractions", "0.1,1.0"], {"fractions": (0.1, 1.0), "fold_ids": (0, 1, 2, 3, 4)}),
    (["sweep", "data"], {"fractions": (0.1, 0.3, 0.5, 1.0)}),
    (["sweep", "data", "--fold-ids", "4", "--folds", "5"], {"fold_ids": (4,)}),
]


@pytest.mark.parametrize("args, expected", GOOD, ids=[" ".join(a) for a, _ in GOOD])
def test_a_good_list_reaches_the_body_as_a_tuple(calls, args, expected):
    res = invoke(*args)
    assert res.exit_code == 0, res.output
    (got,) = calls
    for name, value in expected.items():
        assert got[name] == value, (name, got[name])
        if isinstance(value, tuple):
            assert isinstance(got[name], tuple) and [type(v) for v in got[name]] == [type(v) for v in value], (name, got[name])


def test_help_names_the_allowed_backends_and_the_list_forms():
    res = invoke("bench", "--help")
    assert res.exit_code == 0, res.output
    text = re.sub(r"[\s│]+", " ", res.output)
    assert "--backends BACKEND,..." in text and "from: " + ", ".join(BENCH_BACKENDS) in text, text
    assert "--batch N,..." in text
    text = re.sub(r"[\s│]+", " ", invoke("compare", "--help").output)
    assert "--methods METHOD,..." in text and "--fold-ids K,..." in text
    assert all(f"{m}: " in text for m in METHODS)


def test_the_parser_returns_items_and_takes_them_back():
    parse = comma_list(integer(0))
    got = parse("3,1")
    assert got == (3, 1) and isinstance(got, Items)
    assert parse(got) is got  # a default already parsed passes through


# --- the two text options checked by their stage's parser: live --roi, data phantom --set ---

@pytest.fixture()
def text_calls(monkeypatch) -> list[dict]:
    """The live and data-phantom bodies' arguments, the bodies doing nothing."""
    from edgecalc.cli import data

    seen: list[dict] = []

    def body(console, **options):
        seen.append(options)
        return 0

    monkeypatch.setattr(deploy, "live_command", body)
    monkeypatch.setattr(data, "phantom_command", body)
    return seen


LIVE = ["live", "--source", "phantom", "--headless"]
PHANTOM = ["data", "phantom", "--out", "unused"]
FIELDS = "valid fields: pixel_spacing_mm, frame_pixel_spacing_mm, center_frequency_mhz"
# (command line, what the refusal must say after "Invalid value for '--OPTION': ")
BAD_TEXT = [
    (LIVE + ["--crop", "fixed", "--roi", "1,2"], "--roi", "must be x,y,w,h in pixels (e.g. 120,60,200,200); got '1,2'"),
    (LIVE + ["--roi", "a,b,c,d"], "--roi", "must be x,y,w,h in pixels (e.g. 120,60,200,200); got 'a,b,c,d'"),
    (LIVE + ["--roi", "1.5,2,3,4"], "--roi", "must be x,y,w,h in pixels (e.g. 120,60,200,200); got '1.5,2,3,4'"),
    (LIVE + ["--roi", "1,-2,30,40"], "--roi", "'1,-2,30,40' needs x, y >= 0 and w, h > 0"),
    (LIVE + ["--crop", "fixed", "--roi", "1,2,0,40"], "--roi", "'1,2,0,40' needs x, y >= 0 and w, h > 0"),
    (PHANTOM + ["--set", "center_freq=7"], "--set", "unknown phantom parameter 'center_freq'; " + FIELDS),
    (PHANTOM + ["--set", "p_strands=0.5", "--set", "bogus=1"], "--set", "unknown phantom parameter 'bogus'"),
    (PHANTOM + ["--set", "p_strands"], "--set", "'p_strands': expected KEY=VALUE (VALUE as JSON)"),
    (PHANTOM + ["--set", "=0.4"], "--set", "'=0.4': expected KEY=VALUE"),
    (PHANTOM + ["--set", "p_strands=lots"], "--set", "phantom parameter 'p_strands': expected a number, got \"lots\""),
    (PHANTOM + ["--set", "dynamic_range_db=[45]"], "--set", "phantom parameter 'dynamic_range_db': expected a list of 2 numbers"),
    (PHANTOM + ["--set", "micro_count=2.5"], "--set", "phantom parameter 'micro_count': expected a list of 2 integers"),
]


@pytest.mark.parametrize("args, option, reason", BAD_TEXT, ids=[" ".join(a[3:]) for a, _, _ in BAD_TEXT])
def test_a_bad_roi_or_setting_is_refused_by_the_parser_before_the_body(text_calls, args, option, reason):
    out = refusal(invoke(*args))
    assert f"Invalid value for '{option}': {reason}" in out, out
    assert not text_calls, "the body ran"


GOOD_TEXT = [
    (LIVE + ["--crop", "fixed", "--roi", "150,60,200,200"], {"roi": "150,60,200,200", "crop": "fixed"}),
    (LIVE + ["--roi", " 0, 0, 1, 1"], {"roi": " 0, 0, 1, 1"}),
    (LIVE, {"roi": None}),
    (PHANTOM + ["--set", "p_strands=0.9", "--set", "dynamic_range_db=[45,60]"],
     {"sets": ["p_strands=0.9", "dynamic_range_db=[45,60]"]}),
    (PHANTOM, {"sets": None}),
]


@pytest.mark.parametrize("args, expected", GOOD_TEXT, ids=[" ".join(a[3:]) or a[0] for a, _ in GOOD_TEXT])
def test_a_good_roi_or_setting_reaches_the_body_as_given(text_calls, args, expected):
    res = invoke(*args)
    assert res.exit_code == 0, res.output
    (got,) = text_calls
    for name, value in expected.items():
        assert got[name] == value, (name, got[name])
