"""The package installs, its CLI answers, and the cart side stays free of torch."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import REPO_ROOT

# Run a snippet in a fresh interpreter in which `import torch` raises ImportError, as on a cart
# where only the base extra is installed.
BLOCK_TORCH = textwrap.dedent(
    """
    import sys, importlib.abc
    class _NoTorch(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name == "torch" or name.startswith("torch."):
                raise ImportError(f"torch is blocked in this test ({name})", name=name)
            return None
    sys.meta_path.insert(0, _NoTorch())
    """
)


def run_without_torch(code: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", BLOCK_TORCH + textwrap.dedent(code)],
        capture_output=True, text=True, timeout=120, cwd=REPO_ROOT,
    )


def test_package_imports_with_version():
    import edgecalc

    assert re.fullmatch(r"\d+\.\d+\.\d+", edgecalc.__version__)
    for sub in ("model", "data", "train", "calibration", "export", "runtime", "eval"):
        __import__(f"edgecalc.{sub}")


def test_cli_help_lists_doctor():
    from edgecalc.cli import app

    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0, result.output
    assert "doctor" in result.output


def test_console_script_answers_help():
    script = Path(sys.executable).parent / "edgecalc"
    if not script.exists():
        pytest.skip(f"console script not installed next to {sys.executable} (package not pip-installed)")
    out = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "Usage" in out.stdout and "doctor" in out.stdout


def test_blocker_really_blocks_torch():
    """Guard for the tests below: the blocked interpreter cannot import torch."""
    res = run_without_torch("import torch")
    assert res.returncode != 0
    assert "torch is blocked" in res.stderr


@pytest.mark.parametrize("module", ["edgecalc.runtime", "edgecalc.data", "edgecalc.data.preprocess",
                                    "edgecalc.cli", "edgecalc.doctor"])
def test_cart_modules_import_without_torch(module):
    res = run_without_torch(f"import {module}\nimport sys\nassert 'torch' not in sys.modules")
    assert res.returncode == 0, res.stderr


def test_runtime_subpackages_never_import_torch():
    """Every module under edgecalc.runtime and edgecalc.data imports with torch blocked."""
    res = run_without_torch(
        """
        import importlib, pkgutil, sys
        import edgecalc.runtime, edgecalc.data
        failed = []
        for pkg in (edgecalc.runtime, edgecalc.data):
            for info in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + "."):
                try:
                    importlib.import_module(info.name)
                except ImportError as exc:
                    failed.append(f"{info.name}: {exc}")
        assert not failed, failed
        assert "torch" not in sys.modules
        """
    )
    assert res.returncode == 0, res.stderr


def test_cli_help_and_doctor_without_torch():
    res = run_without_torch(
        """
        import json
        from typer.testing import CliRunner
        from edgecalc.cli import app
        r = CliRunner().invoke(app, ["--help"])
        assert r.exit_code == 0, r.output
        r = CliRunner().invoke(app, ["doctor", "--json"])
        assert r.exit_code == 0, r.output
        print(r.output)
        """
    )
    assert res.returncode == 0, res.stderr
    report = json.loads(res.stdout)
    torch_row = next(lib for lib in report["libraries"] if lib["name"] == "torch")
    assert torch_row["version"] is None
    assert "not installed" in torch_row["detail"]
    pytorch_rows = [b for b in report["backends"] if b["backend"] in ("pytorch", "torchscript")]
    assert pytorch_rows and not any(b["usable"] for b in pytorch_rows)
    assert all("torch" in b["reason"] for b in pytorch_rows)
    ort_fp32 = next(b for b in report["backends"] if b["backend"] == "onnxruntime" and b["precision"] == "fp32")
    assert ort_fp32["usable"]


def test_doctor_report_matches_this_machine():
    """Doctor's TensorRT and GPU verdicts agree with what is actually importable here."""
    import importlib.util

    from edgecalc.doctor import collect_report

    rep = collect_report()
    trt_rows = [b for b in rep.backends if b.backend == "tensorrt"]
    has_trt = importlib.util.find_spec("tensorrt") is not None
    if not has_trt:
        assert all(not b.usable and "tensorrt not installed" in b.reason for b in trt_rows)
    if rep.gpu is None:
        assert rep.gpu_reason
        assert all(not b.usable for b in rep.backends if b.device == "cuda")


def test_readme_test_command_is_what_ci_runs():
    """README's second set-up command and .ci/run stay the same command."""
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```(?:bash|sh)?\n(.*?)```", readme, flags=re.S)
    assert len(blocks) >= 2, "README must open with two set-up command blocks"
    test_cmd = blocks[1].strip()
    ci = (REPO_ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert test_cmd in ci, f"README test command {test_cmd!r} not found in .ci/run"


@pytest.mark.parametrize("command", [
    ["doctor"], ["live"], ["demo"], ["bench"], ["export"], ["locate"], ["train"], ["eval"], ["sweep"],
    ["model"], ["model", "info"], ["data"], ["data", "phantom"], ["data", "check"],
])
def test_every_command_answers_help(command):
    """Every command's --help renders (rich markup in a help text must not break it)."""
    from edgecalc.cli import app

    result = CliRunner().invoke(app, [*command, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output
