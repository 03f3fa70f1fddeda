"""The "Set-up" panel: ``edgecalc doctor``."""

from __future__ import annotations

import typer

PANEL = "Set-up"


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


#: This panel's commands by name, in the order --help lists them.
COMMANDS = {"doctor": doctor}
