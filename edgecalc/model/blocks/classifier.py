"""Module C: attention-weighted pooling of three gated features, one two-class head per scale, fusion."""

from __future__ import annotations

import torch
from torch import nn


class AttentionPoolingClassifier(nn.Module):
    """Three (feature, alpha) pairs -> final logits (N, 2), final probabilities, per-scale probabilities.

    For each Grid-AG, ``pooled = sum(alpha * x) / (sum(alpha) + eps)`` over positions (``x`` the
    skip feature the gate weighs), then FC -> 2 and softmax. The three softmaxes are concatenated
    (6 values) and a final FC gives two logits; their softmax is the calcification score. This is
    AG-Sononet's "ft" aggregation; its reference code concatenates raw logits, the paper softmaxes
    each scale first, and the paper wins. ``softmax_scales=False`` fuses the raw logits (the reference
    code's "ft", used by ``sononet_ag.py``); ``scale_probs`` are softmaxes either way.
    """

    def __init__(self, channels: tuple[int, ...], num_classes: int = 2, eps: float = 1e-6,
                 softmax_scales: bool = True) -> None:
        super().__init__()
        self.heads = nn.ModuleList(nn.Linear(c, num_classes) for c in channels)
        self.fuse = nn.Linear(num_classes * len(channels), num_classes)
        self.eps = eps
        self.softmax_scales = softmax_scales

    def pool(self, x: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
        """Attention-weighted average over positions: (N, C, H, W), (N, 1, H, W) -> (N, C)."""
        num = (x * alpha).sum(dim=(2, 3))
        return num / (alpha.sum(dim=(2, 3)) + self.eps)

    def forward(
        self, features: list[torch.Tensor], alphas: list[torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        scale_logits = [head(self.pool(x, a)) for head, x, a in zip(self.heads, features, alphas)]
        scale_probs = [torch.softmax(z, dim=1) for z in scale_logits]
        logits = self.fuse(torch.cat(scale_probs if self.softmax_scales else scale_logits, dim=1))
        return logits, torch.softmax(logits, dim=1), torch.stack(scale_probs, dim=1)
