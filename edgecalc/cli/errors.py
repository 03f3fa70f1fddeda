"""The commands' one way out: ``error: MESSAGE`` on stderr (markup-escaped; it names the file), then the exit code.

Command bodies in the stage packages raise :class:`edgecalc.errors.CommandError`; :func:`run` calls a
body and turns that exception into :func:`fail`, and the body's return value into the exit code.
:func:`exit_with` does the same for a body that keeps its own console for progress (the Train panel's:
training's round lines stay on stdout, its errors go to stderr like every other command's).
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
    """Print each message as ``error: MESSAGE`` and exit ``code`` (2 bad input, 1 nothing to do).

    Not wrapped to the terminal's width: a long path stays on its line, whole, for grep and for logs."""
    for message in messages:
        console.print(f"[red]error:[/red] {escape_markup(message)}", soft_wrap=True)
    raise typer.Exit(code)


def exit_with(call: Callable[[], int | None], console: Any = None) -> NoReturn:
    """Call ``call()``; exit with its return value (None = 0), or through :func:`fail` on ``console`` (default a
    stderr console) on its :class:`CommandError`."""
    try:
        code = call()
    except CommandError as exc:
        fail(console or _stderr_console(), *exc.messages, code=exc.code)
    raise typer.Exit(code or 0)


def run(body: Callable[..., int | None], /, **options: Any) -> NoReturn:
    """Call ``body(console, **options)`` with a stderr console; exit with its return value (None = 0), or
    through :func:`fail` on its :class:`CommandError`."""
    console = _stderr_console()
    exit_with(lambda: body(console, **options), console)


def _stderr_console() -> Any:
    from rich.console import Console

    return Console(stderr=True)
