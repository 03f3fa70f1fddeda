"""AG-Sononet-FT-8 (paper Table 2): the attention-gated Sononet of Schlemper et al. for image labels.

Schlemper et al., "Attention-gated networks for improving ultrasound scan plane detection" (MIDL
2018) and "Attention gated networks: learning to leverage salient regions in medical images"
(MedIA 2019). Followed definition: the reference code ``ozan-oktay/Attention-Gated-Networks``,
``models/networks/sononet_grid_attention.py`` with ``configs/config_sononet_grid_att_8_ft.json``
(``feature_scale`` 8, ``nonlocal_mode`` ``concatenation_mean_flow``, ``aggregation_mode`` ``ft``):

- five VGG-style blocks of 3, 3, 3, 2, 2 convolutions (3x3 + BatchNorm + ReLU: ``ConvBlock``), with
  64, 128, 256, 512, 512 / 8 = 8, 16, 32, 64, 64 filters ("-8"; other widths: ``ModelConfig.scaled``
  of those, so ``lite`` keeps the floor of 8), a max-pool after each of the first four;
- two grid attention gates, on conv3 (1/4) and conv4 (1/8), both gated by conv5 (1/16): W_x and W_g
  1x1 (sub-sample factor 1), inter channels = conv4's filters, ReLU, psi to one channel, no output
  transform W (``use_W=False``), and the "mean-flow" normalisation ``(psi - min) / sum(psi - min)``;
- three vectors: each gate's attention-weighted sum of its feature (mean-flow weights sum to 1, so
  a weighted average) and the global average of conv5; one linear head per vector, the three raw
  logit pairs concatenated and fused by a final linear layer ("ft").

The gate reuses ``GridAttentionGate``'s W_x, W_g and psi with its own normalisation. It returns the
map range-normalised to [0, 1] (``(psi - min) / (max - min)``); ``AttentionPoolingClassifier``'s
``sum(alpha x) / sum(alpha)`` of that map is exactly the reference's mean-flow weighted sum. Fusion
of raw logits follows the reference (``softmax_scales=False``), not CS-AGnet's softmaxed scales.
The range gets ``eps`` = 1e-4 added (the reference divides by the bare sum): an untrained gate's psi
is nearly flat, and dividing by a range of 1e-6 would turn float rounding (TorchScript's folded
BatchNorm, ONNX) into visible differences of the map. Convolutions and BatchNorm are initialised as
the reference's ``init_weights(..., "kaiming")`` does (He normal, fan in; BatchNorm scale N(1, 0.02)).

``attention``: channel 0 the CAM (``blocks/cam.py``) of the global branch's head on conv5, channel 1
the gate on conv4, channel 2 the gate on conv3 (the finest, shown in figures). There is no
segmentation: ``mask`` is score x the conv3 gate's map.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from edgecalc.model.blocks import AttentionPoolingClassifier, ConvStack, GridAttentionGate, class_activation_map
from edgecalc.model.blocks import labels_only_output
from edgecalc.model.config import ModelConfig
from edgecalc.model.dsagnet import check_input

SONONET8_FILTERS = (8, 16, 32, 64, 64)
SONONET_CONVS = (3, 3, 3, 2, 2)


class MeanFlowGate(GridAttentionGate):
    """Grid attention with sub-sample 1, no output transform, mean-flow normalisation; returns the map only."""

    def __init__(self, in_channels: int, gating_channels: int, inter_channels: int, eps: float = 1e-4) -> None:
        super().__init__(in_channels, gating_channels, inter_channels, subsample=1)
        del self.out  # use_W=False: the gated feature is never transformed
        self.eps = eps

    def forward(self, x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        phi_g = F.interpolate(self.phi(g), size=x.shape[-2:], mode="bilinear", align_corners=False)
        psi = self.psi(F.relu(self.theta(x) + phi_g))
        flat = psi.flatten(2)
        lo = flat.min(dim=2, keepdim=True)[0]
        hi = flat.max(dim=2, keepdim=True)[0]
        return ((flat - lo) / (hi - lo + self.eps)).view_as(psi)


class SononetAG(nn.Module):
    """AG-Sononet-FT-8: Sononet-8 features, two mean-flow attention gates, ft aggregation of three heads."""

    def __init__(self, cfg: ModelConfig | None = None) -> None:
        super().__init__()
        self.cfg = cfg or ModelConfig()
        f = [self.cfg.scaled(c) for c in SONONET8_FILTERS]
        self.features = ConvStack(self.cfg.in_channels, tuple(f), SONONET_CONVS, self.cfg.batch_norm)
        self.gate3 = MeanFlowGate(f[2], f[4], f[3])
        self.gate4 = MeanFlowGate(f[3], f[4], f[3])
        self.classifier = AttentionPoolingClassifier((f[2], f[3], f[4]), softmax_scales=False)
        self.levels = (5, 4, 3)  #: conv5 (1/16), conv4 (1/8), conv3 (1/4)
        for m in self.modules():  # the reference's init_weights(..., "kaiming") of every conv and BatchNorm
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, a=0, mode="fan_in")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.normal_(m.weight, 1.0, 0.02)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor):
        check_input(x, self.cfg)
        conv3, conv4, conv5 = self.features(x)[2:]
        a3, a4 = self.gate3(conv3, conv5), self.gate4(conv4, conv5)
        logits, _, _ = self.classifier([conv3, conv4, conv5], [a3, a4, torch.ones_like(conv5[:, :1])])
        cam = class_activation_map(conv5, self.classifier.heads[2])
        return labels_only_output(logits, (cam, a4, a3), self.levels, (x.shape[2], x.shape[3]))
