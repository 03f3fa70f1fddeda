"""`edgecalc export` on bad input: each a clear error, exit code 2, and no bundle or temporary folder left."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from edgecalc.cli import app
from edgecalc.model import CSAGNet, DSAGNet, get_preset
from edgecalc.model.weights import save_model
from test_calibration import write_dataset

SIZE = 64


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("run")
    save_model(CSAGNet(get_preset("lite", SIZE).with_(width=0.125)).eval(), run / "model.safetensors")
    return run


def export(args: list[str], out: Path):
    res = CliRunner().invoke(app, ["export", *args, "--out", str(out), "--no-engine", "--parity-size", "8"])
    return res, " ".join(res.output.split())


def assert_nothing_left(out: Path) -> None:
    assert not out.exists()
    leftovers = [p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}")]
    assert leftovers == [], leftovers


def test_no_weights_and_no_shipped_default(tmp_path, monkeypatch):
    import edgecalc.export.weights_source as ws

    monkeypatch.setattr(ws, "shipped_weights", lambda: None)
    res, text = export([], tmp_path / "b")
    assert res.exit_code == 2
    assert "carries no default weights" in text and "pass WEIGHTS" in text
    assert_nothing_left(tmp_path / "b")


def test_without_weights_the_shipped_default_is_exported():
    from edgecalc.export.weights_source import resolve_weights
    from edgecalc.model.shipped import default_weights_path

    assert resolve_weights(None) == default_weights_path()


def test_missing_weights_file(tmp_path):
    res, text = export([str(tmp_path / "nope.safetensors")], tmp_path / "b")
    assert res.exit_code == 2 and "nope.safetensors does not exist" in text
    assert_nothing_left(tmp_path / "b")


def test_run_folder_without_weights(tmp_path):
    (tmp_path / "run").mkdir()
    res, text = export([str(tmp_path / "run")], tmp_path / "b")
    assert res.exit_code == 2 and "holds none of model.safetensors, final.safetensors" in text
    assert_nothing_left(tmp_path / "b")


def test_weights_of_another_preset(run_dir, tmp_path):
    """The JSON says 'paper' but the tensors are the tiny model's: refused, the tensor named."""
    run = tmp_path / "run"
    run.mkdir()
    (run / "model.safetensors").write_bytes((run_dir / "model.safetensors").read_bytes())
    meta = json.loads((run_dir / "model.json").read_text())
    meta["config"] = get_preset("paper", SIZE).to_dict()
    (run / "model.json").write_text(json.dumps(meta))
    res, text = export([str(run)], tmp_path / "b")
    assert res.exit_code == 2 and "do not match the config" in text and "tensor" in text
    assert_nothing_left(tmp_path / "b")


def test_stage_one_weights_refused(tmp_path):
    save_model(DSAGNet(get_preset("lite", SIZE).with_(width=0.125)), tmp_path / "ds.safetensors")
    res, text = export([str(tmp_path / "ds.safetensors")], tmp_path / "b")
    assert res.exit_code == 2 and "dsagnet" in text and "CS-AGnet" in text
    assert_nothing_left(tmp_path / "b")


def test_calibration_folder_without_images(run_dir, tmp_path):
    (tmp_path / "data" / "images").mkdir(parents=True)
    res, text = export([str(run_dir), "--precision", "int8", "--calib", str(tmp_path / "data")], tmp_path / "b")
    assert res.exit_code == 2 and f"{tmp_path / 'data'} has no images" in text
    assert_nothing_left(tmp_path / "b")


def test_calib_size_larger_than_data(run_dir, tmp_path):
    write_dataset(tmp_path / "data", n_pos=3, n_neg=5)
    res, text = export([str(run_dir), "--precision", "int8", "--calib", str(tmp_path / "data"),
                        "--calib-size", "9"], tmp_path / "b")
    assert res.exit_code == 2 and "--calib-size 9 is larger than the data set (8" in text
    assert_nothing_left(tmp_path / "b")


def test_unknown_precision_and_method(run_dir, tmp_path):
    res, text = export([str(run_dir), "--precision", "int4"], tmp_path / "b")
    assert res.exit_code == 2 and "int4" in text
    res, text = export([str(run_dir), "--precision", "int8", "--calib-method", "magic"], tmp_path / "b")
    assert res.exit_code == 2 and "magic" in text and "percentile" in text
    assert_nothing_left(tmp_path / "b")


def test_interrupt_mid_export_leaves_no_partial_bundle(run_dir, tmp_path, monkeypatch):
    """Ctrl-C after files were written (here: in the INT8 step) removes the staged folder."""
    from edgecalc.export import int8
    from edgecalc.export.pipeline import ExportOptions, export_bundle

    def interrupt(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(int8, "quantize_int8", interrupt)
    monkeypatch.setenv("EDGECALC_CACHE_DIR", str(tmp_path / "cache"))
    with pytest.raises(KeyboardInterrupt):
        export_bundle(ExportOptions(run_dir, "int8", None, 4, "minmax", 0, False, 4, tmp_path / "b", None, 4,
                                    command="test"), log=lambda m: None)
    assert_nothing_left(tmp_path / "b")


def test_out_folder_that_is_not_a_bundle_is_not_overwritten(run_dir, tmp_path):
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "precious.txt").write_text("keep")
    res, text = export([str(run_dir)], tmp_path / "b")
    assert res.exit_code == 2 and "not an edgecalc bundle" in text
    assert (tmp_path / "b" / "precious.txt").read_text() == "keep"
