"""The input pyramid: the image, average-pooled, injected at every encoder scale below full size."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class PyramidInput(nn.Module):
    """Image -> [feature at 1/2, 1/4, 1/8]: 2x2 average pools, each scale through 3x3 conv + ReLU.

    Abraham & Khan (2019, ``attn_reg``): the pooled image gets as many filters as the encoder block
    it feeds and is concatenated with the max-pooled output of the block above. The paper says
    "before each max-pooling layer"; we inject it where ``attn_reg`` does (into blocks 2, 3, 4, i.e.
    after the max-pool of the block above), which sees the same scale.
    """

    def __init__(self, in_channels: int, channels: tuple[int, ...]) -> None:
        super().__init__()
        self.convs = nn.ModuleList(
            nn.Sequential(nn.Conv2d(in_channels, c, 3, padding=1), nn.ReLU(inplace=True)) for c in channels
        )

    def forward(self, image: torch.Tensor) -> list[torch.Tensor]:
        out = []
        x = image
        for conv in self.convs:
            x = F.avg_pool2d(x, 2)
            out.append(conv(x))
        return out
