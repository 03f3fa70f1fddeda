"""The training commands' defaults and --help recipe values come from train/config.py, spelled nowhere else.

A default respelled in cli.py (say --lr-stage2 "paper 5e-5" typed by hand, or --folds 5 as a literal that
drifts) fails here: every value is checked against the recipe table and TrainConfig, not against text.
"""

from __future__ import annotations

import re
from typing import Any
import pytest
import typer.main

from edgecalc.cli import app
from edgecalc.train.config import RECIPES, TRAIN_DEFAULTS, TrainConfig, recipe_help, recipe_summary

#: Every TrainConfig field that a recipe may set and the CLI offers as an option.
RECIPE_FIELDS = ("preset", "size", "steps_stage1", "steps_stage2", "eval_every", "epochs_stage1", "epochs_stage2",
                 "batch_size", "optimizer", "lr_stage1", "lr_stage2", "weight_decay", "schedule", "warmup_steps",
                 "min_lr_factor", "decay", "head_lr_factor", "seg_loss", "augment", "precision")
#: Options whose CLI default is TrainConfig's own default.
PLAIN_DEFAULTS = {"train": ("recipe", "network", "mask_fraction", "fold", "folds", "val_fraction", "device", "seed",
                            "keep_true_masks"),
                  "sweep": ("recipe", "folds", "device", "seed", "keep_true_masks"),
                  "compare": ("recipe", "mask_fraction", "folds", "device", "seed", "keep_true_masks")}


def _params(command: str) -> dict[str, Any]:
    group = typer.main.get_command(app)
    return {p.name: p for p in group.commands[command].params}


def _shown(field: str, value) -> str:
    if value is None:
        return "epochs"
    return f"{value:g}" if isinstance(value, float) else str(value)


@pytest.mark.parametrize("command", ["train", "sweep", "compare"])
def test_help_shows_each_recipes_value(command: str) -> None:
    params = _params(command)
    configs = {name: TrainConfig.for_recipe(name, data="") for name in RECIPES}
    for field in RECIPE_FIELDS:
        text = params[field].help
        assert params[field].default is None, f"--{field} must default to the recipe's value (None)"
        assert text.endswith(recipe_help(field)), (command, field, text)
        for name, cfg in configs.items():  # each recipe's effective value appears, taken from TrainConfig itself
            value = cfg.input_size if field == "size" else getattr(cfg, field)
            assert _shown(field, value) in text.rsplit("(", 1)[1], (command, field, name, text)


@pytest.mark.parametrize("command", sorted(PLAIN_DEFAULTS))
def test_cli_defaults_are_train_config_defaults(command: str) -> None:
    params = _params(command)
    for field in PLAIN_DEFAULTS[command]:
        assert params[field].default == TRAIN_DEFAULTS[field], (command, field)


def test_recipe_help_names_every_differing_setting() -> None:
    help_text = _params("train")["recipe"].help
    assert recipe_summary() in help_text
    paper = TrainConfig.for_recipe("paper", data="")
    for field in RECIPES["paper"]:
        shown = _shown(field, paper.input_size if field == "size" else getattr(paper, field))
        assert f"{field} {shown}" in help_text, field


def test_recipe_help_follows_the_table(monkeypatch: pytest.MonkeyPatch) -> None:
    """The help is generated: change a recipe's value and the text changes with it."""
    monkeypatch.setitem(RECIPES, "paper", {**RECIPES["paper"], "lr_stage2": 7e-5})
    assert recipe_help("lr_stage2") == "(recipe: cpu 0.001, paper 7e-05)"
    assert recipe_help("batch_size") == "(both recipes: 16)"


def test_rendered_help_shows_the_table() -> None:
    """What a user reads: `edgecalc train --help` rendered, whitespace and box lines folded away."""
    from typer.testing import CliRunner

    out = CliRunner().invoke(app, ["train", "--help"], env={"COLUMNS": "400"}).output
    out = re.sub(r"\s+", " ", out.replace("│", " "))
    assert re.sub(r"\s+", " ", recipe_summary()) in out
    for field in RECIPE_FIELDS:
        assert recipe_help(field) in out, field
