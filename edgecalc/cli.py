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


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
