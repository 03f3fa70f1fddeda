"""DS-AGnet (modules A + B): the pyramid-input VGG encoder and the attention-gated, deeply supervised decoder.

Module A (``Encoder``) is shared with CS-AGnet's classification branch; module B (``Decoder``) is the
segmentation branch. Stage one of the paper's training trains ``DSAGNet`` alone on the images with
pixel masks; ``edgecalc.model.weights.csagnet_from_dsagnet`` then copies A and B into a CS-AGnet.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from edgecalc.model.blocks import ConvBlock, GridAttentionGate, PyramidInput, UpConv
from edgecalc.model.config import ModelConfig, check_input_size


#: log(0.1 / 0.9): the pyramid outputs' initial foreground probability is 0.1.
HEAD_BIAS_INIT = -2.1972245773362196


class EncoderFeatures(NamedTuple):
    skips: list[torch.Tensor]  #: outputs of blocks 1-4 (full, 1/2, 1/4, 1/8 resolution)
    bridge: torch.Tensor  #: 1/16 resolution


class DecoderFeatures(NamedTuple):
    pyramid: list[torch.Tensor]  #: sigmoid outputs at 1/8, 1/4, 1/2, full (coarse -> fine)
    gate_inputs: dict[int, torch.Tensor]  #: the skip feature each gate weighed, by level
    alphas: dict[int, torch.Tensor]  #: each gate's attention map (N, 1, h, w) at its skip's size, by level


class DSAGNetOutput(NamedTuple):
    """What ``DSAGNet`` returns.

    ``mask``: (N, 1, H, W) sigmoid probabilities at input resolution (== ``pyramid[-1]``).
    ``pyramid``: four sigmoid outputs, 1/8, 1/4, 1/2, full resolution (deep supervision).
    ``attention``: the Grid-AG maps in [0, 1], Grid-AG 1 (next to the bridge) first, each at the
    resolution of the skip it gates.
    """

    mask: torch.Tensor
    pyramid: tuple[torch.Tensor, ...]
    attention: tuple[torch.Tensor, ...]


class Encoder(nn.Module):
    """Module A: the first four VGG16 blocks (+ max-pools) with the input pyramid, then the bridge."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        f = cfg.filters
        self.pyramid = PyramidInput(cfg.in_channels, f[1:4]) if cfg.pyramid_input else None
        blocks = []
        for i in range(4):
            cin = cfg.in_channels if i == 0 else f[i - 1] + (f[i] if cfg.pyramid_input else 0)
            blocks.append(ConvBlock(cin, f[i], cfg.encoder_convs[i], cfg.batch_norm))
        self.blocks = nn.ModuleList(blocks)
        self.bridge = ConvBlock(f[3], f[4], cfg.bridge_convs, cfg.batch_norm)

    def forward(self, x: torch.Tensor) -> EncoderFeatures:
        pyr = self.pyramid(x) if self.pyramid is not None else None
        skips = []
        h = x
        for i, block in enumerate(self.blocks):
            if i > 0:
                h = F.max_pool2d(h, 2)
                if pyr is not None:
                    h = torch.cat([h, pyr[i - 1]], dim=1)
            h = block(h)
            skips.append(h)
        return EncoderFeatures(skips, self.bridge(F.max_pool2d(h, 2)))


class Decoder(nn.Module):
    """Module B: up-conv, Grid-AG on the skip (gated by the coarser decoder feature), concat, convs.

    Every level ends in a 1x1 convolution + sigmoid (the paper's pyramid output); the gating signal
    of a level's gate is the decoder feature one level coarser (the bridge for the first gate), as
    in Oktay's and Abraham's attention U-Nets (Abraham adds a 1x1 conv + BN + ReLU "gating signal"
    block in between; the gate's own W_g already projects g, so we do without it).
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        f = cfg.filters
        self.gated_levels = tuple(sorted(cfg.gated_levels, reverse=True))
        levels = (4, 3, 2, 1)  # coarse -> fine
        self.gates = nn.ModuleDict(
            {str(l): GridAttentionGate(f[l - 1], f[l], subsample=cfg.gate_subsample) for l in self.gated_levels}
        )
        self.ups = nn.ModuleList(UpConv(f[l], f[l - 1]) for l in levels)
        self.convs = nn.ModuleList(ConvBlock(2 * f[l - 1], f[l - 1], cfg.decoder_convs, cfg.batch_norm) for l in levels)
        self.heads = nn.ModuleList(nn.Conv2d(f[l - 1], 1, kernel_size=1) for l in levels)
        # Calcifications cover a few percent of a crop: start every pyramid output near P = 0.1 rather
        # than 0.5 (RetinaNet's prior init), so the Tversky terms do not begin with a grey mask that is
        # nearly all false positives. The paper does not state its initialisation.
        for head in self.heads:
            nn.init.constant_(head.bias, HEAD_BIAS_INIT)

    def forward(self, enc: EncoderFeatures) -> DecoderFeatures:
        d = enc.bridge
        pyramid: list[torch.Tensor] = []
        gate_inputs: dict[int, torch.Tensor] = {}
        alphas: dict[int, torch.Tensor] = {}
        for i, level in enumerate((4, 3, 2, 1)):
            skip = enc.skips[level - 1]
            if str(level) in self.gates:
                gate_inputs[level] = skip
                skip, alphas[level] = self.gates[str(level)](skip, d)
            d = self.convs[i](torch.cat([self.ups[i](d), skip], dim=1))
            pyramid.append(torch.sigmoid(self.heads[i](d)))
        return DecoderFeatures(pyramid, gate_inputs, alphas)


def check_input(x: torch.Tensor, cfg: ModelConfig) -> None:
    """Eager-mode check of the input's rank, channels and size (skipped while tracing)."""
    if torch.jit.is_tracing():
        return
    if x.dim() != 4 or x.shape[1] != cfg.in_channels:
        raise ValueError(f"expected input (N, {cfg.in_channels}, H, W), got {tuple(x.shape)}")
    check_input_size(int(x.shape[2]), int(x.shape[3]))


class DSAGNet(nn.Module):
    """DS-AGnet = module A + module B (segmentation network, stage one of the training)."""

    def __init__(self, cfg: ModelConfig | None = None) -> None:
        super().__init__()
        self.cfg = cfg or ModelConfig()
        self.encoder = Encoder(self.cfg)
        self.decoder = Decoder(self.cfg)

    def forward(self, x: torch.Tensor) -> DSAGNetOutput:
        check_input(x, self.cfg)
        dec = self.decoder(self.encoder(x))
        attention = tuple(dec.alphas[level] for level in self.decoder.gated_levels)
        return DSAGNetOutput(dec.pyramid[-1], tuple(dec.pyramid), attention)
