"""VGG_U-net (paper Table 2): CS-AGnet's layers without the Grid-AGs, trained by the same two stages.

"VGG_U-net was also a collaborative-supervised model, which has the same network layers as
CS-AGnet, but Grid-AGs were not embedded in this network" (paper section 3.4). So: the same module
A (``Encoder``: VGG blocks + input pyramid) and module B (``Decoder`` with its deep-supervision
heads) with every skip passed on ungated, and the same module C (``AttentionPoolingClassifier``,
one head per scale on encoder blocks 4, 3, 2, fused) with the attention weights replaced by ones,
i.e. plain global average pooling. ``VGGUNetSeg`` (A + B) is its stage one; ``VGGUNet`` takes A + B
from it (``weights.network_from_stage_one``), as CS-AGnet takes them from DS-AGnet.

Without gates there is no attention map, so the ``attention`` output holds the class activation
maps (``blocks/cam.py``, as the paper draws the maps of its networks without AG) of module C's three
heads, coarsest first: channel 2 is the CAM of block 2's head, the finest (where Grid-AG 3 sits in
CS-AGnet). The mask is the segmentation branch's, as in CS-AGnet.
"""

from __future__ import annotations

import torch
from torch import nn

from edgecalc.model.blocks import AttentionPoolingClassifier, class_activation_map
from edgecalc.model.config import ModelConfig
from edgecalc.model.dsagnet import Decoder, DSAGNetOutput, Encoder, check_input
from edgecalc.model.output import CSAGNetOutput


class UngatedDecoder(Decoder):
    """Module B with every skip connection passed straight to the concatenation (no Grid-AG)."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__(cfg)
        self.gates = nn.ModuleDict()
        self.gated_levels = ()


class VGGUNetSeg(nn.Module):
    """Stage one of VGG_U-net: encoder + ungated decoder, deeply supervised (a DS-AGnet without gates)."""

    def __init__(self, cfg: ModelConfig | None = None) -> None:
        super().__init__()
        self.cfg = cfg or ModelConfig()
        self.encoder = Encoder(self.cfg)
        self.decoder = UngatedDecoder(self.cfg)

    def forward(self, x: torch.Tensor) -> DSAGNetOutput:
        check_input(x, self.cfg)
        dec = self.decoder(self.encoder(x))
        return DSAGNetOutput(dec.pyramid[-1], tuple(dec.pyramid), ())


class VGGUNet(nn.Module):
    """VGG_U-net: segmentation (A + ungated B) and classification (A + C on average-pooled skips)."""

    def __init__(self, cfg: ModelConfig | None = None) -> None:
        super().__init__()
        self.cfg = cfg or ModelConfig()
        self.encoder = Encoder(self.cfg)
        self.decoder = UngatedDecoder(self.cfg)
        self.levels = self.cfg.classifier_levels
        self.classifier = AttentionPoolingClassifier(tuple(self.cfg.filters[l - 1] for l in self.levels))

    def forward(self, x: torch.Tensor) -> CSAGNetOutput:
        check_input(x, self.cfg)
        enc = self.encoder(x)
        dec = self.decoder(enc)
        feats = [enc.skips[l - 1] for l in self.levels]
        ones = [torch.ones_like(f[:, :1]) for f in feats]
        logits, probs, scale_probs = self.classifier(feats, ones)
        cams = tuple(class_activation_map(f, head) for f, head in zip(feats, self.classifier.heads))
        return CSAGNetOutput(dec.pyramid[-1], tuple(dec.pyramid), logits, probs, scale_probs, cams)
