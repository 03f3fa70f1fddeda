"""Box tracking between locator runs: the shift is the picture's, the crop follows a sliding probe."""

from __future__ import annotations

import numpy as np
import pytest

from edgecalc.data.phantom import generate_cine
from edgecalc.runtime.locate.tracker import BoxTracker, moved
from edgecalc.runtime.locate.cropper import AutoCropper
from edgecalc.locator.evaluate_scan_area import box_iou


@pytest.fixture(scope="module")
def sliding_cine():
    return list(generate_cine(1, 21, True, drift_mm_per_frame=0.25))


def test_shift_matches_the_probe_motion(sliding_cine):
    first = sliding_cine[0]
    tracker = BoxTracker()
    tracker.reset(first.image, first.nodule_box)
    for t in (1, 10, 20):
        dx, dy = tracker.shift(sliding_cine[t].image)
        true_dx = sliding_cine[t].nodule_box[0] - first.nodule_box[0]
        assert true_dx < 0  # the scene slides left under the probe
        assert abs(dx - true_dx) <= 2.0 and abs(dy) <= 2.0, (t, dx, dy, true_dx)


def test_a_featureless_picture_is_not_tracked():
    tracker = BoxTracker()
    flat = np.full((360, 560), 90, np.uint8)
    tracker.reset(flat, (200, 100, 80, 80))
    d = tracker.shift(flat)
    assert d is None or d == pytest.approx((0.0, 0.0), abs=1.0)  # never a spurious jump
    noise = np.random.default_rng(0).integers(0, 255, (360, 560), dtype=np.uint8)
    assert tracker.shift(noise) is None  # nothing in common with the reference: not trusted


def test_untracked_region_is_none():
    assert BoxTracker().shift(np.zeros((50, 50), np.uint8)) is None
    assert moved((10, 20, 30, 40), 2.6, -1.4) == (13, 19, 30, 40)


def _perfect_locator(cine, calls=None):
    """Answers the true nodule box of whichever cine frame it is shown."""
    truth = {id(f.image): f.nodule_box for f in cine}

    def locator(frame):
        if calls is not None:
            calls.append(1)
        return truth[id(frame)], 0.9, None

    return locator


def test_cropper_follows_the_probe_between_locator_runs(sliding_cine):
    """The locator runs on frames 0, 2, 6, 14 (interval doubling towards every=100); on frame 20 the
    tracked box is still on the nodule, the frozen one is 6 frames of probe motion behind."""
    tracked = AutoCropper(locator=_perfect_locator(sliding_cine), every=100)
    frozen = AutoCropper(locator=_perfect_locator(sliding_cine), every=100, track=False)
    for i, f in enumerate(sliding_cine):
        a, b = tracked(f.image, i), frozen(f.image, i)
    last = sliding_cine[-1].nodule_box
    assert box_iou(a.box, last) >= 0.9
    assert box_iou(b.box, last) < box_iou(a.box, last) - 0.1
    assert a.source == "locator"


def test_smoother_is_moved_before_the_next_locator_box(sliding_cine):
    """With motion compensation the EMA is not dragged behind a sliding probe: on every frame the
    locator runs on, the smoothed box stays on the true one (without it, the EMA lags)."""
    for track, expect_ok in ((True, True), (False, False)):
        calls: list[int] = []
        cropper = AutoCropper(locator=_perfect_locator(sliding_cine, calls), every=1, track=track)
        ious = [box_iou(cropper(f.image, i).box, f.nodule_box) for i, f in enumerate(sliding_cine)]
        assert len(calls) == len(sliding_cine)
        assert (min(ious[1:]) >= 0.9) == expect_ok, (track, min(ious[1:]))
