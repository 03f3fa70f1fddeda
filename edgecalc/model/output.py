"""What every network of the kit returns in Python: its own module so the shared blocks (``blocks/cam``)
and the networks can build it without importing ``csagnet`` (which imports the blocks).
"""

from __future__ import annotations

from typing import NamedTuple

import torch


class CSAGNetOutput(NamedTuple):
    """What ``CSAGNet`` returns (eager PyTorch).

    ``mask`` (N, 1, H, W) sigmoid; ``pyramid`` the four sigmoid outputs 1/8 .. full (last == mask);
    ``logits`` (N, 2) of the final FC (use with cross-entropy); ``probs`` (N, 2) their softmax
    (index 1 = calcification); ``scale_probs`` (N, 3, 2) the per-Grid-AG softmaxes; ``attention``
    the three Grid-AG maps module C reads, Grid-AG 1 .. 3, each at its skip's resolution.
    """

    mask: torch.Tensor
    pyramid: tuple[torch.Tensor, ...]
    logits: torch.Tensor
    probs: torch.Tensor
    scale_probs: torch.Tensor
    attention: tuple[torch.Tensor, ...]

    @property
    def score(self) -> torch.Tensor:
        """P(calcification), shape (N,)."""
        return self.probs[:, 1]
