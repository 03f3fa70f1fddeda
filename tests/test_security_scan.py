"""Nothing is ever unpickled, and no path from an input file leaves the folder it was given.

The first half walks every module of the ``edgecalc`` package with ``ast`` (not grep: a comment or a
docstring that says "pickle" is fine, a call is not) and fails on ``torch.load`` without
``weights_only=True``, any import of ``pickle`` / ``cPickle`` / ``dill`` / ``joblib`` / ``shelve`` /
``marshal`` or ``pandas.read_pickle``, ``numpy.load(..., allow_pickle=<not False>)``, ``yaml.load``
without a safe loader (and ``yaml.unsafe_load``), and the ``eval`` / ``exec`` builtins. The scanner
is itself tested on planted code, so the scan can fail. The second half hands the kit input files
whose paths climb out (a labels.csv id, a manifest file name, an ONNX external-data location, a
checkpoint's tensor-file name) with a real file waiting outside, and checks each is refused.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from conftest import REPO_ROOT

PACKAGE = REPO_ROOT / "edgecalc"
BANNED_MODULES = {"pickle", "cPickle", "_pickle", "dill", "joblib", "shelve", "marshal", "cloudpickle"}
SAFE_YAML_LOADERS = {"SafeLoader", "CSafeLoader", "BaseLoader"}


def _dotted(node: ast.AST) -> str:
    """``a.b.c`` for a Name/Attribute chain, else ''."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return ""


def _kw(call: ast.Call, name: str) -> ast.AST | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


def _is_const(node: ast.AST | None, value: object) -> bool:
    return isinstance(node, ast.Constant) and node.value is value


def scan_source(source: str, filename: str = "<src>") -> list[str]:
    """Every unsafe deserialisation or code execution in ``source``, as 'file:line: what'."""
    tree = ast.parse(source, filename)
    aliases: dict[str, str] = {}  # local name -> module it stands for (import numpy as np)
    found: list[str] = []

    def hit(node: ast.AST, what: str) -> None:
        found.append(f"{filename}:{getattr(node, 'lineno', '?')}: {what}")

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                aliases[(a.asname or a.name).split(".")[0]] = a.name if a.asname else a.name.split(".")[0]
                if a.name.split(".")[0] in BANNED_MODULES:
                    hit(node, f"imports {a.name}")
        elif isinstance(node, ast.ImportFrom) and node.module:
            root = node.module.split(".")[0]
            if root in BANNED_MODULES:
                hit(node, f"imports from {node.module}")
            for a in node.names:
                aliases[a.asname or a.name] = f"{node.module}.{a.name}"
                if a.name in ("read_pickle", "unsafe_load") or (root == "torch" and a.name == "load"):
                    hit(node, f"imports {node.module}.{a.name}")
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = _dotted(node.func)
        head, _, rest = name.partition(".")
        full = f"{aliases.get(head, head)}.{rest}" if rest else aliases.get(head, head)
        if full in ("eval", "exec") or full in ("builtins.eval", "builtins.exec"):
            hit(node, f"calls {full}()")
        elif full in ("torch.load", "torch.serialization.load"):
            if not _is_const(_kw(node, "weights_only"), True):
                hit(node, "torch.load without weights_only=True")
        elif full in ("numpy.load",):
            allow = _kw(node, "allow_pickle")
            if allow is not None and not _is_const(allow, False):
                hit(node, "numpy.load with allow_pickle not False")
        elif full == "yaml.load":
            loader = _kw(node, "Loader") or (node.args[1] if len(node.args) > 1 else None)
            if loader is None or _dotted(loader).split(".")[-1] not in SAFE_YAML_LOADERS:
                hit(node, "yaml.load without a safe Loader")
        elif full in ("yaml.unsafe_load", "yaml.full_load", "pandas.read_pickle") or full.endswith(".read_pickle"):
            hit(node, f"calls {full}")
    return found


def _package_files() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def test_the_package_never_unpickles_or_executes_data():
    files = _package_files()
    assert len(files) > 50, "the scan found too few modules: wrong folder?"
    problems = [p for f in files for p in scan_source(f.read_text(encoding="utf-8"), str(f.relative_to(REPO_ROOT)))]
    assert problems == [], "\n".join(problems)


@pytest.mark.parametrize("source", [
    "import pickle\npickle.loads(b'')",
    "import cPickle",
    "from dill import loads",
    "import joblib as jl\njl.load('x')",
    "import torch\ntorch.load('x')",
    "import torch\ntorch.load('x', weights_only=False)",
    "import torch as t\nt.load('x', map_location='cpu')",
    "from torch import load\nload('x')",
    "import numpy as np\nnp.load('x', allow_pickle=True)",
    "import numpy\nnumpy.load('x', allow_pickle=flag)",
    "import yaml\nyaml.load(text)",
    "import yaml\nyaml.load(text, Loader=yaml.Loader)",
    "import yaml\nyaml.unsafe_load(text)",
    "import pandas as pd\npd.read_pickle('x')",
    "eval(line)",
    "exec(code)",
])
def test_the_scanner_catches_each_banned_pattern(source):
    assert scan_source(source), f"not caught: {source!r}"


@pytest.mark.parametrize("source", [
    "import torch\ntorch.load('x', weights_only=True)",
    "import numpy as np\nnp.load('x')",
    "import numpy as np\nnp.load('x', allow_pickle=False)",
    "import yaml\nyaml.load(text, Loader=yaml.SafeLoader)",
    "import yaml\nyaml.safe_load(text)",
    "model.eval()",
    "import torch\ntorch.jit.load('m.ts')",
    "'''pickle is never used'''",
])
def test_the_scanner_lets_safe_code_pass(source):
    assert scan_source(source) == []


# --- paths from input files stay inside their folder ---------------------------------------------


def _tiny_png(path: Path) -> None:
    import cv2
    import numpy as np

    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.full((32, 32), 128, np.uint8))


@pytest.mark.parametrize("sid", ["../outside", "../../outside", "images/../../outside", "/ABS/outside"])
def test_a_labels_csv_id_cannot_reach_outside_the_data_set(tmp_path, sid):
    from edgecalc.data.dataset import DatasetError, check_dataset, load_dataset

    root = tmp_path / "data"
    _tiny_png(root / "images" / "a.png")
    _tiny_png(tmp_path / "outside.png")
    _tiny_png(tmp_path / "images" / "outside.png")
    sid = sid.replace("/ABS", str(tmp_path))
    (root / "labels.csv").write_text(f"id,calcification\na,0\n{sid},1\n")
    rep = check_dataset(root)
    assert any(sid in str(e) or "outside" in str(e) for e in rep.errors), [str(e) for e in rep.errors]
    with pytest.raises(DatasetError):
        load_dataset(root, size=32)


@pytest.mark.parametrize("name", ["../outside.onnx", "ABS", "link.onnx", "sub/../../outside.onnx"])
def test_a_manifest_file_name_cannot_reach_outside_the_bundle(tmp_path, name):
    from edgecalc.runtime.engine.bundle import MANIFEST_NAME, BundleError, load_bundle, sha256_file

    root = tmp_path / "bundle"
    root.mkdir()
    outside = tmp_path / "outside.onnx"
    outside.write_bytes(b"onnx stand-in")
    (root / "link.onnx").symlink_to(outside)
    name = str(outside) if name == "ABS" else name
    m = json.loads((PACKAGE / "assets" / "bundle" / MANIFEST_NAME).read_text())
    m["artifacts"] = [{"file": name, "kind": "onnx", "precision": "fp32", "sha256": sha256_file(outside),
                       "size": outside.stat().st_size, "engine": None, "notes": ""}]
    (root / MANIFEST_NAME).write_text(json.dumps(m))
    with pytest.raises(BundleError, match="outside"):
        load_bundle(root)


@pytest.mark.parametrize("location", ["../outside.bin", "ABS", "link.bin", "a/../../outside.bin"])
def test_an_onnx_external_data_location_cannot_reach_outside_its_folder(tmp_path, location):
    from edgecalc.runtime.engine.bundle import BundleError, check_onnx_file

    onnx = pytest.importorskip("onnx", reason="building the ONNX file needs onnx (the [train] extra)")
    from onnx import TensorProto, helper

    (tmp_path / "outside.bin").write_bytes(bytes(64))
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "link.bin").symlink_to(tmp_path / "outside.bin")
    location = str(tmp_path / "outside.bin") if location == "ABS" else location
    w = helper.make_tensor("W", TensorProto.FLOAT, [4, 4], vals=[0.0] * 16)
    w.ClearField("float_data")
    w.data_location = TensorProto.EXTERNAL
    e = w.external_data.add()
    e.key, e.value = "location", location
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "W"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])], [w])
    path = folder / "m.onnx"
    path.write_bytes(helper.make_model(graph).SerializeToString())
    with pytest.raises(BundleError, match="outside"):
        check_onnx_file(path)
    del onnx


@pytest.mark.parametrize("name", ["../outside.safetensors", "ABS"])
def test_a_checkpoint_tensor_name_cannot_reach_outside_its_folder(tmp_path, name):
    pytest.importorskip("torch", reason="training checkpoints need torch (the [train] extra)")
    from edgecalc.train.checkpoint import checkpoint_json, load_checkpoint

    ckpt = tmp_path / "run" / "checkpoints"
    ckpt.mkdir(parents=True)
    (tmp_path / "run" / "outside.safetensors").write_bytes(b"x")
    name = str(tmp_path / "run" / "outside.safetensors") if name == "ABS" else name
    checkpoint_json(ckpt, 1).write_text(json.dumps({"format_version": 1, "stage": 1, "tensors": name}))
    with pytest.raises(ValueError, match="outside its folder"):
        load_checkpoint(ckpt, 1, None, None, None)  # refused before anything is read or restored
