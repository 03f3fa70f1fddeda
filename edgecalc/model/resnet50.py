"""ResNet-50 for image labels (paper Table 2; He et al. 2016), with its attention by CAM.

The published layout on one gray channel: a 7x7 stride-2 stem + 3x3 stride-2 max-pool, then four
stages of bottleneck blocks (1x1, 3x3, 1x1 with 4x expansion; 3, 4, 6, 3 blocks; 64, 128, 256, 512
bottleneck widths at width 1, ``ModelConfig.scaled`` at other widths), the stride on the 3x3
convolution (the "v1.5" placement torchvision uses), projection shortcuts where shape changes,
BatchNorm everywhere (part of the architecture, not optional), global average pooling and one FC
to two classes. Its class activation map (``blocks/cam.py``, 1/32 of the input) is the attention
output (repeated in the three channels); ``mask`` is score x CAM (not a segmentation).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from edgecalc.model.blocks import class_activation_map, labels_only_output
from edgecalc.model.config import ModelConfig
from edgecalc.model.dsagnet import check_input

STAGE_BLOCKS = (3, 4, 6, 3)
STAGE_WIDTHS = (64, 128, 256, 512)
EXPANSION = 4


def _conv_bn(cin: int, cout: int, k: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2, bias=False), nn.BatchNorm2d(cout))


class Bottleneck(nn.Module):
    """1x1 reduce -> 3x3 (stride) -> 1x1 expand, + shortcut (identity or 1x1 projection), ReLU."""

    def __init__(self, cin: int, width: int, stride: int) -> None:
        super().__init__()
        cout = width * EXPANSION
        self.body = nn.Sequential(_conv_bn(cin, width, 1), nn.ReLU(inplace=True), _conv_bn(width, width, 3, stride),
                                  nn.ReLU(inplace=True), _conv_bn(width, cout, 1))
        self.shortcut = _conv_bn(cin, cout, 1, stride) if stride != 1 or cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.body(x) + self.shortcut(x))


class ResNet50(nn.Module):
    """ResNet-50 -> global average pooling -> FC(2); CAM of the last stage as the attention map."""

    def __init__(self, cfg: ModelConfig | None = None) -> None:
        super().__init__()
        self.cfg = cfg or ModelConfig()
        widths = [self.cfg.scaled(w) for w in STAGE_WIDTHS]
        stem = widths[0]
        self.stem = nn.Sequential(nn.Conv2d(self.cfg.in_channels, stem, 7, stride=2, padding=3, bias=False),
                                  nn.BatchNorm2d(stem), nn.ReLU(inplace=True))
        stages, cin = [], stem
        for i, (n, w) in enumerate(zip(STAGE_BLOCKS, widths)):
            blocks = []
            for b in range(n):
                blocks.append(Bottleneck(cin, w, 2 if b == 0 and i > 0 else 1))
                cin = w * EXPANSION
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.ModuleList(stages)
        self.head = nn.Linear(cin, 2)
        self.levels = (6, 6, 6)  #: the last stage lies at 1/32 of the input

    def forward(self, x: torch.Tensor):
        check_input(x, self.cfg)
        h = F.max_pool2d(self.stem(x), 3, stride=2, padding=1)
        for stage in self.stages:
            h = stage(h)
        logits = self.head(h.mean(dim=(2, 3)))
        cam = class_activation_map(h, self.head)
        return labels_only_output(logits, (cam, cam, cam), self.levels, (x.shape[2], x.shape[3]))
