"""Bodies of ``edgecalc eval``, ``edgecalc sweep`` and ``edgecalc compare`` (the CLI only parses options)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable


def _ints(text: str, what: str) -> list[int]:
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError as exc:
        raise ValueError(f"{what} must be comma-separated integers, got {text!r}") from exc


def _floats(text: str, what: str) -> list[float]:
    try:
        vals = [float(v) for v in text.split(",") if v.strip()]
    except ValueError as exc:
        raise ValueError(f"{what} must be comma-separated numbers, got {text!r}") from exc
    if not vals or any(not 0 < v <= 1 for v in vals):
        raise ValueError(f"{what} must be numbers in (0, 1], got {text!r}")
    return vals


def eval_command(run_dir: Path | None, data: Path | None, out: Path | None, device: str = "cpu", console: Any = None) -> int:
    """Evaluate a run (its test split or ``data``) or the shipped weights (on ``data``); return an exit code."""
    from rich.console import Console

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
                console.print("[red]the shipped weights have no test split of their own: give --data DATA "
                              "(e.g. a phantom made with `edgecalc data phantom OUT --seed 2026`)[/red]")
                return 2
            weights = default_weights_path() if shipped_name is None else shipped_weights_path(shipped_name)
            console.print(f"shipped weights {weights} (docs/model-card.md; not for clinical use)")
            evaluate_weights(weights, data, out or Path("edgecalc-eval"), console=console, device=device)
    except (DatasetError, FileNotFoundError, ValueError) as exc:
        console.print(f"[red]{exc}[/red]")
        return 2
    return 0


def _fold_list(fold_ids: str | None, folds: int) -> list[int]:
    ids = _ints(fold_ids, "--fold-ids") if fold_ids else list(range(folds))
    bad = [k for k in ids if not 0 <= k < folds]
    if bad:
        raise ValueError(f"--fold-ids {bad} outside 0..{folds - 1}")
    return ids


def _long_job(job: Callable[[], Any], what: str, out: Path, threads: int, console: Any) -> int:
    """Run a resumable multi-run job (sweep, compare) and map its failures to the CLI's exit codes."""
    from edgecalc.data.dataset import DatasetError
    from edgecalc.export.weights_source import WeightsNotFound
    from edgecalc.train.commands import sigterm_as_interrupt, set_threads
    from edgecalc.train.stage import TrainingDiverged

    sigterm_as_interrupt()
    set_threads(threads)
    try:
        job()
    except KeyboardInterrupt:
        console.print(f"\n[yellow]interrupted; run the same command again to resume the {what} in {out}[/yellow]")
        return 130
    except TrainingDiverged as exc:
        console.print(f"[red]{exc}[/red]")
        return 3
    except (DatasetError, FileExistsError, FileNotFoundError, WeightsNotFound, ValueError) as exc:
        console.print(f"[red]{exc}[/red]")
        return 2
    return 0


def sweep_command(data: Path, fractions: str, folds: int, fold_ids: str | None, out: Path, threads: int = 0,
                  console: Any = None, **train_options: Any) -> int:
    """Parse the lists, run the sweep, return an exit code."""
    from rich.console import Console

    from edgecalc.eval.sweep import run_sweep

    console = console or Console()

    def job() -> None:
        run_sweep(data, _floats(fractions, "--fractions"), out, _fold_list(fold_ids, folds), console=console,
                  folds=folds, **train_options)

    return _long_job(job, "sweep", out, threads, console)


def compare_command(data: Path, methods: str, folds: int, fold_ids: str | None, out: Path, threads: int = 0,
                    console: Any = None, **options: Any) -> int:
    """Parse the lists, run the comparison, return an exit code."""
    from rich.console import Console

    from edgecalc.eval.compare import parse_methods, run_compare

    console = console or Console()

    def job() -> None:
        run_compare(data, parse_methods(methods), out, folds=folds, fold_ids=_fold_list(fold_ids, folds),
                    console=console, **options)

    return _long_job(job, "comparison", out, threads, console)
