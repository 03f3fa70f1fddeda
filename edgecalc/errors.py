"""The error a command body raises to stop on bad input or a failed step.

The bodies live in their stage packages (``data/commands.py``, ``runtime/live/commands.py``, ...),
which must not import the CLI; the CLI catches this one exception and prints it the one way
(``edgecalc/cli/errors.py``: ``error: MESSAGE``, exit ``code``). Torch-free, imports nothing.
"""

from __future__ import annotations


class CommandError(Exception):
    """``error: MESSAGE`` (one line per message, each naming the file or option at fault), exit ``code``:
    2 bad input, 1 nothing to do, 3 a step after the main result failed or a training diverged (NaN loss).
    An interrupted training or sweep is no error: its body prints how to resume and returns 130."""

    def __init__(self, *messages: str, code: int = 2) -> None:
        super().__init__("\n".join(messages))
        self.messages = messages
        self.code = code
