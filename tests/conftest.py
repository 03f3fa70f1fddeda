"""Shared test fixtures and the project paths tests need."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
#: Real data lives beside the repository (read-only); tests that need it skip where it is absent.
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data folder {SHARED_DATA} is absent (it sits beside the repository)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def tiny_model_files(tmp_path_factory):
    """(dir, batch, reference outputs): A tiny CS-AGnet exported to TorchScript and ONNX, with its eager outputs on a fixed batch."""
    torch = pytest.importorskip("torch", reason="exporting the test model needs torch (the [train] extra)")
    import numpy as np

    from edgecalc.model.config import get_preset
    from edgecalc.model.csagnet import CSAGNet, ExportWrapper, INPUT_NAME, OUTPUT_NAMES

    torch.manual_seed(0)
    cfg = get_preset("lite", input_size=32)
    wrapper = ExportWrapper(CSAGNet(cfg).eval()).eval()
    x = torch.from_numpy(np.random.default_rng(0).random((2, 1, 32, 32), dtype=np.float32))
    with torch.no_grad():
        ref = [o.numpy() for o in wrapper(x)]
        traced = torch.jit.freeze(torch.jit.trace(wrapper, x))
    d = tmp_path_factory.mktemp("tiny")
    traced.save(str(d / "model.ts"))
    torch.onnx.export(wrapper, x, str(d / "model.onnx"), input_names=[INPUT_NAME], output_names=list(OUTPUT_NAMES),
                      dynamic_axes={INPUT_NAME: {0: "batch"}, **{n: {0: "batch"} for n in OUTPUT_NAMES}},
                      opset_version=17, dynamo=False)
    return d, x.numpy(), dict(zip(OUTPUT_NAMES, ref))


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory):
    """A real export bundle (TorchScript, fp32 + int8 ONNX, manifest, parity) of an untrained tiny CS-AGnet."""
    torch = pytest.importorskip("torch", reason="exporting needs torch (the [train] extra)")
    from edgecalc.export.pipeline import ExportOptions, export_bundle
    from edgecalc.model.config import get_preset
    from edgecalc.model.csagnet import CSAGNet
    from edgecalc.model.weights import save_model

    torch.manual_seed(0)
    root = tmp_path_factory.mktemp("tinybundle")
    weights = save_model(CSAGNet(get_preset("lite", input_size=32)), root / "weights" / "tiny.safetensors")
    out = root / "bundle"
    export_bundle(ExportOptions(weights=weights, precision="int8", calib_size=16, parity_size=8, out=out,
                                engine=False, command="test"), log=lambda m: None)
    return out, weights


# Hypothesis profiles for the fuzz suite (tests/fuzz). "default", what the normal test run uses:
# derandomised (a fixed seed, so CI is reproducible), no example database, a small budget per test.
# "long": `python -m pytest tests/fuzz --hypothesis-profile long`, 50x the examples with random seeds,
# for a session that hunts crashes (not in CI); it must say derandomize=False itself, as a profile
# registered without a parent inherits the loaded one ("default"). `--hypothesis-seed=N` replays a
# long run; print_blob prints a failure's @reproduce_failure line. A failure either finds becomes an
# @example in its test (tests/test_hypothesis_profiles.py checks these settings).
# EDGECALC_FUZZ_LONG_EXAMPLES=N sets the long profile's examples per test (3000 unset), for a long run
# that must fit a time budget; docs/reliability.md's "Long runs" table says which N each count used.
LONG_EXAMPLES_ENV = "EDGECALC_FUZZ_LONG_EXAMPLES"


def long_examples() -> int:
    """The long profile's examples per test: 3000, or ``$EDGECALC_FUZZ_LONG_EXAMPLES`` (a positive integer)."""
    raw = os.environ.get(LONG_EXAMPLES_ENV, "3000")
    if not raw.strip().isdigit() or int(raw) < 1:
        raise pytest.UsageError(f"{LONG_EXAMPLES_ENV}={raw!r} is not a positive integer")
    return int(raw)


try:
    from hypothesis import HealthCheck, settings
except ImportError:  # the [dev] extra is not installed: the fuzz tests are skipped by their importorskip
    pass
else:
    _quiet = [HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
    settings.register_profile("default", max_examples=60, derandomize=True, database=None, deadline=None,
                              suppress_health_check=_quiet)
    settings.register_profile("long", max_examples=long_examples(), derandomize=False, database=None,
                              print_blob=True, deadline=None, suppress_health_check=_quiet)
    settings.load_profile("default")


def decoded(path: Path) -> list[np.ndarray]:
    """Every frame of a video file, decoded by OpenCV (what a reader of the recording sees)."""
    import cv2

    cap = cv2.VideoCapture(str(path))
    out = []
    while True:
        ok, f = cap.read()
        if not ok:
            break
        out.append(f)
    cap.release()
    return out
