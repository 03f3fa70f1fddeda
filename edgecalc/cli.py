"""The ``edgecalc`` command (typer).

Every command imports its heavy dependencies inside its own function, so ``edgecalc --help`` and
the cart commands start fast and never load torch unless they need it.
"""

from __future__ import annotations

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


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
