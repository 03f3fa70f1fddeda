"""A linear score head on the encoder's pooled features: the transfer head for small real data sets.

Why: on 301 real DDTI crops with case-level labels, fine-tuning the whole phantom-trained CS-AGnet
overfits (docs/real-data.md), while one linear layer on the frozen encoder's pooled features,
fitted as an L2 logistic regression (``edgecalc/train/linear_probe.py``), ranks the real crops
better. The head keeps the network one exportable graph: the features' standardisation is folded
into the layer's weights, so export, the runtime and parity see an ordinary CS-AGnet.

Features: the mean and the maximum of encoder blocks 2, 3, 4 and the bridge (the full-resolution
block 1 is left out: its channels see little more than the local gray level) over the ellipse
inscribed in the central ``share`` of each map — the nodule fills the crop's centre, the tissue
around it the corners — means first, then maxima, each in block order. With ``flip`` the features
are averaged over the image and its left-right mirror (a second encoder pass inside the graph:
the head's answer does not depend on which way the probe was held). With ``mask_side`` the
network's own segmentation mask (its final sigmoid output, full resolution) adds its mean and
maximum over the same ellipse (with ``flip`` averaged with the mirror pass's mask, so the answer
still does not depend on the probe's side): on real DDTI crops what the
phantom-trained segmentation branch marks carries evidence the pooled encoder features miss
(docs/real-data.md, "The mask joins the probe").
"""

from __future__ import annotations

import torch
from torch import nn

#: A masked maximum sets the positions outside the ellipse this far below any feature value
#: (a finite constant rather than -inf, which some exporters and INT8 calibrators mishandle).
_OUTSIDE = 1.0e4
#: What a head built with ``mask_side`` appends to the features: the mask's mean and its maximum.
MASK_FEATURES = 2


def ellipse_weights(side: int, share: float) -> torch.Tensor:
    """(side, side) float 0/1: the cells whose centres lie in the ellipse inscribed in the central
    ``share`` of the map (share >= sqrt(2) covers the whole map); never empty (the central cells)."""
    # on the CPU whatever the default device (a meta-device skeleton cannot test for emptiness)
    c = (torch.arange(side, dtype=torch.float32, device="cpu") + 0.5 - side / 2) / (share * side / 2)
    w = ((c[:, None] ** 2 + c[None, :] ** 2) <= 1.0).float()
    if w.sum() == 0:
        lo, hi = (side - 1) // 2, side // 2 + 1
        w[lo:hi, lo:hi] = 1.0
    return w


def pool_features(features: list[torch.Tensor], weights: list[torch.Tensor]) -> torch.Tensor:
    """(N, C_i, h_i, w_i) maps and their (h_i, w_i) 0/1 regions -> (N, 2 * sum C_i): region means, then region maxima."""
    means = [(f * w).sum(dim=(2, 3)) / w.sum() for f, w in zip(features, weights)]
    maxima = [(f * w - _OUTSIDE * (1.0 - w)).amax(dim=(2, 3)) for f, w in zip(features, weights)]
    return torch.cat(means + maxima, dim=1)


class PooledLinearHead(nn.Module):
    """Encoder features (block outputs + bridge) -> two-class logits ``[0, w·f + b]``.

    The first logit is fixed at 0, so the softmax's positive probability is ``sigmoid(w·f + b)``:
    exactly a logistic regression on ``f`` (``pooled``). ``sides`` are the maps' sizes at the
    network's input size (the regions are buffers, rebuilt with the network, not saved).
    """

    def __init__(self, channels: tuple[int, ...], sides: tuple[int, ...], share: float, flip: bool,
                 mask_side: int | None = None) -> None:
        super().__init__()
        self.channels, self.sides, self.share, self.flip = tuple(channels), tuple(sides), float(share), bool(flip)
        self.mask_side = None if mask_side is None else int(mask_side)
        self.n_encoder = 2 * sum(self.channels)
        self.fc = nn.Linear(self.n_encoder + (0 if self.mask_side is None else MASK_FEATURES), 1)
        for i, side in enumerate(self.sides):
            self.register_buffer(f"region{i}", ellipse_weights(side, share), persistent=False)
        if self.mask_side is not None:
            self.register_buffer("mask_region", ellipse_weights(self.mask_side, share), persistent=False)

    def regions(self, features: list[torch.Tensor]) -> list[torch.Tensor]:
        """The stored regions; for maps of another size (an input size other than the config's) new ones."""
        out = []
        for i, f in enumerate(features):
            w = getattr(self, f"region{i}")
            out.append(w if tuple(w.shape) == tuple(f.shape[2:]) else ellipse_weights(int(f.shape[2]), self.share).to(f))
        return out

    def _mask_region(self, mask: torch.Tensor) -> torch.Tensor:
        w = self.mask_region
        return w if tuple(w.shape) == tuple(mask.shape[2:]) else ellipse_weights(int(mask.shape[2]), self.share).to(mask)

    def pooled(self, features: list[torch.Tensor], mirrored: list[torch.Tensor] | None = None,
               mask: torch.Tensor | None = None, mirrored_mask: torch.Tensor | None = None) -> torch.Tensor:
        """The head's input features; with ``mirrored`` (the mirror image's maps) the mean of both.
        A head built with ``mask_side`` appends the (N, 1, H, W) ``mask``'s mean and maximum (with
        ``mirrored_mask``, the mirror image's mask, the mean of both: the ellipse is symmetric)."""
        regions = self.regions(features)
        f = pool_features(features, regions)
        f = f if mirrored is None else 0.5 * (f + pool_features(mirrored, regions))
        if self.mask_side is None:
            return f
        if mask is None:
            raise ValueError("this linear head reads the segmentation mask too (linear_head_mask); pass it")
        region = [self._mask_region(mask)]
        g = pool_features([mask], region)
        g = g if mirrored_mask is None else 0.5 * (g + pool_features([mirrored_mask], region))
        return torch.cat([f, g], dim=1)

    def forward(self, features: list[torch.Tensor], mirrored: list[torch.Tensor] | None = None,
                mask: torch.Tensor | None = None, mirrored_mask: torch.Tensor | None = None) -> torch.Tensor:
        z = self.fc(self.pooled(features, mirrored, mask, mirrored_mask))
        return torch.cat([torch.zeros_like(z), z], dim=1)

    def mask_evidence(self, mask: torch.Tensor) -> torch.Tensor:
        """(N, H, W): the mask terms' share of the logit (zero for a head without them); the mean's term
        spread over its region, the maximum's on the pixel where the mask peaks."""
        if self.mask_side is None:
            return torch.zeros_like(mask[:, 0])
        r = self._mask_region(mask)
        w_mean, w_max = self.fc.weight[0, self.n_encoder], self.fc.weight[0, self.n_encoder + 1]
        out = mask[:, 0] * r * (w_mean / r.sum())
        top, where = (mask[:, 0] * r - _OUTSIDE * (1.0 - r)).flatten(1).max(dim=1)
        return out.flatten(1).scatter_add(1, where[:, None], (top * w_max)[:, None]).view_as(out)

    def evidence(self, features: list[torch.Tensor], size: tuple[int, int]) -> torch.Tensor:
        """(N, H, W): what each input pixel adds to the encoder's part of the logit ``w·f`` of one pass
        (no mirror, no bias, no mask terms: ``mask_evidence``).

        Exact: with ``mask_evidence`` the maps sum to the logit minus the bias. A mean-pooled term is spread over its region
        (each feature cell's share over the pixels it covers); a maximum's term sits on the cell where
        that channel peaks. This is what the score reads, the figure to show beside Grid-AG maps.
        """
        regions = self.regions(features)
        n_mean = sum(f.shape[1] for f in features)
        w_mean, w_max = self.fc.weight[0, :n_mean], self.fc.weight[0, n_mean:2 * n_mean]
        out = torch.zeros(features[0].shape[0], *size, dtype=features[0].dtype, device=features[0].device)
        start = 0
        for f, r in zip(features, regions):
            c, h, w = f.shape[1:]
            wm, wx = w_mean[start:start + c], w_max[start:start + c]
            start += c
            cell = torch.einsum("nchw,c->nhw", f, wm) * r / r.sum()
            masked = (f * r - _OUTSIDE * (1.0 - r)).flatten(2)  # (N, C, h*w)
            top, where = masked.max(dim=2)
            cell = cell.flatten(1).scatter_add(1, where, top * wx).view(-1, h, w)
            # nearest upsampling that keeps the sum: every pixel of a cell gets its share
            up = torch.nn.functional.interpolate(cell[:, None], size=size, mode="nearest")[:, 0]
            out += up * (h * w) / (size[0] * size[1])
        return out

