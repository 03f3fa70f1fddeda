"""Decision smoothing (no flicker) and the frame checks that keep bad frames out."""

from __future__ import annotations

import numpy as np
import pytest

from edgecalc.runtime.live.decision import DecisionSmoother
from edgecalc.runtime.source.frame_check import frame_problem


def test_hovering_score_never_flickers():
    sm = DecisionSmoother(threshold=0.5, band=0.1, alpha=0.3)
    rng = np.random.default_rng(0)
    decisions = [sm.update(0.5 + rng.uniform(-0.04, 0.04))[1] for _ in range(200)]
    assert len(set(decisions)) == 1


def test_raw_threshold_would_flicker_on_the_same_scores():
    """The case above is a real flicker hazard: the unsmoothed decision toggles."""
    rng = np.random.default_rng(0)
    raw = [0.5 + rng.uniform(-0.04, 0.04) >= 0.5 for _ in range(200)]
    assert sum(a != b for a, b in zip(raw, raw[1:])) > 50


def test_sustained_change_flips_within_a_few_frames():
    sm = DecisionSmoother(alpha=0.3)
    for _ in range(10):
        sm.update(0.1)
    flips = [sm.update(0.9)[1] for _ in range(10)]
    assert flips.index(True) <= 4
    back = [sm.update(0.1)[1] for _ in range(10)]
    assert back.index(False) <= 4


def test_bad_parameters_are_refused():
    with pytest.raises(ValueError):
        DecisionSmoother(alpha=0)
    with pytest.raises(ValueError):
        DecisionSmoother(threshold=0.95, band=0.2)


@pytest.mark.parametrize(
    "frame,reason",
    [
        (None, "no frame"),
        (np.zeros((0, 0), np.uint8), "empty"),
        (np.zeros((10, 10, 10, 3), np.uint8), "shape"),
        (np.zeros((100, 100, 2), np.uint8), "shape"),
        (np.zeros((8, 100), np.uint8), "smaller"),
        (np.ones((100, 100), np.float64), "dtype"),
        (np.zeros((100, 100, 3), np.uint8), "blank"),
        ("frame", "not an array"),
    ],
)
def test_bad_frames_are_named(frame, reason):
    assert reason in frame_problem(frame)


def test_good_frames_pass():
    rng = np.random.default_rng(1)
    assert frame_problem(rng.integers(0, 255, (360, 560), np.uint8)) is None
    assert frame_problem(rng.integers(0, 255, (360, 560, 3), np.uint8)) is None
    assert frame_problem(rng.integers(0, 65535, (64, 64), np.uint16)) is None
