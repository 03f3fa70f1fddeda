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


def _graph_whose_output_openvino_renames(path):
    """``image`` -> ``zeta`` (Identity of a Sigmoid), ``mask`` (Neg), ``alpha`` (Identity of the same Sigmoid).

    OpenVINO folds the Identities: ``alpha`` then carries the tensor names {"a_internal", "alpha"} and
    ``get_any_name()`` (the lexicographically first) says ``a_internal``.
    """
    import onnx
    from onnx import TensorProto, helper

    shape = [None, 1, 4, 4]
    nodes = [helper.make_node("Sigmoid", ["image"], ["a_internal"]),
             helper.make_node("Identity", ["a_internal"], ["zeta"]),
             helper.make_node("Neg", ["image"], ["mask"]),
             helper.make_node("Identity", ["a_internal"], ["alpha"])]
    graph = helper.make_graph(nodes, "renamed", [helper.make_tensor_value_info("image", TensorProto.FLOAT, shape)],
                              [helper.make_tensor_value_info(n, TensorProto.FLOAT, shape) for n in ("zeta", "mask", "alpha")])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


@pytest.mark.skipif(importlib.util.find_spec("openvino") is None,
                    reason="openvino is not installed (pip install 'edgecalc[openvino]')")
def test_openvino_names_outputs_as_the_onnx_graph_declares_them(tmp_path):
    """Outputs by position, named as the graph declares them, not by OpenVINO's ``get_any_name()``."""
    import openvino as ov

    path = _graph_whose_output_openvino_renames(tmp_path / "renamed.onnx")
    compiled = ov.Core().compile_model(str(path), "CPU")
    assert "alpha" not in {o.get_any_name() for o in compiled.outputs}, "OpenVINO no longer renames: keep the test honest"
    x = np.random.default_rng(0).normal(size=(2, 1, 4, 4)).astype(np.float32)
    with open_backend("openvino", path, threads=1) as be:
        assert be.input_name == "image" and be.output_names == ("zeta", "mask", "alpha")
        out = be.infer(x)
    assert list(out) == ["zeta", "mask", "alpha"]
    sigmoid = 1.0 / (1.0 + np.exp(-x))
    np.testing.assert_allclose(out["zeta"], sigmoid, atol=1e-6)
    np.testing.assert_allclose(out["alpha"], sigmoid, atol=1e-6)
    np.testing.assert_allclose(out["mask"], -x, atol=0)


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
