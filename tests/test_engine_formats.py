"""The one backend x precision table (``runtime/engine/formats.py``) and the places that read it."""

from __future__ import annotations

import re
from pathlib import Path

from typer.testing import CliRunner

from edgecalc.cli import app
from edgecalc.runtime.engine import formats
from edgecalc.runtime.engine.backends import BACKENDS
from edgecalc.runtime.engine.bundle import KINDS

PACKAGE = Path(formats.__file__).resolve().parents[2]


def test_every_row_names_a_known_backend_precision_and_artifact():
    for f in formats.FORMATS:
        assert f.backend in formats.BACKENDS
        assert f.precision in formats.PRECISIONS + ("bf16",)
        assert f.device in ("cpu", "cuda")
        assert f.artifact is None or f.artifact in KINDS
    assert {f.backend for f in formats.FORMATS} == set(formats.BACKENDS)


def test_runtime_backends_are_the_table_rows_with_an_implementation():
    assert set(BACKENDS) == set(formats.RUNTIME_BACKENDS) == set(formats.BACKEND_CHOICES) - {"auto"}
    for module, _cls in BACKENDS.values():
        assert (PACKAGE.parent / (module.replace(".", "/") + ".py")).is_file(), module
    assert formats.RUNTIME_BACKENDS[0] == "tensorrt"  # auto tries a GPU engine first
    assert set(formats.ONNX_CPU_BACKENDS) == {"onnxruntime", "openvino"}


def test_bundle_file_names_are_the_ones_export_writes():
    assert formats.bundle_file("onnx", "int8") == "model.int8.onnx"
    assert formats.bundle_file("engine", "fp16") == "model.fp16.engine"
    assert formats.bundle_file("torchscript", "fp32") == "model.ts"
    assert formats.install_hint("openvino") == "pip install 'edgecalc[openvino]'"
    assert formats.install_hint("onnxruntime") == ""


def test_cli_choices_come_from_the_table():
    runner = CliRunner()
    live = runner.invoke(app, ["live", "--help"], env={"COLUMNS": "300"})
    assert formats.choices_help(formats.BACKEND_CHOICES) in live.output
    assert formats.choices_help(formats.PRECISIONS) in live.output
    bench = runner.invoke(app, ["bench", "--help"], env={"COLUMNS": "300"})
    assert ",".join(formats.BENCH_BACKENDS) in bench.output


def test_no_module_spells_the_backend_list_again():
    """Two backend names side by side in a literal list is a respelled table; only formats.py may hold one."""
    names = "|".join(formats.BACKENDS)
    pattern = re.compile(rf"""["']({names})["']\s*,\s*["']({names})["']""")
    found = [f"{p.relative_to(PACKAGE.parent)}:{i}" for p in PACKAGE.rglob("*.py") if p.name != "formats.py"
             for i, line in enumerate(p.read_text().splitlines(), 1) if pattern.search(line)]
    assert not found, found
