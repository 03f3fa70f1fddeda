"""Every backend that can run here gives the eager model's outputs on the same batch."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from edgecalc.runtime.engine.backends import BackendUnavailable, open_backend

pytest.importorskip("torch", reason="exporting the test model needs torch (the [train] extra)")


def check_close(out, ref, tol=1e-4):
    assert set(out) == set(ref)
    for name in ref:
        assert out[name].shape == ref[name].shape, name
        assert np.max(np.abs(out[name] - ref[name])) <= tol, name


def test_onnxruntime_matches_eager(tiny_model_files):
    d, x, ref = tiny_model_files
    with open_backend("onnxruntime", d / "model.onnx", threads=1) as be:
        assert be.input_name == "image" and be.output_names == ("mask", "score", "attention")
        check_close(be.infer(x), ref)
        check_close({k: v for k, v in be.infer(x[:1]).items()}, {k: v[:1] for k, v in ref.items()})


def test_torchscript_matches_eager(tiny_model_files):
    d, x, ref = tiny_model_files
    with open_backend("torchscript", d / "model.ts", threads=1) as be:
        check_close(be.infer(x), ref)


@pytest.mark.skipif(importlib.util.find_spec("openvino") is None,
                    reason="openvino is not installed (pip install 'edgecalc[openvino]')")
def test_openvino_matches_eager(tiny_model_files):
    d, x, ref = tiny_model_files
    with open_backend("openvino", d / "model.onnx", threads=1) as be:
        check_close(be.infer(x), ref, tol=1e-4)


def test_tensorrt_unavailable_is_explained(tmp_path):
    if importlib.util.find_spec("tensorrt") is not None:
        pytest.skip("tensorrt is installed here; the GPU test covers it")
    with pytest.raises(BackendUnavailable, match="tensorrt is not installed"):
        open_backend("tensorrt", tmp_path / "model.engine")


def test_unknown_backend_and_bad_input(tiny_model_files):
    d, x, _ = tiny_model_files
    with pytest.raises(ValueError, match="unknown backend"):
        open_backend("tflite", d / "model.onnx")
    with pytest.raises(FileNotFoundError, match="missing.onnx"):
        open_backend("onnxruntime", d / "missing.onnx")
    with open_backend("onnxruntime", d / "model.onnx") as be:
        with pytest.raises(ValueError, match="NCHW"):
            be.infer(x[0])


CPU_BACKENDS = [("onnxruntime", "model.onnx", "session"), ("torchscript", "model.ts", "module"),
                pytest.param("openvino", "model.onnx", "compiled", marks=pytest.mark.skipif(
                    importlib.util.find_spec("openvino") is None, reason="openvino is not installed (pip install 'edgecalc[openvino]')"))]


@pytest.mark.parametrize("name, file, handle", CPU_BACKENDS)
def test_close_drops_the_engine_and_a_closed_backend_refuses_to_infer(tiny_model_files, name, file, handle):
    """close() lets go of what holds the engine (no object keeps it alive); infer after it is a clear error."""
    import gc
    import weakref

    from edgecalc.runtime.engine.backends import BackendClosed

    d, x, ref = tiny_model_files
    be = open_backend(name, d / file, threads=1)
    check_close(be.infer(x), ref)
    try:
        engine = weakref.ref(getattr(be, handle))
    except TypeError:  # an engine type without weak references: at least the backend's handle must be gone
        engine = None
    be.close()
    gc.collect()
    assert be.closed and getattr(be, handle) is None
    if engine is not None:
        assert engine() is None, f"the {name} engine outlived close()"
    with pytest.raises(BackendClosed, match=f"the {name} backend was closed"):
        be.infer(x)
    be.close()  # twice is fine
    with open_backend(name, d / file, threads=1) as again:
        pass
    assert again.closed
