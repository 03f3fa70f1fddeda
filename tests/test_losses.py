"""Focal Tversky deep supervision: perfect = 0, FN costs more than FP, one-pixel targets survive."""

from __future__ import annotations

import pytest
import torch

from edgecalc.model import CSAGNet, DSAGNet, get_preset
from edgecalc.train.losses import (
    ALPHA,
    BETA,
    GAMMA,
    blob_dice_loss,
    combined_loss,
    focal_tversky_loss,
    pooled_target,
    segmentation_term,
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


def _two_foci():
    """One image: a 2x2 punctate focus and a 6x6 macro; a second image without any."""
    t = torch.zeros(2, 1, 24, 24)
    t[0, 0, 2:4, 2:4] = 1
    t[0, 0, 12:18, 12:18] = 1
    return t


def test_blob_loss_weighs_a_missed_small_focus_like_a_missed_large_one():
    t = _two_foci()
    assert blob_dice_loss(t.clone(), t).item() == pytest.approx(0.0)
    small_missed, large_missed = t.clone(), t.clone()
    small_missed[0, 0, 2:4, 2:4] = 0
    large_missed[0, 0, 12:18, 12:18] = 0
    blob_small, blob_large = blob_dice_loss(small_missed, t).item(), blob_dice_loss(large_missed, t).item()
    assert blob_small > 0.3 and blob_large > 0.3 and abs(blob_small - blob_large) < 0.15
    # the pixel-summed Dice barely notices the small focus: 4 pixels of 40
    dice_small = segmentation_term(small_missed.clamp(0.001, 0.999), t, "bce-dice", final=True).item()
    dice_large = segmentation_term(large_missed.clamp(0.001, 0.999), t, "bce-dice", final=True).item()
    assert dice_large > 4 * dice_small


def test_blob_loss_leaves_the_other_components_out_and_counts_false_blobs():
    t = _two_foci()
    false_blob = t.clone()
    false_blob[0, 0, 20:23, 2:5] = 1  # a false focus costs both components
    assert blob_dice_loss(false_blob, t).item() > 0
    small_only = torch.zeros_like(t)
    small_only[0, 0, 2:4, 2:4] = 1
    # each focus's Dice is its own: a prediction of the small focus alone scores it 1 and the macro 0
    assert blob_dice_loss(small_only, t).item() == pytest.approx(0.5, abs=0.02)


def test_blob_loss_without_any_focus_is_a_zero_with_a_gradient():
    pred = torch.rand(2, 1, 8, 8, requires_grad=True)
    loss = blob_dice_loss(pred, torch.zeros(2, 1, 8, 8))
    loss.backward()
    assert loss.item() == 0.0 and pred.grad is not None and torch.all(pred.grad == 0)


def test_blob_term_only_on_the_final_output():
    t = _two_foci()
    pred = (t * 0.8 + 0.1).requires_grad_(True)
    plain = segmentation_term(pred, t, "bce-dice", final=True).item()
    assert segmentation_term(pred, t, "bce-dice-blob", final=False).item() == pytest.approx(plain)
    blob = segmentation_term(pred, t, "bce-dice-blob", final=True)
    assert blob.item() == pytest.approx(plain + blob_dice_loss(pred, t).item())
    blob.backward()
    assert torch.isfinite(pred.grad).all()
