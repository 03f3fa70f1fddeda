"""Random horizontal and vertical flips of image and mask together (the paper's only augmentation)."""

from __future__ import annotations

import torch


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
    images = images.clone()
    masks = masks.clone()
    for i in range(images.shape[0]):
        dims = [d for d, flip in zip((-1, -2), draws[i].tolist()) if flip]
        if dims:
            images[i] = torch.flip(images[i], dims)
            masks[i] = torch.flip(masks[i], dims)
    return images, masks
