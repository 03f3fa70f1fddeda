"""The body of ``edgecalc bench`` (the CLI only parses options): check the lists, run, print, name the files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgecalc.errors import CommandError


def bench_command(console: Any, bundle: Path | None, backends: str, data: Path | None, n_data: int, batch: str, n: int,
                  warmup: int, threads: int, weights: Path | None, out: Path) -> None:
    """Measure every backend x precision of ``bundle``; a bad list or bundle is a :class:`CommandError`."""
    from rich.markup import escape

    from edgecalc.bench.report import print_table
    from edgecalc.bench.run import BenchOptions, run_bench
    from edgecalc.runtime.engine.bundle import BundleError
    from edgecalc.runtime.engine.formats import BENCH_BACKENDS

    chosen = tuple(b.strip() for b in backends.split(",") if b.strip())
    unknown = [b for b in chosen if b not in BENCH_BACKENDS]
    try:
        batches = tuple(int(b) for b in batch.split(","))
        if unknown:
            raise ValueError(f"unknown backend(s) {unknown}; choose from {', '.join(BENCH_BACKENDS)}")
        if not batches or min(batches) < 1:
            raise ValueError(f"--batch needs positive integers, got {batch!r}")
        report = run_bench(BenchOptions(bundle=bundle, backends=chosen, data=data, n_data=n_data, batches=batches,
                                        n=n, warmup=warmup, threads=threads, weights=weights, out=out),
                           log=lambda m: console.print(escape(m)))
    except (BundleError, ValueError, FileNotFoundError) as exc:
        raise CommandError(str(exc)) from exc
    print_table(report)
    console.print(escape(f"written: {out / 'bench.json'}, {out / 'bench.md'}"))
