"""A tiny overfit on 8 phantom crops: the combined loss halves and the class head separates them."""

from __future__ import annotations

import numpy as np
import torch

from edgecalc.data.phantom import generate_crop
from edgecalc.model import CSAGNet, get_preset
from edgecalc.train.losses import combined_loss

SIZE = 64
STEPS = 50


def _batch() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    samples = [generate_crop(seed, positive=seed % 2 == 0, size=SIZE) for seed in range(8)]
    x = torch.from_numpy(np.stack([s.image for s in samples])[:, None].astype(np.float32) / 255.0)
    masks = torch.from_numpy(np.stack([s.mask for s in samples])[:, None] > 0).float()
    labels = torch.tensor([s.label for s in samples])
    return x, masks, labels


def _recalibrate_batchnorm(model: torch.nn.Module, x: torch.Tensor) -> None:
    """Running statistics lag 50 fast Adam steps: recompute them on the batch (cumulative average)."""
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None
    model.train()
    with torch.no_grad():
        model(x)


def test_overfit_eight_phantom_crops():
    torch.manual_seed(0)
    torch.use_deterministic_algorithms(True)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a 64-px lite model gains nothing from more; avoids OpenMP spin on a busy CI box
    try:
        x, masks, labels = _batch()
        assert labels.tolist() == [1, 0] * 4 and masks[labels == 1].sum() > 0 and masks[labels == 0].sum() == 0
        model = CSAGNet(get_preset("lite", SIZE)).train()
        opt = torch.optim.Adam(model.parameters(), lr=1e-2)
        losses = []
        for _ in range(STEPS):
            opt.zero_grad()
            loss, _ = combined_loss(model(x), masks, labels)
            loss.backward()
            opt.step()
            losses.append(loss.item())
        assert losses[-1] <= 0.5 * losses[0], f"loss {losses[0]:.3f} -> {losses[-1]:.3f}"

        _recalibrate_batchnorm(model, x)
        model.eval()
        with torch.no_grad():
            score = model(x).score
        assert score[labels == 1].min() > 0.5 > score[labels == 0].max(), score
    finally:
        torch.use_deterministic_algorithms(False)
        torch.set_num_threads(threads)
