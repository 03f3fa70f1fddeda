"""Scan-area detection: known rectangles on synthetic screens, real DDTI frames, edge cases."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from _synthetic_screen import screen, speckle
from edgecalc.locator.evaluate_scan_area import box_iou
from edgecalc.runtime.locate.scan_area import ScanArea, find_scan_areas, largest_scan_area


@pytest.mark.parametrize("seed,rect", [(0, (120, 10, 290, 300)), (1, (60, 30, 400, 250)), (2, (140, 6, 230, 330))])
def test_single_window_found(seed, rect):
    areas = find_scan_areas(screen([rect], seed))
    assert len(areas) == 1
    assert box_iou(areas[0].box, rect) >= 0.9


def test_dual_window_gives_two_sorted_rectangles():
    rects = [(30, 20, 240, 300), (290, 20, 240, 300)]
    areas = find_scan_areas(screen(rects, 3))
    assert len(areas) == 2
    assert areas[0].x < areas[1].x
    for a, r in zip(areas, rects):
        assert box_iou(a.box, r) >= 0.9


def test_bgr_input_matches_gray():
    gray = screen([(120, 10, 290, 300)], 4)
    assert find_scan_areas(cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR)) == find_scan_areas(gray)


@pytest.mark.parametrize("value", [0, 40, 128, 255])
def test_uniform_frame_has_no_scan_area(value):
    frame = np.full((360, 560), value, np.uint8)
    assert find_scan_areas(frame) == []
    assert largest_scan_area(frame) is None


def test_only_text_has_no_scan_area():
    assert find_scan_areas(screen([], 5)) == []


def test_ultrasound_only_frame_is_whole_frame():
    frame = speckle(np.random.default_rng(6), 360, 560)
    (area,) = find_scan_areas(frame)
    assert box_iou(area.box, (0, 0, 560, 360)) >= 0.95


def test_black_shadow_column_does_not_split_or_trim():
    rect = (100, 20, 360, 300)
    frame = screen([rect], 7)
    frame[120:320, 100:150] = 0  # air shadow at the side, from some depth down
    frame[160:320, 300:330] = 0  # acoustic shadow under a calcification
    areas = find_scan_areas(frame)
    assert len(areas) == 1 and box_iou(areas[0].box, rect) >= 0.9


def test_deterministic_and_frozen():
    frame = screen([(120, 10, 290, 300)], 8)
    assert find_scan_areas(frame) == find_scan_areas(frame.copy())
    area = find_scan_areas(frame)[0]
    assert isinstance(area, ScanArea) and 0.0 <= area.score <= 1.0
    with pytest.raises(AttributeError):
        area.x = 0  # type: ignore[misc]


def test_bad_input_named():
    with pytest.raises(ValueError, match="shape"):
        find_scan_areas(np.zeros((2, 3, 4, 5), np.uint8))


DDTI_IDS = (1, 43, 81, 296, 10004, 10176, 20012, 20170)


def test_ddti_nodule_inside_scan_area(shared_data):
    root = shared_data / "ddti-nodules"
    for i in DDTI_IDS:
        img = cv2.imread(str(root / "images" / f"{i}.png"), cv2.IMREAD_GRAYSCALE)
        mask = cv2.imread(str(root / "masks" / f"{i}.png"), cv2.IMREAD_GRAYSCALE) > 127
        area = largest_scan_area(img)
        assert area is not None, i
        inside = np.count_nonzero(mask[area.slice()])
        assert inside >= 0.97 * np.count_nonzero(mask), i  # DDTI masks overshoot the image edge by up to ~9 px


def test_phantom_frames_scan_area():
    phantom = pytest.importorskip("edgecalc.data.phantom")
    for seed in range(6):
        fr = phantom.generate_frame(seed, seed % 2 == 0)
        areas = find_scan_areas(fr.image)
        assert len(areas) == 1, seed
        assert box_iou(areas[0].box, tuple(fr.scan_area)) >= 0.9, seed
