"""Classical locator: finds a dark compact nodule in synthetic speckle; sane outputs on real frames."""

from __future__ import annotations

import cv2
import numpy as np

from _synthetic_screen import screen
from edgecalc.runtime.locate.classical import Located, locate_nodule
from edgecalc.locator.evaluate_scan_area import box_iou
from edgecalc.runtime.locate.scan_area import largest_scan_area

RECT = (120, 10, 290, 300)


def _frame_with_nodule(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    frame = screen([RECT], seed)
    nod = np.zeros_like(frame)
    cv2.ellipse(nod, (250, 130), (45, 30), 10, 0, 360, 1, -1)
    frame = np.where(nod > 0, (frame * 0.4).astype(np.uint8), frame)
    return frame, nod.astype(bool)


def test_finds_dark_ellipse():
    frame, true = _frame_with_nodule()
    found = locate_nodule(frame)
    assert isinstance(found, Located)
    ys, xs = np.nonzero(true)
    tb = (xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1)
    assert box_iou(found.box, tb) >= 0.5
    assert 0.0 <= found.confidence <= 1.0
    assert found.mask.shape == frame.shape and found.mask.dtype == bool


def test_deterministic_and_inside_scan_area():
    frame, _ = _frame_with_nodule(1)
    a, b = locate_nodule(frame), locate_nodule(frame.copy())
    assert a.box == b.box and a.confidence == b.confidence and np.array_equal(a.mask, b.mask)
    x, y, w, h = a.box
    assert x >= RECT[0] and y >= RECT[1] and x + w <= RECT[0] + RECT[2] and y + h <= RECT[1] + RECT[3]


def test_black_frame_gives_none():
    assert locate_nodule(np.zeros((360, 560), np.uint8)) is None


def test_scan_area_outside_frame_named():
    import pytest

    with pytest.raises(ValueError, match="scan area"):
        locate_nodule(np.zeros((100, 100), np.uint8), (50, 50, 80, 80))


def test_real_frames_give_sane_output(shared_data):
    root = shared_data / "ddti-nodules"
    for i in (1, 81, 10004, 20089):
        img = cv2.imread(str(root / "images" / f"{i}.png"), cv2.IMREAD_GRAYSCALE)
        area = largest_scan_area(img)
        found = locate_nodule(img, area)
        if found is None:
            continue
        x, y, w, h = found.box
        assert area.x <= x and area.y <= y and x + w <= area.x + area.w and y + h <= area.y + area.h
        assert 0.0 <= found.confidence <= 1.0
