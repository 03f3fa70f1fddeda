"""The body of ``edgecalc train`` (the CLI only parses options): new run, resume, interrupt handling.

Progress goes to the body's console (stdout); bad input and a diverged run raise :class:`CommandError`
(exit 2 and 3: the CLI prints ``error: MESSAGE`` on stderr); an interrupt returns 130 with the resume hint.
"""

from __future__ import annotations

import atexit
import signal
from pathlib import Path
from typing import Any

from edgecalc.errors import CommandError


#: Set once SIGTERM arrived: a KeyboardInterrupt raised inside C code (matplotlib drawing the final
#: figures) can come back out as another exception, which must still be reported as the interrupt.
_SIGNALLED: list[int] = []


def sigterm_as_interrupt() -> None:
    """Treat ``kill`` (SIGTERM) like Ctrl-C: the epoch in progress is dropped, checkpoints stay."""
    _SIGNALLED.clear()  # a signal that reached an earlier command in this process is not this one's

    def handler(signum: int, frame: Any) -> None:
        _SIGNALLED.append(signum)
        raise KeyboardInterrupt(f"signal {signum}")

    try:
        signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread
        return
    # once the command is over, a late SIGTERM ends the process plainly (raised during the interpreter's
    # shutdown, the KeyboardInterrupt only printed "Exception ignored" and the exit code said 0)
    atexit.register(signal.signal, signal.SIGTERM, signal.SIG_DFL)


def signalled() -> bool:
    """Whether SIGTERM reached this command (since :func:`sigterm_as_interrupt`): then any failure is the interrupt."""
    return bool(_SIGNALLED)


def _interrupted(console: Any, run_dir: Path | None) -> int:
    from rich.markup import escape

    if run_dir is None:
        console.print("\n[yellow]interrupted before the run folder was made: nothing to resume[/yellow]")
    else:
        console.print(f"\n[yellow]interrupted: the epoch in progress is lost, earlier epochs are checkpointed; "
                      f"continue with: edgecalc train --resume {escape(str(run_dir))}[/yellow]")
    return 130


def default_run_dir(mask_fraction: float, fold: int, preset: str, size: int | None) -> Path:
    return Path("runs") / f"{preset}{size or ''}-p{mask_fraction:g}-fold{fold}"


def set_threads(threads: int) -> None:
    """``threads`` > 0: torch's intra-op thread count. Use the same count when resuming: a CPU kernel's
    summation order may depend on it, and bit-identical resumes assume the same order."""
    if threads > 0:
        import torch

        torch.set_num_threads(threads)


def train_cmd(resume: Path | None, threads: int = 0, console: Any = None, **options: Any) -> int:
    """Start a run from ``options`` (TrainConfig fields + ``out``) or resume one: 0 when it finished, 130 when
    interrupted; :class:`CommandError` on bad input (code 2) or a diverged run (code 3)."""
    from rich.console import Console
    from rich.markup import escape

    from edgecalc.data.dataset import DatasetError
    from edgecalc.train.config import TrainConfig
    from edgecalc.train.run import resume_training, run_training
    from edgecalc.train.stage import TrainingDiverged

    console = console or Console()
    sigterm_as_interrupt()
    set_threads(threads)
    out = options.pop("out", None)
    run_dir = Path(resume) if resume is not None else None
    try:
        if resume is not None:
            console.print(f"resuming {escape(str(run_dir))} from its last checkpoint (its own config.json; other options ignored)")
            final = resume_training(run_dir, console=console, device=options.get("device"))
        else:
            if options.get("data") is None:
                raise CommandError("give a data-set folder (edgecalc train DATA ...) or --resume RUN_DIR")
            options["data"] = str(options["data"])
            cfg = TrainConfig.for_recipe(options.pop("recipe", None) or "cpu", **options)
            run_dir = Path(out) if out else default_run_dir(cfg.mask_fraction, cfg.fold, cfg.preset, cfg.size)
            console.print(f"run folder {escape(str(run_dir))}")
            final = run_training(cfg, run_dir, console=console)
    except KeyboardInterrupt:
        return _interrupted(console, run_dir)
    # OSError: also a full disk or a read-only run folder
    except (TrainingDiverged, DatasetError, OSError, ValueError) as exc:
        if signalled():  # the interrupt, come back out of C code as another exception
            return _interrupted(console, run_dir)
        raise CommandError(str(exc), code=3 if isinstance(exc, TrainingDiverged) else 2) from exc
    console.print(f"final weights: {escape(str(final))}")
    return 0
