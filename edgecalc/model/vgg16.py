"""VGG-16 for image labels (paper Table 2; Simonyan & Zisserman 2015), with its attention by CAM.

The thirteen 3x3 convolutions of VGG-16 (blocks of 2, 2, 3, 3, 3; 64, 128, 256, 512, 512 filters at
width 1, ``ModelConfig.scaled`` at other widths; BatchNorm after each when ``batch_norm``, as the
kit's other networks) on one gray channel. The head is the CAM form of Zhou et al. 2016 ("VGGnet-GAP":
the layers after conv5_3 removed): no fifth max-pool and no 4096-unit FC layers, but global average
pooling of block 5 (1/16 of the input) and one FC to two classes, so the map is the class
activation map the paper draws for the networks without AG (``blocks/cam.py``). The ``attention``
output repeats that one map in its three channels; ``mask`` is score x CAM (not a segmentation).
"""

from __future__ import annotations

import torch
from torch import nn

from edgecalc.model.blocks import ConvStack, class_activation_map, labels_only_output
from edgecalc.model.config import ModelConfig
from edgecalc.model.dsagnet import check_input

VGG16_FILTERS = (64, 128, 256, 512, 512)
VGG16_CONVS = (2, 2, 3, 3, 3)


class VGG16(nn.Module):
    """VGG-16 convolutions -> global average pooling -> FC(2); CAM of block 5 as the attention map."""

    def __init__(self, cfg: ModelConfig | None = None) -> None:
        super().__init__()
        self.cfg = cfg or ModelConfig()
        f = [self.cfg.scaled(c) for c in VGG16_FILTERS]
        self.features = ConvStack(self.cfg.in_channels, tuple(f), VGG16_CONVS, self.cfg.batch_norm)
        self.head = nn.Linear(f[-1], 2)
        self.levels = (5, 5, 5)  #: block 5 lies at 1/16 of the input (four max-pools)

    def forward(self, x: torch.Tensor):
        check_input(x, self.cfg)
        h = self.features(x)[-1]
        logits = self.head(h.mean(dim=(2, 3)))
        cam = class_activation_map(h, self.head)
        return labels_only_output(logits, (cam, cam, cam), self.levels, (x.shape[2], x.shape[3]))
