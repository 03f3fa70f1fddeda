"""Bundle manifests: checksums, tampering, missing files and engines built for another GPU / TensorRT."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edgecalc.runtime.engine.bundle import (
    Bundle, BundleError, EngineTarget, Manifest, check_engine_target, load_bundle,
)
from test_foundation import run_without_torch


def make_fake_bundle(root: Path, engine: EngineTarget | None = None) -> Manifest:
    """A bundle with two small files and (optionally) a fake engine, written through the real Manifest."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "model.fp32.onnx").write_bytes(b"not really onnx" * 10)
    (root / "parity.json").write_text("{}\n")
    m = Manifest(model={"architecture": "csagnet", "config": {}}, input={"name": "image", "shape": [-1, 1, 64, 64]},
                 preprocessing={"name": "edgecalc-gray01"}, outputs=[{"name": "score"}],
                 decision={"output": "score", "threshold": 0.5}, source_weights={"sha256": "0" * 64},
                 libraries={}, edgecalc_version="0.1.0", command="edgecalc export run", created="now")
    m.add_file(root, "model.fp32.onnx", "onnx", "fp32")
    m.add_file(root, "parity.json", "report", None)
    if engine is not None:
        (root / "model.fp16.engine").write_bytes(b"\x00engine")
        m.add_file(root, "model.fp16.engine", "engine", "fp16", engine=engine)
    m.write(root)
    return m


def test_manifest_round_trip(tmp_path):
    target = EngineTarget("NVIDIA Jetson Orin", "8.7", "10.3.0")
    m = make_fake_bundle(tmp_path / "b", target)
    b = load_bundle(tmp_path / "b")
    assert b.manifest.to_dict() == m.to_dict()
    assert b.manifest.artifact("engine", "fp16").engine == target
    assert b.input_size == 64 and b.threshold == 0.5
    assert b.path("onnx", "fp32") == tmp_path / "b" / "model.fp32.onnx"
    with pytest.raises(BundleError, match="no onnx artifact at int8"):
        b.path("onnx", "int8")


def test_tampered_file_refused_without_torch(tmp_path):
    """A changed byte is refused, the file named, by a loader running where torch cannot be imported."""
    root = tmp_path / "b"
    make_fake_bundle(root)
    data = bytearray((root / "model.fp32.onnx").read_bytes())
    data[3] ^= 0x01
    (root / "model.fp32.onnx").write_bytes(bytes(data))
    res = run_without_torch(f"""
        import sys
        from edgecalc.runtime.engine.bundle import BundleError, load_bundle
        try:
            load_bundle({str(root)!r})
        except BundleError as exc:
            print(exc)
        else:
            raise SystemExit("tampered bundle accepted")
        assert "torch" not in sys.modules
    """)
    assert res.returncode == 0, res.stderr
    assert "model.fp32.onnx has changed" in res.stdout


def test_missing_file_named(tmp_path):
    root = tmp_path / "b"
    make_fake_bundle(root)
    (root / "parity.json").unlink()
    with pytest.raises(BundleError, match="parity.json is listed .* but missing"):
        load_bundle(root)


def test_not_a_bundle_and_bad_manifest(tmp_path):
    with pytest.raises(BundleError, match="does not exist"):
        load_bundle(tmp_path / "nope")
    (tmp_path / "x").mkdir()
    with pytest.raises(BundleError, match="not an edgecalc export bundle"):
        load_bundle(tmp_path / "x")
    (tmp_path / "x" / "manifest.json").write_text(json.dumps({"model": {}}))
    with pytest.raises(BundleError, match="names no bundle kind"):
        load_bundle(tmp_path / "x")
    (tmp_path / "x" / "manifest.json").write_text(json.dumps({"kind": "model", "format": 2, "model": {}}))
    with pytest.raises(BundleError, match="lacks field"):
        load_bundle(tmp_path / "x")
    (tmp_path / "x" / "manifest.json").write_text(json.dumps({"kind": "model", "format": 3, "model": {}}))
    with pytest.raises(BundleError, match="format 3 is newer than this edgecalc reads"):
        load_bundle(tmp_path / "x")


@pytest.mark.parametrize("current, what", [
    (EngineTarget("NVIDIA H100 80GB HBM3", "9.0", "10.3.0"), "GPU 'NVIDIA Jetson Orin'"),
    (EngineTarget("NVIDIA Jetson Orin", "8.7", "11.4.0"), "TensorRT 10.3.0"),
])
def test_engine_for_another_gpu_or_tensorrt_refused(tmp_path, current, what):
    root = tmp_path / "b"
    make_fake_bundle(root, EngineTarget("NVIDIA Jetson Orin", "8.7", "10.3.0"))
    b = load_bundle(root)
    with pytest.raises(BundleError) as err:
        b.engine_path("fp16", current=current)
    msg = str(err.value)
    assert "model.fp16.engine was built for" in msg and what in msg
    assert "edgecalc export" in msg and "--engine" in msg and "--precision fp16" in msg


def test_engine_for_this_machine_accepted_and_no_trt_refused(tmp_path):
    target = EngineTarget("NVIDIA Jetson Orin", "8.7", "10.3.0")
    make_fake_bundle(tmp_path / "b", target)
    b = load_bundle(tmp_path / "b")
    assert b.engine_path("fp16", current=target).name == "model.fp16.engine"
    with pytest.raises(BundleError, match="no TensorRT or no GPU"):
        b.engine_path("fp16", current=None)


def test_engine_without_recorded_target_refused():
    from edgecalc.runtime.engine.bundle import Artifact

    art = Artifact("model.int8.engine", "engine", "int8", "0" * 64, 1, None)
    with pytest.raises(BundleError, match="does not record the GPU"):
        check_engine_target(art, EngineTarget("x", "8.7", "10.3"))


def test_bundle_module_has_no_torch_import():
    res = run_without_torch("import edgecalc.runtime.engine.bundle, sys; assert 'torch' not in sys.modules")
    assert res.returncode == 0, res.stderr


def test_bundle_dataclass_is_constructible(tmp_path):
    m = make_fake_bundle(tmp_path / "b")
    assert Bundle(tmp_path / "b", m).manifest.artifact("onnx").file == "model.fp32.onnx"


def test_manifest_is_written_in_the_shared_envelope_and_format_1_still_loads(tmp_path):
    """New manifests lead with kind "model" and format 2; a format-1 manifest (no kind), as earlier
    versions wrote and as the shipped bundle still is, loads and is verified the same way."""
    from edgecalc.runtime.shipped import ASSETS_DIR

    make_fake_bundle(tmp_path / "b")
    doc = json.loads((tmp_path / "b" / "manifest.json").read_text())
    assert list(doc)[:2] == ["kind", "format"] and doc["kind"] == "model" and doc["format"] == 2
    doc.pop("kind")
    doc["format"] = 1
    (tmp_path / "b" / "manifest.json").write_text(json.dumps(doc))
    b = load_bundle(tmp_path / "b")
    assert b.manifest.kind == "model" and b.manifest.format == 1
    (tmp_path / "b" / "parity.json").write_text("{ }\n")  # one byte more
    with pytest.raises(BundleError, match="parity.json has changed"):
        load_bundle(tmp_path / "b")
    shipped = load_bundle(ASSETS_DIR / "bundle")  # every checksum of the shipped bundle holds
    assert shipped.manifest.kind == "model" and shipped.manifest.artifact("onnx", "fp32") is not None
