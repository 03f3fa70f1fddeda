"""Runtime speed: preprocessing, each backend's inference, the overlay, and the whole live pipeline.

    python -m pytest benchmarks/test_runtime_speed.py --benchmark-only

Each benchmark runs on the shipped bundle and phantom frames; backends that cannot run here skip
with the reason. The per-row table with ratios lives in `edgecalc bench` (docs/performance.md).
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from edgecalc.data.preprocess import preprocess
from edgecalc.runtime.engine.backends import BackendUnavailable
from edgecalc.runtime.engine.bundle import BundleError
from edgecalc.runtime.engine.select import open_for_bundle
from edgecalc.runtime.live.overlay import OverlayOptions, draw_overlay, paste_crop

CROP = (150, 60, 200, 200)


def test_preprocess_crop(benchmark, cine_frames, shipped_bundle):
    x, y, w, h = CROP
    crops = itertools.cycle([f[y:y + h, x:x + w] for f in cine_frames])
    benchmark(lambda: preprocess(next(crops), shipped_bundle.input_size))


@pytest.mark.parametrize("backend,precision", [("onnxruntime", "fp32"), ("onnxruntime", "int8"),
                                               ("openvino", "fp32"), ("openvino", "int8"),
                                               ("torchscript", "fp32")])
def test_backend_inference_batch1(benchmark, shipped_bundle, backend, precision):
    try:
        be = open_for_bundle(shipped_bundle, backend, precision)
    except (BackendUnavailable, BundleError) as exc:
        pytest.skip(f"{backend} {precision}: {exc}")
    s = shipped_bundle.input_size
    x = np.random.default_rng(0).random((1, 1, s, s), dtype=np.float32)
    be.infer(x)
    benchmark(lambda: be.infer(x))
    be.close()


def test_overlay(benchmark, cine_frames):
    frame = cine_frames[0]
    mask = np.zeros(frame.shape[:2], bool)
    mask[120:130, 230:250] = True
    att = paste_crop(np.random.default_rng(0).random((24, 24), dtype=np.float32), CROP, frame.shape)
    opts = OverlayOptions(show_attention=True, hud=["20.0 FPS  40.0 ms", "onnxruntime fp32"])
    benchmark(lambda: draw_overlay(frame, mask=mask, box=CROP, score=0.7, decision=True, attention=att, options=opts))


def test_live_pipeline_end_to_end(benchmark, cine_frames, shipped_bundle):
    """Frame in, overlaid frame out: check, crop (auto: scan area + locator every k), infer, overlay."""
    from edgecalc.runtime.live.build import build_pipeline

    setup = build_pipeline(shipped_bundle.root, backend="onnxruntime")
    frames = itertools.cycle(enumerate(cine_frames))

    def one():
        i, f = next(frames)
        return setup.pipeline.process(f, i)

    res = benchmark(one)
    assert res.overlay is not None
    setup.selection.backend.close()
