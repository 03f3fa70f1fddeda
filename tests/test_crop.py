"""square_crop geometry: square, holds the box, inside the scan area, margin respected."""

from __future__ import annotations

import numpy as np
import pytest

from edgecalc.runtime.locate.crop_geometry import square_crop
from edgecalc.runtime.locate.scan_area import ScanArea

AREA = (100, 20, 300, 280)


def _holds(crop, box):
    return crop[0] <= box[0] and crop[1] <= box[1] and crop[0] + crop[2] >= box[0] + box[2] and crop[1] + crop[3] >= box[1] + box[3]


def _inside(crop, area):
    return _holds(area, crop)


@pytest.mark.parametrize("box", [(200, 100, 50, 30), (101, 21, 40, 60), (330, 240, 60, 50), (150, 60, 200, 120)])
def test_square_holds_box_inside_area(box):
    crop = square_crop(box, AREA, 0.1, (360, 560))
    assert crop[2] == crop[3]
    assert _holds(crop, box) and _inside(crop, AREA)


def test_margin_respected_in_the_open():
    x, y, w, h = square_crop((200, 100, 50, 30), AREA, 0.1, (360, 560))
    assert w == 60  # 50 * (1 + 2 * 0.1)
    assert x <= 200 - 5 and x + w >= 250 + 5


def test_shift_before_shrink_at_border():
    crop = square_crop((100, 20, 40, 40), AREA, 0.25)
    assert crop == (100, 20, 60, 60)


def test_accepts_scan_area_object_and_random_boxes():
    rng = np.random.default_rng(0)
    area = ScanArea(*AREA)
    for _ in range(200):
        w, h = (int(v) for v in rng.integers(5, 250, 2))
        x = int(rng.integers(AREA[0], AREA[0] + AREA[2] - w + 1))
        y = int(rng.integers(AREA[1], AREA[1] + AREA[3] - min(h, AREA[3]) + 1))
        h = min(h, AREA[3] - (y - AREA[1]))
        crop = square_crop((x, y, w, h), area, 0.1, (360, 560))
        assert _holds(crop, (x, y, w, h)) and _inside(crop, AREA)
        if max(w, h) * 1.2 <= min(AREA[2], AREA[3]):
            assert crop[2] == crop[3]


def test_box_longer_than_area_short_side_stays_whole():
    crop = square_crop((10, 10, 300, 100), (0, 0, 560, 200))
    assert _holds(crop, (10, 10, 300, 100)) and crop[3] == 200


@pytest.mark.parametrize("args,match", [(((0, 0, 0, 5), AREA), "width or height"),
                                        (((0, 0, 5, 5), AREA), "outside"),
                                        (((150, 50, 5, 5), None), "scan_area or a frame_shape"),
                                        (("abc", AREA), "box must be")])
def test_bad_input_named(args, match):
    with pytest.raises(ValueError, match=match):
        square_crop(*args)


def test_negative_margin_rejected():
    with pytest.raises(ValueError, match="margin"):
        square_crop((150, 50, 5, 5), AREA, -0.1)
