"""Alexnet-Seg (paper Table 2, its reference [11]): the authors' earlier segmentation-to-FC model.

What the paper says of it: "used the Alexnet network as the basic model, and built a segmentation
network by layer-wise up-pooling and de-convolution. The high-level features extracted by the
segmentation network were transferred directly to the FC layer of the Alexnet classification
network", trained with deep supervision on all pixel masks (registry supervision ``all-masks``).
[11] itself is not at hand; this is that description built from the kit's parts:

- encoder: AlexNet's five convolutions (11x11 stride 4, 5x5, 3x3, 3x3, 3x3; 64, 192, 384, 256, 256
  filters at width 1, ``ModelConfig.scaled`` otherwise; BatchNorm in place of the original local
  response normalisation when ``batch_norm``), 3x3 stride-2 max-pools after conv1, conv2 and conv5.
  Paddings are chosen so every stage is an exact power-of-two fraction of the input (1/4, 1/8, 1/16,
  1/32 for any multiple of 16), which the deep-supervision targets need;
- decoder ("up-pooling and de-convolution", DeconvNet style, no U-Net skips): four 2x2 transposed
  convolutions (``UpConv``) from conv5 (1/16) back to full size, each followed by a ``ConvBlock``
  and a 1x1 sigmoid head: the pyramid 1/8, 1/4, 1/2, full, supervised like DS-AGnet's;
- classifier: the pooled conv5 features (the segmentation network's high-level features) globally
  averaged into AlexNet's FC layers (4096, 4096 at width 1, ReLU) and a final FC to two classes.
  No dropout: the kit's resumed runs are bit-identical, and dropout would draw from the global RNG.

``attention``: the pyramid's last three outputs (1/4, 1/2, full); channel 2 is the mask itself.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from edgecalc.model.blocks import ConvBlock, UpConv
from edgecalc.model.config import ModelConfig
from edgecalc.model.dsagnet import HEAD_BIAS_INIT, check_input
from edgecalc.model.output import CSAGNetOutput

ALEXNET_FILTERS = (64, 192, 384, 256, 256)
ALEXNET_FC = 4096
#: decoder filters from 1/8 to full resolution
DECODER_FILTERS = (192, 64, 32, 32)


def _conv(cin: int, cout: int, k: int, stride: int, padding: int, bn: bool) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, k, stride=stride, padding=padding, bias=not bn)]
    if bn:
        layers.append(nn.BatchNorm2d(cout))
    layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class AlexNetSeg(nn.Module):
    """AlexNet encoder -> de-convolution decoder (deep supervision) and -> FC classifier."""

    def __init__(self, cfg: ModelConfig | None = None) -> None:
        super().__init__()
        self.cfg = cfg or ModelConfig()
        bn = self.cfg.batch_norm
        f = [self.cfg.scaled(c) for c in ALEXNET_FILTERS]
        self.conv1 = _conv(self.cfg.in_channels, f[0], 11, 4, 5, bn)
        self.conv2 = _conv(f[0], f[1], 5, 1, 2, bn)
        self.conv345 = nn.Sequential(_conv(f[1], f[2], 3, 1, 1, bn), _conv(f[2], f[3], 3, 1, 1, bn),
                                     _conv(f[3], f[4], 3, 1, 1, bn))
        d = [self.cfg.scaled(c) for c in DECODER_FILTERS]
        cins = [f[4], *d[:-1]]
        self.ups = nn.ModuleList(UpConv(c, o) for c, o in zip(cins, d))
        self.convs = nn.ModuleList(ConvBlock(o, o, 2, bn) for o in d)
        self.heads = nn.ModuleList(nn.Conv2d(o, 1, kernel_size=1) for o in d)
        for head in self.heads:
            nn.init.constant_(head.bias, HEAD_BIAS_INIT)
        fc = self.cfg.scaled(ALEXNET_FC)
        self.classifier = nn.Sequential(nn.Linear(f[4], fc), nn.ReLU(inplace=True), nn.Linear(fc, fc),
                                        nn.ReLU(inplace=True), nn.Linear(fc, 2))
        self.levels = (3, 2, 1)

    def forward(self, x: torch.Tensor) -> CSAGNetOutput:
        check_input(x, self.cfg)
        h = F.max_pool2d(self.conv1(x), 3, stride=2, padding=1)  # 1/8
        conv5 = self.conv345(F.max_pool2d(self.conv2(h), 3, stride=2, padding=1))  # 1/16
        d = conv5
        pyramid = []
        for up, conv, head in zip(self.ups, self.convs, self.heads):
            d = conv(up(d))
            pyramid.append(torch.sigmoid(head(d)))
        pooled = F.max_pool2d(conv5, 3, stride=2, padding=1).mean(dim=(2, 3))  # pool5 (1/32), averaged
        logits = self.classifier(pooled)
        probs = torch.softmax(logits, dim=1)
        return CSAGNetOutput(pyramid[-1], tuple(pyramid), logits, probs, probs[:, None, :], tuple(pyramid[1:]))
