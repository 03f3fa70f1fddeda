"""Speed of scan-area detection and the classical locator on a 560x360 screen (one OpenCV thread)."""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from _synthetic_screen import screen  # noqa: E402

from edgecalc.runtime.locate.classical import locate_nodule  # noqa: E402
from edgecalc.runtime.locate.scan_area import find_scan_areas, largest_scan_area  # noqa: E402


@pytest.fixture(scope="module")
def frame() -> np.ndarray:
    cv2.setNumThreads(1)
    return screen([(120, 10, 290, 300)], 0)


def test_scan_area_560x360(benchmark, frame):
    assert benchmark(find_scan_areas, frame)


def test_scan_area_plus_classical_locator_560x360(benchmark, frame):
    def both():
        return locate_nodule(frame, largest_scan_area(frame))

    benchmark(both)
