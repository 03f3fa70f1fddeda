"""A plain VGG-style feature stack: ``ConvBlock``s with a 2x2 max-pool before every block but the first."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from edgecalc.model.blocks.conv import ConvBlock


class ConvStack(nn.Module):
    """Blocks of ``convs[i]`` 3x3 convolutions with ``filters[i]`` channels; returns every block's output.

    VGG-16 and Sononet share this layout (the encoder of CS-AGnet adds its input pyramid, so it keeps
    its own); block ``i`` lies at 1 / 2**i of the input.
    """

    def __init__(self, in_channels: int, filters: tuple[int, ...], convs: tuple[int, ...], batch_norm: bool = True) -> None:
        super().__init__()
        cins = (in_channels, *filters[:-1])
        self.blocks = nn.ModuleList(ConvBlock(c, f, n, batch_norm) for c, f, n in zip(cins, filters, convs))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outs = []
        h = x
        for i, block in enumerate(self.blocks):
            h = block(F.max_pool2d(h, 2) if i > 0 else h)
            outs.append(h)
        return outs
