"""The body of ``edgecalc export`` (the CLI only parses options): write the bundle, print the parity table.

Exit 2 when nothing was written (the reason, then ``nothing written to OUT``); 3 when the bundle was
written but the TensorRT engine or the torch-tensorrt module asked for could not be built.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgecalc.errors import CommandError


def export_command(console: Any, weights: Path | None, precision: str, calib: Path | None, calib_size: int,
                   calib_method: str, calib_seed: int, engine: bool | None, max_batch: int, out: Path,
                   triton: Path | None, parity_size: int, via: str) -> None:
    """Export ``weights`` to the bundle ``out`` (see :class:`ExportOptions` for each option)."""
    from rich.console import Console
    from rich.markup import escape

    from edgecalc.calibration import CalibrationError
    from edgecalc.export.bundle_writer import BundleWriteError
    from edgecalc.export.parity import render_table
    from edgecalc.export.pipeline import ExportError, ExportOptions, export_bundle
    from edgecalc.export.verify import ParityError
    from edgecalc.export.weights_source import WeightsNotFound

    opts = ExportOptions(weights, precision, calib, calib_size, calib_method, calib_seed, engine, max_batch, out,
                         triton, parity_size, via)
    try:
        result = export_bundle(opts, log=lambda msg: console.print(escape(msg)))
    except (WeightsNotFound, ExportError, CalibrationError, BundleWriteError, ParityError, ValueError) as exc:
        raise CommandError(f"{exc}\nnothing written to {out}") from exc
    render_table(result.rows, Console())
    console.print(f"bundle written: {escape(str(result.bundle))}")
    for folder in result.triton_models:
        console.print(f"triton model: {escape(str(folder))}")
    errors = [e for e in (result.engine_error, result.via_error) if e]
    if errors:
        raise CommandError(*errors, code=3)
