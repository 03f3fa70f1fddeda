"""The ``edgecalc`` command (typer): the app, assembled from one module per help panel.

``deploy`` (live, demo, bench, export, locate, analyze), ``train`` (train, eval, sweep, compare),
``setup`` (doctor) and ``data`` (the ``model`` and ``data`` groups); ``options`` holds the option
objects several commands share, ``errors`` the one error path. The panel modules only parse options:
every body lives in its stage package and imports its heavy dependencies when called, so
``edgecalc --help`` and the cart commands start fast and never load torch unless they need it.
Nothing outside this package imports it but the entry point ``edgecalc/__main__.py``.
"""

from __future__ import annotations

import typer

from edgecalc.cli import data, deploy, setup, train

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


for _panel in (deploy, train, setup):
    for _name, _command in _panel.COMMANDS.items():
        app.command(_name, rich_help_panel=_panel.PANEL)(_command)
for _name, _group in data.GROUPS.items():
    app.add_typer(_group, name=_name, rich_help_panel=data.PANEL)


def main() -> None:
    """Console-script entry point."""
    app()
