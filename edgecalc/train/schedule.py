"""Optimisers and learning-rate schedules, per optimiser step.

* ``time-decay``: the paper's Keras-style ``lr_t = lr / (1 + decay * step)`` (with Adam).
* ``cosine``: linear warm-up over ``warmup`` steps, then a cosine from ``lr`` down to ``lr x floor`` at
  ``total`` steps (the kit's CPU recipe, with AdamW). Why: the paper's decay of 1e-6 leaves the rate
  at 0.99 of its start after 6,500 steps, i.e. it never decays within a CPU budget.
"""

from __future__ import annotations

import math

import torch


class TimeDecay:
    """Multiplier ``1 / (1 + decay * step)`` for ``LambdaLR`` (a class, so its decay shows in logs)."""

    def __init__(self, decay: float) -> None:
        if decay < 0:
            raise ValueError(f"decay must be >= 0, got {decay}")
        self.decay = float(decay)

    def __call__(self, step: int) -> float:
        return 1.0 / (1.0 + self.decay * step)

    def __repr__(self) -> str:
        return f"TimeDecay({self.decay})"


class WarmupCosine:
    """Multiplier: ``(step + 1) / warmup`` during warm-up, then cosine from 1 to ``floor`` at ``total``."""

    def __init__(self, total: int, warmup: int = 0, floor: float = 0.0) -> None:
        if total < 1 or warmup < 0 or not 0 <= floor <= 1:
            raise ValueError(f"need total >= 1, warmup >= 0, floor in [0, 1]; got {total}, {warmup}, {floor}")
        self.total, self.warmup, self.floor = int(total), min(int(warmup), int(total) - 1), float(floor)

    def __call__(self, step: int) -> float:
        if step < self.warmup:
            return (step + 1) / self.warmup
        t = min(1.0, (step - self.warmup) / max(1, self.total - self.warmup))
        return self.floor + (1.0 - self.floor) * 0.5 * (1.0 + math.cos(math.pi * t))

    def __repr__(self) -> str:
        return f"WarmupCosine(total={self.total}, warmup={self.warmup}, floor={self.floor})"


def make_optimizer(
    model: torch.nn.Module,
    lr: float,
    decay: float = 0.0,
    head_lr_factor: float = 1.0,
    optimizer: str = "adam",
    weight_decay: float = 0.0,
    schedule: str = "time-decay",
    total_steps: int | None = None,
    warmup_steps: int = 0,
    min_lr_factor: float = 0.0,
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
    """The optimiser (PyTorch defaults: betas 0.9/0.999, eps 1e-8) and its per-step schedule.

    ``head_lr_factor`` multiplies the learning rate of module C (``model.classifier``, CS-AGnet only).
    Why: module C ends in an FC layer on three softmax outputs (values in [0, 1]), so a confident
    score needs fusion weights of magnitude ~5-10, and Adam moves a weight by at most ~lr per step:
    at 5e-5 that takes >100,000 steps, far beyond a CPU budget (the paper's value is factor 1).
    Call ``scheduler.step()`` after every ``optimizer.step()``: the schedule counts optimiser steps.
    """
    if head_lr_factor <= 0:
        raise ValueError(f"head_lr_factor must be > 0, got {head_lr_factor}")
    head = getattr(model, "classifier", None)
    head_ids = {id(p) for p in head.parameters()} if head is not None else set()
    body = [p for p in model.parameters() if id(p) not in head_ids]
    groups: list[dict] = [{"params": body, "lr": lr}]
    if head_ids:
        groups.append({"params": list(head.parameters()), "lr": lr * head_lr_factor})
    if optimizer == "adam":
        opt: torch.optim.Optimizer = torch.optim.Adam(groups, lr=lr, foreach=False)
    elif optimizer == "adamw":
        opt = torch.optim.AdamW(groups, lr=lr, weight_decay=weight_decay, foreach=False)
    else:
        raise ValueError(f"optimizer must be adam or adamw, got {optimizer!r}")
    if schedule == "time-decay":
        fn = TimeDecay(decay)
    elif schedule == "cosine":
        if total_steps is None:
            raise ValueError("the cosine schedule needs the stage's total number of steps")
        fn = WarmupCosine(total_steps, warmup_steps, min_lr_factor)
    else:
        raise ValueError(f"schedule must be cosine or time-decay, got {schedule!r}")
    return opt, torch.optim.lr_scheduler.LambdaLR(opt, fn)
