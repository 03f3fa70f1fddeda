"""Augmentation of image and mask together, drawn from one generator (so a resumed run draws the same).

* ``random_flips``: the paper's only augmentation, horizontal and vertical flips.
* ``batch_augment``: the CPU recipe's, on the whole batch in one ``grid_sample`` call: a horizontal
  flip, a small zoom and shift, and a gain/gamma change of the gray levels. No vertical flip:
  ultrasound has a direction (calcifications cast their shadow away from the probe, and a flipped
  image puts it above them), and no rotation for the same reason. Gain and gamma stand in for the
  scanner's gain, dynamic range and TGC, which differ between carts.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def as_float_images(images: torch.Tensor) -> torch.Tensor:
    """uint8 gray levels (how the data set is held in memory) -> float32 in [0, 1]; float passes through."""
    if images.dtype == torch.uint8:
        return images.float().mul_(1.0 / 255.0)
    return images.float()


def random_flips(
    images: torch.Tensor, masks: torch.Tensor, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Flip each (C, H, W) sample left-right and/or up-down with probability 1/2 each.

    The draws come from ``generator`` only (two per sample, always), so a run is reproducible and a
    resumed run draws the same flips as an uninterrupted one.
    """
    if images.shape[0] != masks.shape[0] or images.shape[-2:] != masks.shape[-2:]:
        raise ValueError(f"images {tuple(images.shape)} and masks {tuple(masks.shape)} do not pair up")
    draws = torch.rand(images.shape[0], 2, generator=generator) < 0.5
    images = as_float_images(images).clone()
    masks = masks.float().clone()
    for i in range(images.shape[0]):
        dims = [d for d, flip in zip((-1, -2), draws[i].tolist()) if flip]
        if dims:
            images[i] = torch.flip(images[i], dims)
            masks[i] = torch.flip(masks[i], dims)
    return images, masks


def batch_augment(
    images: torch.Tensor,
    masks: torch.Tensor,
    generator: torch.Generator,
    zoom: tuple[float, float] = (0.92, 1.12),
    shift: float = 0.06,
    gamma: tuple[float, float] = (0.75, 1.33),
    gain: tuple[float, float] = (0.85, 1.15),
) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, 1, H, W) images (uint8 or float) and {0, 1} masks -> augmented float32 images and masks.

    Per sample: flip left-right with probability 1/2, zoom by a factor in ``zoom`` (> 1 enlarges),
    shift by up to ``shift`` of the side in x and y, then ``gain * x ** gamma`` clipped to [0, 1]
    (gamma log-uniform). The mask follows the geometry (bilinear, then > 0.3, so a one-pixel focus
    survives a slight zoom-out); the border is mirrored for both. Six draws per sample, always.
    """
    if images.shape[0] != masks.shape[0] or images.shape[-2:] != masks.shape[-2:]:
        raise ValueError(f"images {tuple(images.shape)} and masks {tuple(masks.shape)} do not pair up")
    x = as_float_images(images)
    n = x.shape[0]
    r = torch.rand(n, 6, generator=generator, dtype=torch.float64)
    sign = torch.where(r[:, 0] < 0.5, -1.0, 1.0)
    z = zoom[0] + (zoom[1] - zoom[0]) * r[:, 1]
    theta = torch.zeros(n, 2, 3, dtype=torch.float64)
    theta[:, 0, 0] = sign / z
    theta[:, 1, 1] = 1.0 / z
    theta[:, 0, 2] = (2 * r[:, 2] - 1) * 2 * shift  # grid coordinates span [-1, 1]: a shift of f of the side is 2f
    theta[:, 1, 2] = (2 * r[:, 3] - 1) * 2 * shift
    grid = F.affine_grid(theta.float(), list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    m = F.grid_sample(masks.float(), grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    g = torch.exp(math.log(gamma[0]) + (math.log(gamma[1]) - math.log(gamma[0])) * r[:, 4]).float()
    k = (gain[0] + (gain[1] - gain[0]) * r[:, 5]).float()
    x = (x.clamp(0, 1) ** g[:, None, None, None] * k[:, None, None, None]).clamp(0, 1)
    return x, (m > 0.3).float()
