"""Shared inputs for the pytest-benchmark suite (`python -m pytest benchmarks --benchmark-only`)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def shipped_bundle():
    """The bundle shipped with the package: the model the cart actually runs."""
    from edgecalc.runtime.engine.bundle import load_bundle
    from edgecalc.runtime.shipped import default_bundle_dir

    path = default_bundle_dir()
    if path is None:
        pytest.skip("this build of edgecalc ships no default bundle (edgecalc/assets/bundle)")
    return load_bundle(path)


@pytest.fixture(scope="session")
def cine_frames():
    """30 phantom screen frames (BGR, 560x360), as a capture card delivers them."""
    import cv2

    from edgecalc.data.phantom import generate_cine

    return [cv2.cvtColor(f.image, cv2.COLOR_GRAY2BGR) for f in generate_cine(11, 30, positive=True)]
