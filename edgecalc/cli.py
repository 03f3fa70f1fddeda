"""The ``edgecalc`` command (typer).

Every command imports its heavy dependencies inside its own function, so ``edgecalc --help`` and
the cart commands start fast and never load torch unless they need it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

app = typer.Typer(
    name="edgecalc",
    help="CS-AGnet calcification recognition in thyroid-nodule ultrasound: data, training, export, "
    "live inference and benchmarks.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)


@app.callback()
def _root() -> None:
    """CS-AGnet calcification recognition in thyroid-nodule ultrasound."""


@app.command()
def doctor(
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON instead of tables."),
) -> None:
    """Report library versions and which inference backends and precisions work on this machine."""
    from edgecalc.doctor import collect_report, render_report

    report = collect_report()
    if as_json:
        import json

        typer.echo(json.dumps(report.to_dict(), indent=2))
    else:
        render_report(report)


model_app = typer.Typer(help="Inspect the CS-AGnet model: parameters, FLOPs, layers.", no_args_is_help=True)
app.add_typer(model_app, name="model")


@model_app.command("info")
def model_info_cmd(
    preset: str = typer.Option("paper", "--preset", help="Model preset: paper or lite."),
    size: int = typer.Option(None, "--size", help="Input size (a multiple of 16); default the preset's."),
) -> None:
    """Print CS-AGnet's parameter count, FLOPs per image (2 x MACs) and a per-layer table."""
    from rich.console import Console
    from rich.table import Table

    from edgecalc.model.config import get_preset
    from edgecalc.model.info import model_info

    try:
        cfg = get_preset(preset, size)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    info = model_info(cfg)
    table = Table(title=f"CS-AGnet '{preset}' at {cfg.input_size}x{cfg.input_size}x{cfg.in_channels}, width {cfg.width}")
    table.add_column("layer")
    table.add_column("output (C, H, W)")
    table.add_column("params", justify="right")
    table.add_column("MFLOP", justify="right")
    for row in info.rows:
        table.add_row(row.name, str(row.output_shape), f"{row.params:,}", f"{row.flops / 1e6:,.1f}")
    table.add_row("total", "", f"{info.params:,}", f"{info.flops / 1e6:,.1f}", style="bold")
    console = Console()
    console.print(table)
    console.print(
        f"preset {preset}: filters {cfg.filters}, {info.params:,} parameters, "
        f"{info.flops / 1e9:.2f} GFLOP per image (FLOPs = 2 x multiply-accumulates of conv/linear layers)"
    )


data_app = typer.Typer(help="Data: the ultrasound phantom (default data set) and the data-set checker.",
                       no_args_is_help=True)
app.add_typer(data_app, name="data")


@data_app.command("phantom")
def data_phantom_cmd(
    out: str = typer.Option(..., "--out", help="Folder to write the data set into (created if absent)."),
    n: int = typer.Option(1207, "--n", help="Number of nodule crops (the paper's data set: 1207)."),
    positive: int = typer.Option(551, "--positive", help="How many of them carry calcifications (paper: 551)."),
    size: int = typer.Option(192, "--size", help="Side in pixels of the square crops (paper: 192)."),
    frames: bool = typer.Option(False, "--frames", help="Also write a 560x360 screen frame per crop under frames/."),
    video: bool = typer.Option(False, "--video", help="Also write a cine loop (cine.mp4, or cine.avi) for the live demo."),
    seed: int = typer.Option(0, "--seed", help="Seed: the same seed gives byte-identical images."),
    workers: int = typer.Option(0, "--workers", help="Worker processes; 0 = one per CPU core. Output does not depend on it."),
) -> None:
    """Generate the phantom data set: images/, masks/, nodules/, labels.csv and phantom.json."""
    import time

    from edgecalc.data.phantom import write_phantom_dataset

    if not 0 <= positive <= n:
        raise typer.BadParameter(f"--positive {positive} must lie between 0 and --n {n}")
    t0 = time.perf_counter()
    path = write_phantom_dataset(out, n=n, positive=positive, size=size, seed=seed, frames=frames, video=video,
                                 progress=True, workers=workers or None)
    typer.echo(f"wrote {n} crops ({positive} with calcification) to {path} in {time.perf_counter() - t0:.1f} s")


@data_app.command("check")
def data_check_cmd(
    path: str = typer.Argument(..., help="Data-set folder (images/, optional masks/, labels.csv)."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Validate a data set: every problem with its file and reason, then a summary. Exit 1 on errors."""
    from edgecalc.data.dataset import check_dataset, format_report

    rep = check_dataset(path)
    if as_json:
        import json

        typer.echo(json.dumps({"path": rep.path, "ok": rep.ok, "summary": rep.summary,
                               "errors": [vars(e) for e in rep.errors],
                               "warnings": [vars(w) for w in rep.warnings]}, indent=2))
    else:
        typer.echo(format_report(rep))
    raise typer.Exit(0 if rep.ok else 1)


@app.command("export")
def export_cmd(
    weights: Optional[Path] = typer.Argument(None, help="Run folder (model.safetensors or final.safetensors + .json) "
                                             "or a .safetensors file. Default: the weights shipped with the kit."),
    precision: str = typer.Option("fp32", "--precision", help="fp32 | fp16 | int8: the reduced-precision ONNX model "
                                  "(and engine) to add; TorchScript and float32 ONNX are always written."),
    calib: Optional[Path] = typer.Option(None, "--calib", help="Data-set folder (images/<id>.png, labels.csv) to "
                                         "calibrate INT8 on. Default: phantom crops the kit generates."),
    calib_size: int = typer.Option(256, "--calib-size", help="Calibration images, stratified by class."),
    calib_method: str = typer.Option("percentile", "--calib-method", help="minmax | entropy | percentile "
                                     "(default chosen by measurement, docs/export.md)."),
    calib_seed: int = typer.Option(0, "--calib-seed", help="Seed of the calibration draw (recorded in the manifest)."),
    engine: Optional[bool] = typer.Option(None, "--engine/--no-engine", help="Build a TensorRT engine. Default: "
                                          "on when a GPU, TensorRT and cuda-python are present."),
    max_batch: int = typer.Option(8, "--max-batch", help="Largest batch of the engine's optimisation profile (1..N)."),
    out: Path = typer.Option(Path("bundle"), "--out", help="Bundle folder to write (replaced only when complete)."),
    triton: Optional[Path] = typer.Option(None, "--triton", help="Also lay the bundle out as a Triton model repository here."),
    parity_size: int = typer.Option(64, "--parity-size", help="Held-out phantom crops for the parity report."),
) -> None:
    """Export weights to a bundle: TorchScript, ONNX (fp32 + fp16/int8), TensorRT engine, manifest, parity report."""
    from rich.console import Console
    from rich.markup import escape as escape_markup

    from edgecalc.calibration import CalibrationError
    from edgecalc.export.bundle_writer import BundleWriteError
    from edgecalc.export.parity import render_table
    from edgecalc.export.pipeline import ExportError, ExportOptions, export_bundle
    from edgecalc.export.verify import ParityError
    from edgecalc.export.weights_source import WeightsNotFound

    console = Console(stderr=True)
    opts = ExportOptions(weights, precision, calib, calib_size, calib_method, calib_seed, engine, max_batch, out,
                         triton, parity_size)
    try:
        result = export_bundle(opts, log=lambda msg: console.print(escape_markup(msg)))
    except (WeightsNotFound, ExportError, CalibrationError, BundleWriteError, ParityError, ValueError) as exc:
        console.print(f"[red]error:[/red] {escape_markup(str(exc))}")
        console.print(f"nothing written to {escape_markup(str(out))}")
        raise typer.Exit(2)
    render_table(result.rows, Console())
    console.print(f"bundle written: {escape_markup(str(result.bundle))}")
    for folder in result.triton_models:
        console.print(f"triton model: {escape_markup(str(folder))}")
    if result.engine_error:
        console.print(f"[red]error:[/red] {escape_markup(result.engine_error)}")
        raise typer.Exit(3)


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
