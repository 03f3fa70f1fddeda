"""Focal Tversky deep supervision: perfect = 0, FN costs more than FP, one-pixel targets survive."""

from __future__ import annotations

import pytest
import torch

from edgecalc.model import CSAGNet, DSAGNet, get_preset
from edgecalc.train.losses import (
    ALPHA,
    BETA,
    GAMMA,
    combined_loss,
    focal_tversky_loss,
    pooled_target,
    tversky_index,
    tversky_loss,
)


def _mask(n=2, size=32):
    t = torch.zeros(n, 1, size, size)
    t[:, :, 10:16, 12:20] = 1
    return t


def test_parameters_are_the_papers():
    assert (ALPHA, BETA, GAMMA) == (0.7, 0.3, 4 / 3) and ALPHA > BETA


def test_perfect_prediction_costs_nothing_and_has_finite_gradient():
    t = _mask()
    p = t.clone().requires_grad_(True)
    loss = focal_tversky_loss(p, t)
    assert loss.item() == 0.0 and tversky_loss(t, t).item() == 0.0
    loss.backward()
    assert torch.isfinite(p.grad).all()
    empty = torch.zeros(1, 1, 8, 8)
    assert focal_tversky_loss(empty, empty).item() == 0.0  # no calcification, none predicted


def test_tversky_index_is_per_image():
    t = _mask()
    p = t.clone()
    p[1] = 0
    ti = tversky_index(p, t)
    assert ti.shape == (2,) and ti[0] == 1 and ti[1] < 1


def test_false_negatives_cost_more_than_false_positives():
    t = _mask(1)
    n = int(t.sum())
    fn = t.clone()
    fn.view(-1)[t.view(-1).nonzero()[:5]] = 0  # 5 missed pixels
    fp = t.clone()
    fp.view(-1)[(t.view(-1) == 0).nonzero()[:5]] = 1  # 5 extra pixels
    assert n > 5
    assert focal_tversky_loss(fn, t) > focal_tversky_loss(fp, t) > 0
    assert tversky_loss(fn, t) > tversky_loss(fp, t) > 0


@pytest.mark.parametrize("y,x", [(0, 0), (63, 63), (17, 42), (1, 62)])
def test_one_pixel_calcification_survives_every_pyramid_target(y, x):
    t = torch.zeros(1, 1, 64, 64)
    t[0, 0, y, x] = 1
    for size in (32, 16, 8):
        small = pooled_target(t, (size, size))
        assert small.sum() == 1 and small[0, 0, y * size // 64, x * size // 64] == 1


def test_combined_loss_stage_one_and_two():
    torch.manual_seed(0)
    x, t = torch.rand(2, 1, 32, 32), _mask()
    labels = torch.tensor([1, 0])
    ds = DSAGNet(get_preset("lite", 32))
    loss1, parts1 = combined_loss(ds(x), t)
    assert "cross_entropy" not in parts1 and len([k for k in parts1 if k.startswith("seg_") and k != "seg_final"]) == 3
    assert parts1["total"] == pytest.approx(loss1.item())
    cs = CSAGNet(get_preset("lite", 32))
    loss2, parts2 = combined_loss(cs(x), t, labels)
    assert parts2["cross_entropy"] > 0 and parts2["total"] == pytest.approx(loss2.item())
    with pytest.raises(ValueError, match="needs image-level labels"):
        combined_loss(cs(x), t)
