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


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
