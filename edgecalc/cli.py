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


@app.command()
def doctor() -> None:
    """Report library versions and which inference backends and precisions work on this machine."""
    from edgecalc.doctor import collect_report, render_report

    render_report(collect_report())


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
