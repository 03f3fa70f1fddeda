"""Batched inference of a DS-AGnet / CS-AGnet over an in-memory image array (eval mode, no grad).

Shared by validation during training, pseudo-mask prediction and ``edgecalc eval``, so all three
see the model the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass
class Predictions:
    masks: np.ndarray  #: (N, 1, H, W) float32 sigmoid probabilities
    scores: np.ndarray | None  #: (N,) float32 P(calcification); None for a DS-AGnet
    attention: np.ndarray | None  #: (N, 3, H, W) float32 Grid-AG 1..3 at input size, if asked for


@torch.no_grad()
def predict(
    model: torch.nn.Module,
    images: np.ndarray | torch.Tensor,
    batch_size: int = 32,
    device: torch.device | str = "cpu",
    attention: bool = False,
) -> Predictions:
    """Run ``model`` over (N, C, H, W) float32 images in [0, 1]; restores the model's train/eval mode after."""
    from edgecalc.model.csagnet import stack_attention

    was_training = model.training
    model.eval()
    x_all = torch.as_tensor(images, dtype=torch.float32)
    masks, scores, maps = [], [], []
    try:
        for start in range(0, x_all.shape[0], batch_size):
            x = x_all[start : start + batch_size].to(device)
            out = model(x)
            masks.append(out.mask.float().cpu().numpy())
            probs = getattr(out, "probs", None)
            if probs is not None:
                scores.append(probs[:, 1].float().cpu().numpy())
            if attention:
                levels = model.levels if hasattr(model, "levels") else tuple(sorted(model.cfg.gated_levels)[:3][::-1])
                maps.append(stack_attention(out.attention[:3], (x.shape[2], x.shape[3]), levels).float().cpu().numpy())
    finally:
        model.train(was_training)
    empty = np.zeros((0,) + tuple(x_all.shape[1:]), np.float32)
    return Predictions(
        masks=np.concatenate(masks) if masks else empty,
        scores=np.concatenate(scores) if scores else None,
        attention=np.concatenate(maps) if maps else None,
    )
