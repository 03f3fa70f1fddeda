"""The body of ``edgecalc bench`` (the CLI parses and checks the options, lists included): run, print, name the files."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from edgecalc.errors import CommandError


def bench_command(console: Any, bundle: Path | None, backends: Sequence[str], data: Path | None, n_data: int,
                  batch: Sequence[int], n: int, warmup: int, threads: int, weights: Path | None, out: Path) -> None:
    """Measure every backend x precision of ``bundle`` (``backends`` and ``batch`` as the CLI checked them); a bad
    bundle or data set is a :class:`CommandError`."""
    from rich.markup import escape

    from edgecalc.bench.report import print_table
    from edgecalc.bench.run import BenchOptions, run_bench
    from edgecalc.runtime.engine.bundle import BundleError

    try:
        report = run_bench(BenchOptions(bundle=bundle, backends=tuple(backends), data=data, n_data=n_data, batches=tuple(batch),
                                        n=n, warmup=warmup, threads=threads, weights=weights, out=out),
                           log=lambda m: console.print(escape(m)))
    except (BundleError, ValueError, FileNotFoundError) as exc:
        raise CommandError(str(exc)) from exc
    print_table(report)
    console.print(escape(f"written: {out / 'bench.json'}, {out / 'bench.md'}"))
