"""The bodies of ``edgecalc locate`` and ``edgecalc analyze`` (the CLI only parses options): the cart path on stills.

Torch-free like the rest of the runtime. Bad input raises :class:`CommandError`; unreadable images
are reported by name and skipped; the return value is the exit code (1 when nothing could be read).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgecalc.errors import CommandError

#: ``--locator``'s choices: the shipped network, or the dark-blob baseline.
LOCATORS = ("learned", "classical")


def locator_function(locator: str, extent: bool = True) -> Any:
    """The ``locate(frame)`` of the named locator; ``extent`` False: the learned one crops around its box alone.
    A missing or broken locator bundle, or an unknown name, is a ValueError."""
    if locator == "learned":
        from edgecalc.runtime.locate.learned import LearnedLocator, LocatorBundleError

        try:
            learned = LearnedLocator(threads=1)
        except (LocatorBundleError, FileNotFoundError) as exc:
            raise ValueError(str(exc)) from exc
        if not extent:
            learned.crop_threshold = learned.threshold
        return learned.locate
    if locator == "classical":
        from edgecalc.runtime.locate.classical import locate_nodule

        return locate_nodule
    raise ValueError(f"--locator must be one of {', '.join(LOCATORS)}; got {locator!r}")


def locate_command(console: Any, images: Path, out: Path | None, overlay: Path | None, margin: float, locator: str,
                   extent: bool) -> int:
    """Find the nodule in each image; the CSV to ``out`` or stdout; exit 0 when an image was read, else 1."""
    from rich.markup import escape
    from rich.progress import Progress

    from edgecalc.runtime.locate.images import csv_text, list_images, locate_paths, write_csv

    try:
        paths = list_images(images)
        locate_fn = locator_function(locator, extent)
    except (ValueError, FileNotFoundError) as exc:
        raise CommandError(str(exc)) from exc
    if not paths:
        raise CommandError(f"no image files in {images}", code=1)
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("locating", total=len(paths))
        results, bad = locate_paths(paths, locate_fn, overlay, margin, lambda p: progress.advance(task))
    for reason in bad:
        console.print(f"[yellow]skipped[/yellow] {escape(reason)}")
    if out is not None:
        write_csv(out, results)
    else:
        print(csv_text(results), end="")
    found = sum(r.box is not None for r in results)
    console.print(f"{len(results)} image(s) located ({found} with a nodule), {len(bad)} skipped"
                  + (f"; boxes -> {escape(str(out))}" if out is not None else ""))
    return 0 if results else 1


def analyze_command(console: Any, images: Path, out: Path | None, json_out: Path | None, overlay: Path | None,
                    mm_per_px: float | None, bundle: Path | None, backend: str, precision: str, locator: str,
                    margin: float, threads: int, refine: str = "default") -> int:
    """Scan area, locator, crop, model and quantification per still; the report as CSV (and JSON); exit 0
    when an image was analyzed, else 1."""
    from rich.markup import escape
    from rich.progress import Progress

    from edgecalc.runtime.analyze import StillAnalyzer, analyze_paths, csv_text, list_inputs, write_reports
    from edgecalc.runtime.engine.backends import BackendUnavailable
    from edgecalc.runtime.engine.bundle import BundleError
    from edgecalc.runtime.live.build import build_pipeline
    from edgecalc.runtime.refine_mask import Refinement

    try:
        if mm_per_px is not None and not mm_per_px > 0:
            raise ValueError(f"--mm-per-px must be a positive number of millimetres per pixel; got {mm_per_px}")
        paths = list_inputs(images)
        locate_fn = locator_function(locator)
        refinement = Refinement.parse(refine)
        setup = build_pipeline(bundle, backend=backend, precision=precision, crop="manual", margin=margin,
                               threads=threads)
        setup.pipeline.refinement = refinement
    except (BundleError, BackendUnavailable, ValueError, FileNotFoundError) as exc:
        raise CommandError(str(exc)) from exc
    if not paths:
        setup.selection.backend.close()
        raise CommandError(f"no files in {images}", code=1)
    console.print(f"bundle {escape(str(setup.bundle.root))}  engine: {escape(setup.selection.reason)}")
    try:
        with Progress(console=console, transient=True) as progress:
            task = progress.add_task("analyzing", total=len(paths))
            rows, bad = analyze_paths(paths, StillAnalyzer(setup.pipeline, locate_fn, margin), mm_per_px, overlay,
                                      lambda p: progress.advance(task))
    finally:
        setup.selection.backend.close()
    for reason in bad:
        console.print(f"[yellow]skipped[/yellow] {escape(reason)}")
    write_reports(rows, out, json_out, bad)
    if out is None:
        print(csv_text(rows), end="")
    called = sum(r.foci.count > 0 for r in rows)
    console.print(f"{len(rows)} image(s) analyzed ({called} with calcifications reported), {len(bad)} skipped"
                  + (f"; report -> {escape(str(out))}" if out is not None else ""))
    return 0 if rows else 1
