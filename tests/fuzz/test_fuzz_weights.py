"""Weights and ONNX files under fuzzing: a result, or the kit's own error naming the file — never a crash.

Safetensors seeds are a tiny CS-AGnet saved by ``save_model``. Hypothesis rewrites the 8-byte header
length (huge, zero, past the end), breaks the header JSON, swaps dtypes for unknown ones, gives shapes
whose byte count does not match the offsets, overlapping or reversed offsets, drops and renames
tensors, truncates the body, and mangles the JSON config beside the file (wrong types, huge filter
counts that would allocate terabytes). Contract for ``load_model`` / ``read_config`` and the readers
built on them (``edgecalc export``, a training checkpoint): a model, or a ValueError whose message names
the file; memory bounded by the file (shapes are checked on the meta device first).

ONNX seeds are a small graph built with ``onnx.helper``. Truncated and byte-flipped copies (with the
manifest's checksums recomputed, so the checksum is not what stops them) go through ``load_bundle``
and the onnxruntime and OpenVINO backends: a backend, or ``BundleError``. External data whose
``location`` leaves the folder (``../x``, absolute, a symlink out) is refused before any engine opens
the file.
"""

from __future__ import annotations

import copy
import json
import struct
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("hypothesis", reason="the fuzz suite needs hypothesis (pip install -e '.[dev]')")
torch = pytest.importorskip("torch", reason="the weights readers need torch (the [train] extra)")

from hypothesis import example, given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from edgecalc.model import CSAGNet, get_preset  # noqa: E402
from edgecalc.model.weights import config_path, load_model, read_config, save_model  # noqa: E402
from edgecalc.runtime.engine.bundle import (  # noqa: E402
    MANIFEST_NAME, BundleError, Manifest, check_onnx_file, load_bundle, onnx_external_locations,
)

SIZE = 32


def _seed_files(folder: Path) -> tuple[bytes, bytes]:
    torch.manual_seed(0)
    path = save_model(CSAGNet(get_preset("lite", SIZE).with_(width=0.125)).eval(), folder / "model.safetensors")
    return path.read_bytes(), config_path(path).read_bytes()


def _split(raw: bytes) -> tuple[dict, bytes]:
    n = struct.unpack("<Q", raw[:8])[0]
    return json.loads(raw[8:8 + n]), raw[8 + n:]


def _join(header: object, body: bytes) -> bytes:
    hb = json.dumps(header).encode()
    return struct.pack("<Q", len(hb)) + hb + body


import tempfile  # noqa: E402

with tempfile.TemporaryDirectory() as _d:
    SEED_WEIGHTS, SEED_CONFIG = _seed_files(Path(_d))
SEED_HEADER, SEED_BODY = _split(SEED_WEIGHTS)
TENSORS = sorted(k for k in SEED_HEADER if k != "__metadata__")
DTYPES = st.sampled_from(["F99", "", "f32", "F16", "BF16", "F64", "I8", "U8", "BOOL", "F8_E4M3", "I64", "C64"])
#: copied per draw: a later step may change a drawn list or dict in place (shared, it leaked into later examples)
ODD = st.sampled_from([None, "", "x", [], {}, -1, 0, 10**30, 1.5, True, [1, 2], {"a": 1}]).map(copy.deepcopy)
HUGE = st.sampled_from([0, 1, 7, 2**31, 2**32 + 1, 2**63, 2**64 - 1])


@st.composite
def weights_files(draw) -> bytes:
    """A safetensors file with its header or body damaged in one to three ways."""
    header = json.loads(json.dumps(SEED_HEADER))
    body = SEED_BODY
    prefix: int | None = None
    raw_header: bytes | None = None
    for _ in range(draw(st.integers(1, 3))):
        what = draw(st.sampled_from(["prefix", "broken_json", "dtype", "shape", "offsets", "overlap", "drop",
                                     "rename", "retype", "metadata", "body"]))
        name = draw(st.sampled_from(TENSORS))
        if what in ("dtype", "shape", "offsets", "overlap") and not isinstance(header.get(name), dict):
            continue  # an earlier step dropped or retyped this tensor's entry
        if what == "prefix":
            prefix = draw(st.one_of(HUGE, st.integers(0, len(SEED_WEIGHTS) * 2)))
        elif what == "broken_json":
            text = json.dumps(header).encode()
            cut = draw(st.integers(0, len(text)))
            raw_header = text[:cut] + draw(st.binary(max_size=8))
        elif what == "dtype":
            header[name]["dtype"] = draw(st.one_of(DTYPES, ODD))
        elif what == "shape":
            header[name]["shape"] = draw(st.one_of(ODD, st.lists(st.one_of(st.integers(-2, 64), HUGE), max_size=5)))
        elif what == "offsets":
            header[name]["data_offsets"] = draw(st.one_of(ODD, st.lists(st.one_of(st.integers(0, len(body) + 8), HUGE),
                                                                        min_size=0, max_size=3)))
        elif what == "overlap":
            other = header.get(draw(st.sampled_from(TENSORS)))
            if isinstance(other, dict) and isinstance(other.get("data_offsets"), list):
                header[name]["data_offsets"] = list(other["data_offsets"])
        elif what == "drop":
            header.pop(name, None)
        elif what == "rename":
            header[name + draw(st.sampled_from(["_x", ".weight", ""]))] = header.pop(name, {"dtype": "F32", "shape": [1],
                                                                                          "data_offsets": [0, 4]})
        elif what == "retype":
            header[name] = draw(ODD)
        elif what == "metadata":
            header["__metadata__"] = draw(st.one_of(ODD, st.just({"edgecalc": 5})))
        elif what == "body":
            body = body[: draw(st.integers(0, len(body)))]
    hb = raw_header if raw_header is not None else json.dumps(header).encode()
    return struct.pack("<Q", len(hb) if prefix is None else prefix) + hb + body


@st.composite
def config_files(draw) -> bytes:
    """The JSON config beside the weights, with wrong types, dropped keys, or sizes that would allocate terabytes."""
    meta = json.loads(SEED_CONFIG)
    what = draw(st.sampled_from(["field", "drop", "arch", "whole", "broken", "huge"]))
    if what == "field":
        key = draw(st.sampled_from(sorted(meta["config"]) + ["extra"]))
        meta["config"][key] = draw(st.one_of(ODD, st.lists(ODD, max_size=5), st.floats(allow_nan=True)))
    elif what == "drop":
        meta.pop(draw(st.sampled_from(sorted(meta))))
    elif what == "arch":
        meta["architecture"] = draw(st.one_of(ODD, st.sampled_from(["dsagnet", "csagnet", "unet"])))
    elif what == "whole":
        meta = draw(st.one_of(ODD, st.lists(ODD, max_size=2)))
    elif what == "broken":
        text = json.dumps(meta).encode()
        return text[: draw(st.integers(0, len(text) - 1))] + draw(st.binary(max_size=4))
    else:
        meta["config"][draw(st.sampled_from(["base_filters", "width", "input_size"]))] = draw(st.sampled_from(
            [[10**6] * 5, 10**5, 16 * 10**7, [2**40] * 5]))
    return json.dumps(meta, allow_nan=True).encode()


def _assert_loads_or_names(folder: Path, weights: bytes, config: bytes) -> None:
    path = folder / "model.safetensors"
    path.write_bytes(weights)
    config_path(path).write_bytes(config)
    try:
        model = load_model(path)
    except ValueError as exc:
        assert str(path) in str(exc) or str(config_path(path)) in str(exc), str(exc)
    else:
        assert isinstance(model, torch.nn.Module)


@given(weights_files())
@example(struct.pack("<Q", 2**63) + SEED_WEIGHTS[8:])  # found: SafetensorError (no ValueError) escaped `edgecalc export`
@example(_join({**SEED_HEADER, TENSORS[0]: {**SEED_HEADER[TENSORS[0]], "dtype": "F99"}}, SEED_BODY))
@example(_join({**SEED_HEADER, TENSORS[0]: {**SEED_HEADER[TENSORS[0]], "shape": [10**6, 10**6]}}, SEED_BODY))
def test_load_model_gives_a_model_or_names_the_weights(tmp_path_factory, weights):
    _assert_loads_or_names(tmp_path_factory.mktemp("w"), weights, SEED_CONFIG)


@given(config_files())
@example(b"[1, 2]")  # found: a JSON list escaped read_config as AttributeError
@example(json.dumps({**json.loads(SEED_CONFIG), "config": {**json.loads(SEED_CONFIG)["config"],
                                                           "base_filters": [10**6] * 5}}).encode())  # found: built before checking
@example(json.dumps({**json.loads(SEED_CONFIG), "config": {**json.loads(SEED_CONFIG)["config"],
                                                           "width": 160000000}}).encode())  # found: RuntimeError (overflow)
@example(json.dumps({**json.loads(SEED_CONFIG), "config": {**json.loads(SEED_CONFIG)["config"],
                                                           "bridge_convs": 1.0}}).encode())  # found (long run): TypeError
@example(json.dumps({**json.loads(SEED_CONFIG), "config": {**json.loads(SEED_CONFIG)["config"],
                                                           "bridge_convs": 10**30}}).encode())  # found (long run): a hang
@example(json.dumps({**json.loads(SEED_CONFIG), "config": {**json.loads(SEED_CONFIG)["config"],
                                                           "encoder_convs": [10**30, 1, 1, 1]}}).encode())  # the same
@example(json.dumps({**json.loads(SEED_CONFIG), "config": {**json.loads(SEED_CONFIG)["config"], "input_size": 65536,
                                                           "score_head": "encoder-linear"}}).encode())  # ~6 GB (reasoned)
def test_load_model_under_a_fuzzed_config_names_a_file(tmp_path_factory, config):
    _assert_loads_or_names(tmp_path_factory.mktemp("c"), SEED_WEIGHTS, config)


def test_the_seed_weights_load(tmp_path):
    _assert_loads_or_names(tmp_path, SEED_WEIGHTS, SEED_CONFIG)
    assert read_config(tmp_path / "model.safetensors")[0] == "csagnet"


@pytest.mark.parametrize("case", ["huge-prefix", "zero-prefix", "past-eof", "bad-dtype", "short-body", "list-config"])
def test_export_cli_exits_2_naming_the_file(tmp_path, case):
    """`edgecalc export RUN` on damaged weights: exit 2, the file named, no bundle and no staging folder."""
    from typer.testing import CliRunner

    from edgecalc.cli import app

    weights, config = SEED_WEIGHTS, SEED_CONFIG
    if case == "huge-prefix":
        weights = struct.pack("<Q", 2**63) + SEED_WEIGHTS[8:]
    elif case == "zero-prefix":
        weights = struct.pack("<Q", 0) + SEED_WEIGHTS[8:]
    elif case == "past-eof":
        weights = struct.pack("<Q", len(SEED_WEIGHTS)) + SEED_WEIGHTS[8:]
    elif case == "bad-dtype":
        weights = _join({**SEED_HEADER, TENSORS[0]: {**SEED_HEADER[TENSORS[0]], "dtype": "F99"}}, SEED_BODY)
    elif case == "short-body":
        weights = SEED_WEIGHTS[:-100]
    else:
        config = b"[1, 2]"
    run = tmp_path / "run"
    run.mkdir()
    (run / "model.safetensors").write_bytes(weights)
    (run / "model.json").write_bytes(config)
    out = tmp_path / "bundle"
    res = CliRunner().invoke(app, ["export", str(run), "--out", str(out), "--no-engine", "--parity-size", "8"])
    text = " ".join(res.output.split())
    assert res.exit_code == 2, res.output
    assert "error:" in text
    assert "model.safetensors" in text.replace(" ", "") or "model.json" in text.replace(" ", ""), text
    assert not out.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".bundle")]


@pytest.mark.parametrize("case", ["huge-prefix", "bad-dtype", "short-body"])
def test_a_damaged_training_checkpoint_names_the_file(tmp_path, case):
    """`edgecalc train --resume`'s reader: a damaged checkpoint's tensors give a ValueError naming the file."""
    from edgecalc.train.checkpoint import checkpoint_json, load_checkpoint, save_checkpoint

    model = CSAGNet(get_preset("lite", SIZE).with_(width=0.125))
    opt = torch.optim.Adam(model.parameters())
    gen = torch.Generator().manual_seed(0)
    ckpt = tmp_path / "checkpoints"
    _save_any_checkpoint(save_checkpoint, ckpt, model, opt, gen)
    tpath = ckpt / json.loads(checkpoint_json(ckpt, 1).read_text())["tensors"]
    raw = tpath.read_bytes()
    header, body = _split(raw)
    if case == "huge-prefix":
        raw = struct.pack("<Q", 2**63) + raw[8:]
    elif case == "bad-dtype":
        first = sorted(k for k in header if k != "__metadata__")[0]
        raw = _join({**header, first: {**header[first], "dtype": "F99"}}, body)
    else:
        raw = raw[:-64]
    tpath.write_bytes(raw)
    with pytest.raises(ValueError, match=str(tpath.name)):
        load_checkpoint(ckpt, 1, model, opt, gen)


def test_a_checkpoint_cannot_name_tensors_outside_its_folder(tmp_path):
    from edgecalc.train.checkpoint import checkpoint_json, load_checkpoint, save_checkpoint

    model = CSAGNet(get_preset("lite", SIZE).with_(width=0.125))
    opt = torch.optim.Adam(model.parameters())
    gen = torch.Generator().manual_seed(0)
    ckpt = tmp_path / "run" / "checkpoints"
    _save_any_checkpoint(save_checkpoint, ckpt, model, opt, gen)
    jpath = checkpoint_json(ckpt, 1)
    meta = json.loads(jpath.read_text())
    (tmp_path / "outside.safetensors").write_bytes((ckpt / meta["tensors"]).read_bytes())
    for escape in ("../../outside.safetensors", str(tmp_path / "outside.safetensors")):
        jpath.write_text(json.dumps({**meta, "tensors": escape}))
        with pytest.raises(ValueError, match="outside"):
            load_checkpoint(ckpt, 1, model, opt, gen)


def _save_any_checkpoint(save_checkpoint, ckpt: Path, model, opt, gen) -> None:
    from edgecalc.train.checkpoint import StageState

    save_checkpoint(ckpt, 1, model, opt, gen, StageState())


# --- ONNX ---------------------------------------------------------------------------------------

onnx = pytest.importorskip("onnx", reason="building the ONNX seeds needs onnx (the [train] extra)")


def _onnx_model():
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.standard_normal((4, 1, 3, 3)).astype(np.float32), "W")
    b = numpy_helper.from_array(np.zeros(4, np.float32), "B")
    nodes = [helper.make_node("Conv", ["image", "W", "B"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("ReduceMean", ["c"], ["m"], keepdims=1, axes=[1]),
             helper.make_node("Sigmoid", ["m"], ["mask"])]
    graph = helper.make_graph(nodes, "tiny", [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 1, 8, 8])],
                              [helper.make_tensor_value_info("mask", TensorProto.FLOAT, [1, 1, 8, 8])], [w, b])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


SEED_ONNX = _onnx_model().SerializeToString()


def _bundle_with(root: Path, files: dict[str, bytes]) -> Path:
    """A bundle folder listing ``files`` (checksums of the bytes as written) with the shipped manifest's fields."""
    shipped = Path(__file__).resolve().parents[2] / "edgecalc" / "assets" / "bundle" / MANIFEST_NAME
    m = Manifest.from_dict({**json.loads(shipped.read_text()), "artifacts": []})
    root.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (root / name).write_bytes(data)
        if name.endswith(".onnx"):
            m.add_file(root, name, "onnx", "fp32")
    m.write(root)
    return root


def _backends():
    from edgecalc.runtime.engine.backends.onnxruntime_backend import OnnxRuntimeBackend

    out = [OnnxRuntimeBackend]
    try:
        from edgecalc.runtime.engine.backends.openvino_backend import OpenVinoBackend
        import openvino  # noqa: F401
    except ImportError:
        return out
    return out + [OpenVinoBackend]


BACKENDS = _backends()


@st.composite
def onnx_files(draw) -> bytes:
    data = bytearray(SEED_ONNX)
    if draw(st.booleans()):
        for _ in range(draw(st.integers(1, 6))):
            data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    if draw(st.booleans()):
        data = data[: draw(st.integers(0, len(data)))]
    return bytes(data)


@given(onnx_files())
@example(SEED_ONNX[:10])  # found: onnxruntime's InvalidProtobuf / OpenVINO's RuntimeError escaped `edgecalc live`
@example(SEED_ONNX[: len(SEED_ONNX) // 2])
@example(SEED_ONNX.replace(b"Sigmoid", b"\x80igmoid"))  # found (long run): OpenVINO's UnicodeDecodeError escaped
def test_a_truncated_or_flipped_onnx_gives_a_backend_or_a_bundle_error(tmp_path_factory, data):
    root = _bundle_with(tmp_path_factory.mktemp("onnx") / "b", {"model.fp32.onnx": data})
    bundle = load_bundle(root)  # the checksums hold: this is about the engines
    for cls in BACKENDS:
        try:
            backend = cls(bundle.path("onnx", "fp32"))
        except BundleError as exc:
            assert "model.fp32.onnx" in str(exc)
        else:
            backend.close()


def _with_location(location: str) -> bytes:
    from onnx import TensorProto

    m = _onnx_model()
    t = m.graph.initializer[0]
    t.ClearField("raw_data")
    t.data_location = TensorProto.EXTERNAL
    for k, v in (("location", location), ("offset", "0"), ("length", "144")):
        e = t.external_data.add()
        e.key, e.value = k, v
    return m.SerializeToString()


WEIGHT_BYTES = np.random.default_rng(0).standard_normal((4, 1, 3, 3)).astype(np.float32).tobytes()


@pytest.mark.parametrize("location", ["../outside.bin", "ABSOLUTE", "link.bin", "sub/../../outside.bin", "..", ""])
def test_external_data_outside_the_bundle_is_refused_before_any_engine_reads(tmp_path, monkeypatch, location):
    import onnxruntime

    (tmp_path / "outside.bin").write_bytes(WEIGHT_BYTES)
    location = str(tmp_path / "outside.bin") if location == "ABSOLUTE" else location
    root = tmp_path / "bundle"
    root.mkdir()
    (root / "link.bin").symlink_to(tmp_path / "outside.bin")
    (root / "sub").mkdir()
    opened = []
    monkeypatch.setattr(onnxruntime, "InferenceSession", lambda *a, **k: opened.append(a) or pytest.fail("opened"))
    _bundle_with(root, {"model.fp32.onnx": _with_location(location)})
    with pytest.raises(BundleError, match="outside|resolves"):
        load_bundle(root)
    for cls in BACKENDS:
        with pytest.raises(BundleError, match="outside|resolves"):
            cls(root / "model.fp32.onnx")
    assert opened == []


def test_external_data_inside_the_bundle_still_loads(tmp_path):
    root = _bundle_with(tmp_path / "b", {"model.fp32.onnx": _with_location("weights.bin"), "weights.bin": WEIGHT_BYTES})
    assert onnx_external_locations(root / "model.fp32.onnx") == ["weights.bin"]
    bundle = load_bundle(root)
    for cls in BACKENDS:
        out = cls(bundle.path("onnx", "fp32")).infer(np.ones((1, 1, 8, 8), np.float32))
        assert out["mask"].shape == (1, 1, 8, 8)


@given(st.one_of(st.text(max_size=40), st.sampled_from(["../x", "/etc/passwd", "a/../../x", "./w.bin", "w.bin/.."])))
def test_any_location_is_refused_or_lies_inside(tmp_path_factory, location):
    folder = tmp_path_factory.mktemp("loc")
    path = folder / "m.onnx"
    path.write_bytes(_with_location(location))
    try:
        check_onnx_file(path)
    except BundleError:
        return
    assert folder.resolve() in (folder / location).resolve().parents
