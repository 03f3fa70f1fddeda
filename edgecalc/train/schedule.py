"""Adam with Keras-style time decay, ``lr_t = lr / (1 + decay * step)`` (the paper's "decay 1e-6")."""

from __future__ import annotations

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
    model: torch.nn.Module, lr: float, decay: float, head_lr_factor: float = 1.0
) -> tuple[torch.optim.Adam, torch.optim.lr_scheduler.LambdaLR]:
    """Adam (PyTorch defaults: betas 0.9/0.999, eps 1e-8) and its decay schedule.

    ``head_lr_factor`` multiplies the learning rate of module C (``model.classifier``, CS-AGnet only).
    Why: module C ends in an FC layer on three softmax outputs (values in [0, 1]), so a confident
    score needs fusion weights of magnitude ~5-10, and Adam moves a weight by at most ~lr per step:
    at 5e-5 that takes >100,000 steps, far beyond a CPU budget (the paper's value is factor 1).
    Call ``scheduler.step()`` after every ``optimizer.step()``: the decay counts optimiser steps.
    """
    if head_lr_factor <= 0:
        raise ValueError(f"head_lr_factor must be > 0, got {head_lr_factor}")
    head = getattr(model, "classifier", None)
    head_ids = {id(p) for p in head.parameters()} if head is not None else set()
    body = [p for p in model.parameters() if id(p) not in head_ids]
    groups: list[dict] = [{"params": body, "lr": lr}]
    if head_ids:
        groups.append({"params": list(head.parameters()), "lr": lr * head_lr_factor})
    opt = torch.optim.Adam(groups, lr=lr, foreach=False)
    return opt, torch.optim.lr_scheduler.LambdaLR(opt, TimeDecay(decay))
