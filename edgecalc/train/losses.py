"""Focal Tversky deep supervision and the class head's cross-entropy (paper section 2.4, design.md section 3).

``TI = (TP + s) / (TP + alpha*FN + beta*FP + s)`` per image with soft counts, alpha = 0.7 weighing
false negatives, beta = 0.3 false positives, s = 1; ``FTL = (1 - TI)^(1/gamma)``, gamma = 4/3.
(MONAI's ``TverskyLoss`` names the two weights the other way round: its ``alpha`` weighs false
positives. Here ``alpha`` is always the false-negative weight, as in the paper and Abraham's code.)

The intermediate pyramid outputs get the focal Tversky loss against max-pooled targets; the final,
full-resolution output gets the plain Tversky loss ``1 - TI`` "to prevent the total loss from being
over-suppressed" (paper). Weights: every term 1.0 by default, as Abraham & Khan's ``attn_reg``
(``loss_weights=[1, 1, 1, 1]``); the paper gives none. The class term is plain cross-entropy on the
final FC's logits, weight 1.0.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn.functional as F

ALPHA = 0.7  #: weight of false negatives
BETA = 0.3  #: weight of false positives
GAMMA = 4.0 / 3.0  #: FTL = (1 - TI)^(1/GAMMA) = (1 - TI)^0.75
SMOOTH = 1.0


def tversky_index(
    pred: torch.Tensor, target: torch.Tensor, alpha: float = ALPHA, beta: float = BETA, smooth: float = SMOOTH
) -> torch.Tensor:
    """Soft Tversky index per image: (N, ...) probabilities and {0, 1} targets -> (N,)."""
    if pred.shape != target.shape:
        raise ValueError(f"prediction {tuple(pred.shape)} and target {tuple(target.shape)} differ in shape")
    p = pred.flatten(1)
    t = target.flatten(1).to(p.dtype)
    tp = (p * t).sum(1)
    fn = ((1 - p) * t).sum(1)
    fp = (p * (1 - t)).sum(1)
    return (tp + smooth) / (tp + alpha * fn + beta * fp + smooth)


def tversky_loss(pred: torch.Tensor, target: torch.Tensor, alpha: float = ALPHA, beta: float = BETA) -> torch.Tensor:
    """Plain Tversky loss ``1 - TI``, averaged over the batch."""
    return (1 - tversky_index(pred, target, alpha, beta)).mean()


def focal_tversky_loss(
    pred: torch.Tensor, target: torch.Tensor, alpha: float = ALPHA, beta: float = BETA, gamma: float = GAMMA
) -> torch.Tensor:
    """``(1 - TI)^(1/gamma)`` per image, averaged over the batch.

    Exactly 0 for a perfect prediction; the power's infinite slope at 0 is masked so a perfect
    image contributes a zero (not NaN) gradient.
    """
    d = (1 - tversky_index(pred, target, alpha, beta)).clamp_min(0)
    pos = d > 0
    safe = torch.where(pos, d, torch.ones_like(d))
    return torch.where(pos, safe ** (1.0 / gamma), torch.zeros_like(d)).mean()


def pooled_target(target: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """Downsample a (N, 1, H, W) binary mask to ``size`` by max-pooling: any foreground pixel survives.

    (Abraham's code slices with a stride, which drops a one-pixel calcification 3 times in 4.)
    """
    h, w = int(size[0]), int(size[1])
    H, W = target.shape[-2:]
    if (H, W) == (h, w):
        return target
    if H % h or W % w:
        raise ValueError(f"target {H}x{W} is not an integer multiple of pyramid output {h}x{w}")
    return F.max_pool2d(target.float(), kernel_size=(H // h, W // w))


@dataclass(frozen=True)
class LossWeights:
    """Weights of the combined loss (all 1.0: the paper gives none; ``attn_reg`` uses 1, 1, 1, 1)."""

    final: float = 1.0  #: plain Tversky on the full-resolution mask
    pyramid: float = 1.0  #: each intermediate pyramid output's focal Tversky term
    classification: float = 1.0  #: cross-entropy of the class head (CS-AGnet only)


def deep_supervision_loss(
    pyramid: Sequence[torch.Tensor], target: torch.Tensor, weights: LossWeights = LossWeights()
) -> tuple[torch.Tensor, dict[str, float]]:
    """Stage one (DS-AGnet): Tversky on ``pyramid[-1]`` + FTL on the coarser outputs.

    ``pyramid`` is coarse -> fine, the last at the target's resolution; ``target`` (N, 1, H, W) in
    {0, 1}. Returns the total and its terms (floats, for logging).
    """
    target = target.float()
    final = tversky_loss(pyramid[-1], target)
    total = weights.final * final
    parts = {"tversky_final": final.detach().item()}
    for p in pyramid[:-1]:
        ftl = focal_tversky_loss(p, pooled_target(target, p.shape[-2:]))
        total = total + weights.pyramid * ftl
        parts[f"ftl_{p.shape[-2]}x{p.shape[-1]}"] = ftl.detach().item()
    parts["total"] = total.detach().item()
    return total, parts


def combined_loss(
    output, target: torch.Tensor, labels: torch.Tensor | None = None, weights: LossWeights = LossWeights()
) -> tuple[torch.Tensor, dict[str, float]]:
    """The training loss of a DS-AGnet or CS-AGnet output.

    ``output`` is a ``DSAGNetOutput`` (stage one: segmentation terms only, ``labels`` ignored)
    or a ``CSAGNetOutput`` (stage two: + ``weights.classification`` x cross-entropy of
    ``output.logits`` against ``labels`` (N,) int64 in {0, 1}). Returns (total, terms).
    """
    total, parts = deep_supervision_loss(output.pyramid, target, weights)
    logits = getattr(output, "logits", None)
    if logits is not None:
        if labels is None:
            raise ValueError("a CS-AGnet output needs image-level labels for the class term")
        ce = F.cross_entropy(logits, labels.long())
        total = total + weights.classification * ce
        parts["cross_entropy"] = ce.detach().item()
        parts["total"] = total.detach().item()
    return total, parts
