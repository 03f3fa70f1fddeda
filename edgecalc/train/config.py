"""The training run's configuration: one dataclass, written to ``config.json`` in the run folder.

A resumed run reads it back, so ``--resume RUN_DIR`` needs no other option and cannot silently train
with different settings. The dataclass defaults are the kit's ``cpu`` recipe (chosen by measurement
on 2 CPU cores, ``docs/results.md``); ``RECIPES["paper"]`` holds the published settings (design.md
section 3: Adam 1e-4 / 5e-5 with ``lr / (1 + 1e-6 * step)``, focal Tversky, flips, 192 px, 20 epochs).
``TrainConfig.for_recipe`` is the one place where a recipe and explicit options meet.
The CLI spells none of these values: its defaults are ``TRAIN_DEFAULTS`` and its ``--help`` recipe
values come from ``recipe_help`` / ``recipe_summary`` (tests/test_train_cli_help.py holds it to that).

``network`` names the registry entry trained (``edgecalc/model/registry.py``; a run folder written
before the field existed trained CS-AGnet). Its supervision decides the pixel masks: two-stage
networks (CS-AGnet, VGG_U-net) use ``mask_fraction``; ``for_recipe`` sets it to 1 for the all-masks
network (Alexnet-Seg) and to 0 for the image-label networks, and ``validate`` refuses other values.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgecalc.model.config import ModelConfig, check_input_size, get_preset
from edgecalc.model.registry import DEFAULT_NETWORK, get_spec

OPTIMIZERS = ("adamw", "adam")
SCHEDULES = ("cosine", "time-decay")
#: bce-dice: BCE + soft Dice with counts summed over the batch; tversky: the paper's per-image
#: Tversky / focal Tversky; tversky-batch: the same with counts summed over the batch; bce-dice-blob:
#: bce-dice + a per-component Dice on the final output, each calcification alike (train/losses.py).
SEG_LOSSES = ("bce-dice", "bce-dice-blob", "tversky", "tversky-batch")
#: batch: per-sample horizontal flip, small scale/shift and gain/gamma on the whole batch at once;
#: flips: the paper's random horizontal and vertical flips (train/augment.py).
AUGMENTS = ("batch", "flips")
#: auto: bfloat16 autocast where the hardware runs it natively (train/precision.py), else float32.
PRECISIONS = ("auto", "fp32", "bf16")


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides a run's result (plus ``device`` and ``progress``, which do not)."""

    data: str
    recipe: str = "cpu"
    network: str = DEFAULT_NETWORK
    mask_fraction: float = 0.3
    preset: str = "lite"
    size: int | None = 96  #: input size; None = the preset's (192)
    #: Step budgets; None = count epochs (``epochs_stage*``) instead, one pass over the data each.
    steps_stage1: int | None = 2000
    steps_stage2: int | None = 5000
    #: With step budgets: validate (and checkpoint) every this many steps; each such round is an "epoch" in the logs.
    eval_every: int = 250
    epochs_stage1: int = 20
    epochs_stage2: int = 20
    batch_size: int = 16
    optimizer: str = "adamw"
    lr_stage1: float = 1e-3
    lr_stage2: float = 1e-3
    weight_decay: float = 0.01  #: AdamW's decoupled weight decay (ignored by adam)
    schedule: str = "cosine"
    warmup_steps: int = 200  #: linear warm-up of the cosine schedule (per stage)
    min_lr_factor: float = 0.02  #: the cosine ends at lr x this
    decay: float = 1e-6  #: the time-decay schedule's ``lr / (1 + decay * step)``
    #: Stage two: module C's learning rate = lr_stage2 x this (1 = the paper; see schedule.make_optimizer).
    head_lr_factor: float = 1.0
    seg_loss: str = "bce-dice"
    augment: str = "batch"
    precision: str = "auto"
    fold: int = 0
    folds: int = 5
    #: Share of the training fold held out to pick the best epoch (never the test fold).
    val_fraction: float = 0.1
    seed: int = 0
    keep_true_masks: bool = False
    #: Pseudo masks (and eval's Dice/IoU) binarise the sigmoid output at this value.
    mask_threshold: float = 0.5
    device: str = "cpu"
    progress: bool = True
    #: Sim-to-real (docs/real-data.md): stage one trains on this folder's pixel masks (e.g. the phantom)
    #: instead of ``data``'s own; stage two then trains on ``data`` with stage one's pseudo masks.
    stage1_data: str | None = None
    #: Skip training stage one: these DS-AGnet weights (or a run folder's ``stage1/best``) are its result.
    stage1_weights: str | None = None
    #: Stage two starts from these CS-AGnet weights (or a run folder's ``final``): fine-tuning.
    init_weights: str | None = None
    #: Stage two also draws ``mix_ratio`` of every batch from this folder, with its true masks and labels
    #: (with ``linear_probe``: its crops join the fit with ``mix_ratio`` of the total sample weight).
    mix_data: str | None = None
    mix_ratio: float = 0.0
    #: Instead of stage two's gradient steps, fit only a linear score head on ``init_weights``'s frozen
    #: encoder (L2 logistic regression, strength by patient-grouped inner CV; train/linear_probe.py).
    linear_probe: bool = False
    #: With ``linear_probe``: the inner CV may also add the segmentation mask's pooled mean and maximum
    #: to the features (``ModelConfig.linear_head_mask``); False fits encoder features only (the head
    #: before 2026-12-03, which ``ddti-phantom`` and the default ``ddti-phantom-12k`` carry).
    linear_probe_mask: bool = True

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise ValueError naming the first bad field."""
        if self.recipe not in RECIPES:
            raise ValueError(f"recipe must be one of {sorted(RECIPES)}, got {self.recipe!r}")
        if not 0 <= self.mask_fraction <= 1:
            raise ValueError(f"mask_fraction must lie in [0, 1], got {self.mask_fraction}")
        spec = get_spec(self.network)
        fixed = spec.fixed_mask_fraction
        if fixed is not None and self.mask_fraction != fixed:
            raise ValueError(f"network {self.network} trains on {spec.supervision.replace('-', ' ')} "
                             f"(mask_fraction {fixed:g}), got mask_fraction {self.mask_fraction}")
        if not spec.two_stage and (self.stage1_data or self.stage1_weights or self.mix_data):
            raise ValueError(f"network {self.network} has no stage one and no pixel targets to mix: stage1_data, "
                             "stage1_weights and mix_data go with the two-stage networks (csagnet, vgg-unet)")
        if self.stage1_data is not None and self.stage1_weights is not None:
            raise ValueError("give stage one either its data (stage1_data) or its trained weights (stage1_weights), not both")
        if not 0 <= self.mix_ratio < 1:
            raise ValueError(f"mix_ratio must lie in [0, 1), got {self.mix_ratio}")
        if (self.mix_data is None) != (self.mix_ratio == 0):
            raise ValueError(f"mix_data and mix_ratio go together (got mix_data={self.mix_data!r}, mix_ratio={self.mix_ratio})")
        if self.linear_probe:
            if self.init_weights is None or self.network != "csagnet":
                raise ValueError("linear_probe fits a score head on trained CS-AGnet weights: it needs init_weights "
                                 f"(--init-weights RUN) and network csagnet (got {self.network})")
            if self.has_stage1:
                raise ValueError("linear_probe trains no stage one: it needs mask_fraction 0 "
                                 "(--mask-fraction 0) and no stage1_data or stage1_weights")
        if self.epochs_stage1 < 1 or self.epochs_stage2 < 1:
            raise ValueError(f"epochs must be >= 1, got stage 1 {self.epochs_stage1}, stage 2 {self.epochs_stage2}")
        for name in ("steps_stage1", "steps_stage2"):
            v = getattr(self, name)
            if v is not None and v < 1:
                raise ValueError(f"{name} must be >= 1 (or None to count epochs), got {v}")
        if self.eval_every < 1:
            raise ValueError(f"eval_every must be >= 1, got {self.eval_every}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.folds < 2 or not 0 <= self.fold < self.folds:
            raise ValueError(f"fold must lie in 0..folds-1 with folds >= 2, got fold {self.fold} of {self.folds}")
        if not self.head_lr_factor > 0:
            raise ValueError(f"head_lr_factor must be > 0, got {self.head_lr_factor}")
        if not 0 < self.val_fraction < 0.5:
            raise ValueError(f"val_fraction must lie in (0, 0.5), got {self.val_fraction}")
        for name, allowed in (("optimizer", OPTIMIZERS), ("schedule", SCHEDULES), ("seg_loss", SEG_LOSSES),
                              ("augment", AUGMENTS), ("precision", PRECISIONS)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {list(allowed)}, got {getattr(self, name)!r}")
        if self.warmup_steps < 0 or not 0 <= self.min_lr_factor <= 1 or self.weight_decay < 0 or self.decay < 0:
            raise ValueError(f"warmup_steps >= 0, min_lr_factor in [0, 1], weight_decay >= 0 and decay >= 0 needed, got "
                             f"{self.warmup_steps}, {self.min_lr_factor}, {self.weight_decay}, {self.decay}")
        if self.device not in ("cpu", "cuda") and not self.device.startswith("cuda:"):
            raise ValueError(f"device must be cpu or cuda[:N], got {self.device!r}")
        self.model_config()  # checks preset and size

    def model_config(self) -> ModelConfig:
        cfg = get_preset(self.preset, self.size)
        check_input_size(cfg.input_size)
        return cfg

    @property
    def input_size(self) -> int:
        return self.model_config().input_size

    @property
    def has_stage1(self) -> bool:
        """Whether the run has a stage one (trained or given): False for image labels only (p = 0)."""
        if not get_spec(self.network).two_stage:
            return False
        return self.stage1_data is not None or self.stage1_weights is not None or self.mask_fraction > 0

    def steps(self, stage: int) -> int | None:
        return self.steps_stage1 if stage == 1 else self.steps_stage2

    def with_(self, **changes: Any) -> "TrainConfig":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def for_recipe(cls, recipe: str = "cpu", **options: Any) -> "TrainConfig":
        """The recipe's settings, then every option that is not None on top (the CLI passes None for 'not given').

        An epoch count given without the same stage's step budget switches that stage to counting epochs.
        """
        if recipe not in RECIPES:
            raise ValueError(f"unknown recipe {recipe!r}; choose one of {sorted(RECIPES)}")
        given = {k: v for k, v in options.items() if v is not None}
        fixed = get_spec(given.get("network", DEFAULT_NETWORK)).fixed_mask_fraction
        if fixed is not None:  # the network's supervision decides its masks, whatever --mask-fraction says
            given["mask_fraction"] = fixed
        for stage in (1, 2):
            if f"epochs_stage{stage}" in given and f"steps_stage{stage}" not in given:
                given[f"steps_stage{stage}"] = None
        return cls(recipe=recipe, **{**RECIPES[recipe], **given})

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrainConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown training config field(s) {unknown}; known: {sorted(known)}")
        if "recipe" not in data:  # a run folder written before recipes existed trained like this
            data = {**LEGACY, **data}
        if data.get("linear_probe") and "linear_probe_mask" not in data:  # a probe run fitted before the mask grid
            data = {**data, "linear_probe_mask": False}
        return cls(**data)

    @classmethod
    def read(cls, path: str | Path) -> "TrainConfig":
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"training config {path} not found (is this a run folder?)")
        try:
            return cls.from_dict(json.loads(path.read_text()))
        except (json.JSONDecodeError, TypeError, ValueError) as exc:
            raise ValueError(f"{path}: {exc}") from exc


#: Settings that differ from the dataclass defaults (= "cpu") per recipe.
RECIPES: dict[str, dict[str, Any]] = {
    "cpu": {},
    # The paper's settings (design.md section 3), for GPU users: 192 px, full widths, epochs, Adam + time decay.
    "paper": {"preset": "paper", "size": None, "steps_stage1": None, "steps_stage2": None, "optimizer": "adam",
              "lr_stage1": 1e-4, "lr_stage2": 5e-5, "schedule": "time-decay", "seg_loss": "tversky", "augment": "flips",
              "precision": "fp32"},
}

#: How runs written before the recipes trained (config.json without "recipe"): the paper's optimiser,
#: schedule, loss, flips and epochs; their config.json always names its own preset.
LEGACY: dict[str, Any] = {"recipe": "paper", **{k: v for k, v in RECIPES["paper"].items() if k != "preset"}}

#: What each recipe is for, in a word; the settings themselves come from RECIPES (``recipe_summary``).
RECIPE_PURPOSES: dict[str, str] = {
    "cpu": "the kit's default, chosen on 2 CPU cores",
    "paper": "the published settings (design.md section 3), for GPUs",
}

#: TrainConfig's own defaults by field name: the CLI's defaults for options that are not recipe settings.
TRAIN_DEFAULTS: dict[str, Any] = {f.name: f.default for f in dataclasses.fields(TrainConfig)
                                  if f.default is not dataclasses.MISSING}


def recipe_values(field: str) -> dict[str, Any]:
    """Each recipe's effective value of a field (``size`` None resolved to the preset's input size)."""
    values = {}
    for name in RECIPES:
        cfg = TrainConfig.for_recipe(name, data="")
        values[name] = cfg.input_size if field == "size" else getattr(cfg, field)
    return values


def _show(field: str, value: Any) -> str:
    if value is None and field.startswith("steps_stage"):
        return "epochs"
    return f"{value:g}" if isinstance(value, float) else str(value)


def recipe_help(field: str) -> str:
    """The '(recipe: ...)' suffix of an option's --help, generated from RECIPES so no value is respelled."""
    values = recipe_values(field)
    shown = {name: _show(field, v) for name, v in values.items()}
    if len(set(shown.values())) == 1:
        return f"({'both' if len(RECIPES) == 2 else 'all'} recipes: {next(iter(shown.values()))})"
    return "(recipe: " + ", ".join(f"{name} {v}" for name, v in shown.items()) + ")"


def recipe_summary() -> str:
    """One line per recipe for ``--recipe``'s help: its purpose and the settings in which it differs from the others."""
    differing = sorted({field for settings in RECIPES.values() for field in settings})
    parts = []
    for name in RECIPES:
        settings = ", ".join(f"{field} {_show(field, recipe_values(field)[name])}" for field in differing)
        parts.append(f"{name} ({RECIPE_PURPOSES[name]}: {settings})")
    return "; ".join(parts)
