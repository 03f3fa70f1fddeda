"""The OpenVINO backend names its outputs by position, as the ONNX graph declares them, not by OpenVINO's
``get_any_name()`` (which answers an internal tensor name where OpenVINO folded an Identity)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("openvino", reason="openvino is not installed (pip install 'edgecalc[openvino]')")
onnx = pytest.importorskip("onnx", reason="the OpenVINO backend reads output names with onnx")

from onnx import TensorProto, helper  # noqa: E402

from edgecalc.runtime.engine.backends import BackendUnavailable, open_backend  # noqa: E402
from edgecalc.runtime.engine.backends import openvino_backend  # noqa: E402
from edgecalc.runtime.engine.bundle import BundleError  # noqa: E402

SHAPE = [None, 1, 4, 4]


def save_graph(path, nodes, inputs=("image",), outputs=("zeta", "mask", "alpha"), initializers=()):
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info(n, TensorProto.FLOAT, SHAPE) for n in inputs],
                              [helper.make_tensor_value_info(n, TensorProto.FLOAT, SHAPE) for n in outputs],
                              initializer=list(initializers))
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def renamed_graph(path):
    """``image`` -> ``zeta`` (Identity of a Sigmoid), ``mask`` (Neg), ``alpha`` (Identity of the same Sigmoid):
    OpenVINO folds the Identities and ``alpha`` answers ``get_any_name()`` with ``a_internal``."""
    return save_graph(path, [helper.make_node("Sigmoid", ["image"], ["a_internal"]),
                             helper.make_node("Identity", ["a_internal"], ["zeta"]),
                             helper.make_node("Neg", ["image"], ["mask"]),
                             helper.make_node("Identity", ["a_internal"], ["alpha"])])


def test_outputs_are_named_as_the_onnx_graph_declares_them(tmp_path):
    import openvino as ov

    path = renamed_graph(tmp_path / "renamed.onnx")
    compiled = ov.Core().compile_model(str(path), "CPU")
    assert "alpha" not in {o.get_any_name() for o in compiled.outputs}, "OpenVINO no longer renames: keep the test honest"
    del compiled
    x = np.random.default_rng(0).normal(size=(2, 1, 4, 4)).astype(np.float32)
    with open_backend("openvino", path, threads=1) as be:
        assert be.input_name == "image" and be.output_names == ("zeta", "mask", "alpha")
        out = be.infer(x)
    assert list(out) == ["zeta", "mask", "alpha"]
    sigmoid = 1.0 / (1.0 + np.exp(-x))
    np.testing.assert_allclose(out["zeta"], sigmoid, atol=1e-6)
    np.testing.assert_allclose(out["alpha"], sigmoid, atol=1e-6)
    np.testing.assert_array_equal(out["mask"], -x)


def test_initializers_listed_as_inputs_are_not_the_input(tmp_path):
    """Older exporters list the weights among the graph's inputs; the input is the one that is not a weight."""
    w = helper.make_tensor("w", TensorProto.FLOAT, [1, 1, 4, 4], np.full(16, 2.0, np.float32))
    path = save_graph(tmp_path / "old.onnx", [helper.make_node("Mul", ["w", "image"], ["y"])], inputs=("w", "image"),
                      outputs=("y",), initializers=[w])
    assert openvino_backend.onnx_io_names(path) == (("image",), ("y",))


def test_a_count_mismatch_is_refused_naming_the_file(tmp_path, monkeypatch):
    """Should OpenVINO ever compile another number of outputs than the graph declares, names by position would
    be wrong: the backend refuses the file rather than guess."""
    path = renamed_graph(tmp_path / "renamed.onnx")
    monkeypatch.setattr(openvino_backend, "onnx_io_names", lambda p: (("image",), ("zeta", "mask")))
    with pytest.raises(BundleError, match=r"renamed\.onnx to 1 input\(s\) and 3 output\(s\).*\['zeta', 'mask'\]"):
        open_backend("openvino", path, threads=1)


def test_an_unreadable_graph_is_refused_naming_the_file(tmp_path):
    path = tmp_path / "garbage.onnx"
    path.write_bytes(b"\x0a\xff\xff\xff\xff")
    with pytest.raises(BundleError, match="garbage.onnx"):
        openvino_backend.onnx_io_names(path)


def test_without_onnx_the_backend_says_what_to_install(tmp_path, monkeypatch):
    import sys

    path = renamed_graph(tmp_path / "renamed.onnx")
    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx -> ImportError
    with pytest.raises(BackendUnavailable, match="pip install onnx"):
        open_backend("openvino", path, threads=1)
