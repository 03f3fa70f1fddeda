"""``auto`` engine selection reads the bundle's parity report: an engine that runs the same file less
faithfully than another, or that the report does not cover, is not the fast choice."""

from __future__ import annotations

import json
import shutil

import pytest

from edgecalc.runtime.engine.bundle import load_bundle
from edgecalc.runtime.engine.formats import PARITY_FILE
from edgecalc.runtime.engine.select import parity_rejections, select_backend
from edgecalc.runtime.shipped import SHIPPED_BUNDLE


def _row(backend: str, precision: str, auc: float, dice: float, status: str = "ran") -> dict:
    return {"artifact": f"model.{precision}.onnx", "backend": backend, "precision": precision, "auc": auc, "dice": dice,
            "decision_agreement": 1.0, "status": status}


@pytest.fixture()
def bundle(tmp_path):
    """The shipped bundle, loaded (verified), then its parity report rewritten by each test."""
    root = tmp_path / "bundle"
    shutil.copytree(SHIPPED_BUNDLE, root)
    b = load_bundle(root)

    def with_rows(*rows: dict):
        (root / PARITY_FILE).write_text(json.dumps({"rows": [_row("pytorch", "fp32", 0.94, 0.70), *rows]}))
        return b
    return with_rows


def test_an_engine_that_runs_int8_worse_than_another_is_refused(bundle):
    b = bundle(_row("onnxruntime", "int8", 0.936, 0.690), _row("openvino", "int8", 0.863, 0.398))
    out = parity_rejections(b, "int8")
    assert set(out) == {"openvino"} and "AUC 0.863" in out["openvino"] and PARITY_FILE in out["openvino"]
    # within the margins of the best one: both kept
    b = bundle(_row("onnxruntime", "int8", 0.936, 0.690), _row("openvino", "int8", 0.933, 0.680))
    assert parity_rejections(b, "int8") == {}


def test_an_engine_the_report_does_not_cover_is_left_out_only_while_another_is_covered(bundle):
    b = bundle(_row("onnxruntime", "int8", 0.936, 0.690))
    assert set(parity_rejections(b, "int8")) == {"openvino"}
    assert "not verified" in parity_rejections(b, "int8")["openvino"]
    b = bundle(_row("onnxruntime", "fp32", 0.94, 0.70))
    assert parity_rejections(b, "int8") == {}  # nothing known at int8: every engine may be tried
    b = bundle(_row("onnxruntime", "int8", 0.936, 0.690), _row("openvino", "int8", 0.2, 0.1, status="not run"))
    assert "not verified" in parity_rejections(b, "int8")["openvino"]


def test_no_report_refuses_nothing(bundle, tmp_path):
    b = bundle()
    (b.root / PARITY_FILE).unlink()
    assert parity_rejections(b, "int8") == {}
    (b.root / PARITY_FILE).write_text("{not json")
    assert parity_rejections(b, "int8") == {}


def test_auto_never_opens_the_refused_engine(bundle):
    pytest.importorskip("onnxruntime")
    b = bundle(_row("onnxruntime", "int8", 0.936, 0.690), _row("openvino", "int8", 0.863, 0.398))
    sel = select_backend(b, "auto", "int8", threads=1)
    try:
        assert sel.backend.name == "onnxruntime" and "openvino" in sel.rejected
    finally:
        sel.backend.close()
    # named by the user: opened as asked, whatever the report says
    pytest.importorskip("openvino")
    sel = select_backend(b, "openvino", "int8", threads=1)
    try:
        assert sel.backend.name == "openvino"
    finally:
        sel.backend.close()


def _with_machine(b, int8_dot: str | None):
    """The test's report, stamped with the int8 class of the CPU it was measured on."""
    path = b.root / PARITY_FILE
    doc = json.loads(path.read_text())
    doc["machine"] = {"cpu": "test CPU", "int8_dot": int8_dot}
    path.write_text(json.dumps(doc))
    return b


@pytest.mark.parametrize("measured_on, here, refused", [
    ("vnni", "no-vnni", True),     # the shipped case: exported on a VNNI Xeon, run on an AVX2 cart
    ("no-vnni", "vnni", True),
    ("vnni", "vnni", False),
    (None, "no-vnni", False),      # an older report that does not say: its rows count as before
    ("vnni", None, False),         # this CPU's flags unknown: the rows count
])
def test_an_openvino_int8_row_speaks_only_for_cpus_of_its_int8_class(bundle, monkeypatch, measured_on, here, refused):
    import edgecalc.runtime.engine.select as select

    monkeypatch.setattr(select, "int8_dot_class", lambda: here)
    b = _with_machine(bundle(_row("onnxruntime", "int8", 0.936, 0.690), _row("openvino", "int8", 0.935, 0.689)),
                      measured_on)
    out = parity_rejections(b, "int8")
    assert ("openvino" in out) == refused and "onnxruntime" not in out
    if refused:
        assert f"int8 class {measured_on}, this one is {here}" in out["openvino"] and PARITY_FILE in out["openvino"]
    assert parity_rejections(b, "fp32") == {}  # float32 does not depend on the int8 instructions


def test_a_report_with_only_the_other_cpus_openvino_row_still_leaves_onnxruntime(bundle, monkeypatch):
    import edgecalc.runtime.engine.select as select

    monkeypatch.setattr(select, "int8_dot_class", lambda: "no-vnni")
    b = _with_machine(bundle(_row("openvino", "int8", 0.935, 0.689)), "vnni")
    assert set(parity_rejections(b, "int8")) == {"openvino"}
    assert parity_rejections(b, "int8", candidates=("openvino",)) == {}  # nothing else to run: not refused


def test_int8_dot_class_reads_the_flags():
    from edgecalc.machine import int8_dot_class

    assert int8_dot_class(frozenset({"avx2", "avx512f", "avx512_vnni"})) == "vnni"
    assert int8_dot_class(frozenset({"avx2", "amx_int8"})) == "vnni"
    assert int8_dot_class(frozenset({"avx2", "fma"})) == "no-vnni"
    assert int8_dot_class(frozenset()) is None
