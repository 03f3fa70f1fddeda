"""``edgecalc export --via torch-tensorrt``: what runs without a GPU (arguments for each torch-tensorrt
release, missing pieces, refusals, the rest of the bundle still written) and the GPU compile where
torch-tensorrt and a GPU are present."""

from __future__ import annotations

import importlib.util
from types import SimpleNamespace

import pytest
import torch
from typer.testing import CliRunner

from edgecalc.cli import app
from edgecalc.export import torch_tensorrt_export as tt
from edgecalc.export.pipeline import ExportOptions, export_bundle
from edgecalc.model import CSAGNet, get_preset
from edgecalc.model.weights import save_model
from edgecalc.runtime.engine.bundle import load_bundle

HAS_TORCH_TRT = importlib.util.find_spec("torch_tensorrt") is not None
HAS_CUDA = torch.cuda.is_available()


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("run")
    torch.manual_seed(0)
    save_model(CSAGNet(get_preset("lite", 64).with_(width=0.125)).eval(), run / "model.safetensors")
    return run


def test_compile_arguments_for_strongly_typed_releases():
    new = {"use_explicit_typing", "enable_autocast", "low_precision_type", "enabled_precisions"}
    assert tt.compile_kwargs(new, "fp32", torch) == {"use_explicit_typing": True}
    assert tt.compile_kwargs(new, "fp16", torch) == {"use_explicit_typing": True, "enable_autocast": True,
                                                     "low_precision_type": torch.float16}


def test_compile_arguments_for_older_releases():
    old = {"enabled_precisions", "min_block_size"}
    assert tt.compile_kwargs(old, "fp32", torch) == {"enabled_precisions": {torch.float32}}
    assert tt.compile_kwargs(old, "fp16", torch) == {"enabled_precisions": {torch.float16, torch.float32}}


def test_int8_is_refused_with_the_route_that_does_it():
    with pytest.raises(tt.TorchTensorRTUnavailable, match="Q/DQ ONNX"):
        tt.compile_kwargs(set(), "int8", torch)


def test_input_spec_is_the_engine_profile():
    seen = {}

    def fake_input(**kw):
        seen.update(kw)
        return "spec"

    assert tt.input_spec(SimpleNamespace(Input=fake_input), torch, 96, 1, 8) == "spec"
    assert seen == {"min_shape": (1, 1, 96, 96), "opt_shape": (4, 1, 96, 96), "max_shape": (8, 1, 96, 96),
                    "dtype": torch.float32, "name": "image"}


def test_missing_pieces_name_the_package_and_the_gpu():
    def importer(name):
        if name == "torch_tensorrt":
            raise ImportError("No module named 'torch_tensorrt'")
        return importlib.import_module(name)

    import importlib

    no_gpu = SimpleNamespace(cuda=SimpleNamespace(is_available=lambda: False), __version__="2.13.0+cpu",
                             version=SimpleNamespace(cuda=None))
    missing = tt.missing_pieces(no_gpu, importer)
    assert any("torch_tensorrt package" in m and "edgecalc[torch-trt]" in m for m in missing)
    assert any("CUDA GPU" in m and "2.13.0+cpu" in m for m in missing)


@pytest.mark.skipif(HAS_TORCH_TRT and HAS_CUDA, reason="torch-tensorrt and a GPU are present: the GPU test runs instead")
def test_without_torch_tensorrt_the_rest_of_the_bundle_is_written(tiny_run, tmp_path, monkeypatch):
    monkeypatch.setenv("EDGECALC_CACHE_DIR", str(tmp_path / "cache"))
    res = export_bundle(ExportOptions(tiny_run, "fp32", None, 16, "minmax", 0, False, 4, tmp_path / "b", None, 8,
                                      via="torch-tensorrt", command="test"), log=lambda m: None)
    assert res.via_error and "cannot compile with torch-tensorrt here: missing" in res.via_error
    b = load_bundle(tmp_path / "b")
    assert b.manifest.artifact("onnx", "fp32") is not None and b.manifest.artifact("torchscript") is not None
    assert b.manifest.artifact("torchscript-trt") is None and not (tmp_path / "b" / tt.ARTIFACT_NAME).exists()
    row = next(r for r in res.rows if r.artifact == tt.ARTIFACT_NAME)
    assert row.backend == "torch-tensorrt" and row.status.startswith("not run: cannot compile")


@pytest.mark.skipif(HAS_TORCH_TRT and HAS_CUDA, reason="torch-tensorrt and a GPU are present")
def test_cli_says_what_is_missing_and_exits_3(tiny_run, tmp_path, monkeypatch):
    monkeypatch.setenv("EDGECALC_CACHE_DIR", str(tmp_path / "cache"))
    res = CliRunner().invoke(app, ["export", str(tiny_run), "--via", "torch-tensorrt", "--no-engine",
                                   "--parity-size", "8", "--out", str(tmp_path / "b")])
    text = " ".join(res.output.split())
    assert res.exit_code == 3, text
    assert "--via torch-tensorrt" in text and "missing" in text and "bundle written" in text
    assert load_bundle(tmp_path / "b").manifest.artifact("onnx", "fp32") is not None


def test_bad_via_and_int8_via_torch_tensorrt_fail_before_writing(tiny_run, tmp_path):
    for args, needle in ((["--via", "tflite"], "tflite"), (["--via", "torch-tensorrt", "--precision", "int8"], "Q/DQ ONNX")):
        res = CliRunner().invoke(app, ["export", str(tiny_run), *args, "--no-engine", "--parity-size", "8",
                                       "--out", str(tmp_path / "b")])
        text = " ".join(res.output.split())
        assert res.exit_code == 2 and needle in text, text
        assert not (tmp_path / "b").exists()


@pytest.mark.gpu
@pytest.mark.skipif(not (HAS_TORCH_TRT and HAS_CUDA),
                    reason=f"needs torch_tensorrt ({'present' if HAS_TORCH_TRT else 'not installed'}) and a CUDA GPU "
                           f"({'present' if HAS_CUDA else 'torch.cuda.is_available() is False'})")
def test_torch_tensorrt_module_on_gpu(tiny_run, tmp_path, monkeypatch):
    monkeypatch.setenv("EDGECALC_CACHE_DIR", str(tmp_path / "cache"))
    for precision, tol in (("fp32", 1e-3), ("fp16", 0.05)):
        res = export_bundle(ExportOptions(tiny_run, precision, None, 16, "minmax", 0, False, 4, tmp_path / precision,
                                          None, 16, via="torch-tensorrt", command="test"), log=print)
        assert res.via_error is None
        art = load_bundle(tmp_path / precision).manifest.artifact("torchscript-trt", precision)
        assert art is not None and art.engine is not None and art.engine.gpu_name
        row = next(r for r in res.rows if r.backend == "torch-tensorrt")
        assert row.status == "ran" and row.score_max_abs < tol
