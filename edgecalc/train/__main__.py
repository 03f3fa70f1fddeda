"""``python -m edgecalc.train ...`` = ``edgecalc train ...``; the form torchrun launches:

    torchrun --nproc_per_node 2 -m edgecalc.train DATA --mask-fraction 0.3 --device cpu
"""

from __future__ import annotations

import sys

import typer

from edgecalc.cli import app

if __name__ == "__main__":
    command = typer.main.get_command(app).commands["train"]  # type: ignore[attr-defined]
    command.main(args=sys.argv[1:], prog_name="python -m edgecalc.train")
