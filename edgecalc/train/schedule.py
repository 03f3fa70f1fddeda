"""Adam with Keras-style time decay, ``lr_t = lr / (1 + decay * step)`` (the paper's "decay 1e-6")."""

from __future__ import annotations

from typing import Iterable

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


def make_optimizer(
    params: Iterable[torch.nn.Parameter], lr: float, decay: float
) -> tuple[torch.optim.Adam, torch.optim.lr_scheduler.LambdaLR]:
    """Adam (PyTorch defaults: betas 0.9/0.999, eps 1e-8, like Keras' 1e-7 in spirit) and its decay schedule.

    Call ``scheduler.step()`` after every ``optimizer.step()``: the decay counts optimiser steps.
    """
    opt = torch.optim.Adam(params, lr=lr, foreach=False)
    return opt, torch.optim.lr_scheduler.LambdaLR(opt, TimeDecay(decay))
