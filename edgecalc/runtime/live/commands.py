"""The bodies of ``edgecalc live`` and ``edgecalc demo`` (the CLI only parses options), and their summary table.

Torch-free like the rest of the runtime. Bad input and failed sources raise :class:`CommandError`;
the engine is closed on every way out.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from edgecalc.errors import CommandError


def live_command(console: Any, camera: int | None, source: str | None, bundle: Path | None, backend: str,
                 precision: str, crop: str, roi: str | None, margin: float, extent: bool, locator_every: int,
                 headless: bool, record: Path | None, record_segment: float, log: Path | None, snapshots: Path, snapshot_every: int,
                 max_frames: int | None, realtime: bool | None, fps: float | None, phantom_frames: int, threads: int,
                 loop: str, attention: bool, summary_json: Path | None, mm_per_px: float | None,
                 refine: str = "default") -> None:
    """Open the source and the engine, run the live loop, print (and write) the end-of-run summary."""
    from rich.markup import escape

    from edgecalc.runtime.engine.backends import BackendUnavailable
    from edgecalc.runtime.engine.bundle import BundleError
    from edgecalc.runtime.source.capture import SourceError, parse_source
    from edgecalc.runtime.live.loop import KEYS_HELP, LiveHooks, LiveOptions, has_display, run_live, select_roi_with_mouse
    from edgecalc.runtime.live.modes import LOOP_MODES
    from edgecalc.runtime.live.build import build_pipeline
    from edgecalc.runtime.live.recorder import DEFAULT_FPS, Recorder
    from edgecalc.runtime.refine_mask import Refinement

    try:
        if loop not in LOOP_MODES:
            raise ValueError(f"--loop must be one of {', '.join(LOOP_MODES)}; got {loop!r}")
        spec = parse_source(camera, source)
        if not headless and not has_display():
            console.print("no display found: running headless")
            headless = True
        if crop == "manual" and headless:
            raise ValueError("--crop manual needs a window to draw the box in; use --crop auto or fixed when headless")
        refinement = Refinement.parse(refine)
        setup = build_pipeline(bundle, backend=backend, precision=precision, crop=crop, roi=roi, margin=margin,
                               locator_every=locator_every, threads=threads, show_attention=attention,
                               extent=extent)
        setup.pipeline.refinement = refinement
    except (SourceError, BundleError, BackendUnavailable, ValueError, FileNotFoundError) as exc:
        raise CommandError(str(exc)) from exc
    if mm_per_px is not None:
        if not mm_per_px > 0:
            setup.selection.backend.close()
            raise CommandError(f"--mm-per-px must be a positive number of millimetres per pixel; got {mm_per_px}")
        setup.pipeline.spacing_mm = (mm_per_px, mm_per_px)
    console.print(f"bundle {escape(str(setup.bundle.root))}  engine: {escape(setup.selection.reason)}")
    if not headless:
        console.print(f"keys: {KEYS_HELP}")
    try:
        recorder = (Recorder(record, log, fps=fps, segment_s=record_segment)  # fps None: the source's
                    if (record or log) else None)
    except OSError as exc:  # a read-only or missing folder for --record / --log
        setup.selection.backend.close()
        raise CommandError(str(exc)) from exc
    try:
        options = LiveOptions(headless=headless, snapshot_dir=Path(snapshots), snapshot_every=snapshot_every,
                              max_frames=max_frames, realtime=realtime, fps_hint=fps or DEFAULT_FPS,
                              phantom_frames=phantom_frames, ask_box_first=crop == "manual", pipelined=LOOP_MODES[loop])
        hooks = LiveHooks(recorder=recorder, manual_box_picker=None if headless else select_roi_with_mouse)
        summary = run_live(spec, setup.pipeline, setup.selection.backend.describe(), options, hooks)
    except SourceError as exc:
        if recorder is not None:
            recorder.close()
        raise CommandError(str(exc)) from exc
    except OSError as exc:  # the recording or the log could not be written (full disk): the recorder names the file
        raise CommandError(str(exc)) from exc
    finally:
        setup.selection.backend.close()
    print_live_summary(summary, console)
    if summary_json is not None:
        summary_json.write_text(json.dumps(summary.to_dict(), indent=2) + "\n")


def demo_command(console: Any, out: Path, frames: int, backend: str, precision: str, bundle: Path | None) -> None:
    """The shipped (or given) bundle on the two-scan phantom cine, headless; print the summary and the segments."""
    from types import SimpleNamespace

    from rich.markup import escape

    from edgecalc.runtime.engine.backends import BackendUnavailable
    from edgecalc.runtime.engine.bundle import BundleError
    from edgecalc.runtime.live.demo import DEMO_LOG, DEMO_SNAPSHOTS, DEMO_SUMMARY, DEMO_VIDEO, print_segments, run_demo
    from edgecalc.runtime.live.build import build_pipeline

    try:
        setup = build_pipeline(bundle, backend=backend, precision=precision, crop="auto")
    except (BundleError, BackendUnavailable, ValueError, FileNotFoundError) as exc:
        raise CommandError(str(exc)) from exc
    console.print(f"bundle {escape(str(setup.bundle.root))}  engine: {escape(setup.selection.reason)}")
    try:
        data = run_demo(setup, out, frames)
    except OSError as exc:  # --out unwritable, a full disk, or a killed demo's demo.mp4.segments/: named
        raise CommandError(str(exc)) from exc
    finally:
        setup.selection.backend.close()
    print_live_summary(SimpleNamespace(**{k: v for k, v in data.items() if k != "demo"}), console)
    print_segments(data["demo"]["segments"], console)
    console.print(escape(f"written: {out / DEMO_VIDEO}, {out / DEMO_LOG}, {out / DEMO_SUMMARY}, {out / DEMO_SNAPSHOTS}/ "
                         f"({data['demo']['total_s']:.1f} s)"))


def print_live_summary(summary: Any, console: Any) -> None:
    """The end-of-run table: frames read / processed / dropped / skipped, latency, FPS."""
    from rich.markup import escape
    from rich.table import Table

    t = Table(title=escape(f"edgecalc live: {summary.source} ({summary.stopped_by})"), title_justify="left")
    for col in ("read", "processed", "dropped", "skipped (bad)", "reconnects", "FPS", "latency p50 ms",
                "latency p99 ms", "inference p50 ms"):
        t.add_column(col, justify="right")
    fmt = lambda v: "-" if v is None else f"{v:.1f}"  # noqa: E731
    t.add_row(str(summary.frames_read), str(summary.processed), str(summary.dropped), str(summary.skipped_bad),
              str(summary.reconnects), f"{summary.fps:.1f}", fmt(summary.latency_ms_p50),
              fmt(summary.latency_ms_p99), fmt(summary.infer_ms_p50))
    console.print(t)
    if summary.snapshots:
        console.print(escape(f"snapshots: {', '.join(summary.snapshots)}"))
