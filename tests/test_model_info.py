"""Parameter and FLOP counting, and the `edgecalc model info` command."""

from __future__ import annotations

import torch
from torch.utils.flop_counter import FlopCounterMode
from typer.testing import CliRunner

from edgecalc.cli import app
from edgecalc.model import CSAGNet, get_preset
from edgecalc.model.info import model_info


def test_counts_agree_with_torch_flop_counter():
    cfg = get_preset("lite", 64)
    model = CSAGNet(cfg).eval()
    info = model_info(cfg, model)
    assert info.params == sum(p.numel() for p in model.parameters())
    assert sum(r.params for r in info.rows) == info.params  # the table covers every parameter
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(torch.zeros(1, 1, 64, 64))
    assert info.flops == counter.get_total_flops()
    assert sum(r.flops for r in info.rows) == info.flops


def test_cli_model_info_prints_params_and_flops():
    result = CliRunner().invoke(app, ["model", "info", "--preset", "lite", "--size", "64"], env={"COLUMNS": "160"})
    assert result.exit_code == 0, result.output
    info = model_info(get_preset("lite", 64))
    assert f"{info.params:,} parameters" in result.output
    assert "GFLOP per image" in result.output and "decoder.gates.2" in result.output


def test_cli_model_info_rejects_bad_size():
    result = CliRunner().invoke(app, ["model", "info", "--size", "100"], env={"COLUMNS": "160"})
    assert result.exit_code != 0 and "96 or 112" in result.output
