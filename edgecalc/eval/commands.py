"""Body of ``edgecalc eval`` (the CLI only parses options).

Progress and results go to the body's console (stdout); bad input raises :class:`CommandError` (exit 2):
the CLI prints ``error: MESSAGE`` on stderr. ``sweep`` and ``compare``, which train, have their bodies a
floor up, in ``edgecalc/studies/commands.py``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgecalc.errors import CommandError


def eval_command(run_dir: Path | None, data: Path | None, out: Path | None, device: str = "cpu", console: Any = None) -> None:
    """Evaluate a run (its test split or ``data``) or the shipped weights (on ``data``); :class:`CommandError`
    on bad input."""
    from rich.console import Console
    from rich.markup import escape

    from edgecalc.data.dataset import DatasetError
    from edgecalc.eval.evaluate import evaluate_run, evaluate_weights

    from edgecalc.model.shipped import SHIPPED_WEIGHTS, default_weights_path, shipped_weights_path

    console = console or Console()
    try:
        shipped_name = str(run_dir) if run_dir is not None and not Path(run_dir).exists() and str(run_dir) in SHIPPED_WEIGHTS else None
        if run_dir is not None and shipped_name is None:
            evaluate_run(run_dir, data, out, console=console, device=device)
        else:
            if data is None:
                raise CommandError("the shipped weights have no test split of their own: give --data DATA "
                                   "(e.g. a phantom made with `edgecalc data phantom OUT --seed 2026`)")
            weights = default_weights_path() if shipped_name is None else shipped_weights_path(shipped_name)
            console.print(f"shipped weights {escape(str(weights))} (docs/model-card.md; not for clinical use)")
            evaluate_weights(weights, data, out or Path("edgecalc-eval"), console=console, device=device)
    except (DatasetError, FileNotFoundError, ValueError) as exc:
        raise CommandError(str(exc)) from exc
