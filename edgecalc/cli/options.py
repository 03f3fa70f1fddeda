"""What several commands share, declared once: the choice types, the recipe option group, the cart's options.

Choices: an option whose values come from a table is annotated with a ``Literal`` built from that
table (``choice``), so ``--help`` lists the values and the parser refuses any other with exit 2.
Training (``train``, ``sweep``, ``compare``): every recipe setting defaults to None = "the recipe's
value"; the defaults and the recipe values in ``--help`` come from train/config.py (RECIPES,
TRAIN_DEFAULTS). The cart (``live``, ``analyze``, ``locate``): the bundle, precision, engine threads
and locator options. Typer reads an option object when it builds a command, so one object may serve many.
Comma-separated lists (``--methods``, ``--backends``, ``--batch``, ``--fractions``, ``--fold-ids``): one typer
``parser`` per kind (:func:`comma_list`), built from the table that owns the values, so a bad item is refused
by the parser (exit 2, ``Invalid value for '--methods': ...``) before any work starts. The two text options
checked the same way (``live --roi``, ``data phantom --set``) are checked by the stage's own parser
(:func:`roi`, :func:`phantom_setting`).
"""

from __future__ import annotations

import functools
import inspect
from typing import Any, Callable, Iterable, Literal, Optional, get_type_hints

import typer

from edgecalc.studies.compare import METHODS as COMPARE_METHODS
from edgecalc.export.choices import CALIB_METHODS, VIA_CHOICES
from edgecalc.data.phantom.config import config_with
from edgecalc.model.config import PRESETS
from edgecalc.model.registry import NETWORKS
from edgecalc.runtime.commands import LOCATORS
from edgecalc.runtime.engine.formats import BACKEND_CHOICES, BENCH_BACKENDS, PRECISIONS as RUNTIME_PRECISIONS, choices_help
from edgecalc.runtime.live.modes import CROP_MODES, LOOP_MODES
from edgecalc.runtime.locate.cropper import parse_roi
from edgecalc.runtime.refine_mask import Refinement
from edgecalc.train.config import (AUGMENTS, OPTIMIZERS, PRECISIONS as TRAIN_PRECISIONS, RECIPES, SCHEDULES, SEG_LOSSES,
                                   TRAIN_DEFAULTS, recipe_help, recipe_summary)


def choice(values: Iterable[str]) -> Any:
    """The annotation for an option whose values come from a table: a ``Literal`` of them, so typer lists
    them in ``--help`` and refuses any other value with exit 2 (the command still receives a plain str)."""
    return Literal[tuple(values)]


# --- the choices, each from its table (annotate an option with one: ``backend: opt.Backend = ...``) ---

Backend = choice(BACKEND_CHOICES)  #: runtime/engine/formats.py: auto, then the engines the cart runs
RunPrecision = choice(RUNTIME_PRECISIONS)  #: runtime/engine/formats.py: a bundle's models
Locator = choice(LOCATORS)  #: runtime/commands.py
CalibMethod = choice(CALIB_METHODS)  #: export/choices.py, like Via
Via = choice(VIA_CHOICES)
Crop = choice(CROP_MODES)  #: runtime/live/modes.py, like Loop
Loop = choice(LOOP_MODES)
Network = choice(NETWORKS)  #: model/registry.py
Preset = choice(PRESETS)  #: model/config.py
Recipe = choice(RECIPES)  #: train/config.py, like the four below and TrainPrecision
Optimizer = choice(OPTIMIZERS)
Schedule = choice(SCHEDULES)
SegLoss = choice(SEG_LOSSES)
Augment = choice(AUGMENTS)
TrainPrecision = choice(TRAIN_PRECISIONS)

# --- comma-separated lists: one parser per kind (annotate the option ``opt.Items``, give it ``parser=``) ---

class Items(tuple):
    """A comma-separated option's items, parsed and checked. A class of its own because typer reads a
    ``tuple[...]`` annotation as an option that takes several values."""


def comma_list(item: Callable[[str], Any]) -> Callable[[str], Items]:
    """A typer ``parser`` for a comma-separated list: each item through ``item`` (its ValueError says why the
    item is refused); an empty item, or one given twice, is refused too. Typer prints the refusal as
    ``Invalid value for '--OPTION': REASON`` and exits 2."""

    def parse(text: str) -> Items:
        if isinstance(text, Items):
            return text
        words = [w.strip() for w in str(text).split(",")]
        if words == [""]:
            raise typer.BadParameter("needs at least one item")
        if "" in words:
            raise typer.BadParameter(f"an empty item in {text!r}: items are separated by single commas")
        try:
            values = [item(w) for w in words]
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from None
        twice = next((w for i, (w, v) in enumerate(zip(words, values)) if v in values[:i]), None)
        if twice is not None:
            raise typer.BadParameter(f"{twice!r} is given twice in {text!r}")
        return Items(values)

    return parse


def one_of(values: Iterable[str]) -> Callable[[str], str]:
    """An item that must be one of ``values`` (refused in typer's words for a choice)."""
    allowed = tuple(values)

    def check(word: str) -> str:
        if word not in allowed:
            raise ValueError(f"{word!r} is not one of {', '.join(map(repr, allowed))}.")
        return word

    return check


def integer(low: int) -> Callable[[str], int]:
    """An item that must be an integer >= ``low``."""

    def check(word: str) -> int:
        try:
            value = int(word)
        except ValueError:
            raise ValueError(f"{word!r} is not an integer") from None
        if value < low:
            raise ValueError(f"{word!r} is below {low}")
        return value

    return check


def share(word: str) -> float:
    """An item that must be a number in (0, 1] (a mask fraction)."""
    try:
        value = float(word)
    except ValueError:
        raise ValueError(f"{word!r} is not a number") from None
    if not 0 < value <= 1:
        raise ValueError(f"{word!r} is not in (0, 1]")
    return value


METHODS_LIST = comma_list(one_of(COMPARE_METHODS))  #: studies/compare.py's METHODS
BACKENDS_LIST = comma_list(one_of(BENCH_BACKENDS))  #: runtime/engine/formats.py
BATCH_LIST = comma_list(integer(1))
FRACTIONS_LIST = comma_list(share)
FOLD_IDS_LIST = comma_list(integer(0))


# --- text options checked by the parser of the stage that reads them ---

def checked_by(check: Callable[[str], Any], option: str) -> Callable[[str], str]:
    """A typer ``parser`` that refuses what ``check`` refuses (its ValueError is the reason, exit 2) and hands the
    text on unchanged, in the form the stage's body takes it. The stage's message names ``option`` itself;
    typer's ``Invalid value for 'OPTION':`` already does, so that prefix is dropped."""

    def parse(text: str) -> str:
        try:
            check(text)
        except ValueError as exc:
            raise typer.BadParameter(str(exc).removeprefix(f"{option} ")) from None
        return text

    return parse


#: ``live --roi x,y,w,h``: runtime/locate/cropper.py's parse_roi (integers, x, y >= 0, w, h > 0).
roi = checked_by(parse_roi, "--roi")
#: ``live / analyze --refine``: runtime/refine_mask.py's Refinement.parse (off, default, or NAME=VALUE,...).
refinement = checked_by(Refinement.parse, "--refine")
#: ``data phantom --set KEY=VALUE``: data/phantom/config.py's config_with (KEY a PhantomConfig field, VALUE JSON of
#: that field's type; an unknown KEY is refused with the list of fields).
phantom_setting = checked_by(lambda text: config_with(sets=[text]), "--set")

FOLD_IDS = typer.Option(None, "--fold-ids", parser=FOLD_IDS_LIST, metavar="K,...",
                        help="Comma-separated folds to run, each below --folds (default: all of --folds).")


def folds_to_run(fold_ids: Items | None, folds: int) -> Items:
    """``--fold-ids`` checked against ``--folds`` (a parser sees one option, so the command checks the pair), or
    every fold; a fold outside is refused like a bad item (exit 2, before any work)."""
    if fold_ids is None:
        return Items(range(folds))
    outside = [k for k in fold_ids if k >= folds]
    if outside:
        raise typer.BadParameter(f"{', '.join(map(str, outside))} outside 0..{folds - 1} (--folds {folds})",
                                 param_hint="'--fold-ids'")
    return fold_ids


# --- training: train, sweep, compare ---

RECIPE = typer.Option(TRAIN_DEFAULTS["recipe"], "--recipe", help="Settings bundle: " + recipe_summary()
                      + ". Every option below overrides the recipe's value.")
MASK_FRACTION = typer.Option(TRAIN_DEFAULTS["mask_fraction"], "--mask-fraction", help="Share p of the training images whose pixel masks stage one uses "
                             "(the paper's 10 %..100 %); 1.0 = deep supervision.")
PRESET = typer.Option(None, "--preset", help="Model preset: lite (width 0.25) or paper (the published widths). " + recipe_help("preset"))
SIZE = typer.Option(None, "--size", help="Input size, a multiple of 16. " + recipe_help("size"))
STEPS1 = typer.Option(None, "--steps-stage1", min=1, help="Optimiser steps of stage one (a budget; overrides --epochs-stage1). " + recipe_help("steps_stage1"))
STEPS2 = typer.Option(None, "--steps-stage2", min=1, help="Optimiser steps of stage two. " + recipe_help("steps_stage2"))
EVAL_EVERY = typer.Option(None, "--eval-every", min=1, help="With step budgets: validate and checkpoint every N steps (a 'round'). " + recipe_help("eval_every"))
EPOCHS1 = typer.Option(None, "--epochs-stage1", min=1, help="Epochs of stage one; given without --steps-stage1 it switches "
                       "stage one to counting epochs. " + recipe_help("epochs_stage1"))
EPOCHS2 = typer.Option(None, "--epochs-stage2", min=1, help="Epochs of stage two (same rule). " + recipe_help("epochs_stage2"))
BATCH = typer.Option(None, "--batch-size", min=1, help="Images per step (per process under torchrun). " + recipe_help("batch_size"))
OPTIMIZER = typer.Option(None, "--optimizer", help="adamw or adam. " + recipe_help("optimizer"))
LR1 = typer.Option(None, "--lr-stage1", help="Learning rate of stage one. " + recipe_help("lr_stage1"))
LR2 = typer.Option(None, "--lr-stage2", help="Learning rate of stage two. " + recipe_help("lr_stage2"))
WD = typer.Option(None, "--weight-decay", help="AdamW's decoupled weight decay. " + recipe_help("weight_decay"))
SCHEDULE = typer.Option(None, "--schedule", help="cosine (linear warm-up, then cosine to lr x --min-lr-factor) or "
                        "time-decay (lr / (1 + decay x step), the paper's). " + recipe_help("schedule"))
WARMUP = typer.Option(None, "--warmup-steps", min=0, help="Warm-up steps of the cosine schedule, per stage. " + recipe_help("warmup_steps"))
MIN_LR = typer.Option(None, "--min-lr-factor", help="The cosine ends at lr x this. " + recipe_help("min_lr_factor"))
DECAY = typer.Option(None, "--decay", help="The time-decay schedule's decay per step. " + recipe_help("decay"))
HEAD_LR = typer.Option(None, "--head-lr-factor", help="Stage two: module C (classifier) learns at lr-stage2 x this. " + recipe_help("head_lr_factor"))
SEG_LOSS = typer.Option(None, "--seg-loss", help="bce-dice (BCE + Dice with batch-summed counts), tversky (the paper's "
                        "per-image Tversky/focal Tversky), tversky-batch (batch-summed counts) or bce-dice-blob (bce-dice + "
                        "each true calcification's own Dice on the final mask, so a punctate focus weighs as much as "
                        "a rim); docs/results.md says why. " + recipe_help("seg_loss"))
AUGMENT = typer.Option(None, "--augment", help="batch (horizontal flip, zoom/shift, gain/gamma; no vertical flip: "
                       "shadows point away from the probe) or flips (the paper's horizontal + vertical). " + recipe_help("augment"))
PRECISION = typer.Option(None, "--precision", help="auto (bfloat16 autocast where the CPU/GPU runs it natively, else "
                         "float32), fp32 or bf16. " + recipe_help("precision"))
DEVICE = typer.Option(TRAIN_DEFAULTS["device"], "--device", help="cpu or cuda (one GPU per process under torchrun).")
SEED = typer.Option(TRAIN_DEFAULTS["seed"], "--seed", help="Seed of the split, mask draw, initialisation, shuffling and augmentation.")
KEEP_TRUE = typer.Option(TRAIN_DEFAULTS["keep_true_masks"], "--keep-true-masks", help="Stage two: use the true mask instead of the pseudo mask for the "
                         "images drawn for stage one (not the paper's default).")
NO_PROGRESS = typer.Option(False, "--no-progress", help="No progress bars (validation lines still print).")
THREADS = typer.Option(0, "--threads", min=0, help="torch CPU threads per process (0 = torch's default); 1 when two "
                       "processes share 2 cores.")

#: The recipe option group, in --help order: name -> (annotation, option). `train`, `sweep` and `compare` take it
#: whole (:func:`with_recipe_options`).
RECIPE_GROUP: dict[str, tuple[Any, Any]] = {
    "recipe": (Recipe, RECIPE), "preset": (Optional[Preset], PRESET), "size": (Optional[int], SIZE),
    "steps_stage1": (Optional[int], STEPS1), "steps_stage2": (Optional[int], STEPS2),
    "eval_every": (Optional[int], EVAL_EVERY), "epochs_stage1": (Optional[int], EPOCHS1),
    "epochs_stage2": (Optional[int], EPOCHS2), "batch_size": (Optional[int], BATCH),
    "optimizer": (Optional[Optimizer], OPTIMIZER), "lr_stage1": (Optional[float], LR1),
    "lr_stage2": (Optional[float], LR2), "weight_decay": (Optional[float], WD), "schedule": (Optional[Schedule], SCHEDULE),
    "warmup_steps": (Optional[int], WARMUP), "min_lr_factor": (Optional[float], MIN_LR), "decay": (Optional[float], DECAY),
    "head_lr_factor": (Optional[float], HEAD_LR), "seg_loss": (Optional[SegLoss], SEG_LOSS),
    "augment": (Optional[Augment], AUGMENT), "precision": (Optional[TrainPrecision], PRECISION),
    "device": (str, DEVICE), "seed": (int, SEED), "keep_true_masks": (bool, KEEP_TRUE),
}
#: The options every training command passes on to TrainConfig.for_recipe under their own names.
RECIPE_OPTION_NAMES = tuple(RECIPE_GROUP)


def recipe_kwargs(given: dict[str, Any]) -> dict[str, Any]:
    """The recipe options out of a command's ``locals()``."""
    return {name: given[name] for name in RECIPE_OPTION_NAMES}


def with_recipe_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """``command`` with its parameter ``recipe_options`` replaced by the recipe option group (in its place, so
    --help lists them there); the command receives them as one dict, ``recipe_options``.

    Typer reads a command's options off its signature: the wrapper's ``__signature__`` and annotations
    carry the expanded list.
    """
    hints = get_type_hints(command)
    params = []
    for p in inspect.signature(command).parameters.values():
        if p.name == "recipe_options":
            params += [inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=option, annotation=kind)
                       for name, (kind, option) in RECIPE_GROUP.items()]
        elif p.name in RECIPE_GROUP:
            raise TypeError(f"{command.__name__}: --{p.name.replace('_', '-')} belongs to the recipe group")
        else:
            params.append(p.replace(annotation=hints.get(p.name, p.annotation)))

    @functools.wraps(command)
    def with_group(**given: Any) -> Any:
        return command(**{k: v for k, v in given.items() if k not in RECIPE_GROUP}, recipe_options=recipe_kwargs(given))

    with_group.__signature__ = inspect.Signature(params, return_annotation=None)  # type: ignore[attr-defined]
    with_group.__annotations__ = {p.name: p.annotation for p in params}
    del with_group.__wrapped__  # typer must read this signature, not the wrapped one's
    return with_group


# --- the cart: live, analyze, locate ---

BUNDLE = typer.Option(None, "--bundle", help="Export bundle folder (edgecalc export). "
                      "Default: the bundle shipped with the package.")
PRECISION_RUN = typer.Option("fp32", "--precision", help=f"{choices_help(RUNTIME_PRECISIONS)}: which of the bundle's models to run.")
ENGINE_THREADS = typer.Option(0, "--threads", min=0, help="CPU threads for the engine (0 = the engine's default).")
LOCATOR = typer.Option("learned", "--locator", help="learned (the shipped network) | classical (the "
                       "dark-blob baseline).")

#: The calcification mask refined at the crop's native resolution before it is measured (``live``, ``analyze``).
REFINE = typer.Option("default", "--refine", parser=refinement, metavar="off|default|NAME=VALUE,...",
                      help="The calcification mask, before its foci are counted and measured: 'default' trims each "
                      "of the model's components to the focus its frame's own pixels show (sizes and kinds; needs "
                      "the pixel spacing, else nothing is trimmed) and adds the foci the bundle's focus verifier "
                      "finds that the mask missed (edgecalc fit-verifier; on frames called calcification); 'off' "
                      "measures the model's mask as drawn; NAME=VALUE,... changes parameters of "
                      "runtime/refine_mask.py's Refinement, e.g. verify=false: the trim without the verifier "
                      "(docs/quantification.md).")

