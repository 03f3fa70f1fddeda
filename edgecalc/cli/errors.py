"""The commands' one way out: ``error: MESSAGE`` on stderr (markup-escaped; it names the file), then the exit code.

Command bodies in the stage packages raise :class:`edgecalc.errors.CommandError`; :func:`run` calls a
body and turns that exception into :func:`fail`, and the body's return value into the exit code.
"""

from __future__ import annotations

from typing import Any, Callable, NoReturn

import typer

from edgecalc.errors import CommandError


def escape_markup(text: str) -> str:
    """``text`` with rich markup escaped (file names may hold ``[...]``)."""
    from rich.markup import escape

    return escape(text)


def fail(console: Any, *messages: str, code: int = 2) -> NoReturn:
    """Print each message as ``error: MESSAGE`` and exit ``code`` (2 bad input, 1 nothing to do)."""
    for message in messages:
        console.print(f"[red]error:[/red] {escape_markup(message)}")
    raise typer.Exit(code)


def run(body: Callable[..., int | None], /, **options: Any) -> NoReturn:
    """Call ``body(console, **options)`` with a stderr console; exit with its return value (None = 0), or
    through :func:`fail` on its :class:`CommandError`."""
    from rich.console import Console

    console = Console(stderr=True)
    try:
        code = body(console, **options)
    except CommandError as exc:
        fail(console, *exc.messages, code=exc.code)
    raise typer.Exit(code or 0)
