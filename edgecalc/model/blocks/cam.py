"""Class activation maps (Zhou et al. 2016, "Learning deep features for discriminative localization").

For a head ``logits = W · mean_p x(p) + b`` over globally average-pooled features, the two-class
score difference splits into one term per position: ``m(p) = (w_1 - w_0) · x(p) + (b_1 - b_0)``,
whose spatial mean is the head's logit difference. ``class_activation_map`` returns ``sigmoid(m)``,
the calcification probability the head would give if every position looked like ``p``: in [0, 1]
without a per-image rescaling (so a negative crop gives a dark map), and one 1x1 convolution in
an export. ``labels_only_output`` is the kit's output contract for networks without a segmentation
branch: their "mask" is that map, weighted by the image's score (no pixel was ever supervised).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from edgecalc.model.output import CSAGNetOutput


def class_activation_map(features: torch.Tensor, head: nn.Linear) -> torch.Tensor:
    """(N, C, h, w) features + the two-class linear head that reads their average -> (N, 1, h, w) in [0, 1]."""
    w = (head.weight[1] - head.weight[0]).view(1, -1, 1, 1)
    return torch.sigmoid(F.conv2d(features, w, head.bias[1:2] - head.bias[0:1]))


def labels_only_output(logits: torch.Tensor, maps: tuple[torch.Tensor, ...], levels: tuple[int, ...],
                       size: tuple[int, int]):
    """A ``CSAGNetOutput`` for a classification-only network: ``maps`` (3 maps, the shown one last).

    ``mask`` = P(calcification) x the shown map resized bilinearly to ``size``: where the network
    looks, dimmed by how sure it is, so the runtime's overlay stays quiet on negatives. It is not a
    segmentation; ``pyramid`` is ``(mask,)`` and takes no loss (these networks train on image labels).
    """
    probs = torch.softmax(logits, dim=1)
    shown = maps[-1] if levels[-1] == 1 else F.interpolate(maps[-1], size=size, mode="bilinear", align_corners=False)
    # probs[:, 1] reshaped, not the slice probs[:, 1:2] ExportWrapper returns as ``score``: the ONNX
    # exporter merges equal slices, and the score output would then also carry an internal tensor's
    # name (OpenVINO reports that one, and the backend finds no "score")
    mask = probs[:, 1].reshape(-1, 1, 1, 1) * shown
    return CSAGNetOutput(mask, (mask,), logits, probs, probs[:, None, :], tuple(maps))
