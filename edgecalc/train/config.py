"""The training run's configuration: one dataclass, written to ``config.json`` in the run folder.

A resumed run reads it back, so ``--resume RUN_DIR`` needs no other option and cannot silently train
with different settings. Learning rates and decay are the paper's (design.md section 3): stage one
Adam 1e-4, stage two Adam 5e-5, both with ``lr / (1 + 1e-6 * step)``.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgecalc.model.config import ModelConfig, check_input_size, get_preset


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides a run's result (plus ``device`` and ``progress``, which do not)."""

    data: str
    mask_fraction: float = 0.3
    preset: str = "lite"
    size: int | None = None  #: input size; None = the preset's (192)
    epochs_stage1: int = 20
    epochs_stage2: int = 20
    batch_size: int = 16
    lr_stage1: float = 1e-4
    lr_stage2: float = 5e-5
    decay: float = 1e-6
    #: Stage two: module C's learning rate = lr_stage2 x this (1 = the paper; see schedule.make_optimizer).
    head_lr_factor: float = 1.0
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

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise ValueError naming the first bad field."""
        if not 0 < self.mask_fraction <= 1:
            raise ValueError(f"mask_fraction must lie in (0, 1], got {self.mask_fraction}")
        if self.epochs_stage1 < 1 or self.epochs_stage2 < 1:
            raise ValueError(f"epochs must be >= 1, got stage 1 {self.epochs_stage1}, stage 2 {self.epochs_stage2}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.folds < 2 or not 0 <= self.fold < self.folds:
            raise ValueError(f"fold must lie in 0..folds-1 with folds >= 2, got fold {self.fold} of {self.folds}")
        if not self.head_lr_factor > 0:
            raise ValueError(f"head_lr_factor must be > 0, got {self.head_lr_factor}")
        if not 0 < self.val_fraction < 0.5:
            raise ValueError(f"val_fraction must lie in (0, 0.5), got {self.val_fraction}")
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

    def with_(self, **changes: Any) -> "TrainConfig":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrainConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown training config field(s) {unknown}; known: {sorted(known)}")
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
