"""Deep-supervision segmentation losses and the class head's cross-entropy (paper section 2.4, design.md section 3).

Four segmentation losses (``SEG_LOSSES`` in train/config.py):

* ``tversky`` — the paper's: focal Tversky on the pyramid outputs, plain Tversky on the final one,
  each index computed **per image** with smoothing 1 and averaged over the batch.
* ``tversky-batch`` — the same, with the counts summed over the batch (one index per batch).
* ``bce-dice`` — the CPU recipe's: binary cross-entropy (mean over pixels) + soft Dice loss with the
  counts summed over the batch, on every pyramid output against max-pooled targets.
* ``bce-dice-blob`` — ``bce-dice``, plus on the full-resolution output a *blob* Dice term (Kofler et
  al., "blob loss: instance imbalance aware loss functions for semantic segmentation", IPMI 2023):
  each connected component of the true mask gets its own soft Dice, the other components' pixels
  left out, averaged per image. Why: pixel-summed losses let a three-pixel punctate focus weigh
  almost nothing beside a rim or a macro in the same batch, while issue 17 counts foci, each alike.

Why the per-image index collapses (measured, docs/results.md): on a negative (empty mask) the index
is ``1 / (1 + beta * FP)``, so three false-positive pixels already cost 0.47 — half of what missing a
whole 10-pixel calcification on a positive costs — and with half the images negative the cheapest
answer is to predict nothing. Summed over the batch, the few pixels of a negative weigh as little
as they should; BCE keeps a per-pixel gradient where Dice alone has none.

The paper's definition:

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

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage

from edgecalc.train.config import SEG_LOSSES

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
    return _focal(1 - tversky_index(pred, target, alpha, beta), gamma).mean()


def batch_tversky_index(
    pred: torch.Tensor, target: torch.Tensor, alpha: float = ALPHA, beta: float = BETA, smooth: float = SMOOTH
) -> torch.Tensor:
    """One soft Tversky index over the whole batch (counts summed over images): a scalar."""
    return tversky_index(pred.reshape(1, -1), target.reshape(1, -1), alpha, beta, smooth)[0]


def bce_dice_loss(pred: torch.Tensor, target: torch.Tensor, smooth: float = SMOOTH) -> torch.Tensor:
    """BCE (mean over pixels) + ``1 - Dice`` with soft counts summed over the batch; probabilities in."""
    t = target.to(pred.dtype)
    bce = F.binary_cross_entropy(pred.clamp(1e-6, 1 - 1e-6), t)
    dice = (2 * (pred * t).sum() + smooth) / (pred.sum() + t.sum() + smooth)
    return bce + (1 - dice)


def component_labels(target: torch.Tensor) -> torch.Tensor:
    """8-connected components of each (N, 1, H, W) binary mask -> (N, H, W) int64 labels (0 background)."""
    t = (target.detach().cpu().numpy().reshape(target.shape[0], *target.shape[-2:]) > 0.5)
    out = np.zeros(t.shape, dtype=np.int64)
    for i, m in enumerate(t):
        out[i], _ = ndimage.label(m, structure=np.ones((3, 3), bool))
    return torch.from_numpy(out).to(target.device)


def blob_dice_loss(pred: torch.Tensor, target: torch.Tensor, smooth: float = SMOOTH) -> torch.Tensor:
    """``1 -`` the mean over images of each true component's soft Dice, averaged within the image.

    Component k of an image is scored against the prediction with the *other* components' pixels
    left out (so finding a neighbour earns it nothing, and a false blob anywhere costs every
    component of the image); images without a true component are left out; a batch with none gives
    a zero that keeps the graph.
    """
    labels = component_labels(target)
    k = int(labels.max().item())
    if k == 0:
        return pred.sum() * 0.0
    ids = torch.arange(1, k + 1, device=labels.device).view(1, k, 1, 1)
    own = (labels.unsqueeze(1) == ids).to(pred.dtype)  # (N, K, H, W)
    fg = (labels > 0).unsqueeze(1).to(pred.dtype)  # (N, 1, H, W)
    p = pred.reshape(pred.shape[0], 1, *pred.shape[-2:]) * (1 - (fg - own))  # the others' pixels out
    inter, psum, tsum = (p * own).sum((2, 3)), p.sum((2, 3)), own.sum((2, 3))
    dice = (2 * inter + smooth) / (psum + tsum + smooth)  # (N, K)
    present = (tsum > 0).to(pred.dtype)
    n = present.sum(1)
    per_image = (dice * present).sum(1) / n.clamp_min(1)
    has = n > 0
    return 1 - per_image[has].mean()


def _focal(d: torch.Tensor, gamma: float) -> torch.Tensor:
    d = d.clamp_min(0)
    pos = d > 0
    safe = torch.where(pos, d, torch.ones_like(d))
    return torch.where(pos, safe ** (1.0 / gamma), torch.zeros_like(d))


def segmentation_term(pred: torch.Tensor, target: torch.Tensor, kind: str, final: bool) -> torch.Tensor:
    """One pyramid output's loss under ``kind``; ``final`` = the full-resolution output (plain, not focal, Tversky)."""
    if kind == "tversky":
        return tversky_loss(pred, target) if final else focal_tversky_loss(pred, target)
    if kind == "tversky-batch":
        d = 1 - batch_tversky_index(pred, target)
        return d if final else _focal(d, GAMMA)
    if kind == "bce-dice":
        return bce_dice_loss(pred, target)
    if kind == "bce-dice-blob":
        return bce_dice_loss(pred, target) + (blob_dice_loss(pred, target) if final else 0.0)
    raise ValueError(f"unknown segmentation loss {kind!r}; choose one of {', '.join(SEG_LOSSES)}")


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
    pyramid: Sequence[torch.Tensor], target: torch.Tensor, weights: LossWeights = LossWeights(), seg_loss: str = "tversky"
) -> tuple[torch.Tensor, dict[str, float]]:
    """Stage one (DS-AGnet): ``seg_loss`` on ``pyramid[-1]`` and on the coarser outputs (paper: Tversky + FTL).

    ``pyramid`` is coarse -> fine, the last at the target's resolution; ``target`` (N, 1, H, W) in
    {0, 1}. The terms are computed in float32 (outputs of a bfloat16 autocast are cast up first).
    Returns the total and its terms (floats, for logging).
    """
    target = target.float()
    final = segmentation_term(pyramid[-1].float(), target, seg_loss, final=True)
    total = weights.final * final
    parts = {"seg_final": final.detach().item()}
    for p in pyramid[:-1]:
        term = segmentation_term(p.float(), pooled_target(target, p.shape[-2:]), seg_loss, final=False)
        total = total + weights.pyramid * term
        parts[f"seg_{p.shape[-2]}x{p.shape[-1]}"] = term.detach().item()
    parts["total"] = total.detach().item()
    return total, parts


def combined_loss(
    output, target: torch.Tensor, labels: torch.Tensor | None = None, weights: LossWeights = LossWeights(),
    seg_loss: str = "tversky", has_target: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """The training loss of a DS-AGnet or CS-AGnet output.

    ``output`` is a ``DSAGNetOutput`` (stage one: segmentation terms only, ``labels`` ignored)
    or a ``CSAGNetOutput`` (stage two: + ``weights.classification`` x cross-entropy of
    ``output.logits`` against ``labels`` (N,) int64 in {0, 1}). ``has_target`` (N,) bool marks the
    images that have a pixel target (true or pseudo mask); the segmentation terms see only those, and
    a batch with none (image labels only) has no segmentation term. Returns (total, terms).
    """
    pyramid, tgt = output.pyramid, target
    if has_target is not None and not bool(has_target.all()):
        keep = has_target.to(torch.bool)
        pyramid, tgt = [p[keep] for p in pyramid], target[keep]
    if tgt.shape[0] > 0:
        total, parts = deep_supervision_loss(pyramid, tgt, weights, seg_loss)
    else:
        total, parts = output.pyramid[-1].sum() * 0.0, {"total": 0.0}
    logits = getattr(output, "logits", None)
    if logits is not None:
        if labels is None:
            raise ValueError("a CS-AGnet output needs image-level labels for the class term")
        ce = F.cross_entropy(logits.float(), labels.long())
        total = total + weights.classification * ce
        parts["cross_entropy"] = ce.detach().item()
        parts["total"] = total.detach().item()
    return total, parts
