"""Speed of scan area + the shipped learned locator on a 560x360 phantom frame (one thread).

    python -m pytest benchmarks/test_learned_locator_speed.py --benchmark-only
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from edgecalc.data.phantom import generate_frame
from edgecalc.runtime.locate.learned import LearnedLocator


@pytest.fixture(scope="module")
def frame() -> np.ndarray:
    cv2.setNumThreads(1)
    return generate_frame(11, positive=True).image


@pytest.fixture(scope="module")
def locator() -> LearnedLocator:
    return LearnedLocator(threads=1)


def test_scan_area_plus_learned_locator_560x360(benchmark, frame, locator):
    assert benchmark(locator, frame) is not None


@pytest.mark.parametrize("member", [0, 1], ids=["member0", "member1"])
def test_learned_locator_network_only(benchmark, locator, member):
    """Each member network alone, on its own input size (the ensemble runs them one after the other)."""
    if member >= len(locator.members):
        pytest.skip(f"the bundle has {len(locator.members)} member(s)")
    size, backend = locator.members[member]
    benchmark.extra_info["input_size"] = size
    x = np.random.default_rng(0).random((1, 1, size, size), dtype=np.float32)
    benchmark(backend.infer, x)
