"""Bodies of ``edgecalc sweep`` and ``edgecalc compare`` (the CLI only parses options).

Progress and results go to the body's console (stdout); bad input raises :class:`CommandError` (exit 2), a
diverged training too (exit 3): the CLI prints ``error: MESSAGE`` on stderr. An interrupt returns 130. The
lists (``--fractions``, ``--methods``, ``--fold-ids``) arrive parsed and checked by the CLI (edgecalc/cli/options.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Sequence

from edgecalc.errors import CommandError


def _long_job(job: Callable[[], Any], what: str, out: Path, threads: int, console: Any) -> int:
    """Run a resumable multi-run job (sweep, compare): 0 when done, 130 when interrupted (with the resume hint);
    its failures as :class:`CommandError` (3 a diverged training, 2 bad input)."""
    from edgecalc.data.dataset import DatasetError
    from edgecalc.export.weights_source import WeightsNotFound
    from edgecalc.train import commands as train_commands
    from edgecalc.train.stage import TrainingDiverged

    train_commands.sigterm_as_interrupt()
    train_commands.set_threads(threads)
    try:
        job()
    except KeyboardInterrupt:
        return _interrupted(console, what, out)
    except (TrainingDiverged, DatasetError, FileExistsError, FileNotFoundError, WeightsNotFound, ValueError) as exc:
        if train_commands.signalled():  # the interrupt, come back out of C code (a figure being drawn) as another exception
            return _interrupted(console, what, out)
        raise CommandError(str(exc), code=3 if isinstance(exc, TrainingDiverged) else 2) from exc
    return 0


def _interrupted(console: Any, what: str, out: Path) -> int:
    from rich.markup import escape

    console.print(f"\n[yellow]interrupted; run the same command again to resume the {what} in {escape(str(out))}[/yellow]")
    return 130


def sweep_command(data: Path, fractions: Sequence[float], folds: int, fold_ids: Sequence[int], out: Path, threads: int = 0,
                  console: Any = None, **train_options: Any) -> int:
    """Run the sweep over ``fractions`` x ``fold_ids``: 0, or 130 when interrupted; :class:`CommandError` on bad input."""
    from rich.console import Console

    from edgecalc.studies.sweep import run_sweep

    console = console or Console()

    def job() -> None:
        run_sweep(data, list(fractions), out, list(fold_ids), console=console, folds=folds, **train_options)

    return _long_job(job, "sweep", out, threads, console)


def compare_command(data: Path, methods: Sequence[str], folds: int, fold_ids: Sequence[int], out: Path, threads: int = 0,
                    console: Any = None, **options: Any) -> int:
    """Run the comparison of ``methods`` on ``fold_ids``: 0, or 130 when interrupted; :class:`CommandError` on bad input."""
    from rich.console import Console

    from edgecalc.studies.compare import run_compare

    console = console or Console()

    def job() -> None:
        run_compare(data, list(methods), out, folds=folds, fold_ids=list(fold_ids), console=console, **options)

    return _long_job(job, "comparison", out, threads, console)
