"""VGG-style convolution blocks of the encoder and decoder, and the decoder's up-sampling."""

from __future__ import annotations

import torch
from torch import nn


class ConvBlock(nn.Sequential):
    """``n`` x (3x3 convolution, padding 1 -> BatchNorm -> ReLU), as in a VGG16 block.

    The paper does not say whether its VGG blocks are normalised; Abraham & Khan's ``attn_reg``
    (the pyramid-input attention U-Net the paper builds on) uses BatchNorm + ReLU, and so do we
    (``batch_norm=False`` gives plain conv + bias + ReLU, as in the original VGG16). The max-pool
    that follows each encoder block lives in the encoder, so the same block serves the decoder.
    """

    def __init__(self, in_channels: int, out_channels: int, n_convs: int, batch_norm: bool = True) -> None:
        layers: list[nn.Module] = []
        for i in range(n_convs):
            cin = in_channels if i == 0 else out_channels
            layers.append(nn.Conv2d(cin, out_channels, 3, padding=1, bias=not batch_norm))
            if batch_norm:
                layers.append(nn.BatchNorm2d(out_channels))
            layers.append(nn.ReLU(inplace=True))
        super().__init__(*layers)
        self.out_channels = out_channels


class UpConv(nn.Module):
    """2x up-sampling of the decoder: 2x2 transposed convolution, stride 2, + ReLU.

    U-Net's "up-conv 2x2" (Abraham's code uses a 3x3 transposed convolution; 2x2 has no overlap,
    costs less and exports to ONNX/TensorRT as a plain ConvTranspose).
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = nn.ConvTranspose2d(in_channels, out_channels, kernel_size=2, stride=2)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.conv(x))
