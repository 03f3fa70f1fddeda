"""TensorRT engine code: the parts that run without a GPU, and the GPU build where one is present."""

from __future__ import annotations

import importlib.util
import shutil
from types import SimpleNamespace

import pytest

from edgecalc.export import tensorrt_engine as te


def test_profile_shapes_cover_batch_1_to_n():
    assert te.profile_shapes(192, 1, 8) == ((1, 1, 192, 192), (4, 1, 192, 192), (8, 1, 192, 192))
    assert te.profile_shapes(64, 1, 2) == ((1, 1, 64, 64), (2, 1, 64, 64), (2, 1, 64, 64))
    with pytest.raises(ValueError, match="--max-batch must be >= 1"):
        te.profile_shapes(64, 1, 0)


def test_builder_flags_by_tensorrt_version():
    for p in ("fp32", "fp16", "int8"):
        assert te.builder_flag_names("11.4.0", p) == []  # strongly typed only: no precision flags exist
    assert te.builder_flag_names("10.3.0", "fp16") == ["FP16"]
    assert te.builder_flag_names("10.13.3.9", "int8") == ["INT8", "FP16"]
    assert te.builder_flag_names("10.3.0", "fp32") == []
    with pytest.raises(ValueError, match="TensorRT version"):
        te.trt_major("x.y")


def test_network_flags_strongly_typed_on_10_for_fp16():
    fake = SimpleNamespace(NetworkDefinitionCreationFlag=SimpleNamespace(STRONGLY_TYPED=1))
    assert te.network_flags(fake, "10.3.0", "fp16") == 1 << 1
    assert te.network_flags(fake, "10.3.0", "int8") == 0
    assert te.network_flags(fake, "11.0.0", "fp16") == 0


HAS_TRT = importlib.util.find_spec("tensorrt") is not None
HAS_CUDA_PY = importlib.util.find_spec("cuda") is not None
HAS_GPU = shutil.which("nvidia-smi") is not None


def test_missing_pieces_named_here():
    missing = te.missing_pieces()
    if not HAS_TRT:
        assert any("tensorrt" in m for m in missing)
    if not HAS_CUDA_PY:
        assert any("cuda-python" in m for m in missing)
    if missing:
        with pytest.raises(te.EngineUnavailable, match="cannot build a TensorRT engine here: missing"):
            te.current_target()


@pytest.mark.gpu
@pytest.mark.skipif(not (HAS_TRT and HAS_CUDA_PY and HAS_GPU),
                    reason=f"needs tensorrt ({'present' if HAS_TRT else 'not installed'}), cuda-python "
                           f"({'present' if HAS_CUDA_PY else 'not installed'}) and a CUDA GPU "
                           f"({'present' if HAS_GPU else 'nvidia-smi not found'})")
def test_engine_build_and_parity_on_gpu(tmp_path, monkeypatch):
    import torch

    from edgecalc.export.pipeline import ExportOptions, export_bundle
    from edgecalc.model import CSAGNet, get_preset
    from edgecalc.model.weights import save_model
    from edgecalc.runtime.engine.bundle import current_engine_target, load_bundle

    monkeypatch.setenv("EDGECALC_CACHE_DIR", str(tmp_path / "cache"))
    torch.manual_seed(0)
    save_model(CSAGNet(get_preset("lite", 64).with_(width=0.125)).eval(), tmp_path / "run" / "model.safetensors")
    for precision in ("fp16", "int8"):
        res = export_bundle(ExportOptions(tmp_path / "run", precision, None, 16, "minmax", 0, True, 4,
                                          tmp_path / precision, None, 16, command="test"), log=print)
        assert res.engine_error is None
        b = load_bundle(tmp_path / precision)
        assert b.engine_path(precision, current_engine_target()).is_file()
        row = next(r for r in res.rows if r.backend == "tensorrt")
        assert row.status == "ran" and row.score_max_abs < 0.05
