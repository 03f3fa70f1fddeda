"""Oktay's grid attention gate (Schlemper et al. 2019, ``GridAttentionBlock2D``, concatenation mode)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class GridAttentionGate(nn.Module):
    """Gate a skip feature ``x`` with the coarser gating feature ``g``; return ``(W(alpha*x), alpha)``.

    ``q = psi^T ReLU(W_x x + W_g g + b_g) + b_psi``, ``alpha = sigmoid(q)``:

    - W_x: convolution with kernel = stride = ``subsample`` (2: the sub-sampled grid of
      ``GridAttentionBlock2D``), no bias. The paper's text calls all three transforms 1x1 (the one
      without bias being W_x); the project's design and the issue follow Oktay's grid gate, so the
      default is 2 and ``subsample=1`` gives the literal 1x1 reading.
    - W_g: 1x1 with bias; its output is resized bilinearly to W_x's grid (a no-op when ``g`` is
      exactly one level coarser and ``subsample`` is 2, as in this network).
    - psi: 1x1 to one channel, with bias; alpha is resized bilinearly (align_corners=False) back to
      ``x``'s size.
    - W: 1x1 convolution + BatchNorm on ``alpha * x`` (no conv bias: BatchNorm's shift replaces it).

    ``alpha`` (N, 1, H, W) in [0, 1] is the attention map the kit shows.
    """

    def __init__(
        self, in_channels: int, gating_channels: int, inter_channels: int | None = None, subsample: int = 2
    ) -> None:
        super().__init__()
        inter = inter_channels if inter_channels is not None else max(1, in_channels // 2)
        self.subsample = subsample
        self.theta = nn.Conv2d(in_channels, inter, kernel_size=subsample, stride=subsample, bias=False)
        self.phi = nn.Conv2d(gating_channels, inter, kernel_size=1, bias=True)
        self.psi = nn.Conv2d(inter, 1, kernel_size=1, bias=True)
        self.out = nn.Sequential(nn.Conv2d(in_channels, in_channels, kernel_size=1, bias=False), nn.BatchNorm2d(in_channels))

    def forward(self, x: torch.Tensor, g: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        theta_x = self.theta(x)
        phi_g = self.phi(g)
        # Decided from the module's structure, not from traced shapes, so the trace has no branches:
        # with subsample 2 the gating feature (one level coarser) is already on W_x's grid.
        if self.subsample == 1 or (not torch.jit.is_tracing() and phi_g.shape[-2:] != theta_x.shape[-2:]):
            phi_g = F.interpolate(phi_g, size=theta_x.shape[-2:], mode="bilinear", align_corners=False)
        alpha = torch.sigmoid(self.psi(F.relu(theta_x + phi_g)))
        if self.subsample != 1:
            alpha = F.interpolate(alpha, size=x.shape[-2:], mode="bilinear", align_corners=False)
        return self.out(alpha * x), alpha
