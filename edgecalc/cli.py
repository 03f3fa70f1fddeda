"""The ``edgecalc`` command (typer).

Every command imports its heavy dependencies inside its own function, so ``edgecalc --help`` and
the cart commands start fast and never load torch unless they need it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, NoReturn, Optional

import typer

from edgecalc.model.shipped import SHIPPED_WEIGHTS as _SHIPPED_WEIGHTS
from edgecalc.runtime.engine.formats import BACKEND_CHOICES, BENCH_BACKENDS, PRECISIONS, choices_help

app = typer.Typer(
    name="edgecalc",
    help="CS-AGnet calcification recognition in thyroid-nodule ultrasound: data, training, export, "
    "live inference and benchmarks.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)


@app.callback()
def _root() -> None:
    """CS-AGnet calcification recognition in thyroid-nodule ultrasound."""


model_app = typer.Typer(help="Inspect the CS-AGnet model: parameters, FLOPs, layers.", no_args_is_help=True)
app.add_typer(model_app, name="model", rich_help_panel="Data and model")


@model_app.command("info")
def model_info_cmd(
    preset: str = typer.Option("paper", "--preset", help="Model preset: paper or lite."),
    size: int = typer.Option(None, "--size", help="Input size (a multiple of 16); default the preset's."),
    network: str = typer.Option("csagnet", "--network", help="A network of edgecalc/model/registry.py (csagnet, "
                                "vgg-unet, alexnet-seg, sononet-ag, vgg16, resnet50; docs/comparison.md)."),
) -> None:
    """Print a network's (default CS-AGnet's) parameter count, FLOPs per image (2 x MACs) and a per-layer table."""
    from rich.console import Console
    from rich.table import Table

    from edgecalc.model.config import get_preset
    from edgecalc.model.info import model_info

    from edgecalc.model.registry import network_class

    try:
        cfg = get_preset(preset, size)
        model = network_class(network)(cfg)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    info = model_info(cfg, model)
    table = Table(title=f"{'CS-AGnet' if network == 'csagnet' else network} '{preset}' at {cfg.input_size}x{cfg.input_size}x{cfg.in_channels}, width {cfg.width}")
    table.add_column("layer")
    table.add_column("output (C, H, W)")
    table.add_column("params", justify="right")
    table.add_column("MFLOP", justify="right")
    for row in info.rows:
        table.add_row(row.name, str(row.output_shape), f"{row.params:,}", f"{row.flops / 1e6:,.1f}")
    table.add_row("total", "", f"{info.params:,}", f"{info.flops / 1e6:,.1f}", style="bold")
    console = Console()
    console.print(table)
    console.print(
        f"preset {preset}: " + (f"filters {cfg.filters}, " if network in ("csagnet", "vgg-unet") else f"width {cfg.width}, ")
        + f"{info.params:,} parameters, "
        f"{info.flops / 1e9:.2f} GFLOP per image (FLOPs = 2 x multiply-accumulates of conv/linear layers)"
    )


data_app = typer.Typer(help="Data: the ultrasound phantom (default data set) and the data-set checker.",
                       no_args_is_help=True)
app.add_typer(data_app, name="data", rich_help_panel="Data and model")


@data_app.command("phantom")
def data_phantom_cmd(
    out: str = typer.Option(..., "--out", help="Folder to write the data set into (created if absent)."),
    n: int = typer.Option(1207, "--n", help="Number of nodule crops (the paper's data set: 1207)."),
    positive: int = typer.Option(551, "--positive", help="How many of them carry calcifications (paper: 551)."),
    size: int = typer.Option(192, "--size", help="Side in pixels of the square crops (paper: 192)."),
    frames: bool = typer.Option(False, "--frames", help="Also write a 560x360 screen frame per crop under frames/."),
    video: bool = typer.Option(False, "--video", help="Also write a cine loop (cine.mp4, or cine.avi) for the live demo."),
    dicom: bool = typer.Option(False, "--dicom", help="Also write the same cine (60 frames, 20 frames/s) as cine.dcm: "
                               "a multi-frame ultrasound DICOM whose ultrasound region carries the frames' exact "
                               "spacing, with synthetic patient fields (needs the [dicom] extra)."),
    seed: int = typer.Option(0, "--seed", help="Seed: the same seed gives byte-identical images."),
    workers: int = typer.Option(0, "--workers", help="Worker processes; 0 = one per CPU core. Output does not depend on it."),
    config: Optional[str] = typer.Option(None, "--config", help="JSON file of PhantomConfig fields to move off "
                                         "their defaults (a phantom.json works too), e.g. docs/phantom_shifted.json."),
    sets: Optional[list[str]] = typer.Option(None, "--set", help="KEY=VALUE (repeatable): one PhantomConfig field, "
                                             "VALUE as JSON, applied after --config; e.g. --set dynamic_range_db=[45,60]."),
) -> None:
    """Generate the phantom data set: images/, masks/, nodules/, labels.csv, meta.jsonl and phantom.json."""
    import json
    import time

    from edgecalc.data.phantom import write_phantom_dataset
    from edgecalc.data.phantom.config import config_with

    if not 0 <= positive <= n:
        raise typer.BadParameter(f"--positive {positive} must lie between 0 and --n {n}")
    overrides = None
    if config:
        try:
            overrides = json.loads(Path(config).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise typer.BadParameter(f"cannot read {config}: {exc}", param_hint="--config") from exc
    try:
        cfg = config_with(overrides, sets)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--config/--set") from exc
    t0 = time.perf_counter()
    if dicom:
        from edgecalc.data.dicom import DicomError, require_pydicom

        try:
            require_pydicom("--dicom")
        except DicomError as exc:
            raise typer.BadParameter(str(exc), param_hint="--dicom") from exc
    try:
        path = write_phantom_dataset(out, n=n, positive=positive, size=size, seed=seed, frames=frames, video=video,
                                     progress=True, workers=workers or None, config=cfg, dicom=dicom)
    except OSError as exc:  # a full disk or a read-only --out: labels.csv (written last) is absent, data check refuses it
        typer.echo(f"error: cannot write the data set to {out}: {exc}; it is incomplete (no labels.csv)", err=True)
        raise typer.Exit(2)
    typer.echo(f"wrote {n} crops ({positive} with calcification) to {path} in {time.perf_counter() - t0:.1f} s")
    if dicom:
        typer.echo(f"wrote {Path(path) / 'cine.dcm'}")


@data_app.command("import-dicom")
def data_import_dicom_cmd(
    src: Path = typer.Argument(..., help="A DICOM file, or a folder searched recursively for DICOM files (found by "
                               "their 'DICM' marker, whatever their names)."),
    out: Path = typer.Option(..., "--out", help="New data-set folder to write (images/, labels.csv); refused if it "
                             "already holds a labels.csv."),
    every: int = typer.Option(1, "--every", min=1, help="Keep every k-th frame of a cine (neighbouring frames are "
                              "near copies)."),
) -> None:
    """Write the frames of DICOM files into a data set: images/<file_id>_<frame>.png, labels.csv with each
    frame's mm per pixel and spacing source, the label left empty (unlabelled), no patient identifiers.

    Unusable files are reported (path and file_id, never patient data) and skipped. Exit 0 when at least
    one frame was written, 1 when none was, 2 on a bad argument or a missing pydicom.
    """
    from rich.console import Console
    from rich.progress import Progress

    from edgecalc.data.dataset import LABELS_FILE
    from edgecalc.data.dicom_import import find_dicom_files, import_dicom
    from edgecalc.data.dicom import DicomError, require_pydicom

    console = Console(stderr=True)
    try:
        require_pydicom("data import-dicom")
        paths = find_dicom_files(src)
        if (out / LABELS_FILE).exists():
            raise ValueError(f"{out / LABELS_FILE} exists: import into a new folder")
    except (DicomError, ValueError, FileNotFoundError) as exc:
        fail(console, str(exc))
    if not paths:
        fail(console, f"no DICOM file under {src}", 1)
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("importing", total=len(paths))
        rep = import_dicom(src, out, every=every, paths=paths, on_file=lambda p: progress.advance(task))
    for reason in rep.skipped:
        console.print(f"[yellow]skipped[/yellow] {escape_markup(reason)}")
    console.print(f"{rep.frames} frame(s) from {rep.files} file(s) ({rep.with_spacing} with a known spacing) "
                  f"-> {out}; {len(rep.skipped)} skipped; labels empty (unlabelled): check with "
                  f"`edgecalc data check {out}`")
    raise typer.Exit(0 if rep.frames else 1)


@data_app.command("check")
def data_check_cmd(
    path: str = typer.Argument(..., help="Data-set folder (images/, optional masks/, labels.csv)."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Validate a data set: every problem with its file and reason, then a summary. Exit 1 on errors."""
    from edgecalc.data.dataset import check_dataset, format_report

    rep = check_dataset(path)
    if as_json:
        import json

        typer.echo(json.dumps({"path": rep.path, "ok": rep.ok, "summary": rep.summary,
                               "errors": [vars(e) for e in rep.errors],
                               "warnings": [vars(w) for w in rep.warnings]}, indent=2))
    else:
        typer.echo(format_report(rep))
    raise typer.Exit(0 if rep.ok else 1)


@app.command(rich_help_panel="Deploy")
def live(
    camera: Optional[int] = typer.Option(None, "--camera", help="Camera / capture-card index (OpenCV). Give this or --source."),
    source: Optional[str] = typer.Option(None, "--source", help="Video file, DICOM cine (played at its recorded "
                                         "frame rate; the [dicom] extra), RTSP/HTTP URL, GStreamer pipeline "
                                         "('... ! appsink'), or 'phantom' for the built-in phantom cine."),
    bundle: Optional[Path] = typer.Option(None, "--bundle", help="Export bundle folder (edgecalc export). "
                                          "Default: the bundle shipped with the package."),
    backend: str = typer.Option("auto", "--backend", help=f"{choices_help(BACKEND_CHOICES)}. "
                                "auto = a TensorRT engine for this GPU if the bundle has one, else the fastest CPU "
                                "engine measured at start-up."),
    precision: str = typer.Option("fp32", "--precision", help=f"{choices_help(PRECISIONS)}: which of the bundle's models to run."),
    crop: str = typer.Option("auto", "--crop", help="auto: scan-area detection + nodule locator; manual: draw the "
                             "box with the mouse ('r' redraws); fixed: the --roi box on every frame."),
    roi: Optional[str] = typer.Option(None, "--roi", help="x,y,w,h of the nodule in frame pixels, for --crop fixed."),
    margin: float = typer.Option(0.1, "--margin", help="Crop margin around the nodule box, as a share of its long side."),
    extent: bool = typer.Option(True, "--extent/--no-extent", help="--crop auto: the crop holds the nodule's extent "
                                "(where the locator's probability reaches its lower crop threshold), which holds "
                                "whole nodules more often (docs/locator.md); --no-extent: the box alone, as the paper."),
    locator_every: int = typer.Option(20, "--locator-every", min=1, help="Run the nodule locator every k frames "
                                      "(--crop auto); in between the box follows the picture by phase correlation. "
                                      "20 by measurement (docs/live.md)."),
    headless: bool = typer.Option(False, "--headless", help="No window (automatic when there is no display)."),
    record: Optional[Path] = typer.Option(None, "--record", help="Write the overlaid video here (.mp4 mp4v or .avi MJPG)."),
    record_segment: float = typer.Option(10.0, "--record-segment", min=0.0, help="--record writes the video in "
                                         "segments of this many seconds (in OUT.segments/, with an index), joined "
                                         "into OUT at the end, so a kill or power loss costs at most the open "
                                         "segment; 0 = one file, lost entirely on a kill (docs/reliability.md)."),
    log: Optional[Path] = typer.Option(None, "--log", help="Write one JSON line per processed frame here."),
    snapshots: Path = typer.Option(Path("snapshots"), "--snapshots", help="Folder for snapshot PNGs ('s' key, --snapshot-every)."),
    snapshot_every: int = typer.Option(0, "--snapshot-every", min=0, help="Also save every N-th processed frame as PNG (0 = off)."),
    max_frames: Optional[int] = typer.Option(None, "--max-frames", min=1, help="Stop after this many processed frames."),
    realtime: Optional[bool] = typer.Option(None, "--realtime/--no-realtime", help="Drop stale frames (default: yes for "
                                            "cameras and streams, no for files and the phantom, which are read in full)."),
    fps: Optional[float] = typer.Option(None, "--fps", min=1.0, help="Frame rate of the phantom source with --realtime "
                                        "(default 20), and of the recorded video (default: the source's own rate "
                                        "where it records one, a DICOM cine's or a video file's, else 20)."),
    phantom_frames: int = typer.Option(90, "--phantom-frames", min=1, help="Length of the phantom cine (frames)."),
    threads: int = typer.Option(0, "--threads", min=0, help="CPU threads for the engine (0 = the engine's default)."),
    loop: str = typer.Option("auto", "--loop", help="pipelined: the model call on a worker thread, overlapped with "
                             "the neighbouring frames' crop and overlay; serial: one after the other; auto: "
                             "pipelined for GPU engines, serial for CPU ones (measured: docs/live.md)."),
    attention: bool = typer.Option(False, "--attention", help="Start with the attention map shown ('a' toggles)."),
    summary_json: Optional[Path] = typer.Option(None, "--summary-json", help="Also write the end-of-run summary as JSON."),
    mm_per_px: Optional[float] = typer.Option(None, "--mm-per-px", help="Pixel spacing of the "
                                              "frames (mm per pixel, square pixels) for the HUD's calcification sizes; "
                                              "default: the source's own (a DICOM file's), else sizes in pixels."),
) -> None:
    """Run the model live on frames from a camera, file, stream or the phantom, with the overlay."""
    import json

    from rich.console import Console

    from edgecalc.runtime.engine.backends import BackendUnavailable
    from edgecalc.runtime.engine.bundle import BundleError
    from edgecalc.runtime.source.capture import SourceError, parse_source
    from edgecalc.runtime.live.loop import KEYS_HELP, LOOP_MODES, has_display, run_live, select_roi_with_mouse
    from edgecalc.runtime.live.build import build_pipeline
    from edgecalc.runtime.live.recorder import DEFAULT_FPS, Recorder

    console = Console(stderr=True)
    try:
        if loop not in LOOP_MODES:
            raise ValueError(f"--loop must be one of {', '.join(LOOP_MODES)}; got {loop!r}")
        spec = parse_source(camera, source)
        if not headless and not has_display():
            console.print("no display found: running headless")
            headless = True
        if crop == "manual" and headless:
            raise ValueError("--crop manual needs a window to draw the box in; use --crop auto or fixed when headless")
        setup = build_pipeline(bundle, backend=backend, precision=precision, crop=crop, roi=roi, margin=margin,
                               locator_every=locator_every, threads=threads, show_attention=attention,
                               extent=extent)
    except (SourceError, BundleError, BackendUnavailable, ValueError, FileNotFoundError) as exc:
        fail(console, str(exc))
    if mm_per_px is not None:
        if not mm_per_px > 0:
            setup.selection.backend.close()
            fail(console, f"--mm-per-px must be a positive number of millimetres per pixel; got {mm_per_px}")
        setup.pipeline.spacing_mm = (mm_per_px, mm_per_px)
    console.print(f"bundle {setup.bundle.root}  engine: {escape_markup(setup.selection.reason)}")
    if not headless:
        console.print(f"keys: {KEYS_HELP}")
    try:
        recorder = Recorder(record, log, fps=fps, segment_s=record_segment) if (record or log) else None  # fps None: the source's
    except OSError as exc:  # a read-only or missing folder for --record / --log
        setup.selection.backend.close()
        fail(console, str(exc))
    try:
        summary = run_live(spec, setup.pipeline, backend_name=setup.selection.backend.describe(), headless=headless,
                           recorder=recorder, snapshot_dir=snapshots, snapshot_every=snapshot_every,
                           max_frames=max_frames, realtime=realtime, fps_hint=fps or DEFAULT_FPS, phantom_frames=phantom_frames,
                           manual_box_picker=None if headless else select_roi_with_mouse,
                           ask_box_first=crop == "manual", pipelined=LOOP_MODES[loop])
    except SourceError as exc:
        if recorder is not None:
            recorder.close()
        fail(console, str(exc))
    except OSError as exc:  # the recording or the log could not be written (full disk): the recorder names the file
        fail(console, str(exc))
    finally:
        setup.selection.backend.close()
    print_live_summary(summary, console)
    if summary_json is not None:
        summary_json.write_text(json.dumps(summary.to_dict(), indent=2) + "\n")


@app.command(rich_help_panel="Deploy")
def demo(
    out: Path = typer.Option(Path("demo"), "--out", help="Folder for demo.mp4, log.jsonl, summary.json and snapshots."),
    frames: int = typer.Option(90, "--frames", min=1, help="Length of the phantom cine (frames): the first half "
                               "scans a nodule with calcifications, the rest one without."),
    backend: str = typer.Option("auto", "--backend", help=f"{choices_help(BACKEND_CHOICES)}."),
    precision: str = typer.Option("fp32", "--precision", help="fp32 | int8 (the shipped bundle holds both)."),
    bundle: Optional[Path] = typer.Option(None, "--bundle", help="Bundle to run (default: the shipped one)."),
) -> None:
    """The shipped model on the built-in phantom cine (a nodule with calcifications, then one without), headless:
    writes a video, segment-named snapshots and a summary with each segment's scores against the truth."""
    from types import SimpleNamespace

    from rich.console import Console

    from edgecalc.runtime.engine.backends import BackendUnavailable
    from edgecalc.runtime.engine.bundle import BundleError
    from edgecalc.runtime.live.demo import print_segments, run_demo
    from edgecalc.runtime.live.build import build_pipeline

    console = Console(stderr=True)
    try:
        setup = build_pipeline(bundle, backend=backend, precision=precision, crop="auto")
    except (BundleError, BackendUnavailable, ValueError, FileNotFoundError) as exc:
        fail(console, str(exc))
    console.print(f"bundle {setup.bundle.root}  engine: {escape_markup(setup.selection.reason)}")
    try:
        data = run_demo(setup, out, frames)
    finally:
        setup.selection.backend.close()
    print_live_summary(SimpleNamespace(**{k: v for k, v in data.items() if k != "demo"}), console)
    print_segments(data["demo"]["segments"], console)
    console.print(f"written: {out / 'demo.mp4'}, {out / 'log.jsonl'}, {out / 'summary.json'}, {out / 'snapshots'}/ "
                  f"({data['demo']['total_s']:.1f} s)")


@app.command(rich_help_panel="Deploy")
def bench(
    bundle: Optional[Path] = typer.Argument(None, help="Export bundle folder. Default: the bundle shipped with the package."),
    backends: str = typer.Option(",".join(BENCH_BACKENDS), "--backends",
                                 help="Comma-separated backends to measure; every precision the bundle holds is measured."),
    data: Optional[Path] = typer.Option(None, "--data", help="Data-set folder for the accuracy columns "
                                        "(default: 64 phantom crops from seeds no training or export uses)."),
    n_data: int = typer.Option(64, "--n-data", min=2, help="Number of phantom crops when --data is not given."),
    batch: str = typer.Option("1,4", "--batch", help="Comma-separated batch sizes to time."),
    n: int = typer.Option(200, "--n", min=1, help="Timed calls per row and batch size."),
    warmup: int = typer.Option(20, "--warmup", min=0, help="Untimed calls before timing."),
    threads: int = typer.Option(0, "--threads", min=0, help="CPU threads per engine (0 = each engine's default)."),
    weights: Optional[Path] = typer.Option(None, "--weights", help="Safetensors for the PyTorch rows (default: "
                                           "the bundle's source weights, found by checksum)."),
    out: Path = typer.Option(Path("bench"), "--out", help="Folder for bench.json and bench.md."),
) -> None:
    """Measure latency, throughput, memory and accuracy of every backend x precision, in one run."""
    from rich.console import Console

    from edgecalc.bench.report import print_table
    from edgecalc.bench.run import BenchOptions, run_bench
    from edgecalc.runtime.engine.bundle import BundleError

    console = Console(stderr=True)
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
                           log=lambda m: console.print(escape_markup(m)))
    except (BundleError, ValueError, FileNotFoundError) as exc:
        fail(console, str(exc))
    print_table(report)
    console.print(f"written: {out / 'bench.json'}, {out / 'bench.md'}")


def escape_markup(text: str) -> str:
    from rich.markup import escape

    return escape(text)


def fail(console: Any, message: str, code: int = 2) -> NoReturn:
    """The commands' one way out on bad input: ``error: MESSAGE`` (markup-escaped, it names the file), exit ``code``
    (2 bad input, 1 nothing to do)."""
    console.print(f"[red]error:[/red] {escape_markup(message)}")
    raise typer.Exit(code)


def print_live_summary(summary, console) -> None:
    """The end-of-run table: frames read / processed / dropped / skipped, latency, FPS."""
    from rich.table import Table

    t = Table(title=f"edgecalc live: {summary.source} ({summary.stopped_by})", title_justify="left")
    for col in ("read", "processed", "dropped", "skipped (bad)", "reconnects", "FPS", "latency p50 ms",
                "latency p99 ms", "inference p50 ms"):
        t.add_column(col, justify="right")
    fmt = lambda v: "-" if v is None else f"{v:.1f}"  # noqa: E731
    t.add_row(str(summary.frames_read), str(summary.processed), str(summary.dropped), str(summary.skipped_bad),
              str(summary.reconnects), f"{summary.fps:.1f}", fmt(summary.latency_ms_p50),
              fmt(summary.latency_ms_p99), fmt(summary.infer_ms_p50))
    console.print(t)
    if summary.snapshots:
        console.print(f"snapshots: {', '.join(summary.snapshots)}")


@app.command("export", rich_help_panel="Deploy")
def export_cmd(
    weights: Optional[Path] = typer.Argument(None, help="Run folder (model.safetensors or final.safetensors + .json), "
                                             "a .safetensors file, or the name of shipped weights "
                                             f"({', '.join(_SHIPPED_WEIGHTS)}; docs/model-card.md). Default: the "
                                             "weights shipped with the kit (phantom)."),
    precision: str = typer.Option("fp32", "--precision", help=f"{choices_help(PRECISIONS)}: the reduced-precision ONNX model "
                                  "(and engine) to add; TorchScript and float32 ONNX are always written."),
    calib: Optional[Path] = typer.Option(None, "--calib", help="Data-set folder (images/<id>.png, labels.csv) to "
                                         "calibrate INT8 on. Default: phantom crops the kit generates."),
    calib_size: int = typer.Option(256, "--calib-size", help="Calibration images, stratified by class."),
    calib_method: str = typer.Option("minmax", "--calib-method", help="minmax | entropy | percentile "
                                     "(default chosen by measurement, docs/export.md)."),
    calib_seed: int = typer.Option(0, "--calib-seed", help="Seed of the calibration draw (recorded in the manifest)."),
    engine: Optional[bool] = typer.Option(None, "--engine/--no-engine", help="Build a TensorRT engine. Default: "
                                          "on when a GPU, TensorRT and cuda-python are present."),
    max_batch: int = typer.Option(8, "--max-batch", help="Largest batch of the engine's optimisation profile (1..N)."),
    out: Path = typer.Option(Path("bundle"), "--out", help="Bundle folder to write (replaced only when complete)."),
    triton: Optional[Path] = typer.Option(None, "--triton", help="Also lay the bundle out as a Triton model repository here."),
    parity_size: int = typer.Option(64, "--parity-size", help="Held-out phantom crops for the parity report."),
    via: str = typer.Option("onnx", "--via", help="onnx | torch-tensorrt: with torch-tensorrt, also compile with "
                            "torch-tensorrt's dynamo front-end and save model.trt.ts (TorchScript with the engine "
                            "embedded, for LibTorch/C++); fp32 or fp16; needs a GPU and the torch-trt extra (pip install 'edgecalc\\[torch-trt]')."),
) -> None:
    """Export weights to a bundle: TorchScript, ONNX (fp32 + fp16/int8), TensorRT engine, manifest, parity report."""
    from rich.console import Console
    from rich.markup import escape as escape_markup

    from edgecalc.calibration import CalibrationError
    from edgecalc.export.bundle_writer import BundleWriteError
    from edgecalc.export.parity import render_table
    from edgecalc.export.pipeline import ExportError, ExportOptions, export_bundle
    from edgecalc.export.verify import ParityError
    from edgecalc.export.weights_source import WeightsNotFound

    console = Console(stderr=True)
    opts = ExportOptions(weights, precision, calib, calib_size, calib_method, calib_seed, engine, max_batch, out,
                         triton, parity_size, via)
    try:
        result = export_bundle(opts, log=lambda msg: console.print(escape_markup(msg)))
    except (WeightsNotFound, ExportError, CalibrationError, BundleWriteError, ParityError, ValueError) as exc:
        console.print(f"[red]error:[/red] {escape_markup(str(exc))}")
        console.print(f"nothing written to {escape_markup(str(out))}")
        raise typer.Exit(2)
    render_table(result.rows, Console())
    console.print(f"bundle written: {escape_markup(str(result.bundle))}")
    for folder in result.triton_models:
        console.print(f"triton model: {escape_markup(str(folder))}")
    errors = [e for e in (result.engine_error, result.via_error) if e]
    for err in errors:
        console.print(f"[red]error:[/red] {escape_markup(err)}")
    if errors:
        raise typer.Exit(3)


# --- training, evaluation, sweep (edgecalc.train / edgecalc.eval) ---


# Options shared by `train`, `sweep` and `compare`, declared once. Every recipe setting defaults to None = "the
# recipe's value"; the defaults and the recipe values in --help come from train/config.py (RECIPES, TRAIN_DEFAULTS).
from edgecalc.train.config import TRAIN_DEFAULTS as _TRAIN_DEFAULTS, recipe_help as _recipe_help, recipe_summary as _recipe_summary  # noqa: E402

_RECIPE = typer.Option(_TRAIN_DEFAULTS["recipe"], "--recipe", help="Settings bundle: " + _recipe_summary()
                       + ". Every option below overrides the recipe's value.")
_MASK_FRACTION = typer.Option(_TRAIN_DEFAULTS["mask_fraction"], "--mask-fraction", help="Share p of the training images whose pixel masks stage one uses "
                              "(the paper's 10 %..100 %); 1.0 = deep supervision.")
_PRESET = typer.Option(None, "--preset", help="Model preset: lite (width 0.25) or paper (the published widths). " + _recipe_help("preset"))
_SIZE = typer.Option(None, "--size", help="Input size, a multiple of 16. " + _recipe_help("size"))
_STEPS1 = typer.Option(None, "--steps-stage1", min=1, help="Optimiser steps of stage one (a budget; overrides --epochs-stage1). " + _recipe_help("steps_stage1"))
_STEPS2 = typer.Option(None, "--steps-stage2", min=1, help="Optimiser steps of stage two. " + _recipe_help("steps_stage2"))
_EVAL_EVERY = typer.Option(None, "--eval-every", min=1, help="With step budgets: validate and checkpoint every N steps (a 'round'). " + _recipe_help("eval_every"))
_EPOCHS1 = typer.Option(None, "--epochs-stage1", min=1, help="Epochs of stage one; given without --steps-stage1 it switches "
                        "stage one to counting epochs. " + _recipe_help("epochs_stage1"))
_EPOCHS2 = typer.Option(None, "--epochs-stage2", min=1, help="Epochs of stage two (same rule). " + _recipe_help("epochs_stage2"))
_BATCH = typer.Option(None, "--batch-size", min=1, help="Images per step (per process under torchrun). " + _recipe_help("batch_size"))
_OPTIMIZER = typer.Option(None, "--optimizer", help="adamw or adam. " + _recipe_help("optimizer"))
_LR1 = typer.Option(None, "--lr-stage1", help="Learning rate of stage one. " + _recipe_help("lr_stage1"))
_LR2 = typer.Option(None, "--lr-stage2", help="Learning rate of stage two. " + _recipe_help("lr_stage2"))
_WD = typer.Option(None, "--weight-decay", help="AdamW's decoupled weight decay. " + _recipe_help("weight_decay"))
_SCHEDULE = typer.Option(None, "--schedule", help="cosine (linear warm-up, then cosine to lr x --min-lr-factor) or "
                         "time-decay (lr / (1 + decay x step), the paper's). " + _recipe_help("schedule"))
_WARMUP = typer.Option(None, "--warmup-steps", min=0, help="Warm-up steps of the cosine schedule, per stage. " + _recipe_help("warmup_steps"))
_MIN_LR = typer.Option(None, "--min-lr-factor", help="The cosine ends at lr x this. " + _recipe_help("min_lr_factor"))
_DECAY = typer.Option(None, "--decay", help="The time-decay schedule's decay per step. " + _recipe_help("decay"))
_HEAD_LR = typer.Option(None, "--head-lr-factor", help="Stage two: module C (classifier) learns at lr-stage2 x this. " + _recipe_help("head_lr_factor"))
_SEG_LOSS = typer.Option(None, "--seg-loss", help="bce-dice (BCE + Dice with batch-summed counts), tversky (the paper's "
                         "per-image Tversky/focal Tversky) or tversky-batch (batch-summed counts); docs/results.md says "
                         "why. " + _recipe_help("seg_loss"))
_AUGMENT = typer.Option(None, "--augment", help="batch (horizontal flip, zoom/shift, gain/gamma; no vertical flip: "
                        "shadows point away from the probe) or flips (the paper's horizontal + vertical). " + _recipe_help("augment"))
_PRECISION = typer.Option(None, "--precision", help="auto (bfloat16 autocast where the CPU/GPU runs it natively, else "
                          "float32), fp32 or bf16. " + _recipe_help("precision"))
_DEVICE = typer.Option(_TRAIN_DEFAULTS["device"], "--device", help="cpu or cuda (one GPU per process under torchrun).")
_SEED = typer.Option(_TRAIN_DEFAULTS["seed"], "--seed", help="Seed of the split, mask draw, initialisation, shuffling and augmentation.")
_KEEP_TRUE = typer.Option(_TRAIN_DEFAULTS["keep_true_masks"], "--keep-true-masks", help="Stage two: use the true mask instead of the pseudo mask for the "
                          "images drawn for stage one (not the paper's default).")
_NO_PROGRESS = typer.Option(False, "--no-progress", help="No progress bars (validation lines still print).")
_THREADS = typer.Option(0, "--threads", min=0, help="torch CPU threads per process (0 = torch's default); 1 when two "
                        "processes share 2 cores.")


from edgecalc.eval.compare import DEFAULT_METHODS as _COMPARE_DEFAULT, METHODS as _COMPARE_METHODS  # noqa: E402
from edgecalc.model.registry import NETWORKS as _NETWORKS  # noqa: E402

#: The options above that `train` and `sweep` both pass on to TrainConfig.for_recipe under their own names.
_RECIPE_OPTION_NAMES = ("recipe", "preset", "size", "steps_stage1", "steps_stage2", "eval_every", "epochs_stage1",
                        "epochs_stage2", "batch_size", "optimizer", "lr_stage1", "lr_stage2", "weight_decay", "schedule",
                        "warmup_steps", "min_lr_factor", "decay", "head_lr_factor", "seg_loss", "augment", "precision",
                        "device", "seed", "keep_true_masks")


def _recipe_kwargs(given: dict) -> dict:
    return {name: given[name] for name in _RECIPE_OPTION_NAMES}


@app.command("train", rich_help_panel="Train")
def train_cmd(
    data: Optional[Path] = typer.Argument(None, help="Data-set folder (images/, masks/, labels.csv); omit with --resume."),
    recipe: str = _RECIPE,
    network: str = typer.Option(_TRAIN_DEFAULTS["network"], "--network", help="The network trained (docs/comparison.md): " + "; ".join(
        f"{k}: {v.summary} [{v.supervision}]" for k, v in _NETWORKS.items()) + ". two-stage networks use --mask-fraction; "
        "all-masks (alexnet-seg) trains one stage on every mask, labels (sononet-ag, vgg16, resnet50) one stage on "
        "image labels only, whatever --mask-fraction says."),
    mask_fraction: float = _MASK_FRACTION,
    preset: Optional[str] = _PRESET,
    size: Optional[int] = _SIZE,
    steps_stage1: Optional[int] = _STEPS1,
    steps_stage2: Optional[int] = _STEPS2,
    eval_every: Optional[int] = _EVAL_EVERY,
    epochs_stage1: Optional[int] = _EPOCHS1,
    epochs_stage2: Optional[int] = _EPOCHS2,
    batch_size: Optional[int] = _BATCH,
    optimizer: Optional[str] = _OPTIMIZER,
    lr_stage1: Optional[float] = _LR1,
    lr_stage2: Optional[float] = _LR2,
    weight_decay: Optional[float] = _WD,
    schedule: Optional[str] = _SCHEDULE,
    warmup_steps: Optional[int] = _WARMUP,
    min_lr_factor: Optional[float] = _MIN_LR,
    decay: Optional[float] = _DECAY,
    head_lr_factor: Optional[float] = _HEAD_LR,
    seg_loss: Optional[str] = _SEG_LOSS,
    augment: Optional[str] = _AUGMENT,
    precision: Optional[str] = _PRECISION,
    fold: int = typer.Option(_TRAIN_DEFAULTS["fold"], "--fold", min=0, help="Which cross-validation fold is the test set (0-based)."),
    folds: int = typer.Option(_TRAIN_DEFAULTS["folds"], "--folds", min=2, help="Number of cross-validation folds (the paper: 5)."),
    val_fraction: float = typer.Option(_TRAIN_DEFAULTS["val_fraction"], "--val-fraction", help="Share of the training fold held out to pick the best round."),
    out: Optional[Path] = typer.Option(None, "--out", help="Run folder; default runs/<preset><size>-p<fraction>-fold<k>."),
    device: str = _DEVICE,
    seed: int = _SEED,
    keep_true_masks: bool = _KEEP_TRUE,
    stage1_data: Optional[Path] = typer.Option(None, "--stage1-data", help="Sim-to-real: train stage one (DS-AGnet) on this "
                                               "folder's pixel masks (e.g. the phantom; --mask-fraction of them) instead of "
                                               "DATA's; stage two then learns DATA's image labels with stage one's pseudo "
                                               "masks. DATA needs no masks (docs/real-data.md)."),
    stage1_weights: Optional[Path] = typer.Option(None, "--stage1-weights", help="Skip training stage one: take these "
                                                  "weights as its result (a run folder's stage1/best, a DS-AGnet file, or "
                                                  "a CS-AGnet's encoder + decoder, e.g. the shipped weights)."),
    init_weights: Optional[Path] = typer.Option(None, "--init-weights", help="Stage two starts from these CS-AGnet "
                                                "weights (a run folder or .safetensors): fine-tuning. With --mask-fraction "
                                                "0 and no stage one it learns image labels only."),
    mix_data: Optional[Path] = typer.Option(None, "--mix-data", help="Stage two also draws --mix-ratio of every batch "
                                            "from this folder (e.g. the phantom), with its true masks and labels."),
    mix_ratio: Optional[float] = typer.Option(None, "--mix-ratio", min=0.0, max=0.95, help="Share of every stage-two "
                                              "batch taken from --mix-data (default 0.25 when --mix-data is given)."),
    linear_probe: bool = typer.Option(False, "--linear-probe", help="With --init-weights and --mask-fraction 0: no "
                                      "gradient steps; fit only a linear score head on the frozen encoder's pooled "
                                      "features (L2 logistic regression, its strength chosen by patient-grouped inner "
                                      "cross-validation on the training images). The small-real-data transfer that "
                                      "scores best on DDTI (docs/real-data.md); mask and attention stay the starting "
                                      "weights'."),
    resume: Optional[Path] = typer.Option(None, "--resume", help="Continue this run folder from its last checkpoint "
                                          "(with its own config.json; other options are ignored)."),
    no_progress: bool = _NO_PROGRESS,
    threads: int = _THREADS,
) -> None:
    """Two-stage collaborative training: DS-AGnet on the masked fraction, pseudo masks, then CS-AGnet.

    Resumable: interrupt it (Ctrl-C, kill) and continue with --resume RUN_DIR; log.csv grows every round.
    Real data without masks: --mask-fraction 0 (image labels only), --init-weights (fine-tune),
    --init-weights with --linear-probe (a linear score head on the frozen encoder), or
    --stage1-data PHANTOM_DIR / --stage1-weights (sim-to-real two stages).
    """
    from edgecalc.train.commands import train_cmd as run_train

    sources = {"stage1_data": stage1_data, "stage1_weights": stage1_weights, "init_weights": init_weights, "mix_data": mix_data}
    code = run_train(
        resume, threads=threads, data=data, network=network, mask_fraction=mask_fraction, fold=fold, folds=folds, val_fraction=val_fraction,
        out=out, **_recipe_kwargs(locals()), progress=not no_progress,
        **{k: str(v) for k, v in sources.items() if v is not None},
        mix_ratio=mix_ratio if mix_ratio is not None else (0.25 if mix_data is not None else 0.0),
        linear_probe=linear_probe,
    )
    raise typer.Exit(code)


@app.command("eval", rich_help_panel="Train")
def eval_cmd(
    run_dir: Optional[Path] = typer.Argument(None, help="Run folder of `edgecalc train`, or the name of shipped weights "
                                            f"({', '.join(_SHIPPED_WEIGHTS)}; docs/model-card.md); omit to evaluate the "
                                            "shipped default weights."),
    data: Optional[Path] = typer.Option(None, "--data", help="Data-set folder to evaluate on; default the run's own test split "
                                        "(required without RUN_DIR)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Folder for metrics.json, roc.png, attention.png; default "
                                       "RUN_DIR/eval (RUN_DIR/eval/<data name> with --data), or edgecalc-eval/ for the shipped weights."),
    device: str = typer.Option("cpu", "--device", help="cpu or cuda."),
) -> None:
    """Accuracy, sensitivity, specificity, AUC, Dice/IoU, confusion matrix, ROC and attention figures."""
    from edgecalc.eval.commands import eval_command

    raise typer.Exit(eval_command(run_dir, data, out, device))


@app.command("sweep", rich_help_panel="Train")
def sweep_cmd(
    data: Path = typer.Argument(..., help="Data-set folder."),
    fractions: str = typer.Option("0.1,0.3,0.5,1.0", "--fractions", help="Comma-separated pixel-mask fractions p."),
    folds: int = typer.Option(_TRAIN_DEFAULTS["folds"], "--folds", min=2, help="Number of cross-validation folds."),
    fold_ids: Optional[str] = typer.Option(None, "--fold-ids", help="Comma-separated folds to run (default all of --folds)."),
    out: Path = typer.Option(Path("runs/sweep"), "--out", help="Sweep folder: one run per p<fraction>/fold<k>, table1.md, roc.png."),
    recipe: str = _RECIPE,
    preset: Optional[str] = _PRESET,
    size: Optional[int] = _SIZE,
    steps_stage1: Optional[int] = _STEPS1,
    steps_stage2: Optional[int] = _STEPS2,
    eval_every: Optional[int] = _EVAL_EVERY,
    epochs_stage1: Optional[int] = _EPOCHS1,
    epochs_stage2: Optional[int] = _EPOCHS2,
    batch_size: Optional[int] = _BATCH,
    optimizer: Optional[str] = _OPTIMIZER,
    lr_stage1: Optional[float] = _LR1,
    lr_stage2: Optional[float] = _LR2,
    weight_decay: Optional[float] = _WD,
    schedule: Optional[str] = _SCHEDULE,
    warmup_steps: Optional[int] = _WARMUP,
    min_lr_factor: Optional[float] = _MIN_LR,
    decay: Optional[float] = _DECAY,
    head_lr_factor: Optional[float] = _HEAD_LR,
    seg_loss: Optional[str] = _SEG_LOSS,
    augment: Optional[str] = _AUGMENT,
    precision: Optional[str] = _PRECISION,
    device: str = _DEVICE,
    seed: int = _SEED,
    keep_true_masks: bool = _KEEP_TRUE,
    no_progress: bool = _NO_PROGRESS,
    threads: int = _THREADS,
) -> None:
    """Train + eval per mask fraction and fold: the paper's Table 1 (Markdown) and Fig. 7 (one ROC per fraction)."""
    from edgecalc.eval.commands import sweep_command

    raise typer.Exit(sweep_command(
        data, fractions, folds, fold_ids, out, threads=threads, **_recipe_kwargs(locals()), progress=not no_progress,
    ))


@app.command("compare", rich_help_panel="Train")
def compare_cmd(
    data: Path = typer.Argument(..., help="Data-set folder (e.g. ../shared/data/ddti-calc: real crops, image labels, patients)."),
    methods: str = typer.Option(",".join(_COMPARE_DEFAULT), "--methods", help="Comma-separated, from: " + "; ".join(
        f"{k}: {v.summary}" for k, v in _COMPARE_METHODS.items()) + "."),
    folds: int = typer.Option(_TRAIN_DEFAULTS["folds"], "--folds", min=2, help="Cross-validation folds (grouped by the patient column when present)."),
    fold_ids: Optional[str] = typer.Option(None, "--fold-ids", help="Comma-separated folds to run (default all)."),
    out: Path = typer.Option(Path("runs/compare"), "--out", help="Folder: <method>/fold<k>/, comparison.md, roc.png, scores.csv."),
    pretrained: Optional[Path] = typer.Option(None, "--pretrained", help="Run folder or weights of the pretrained (phantom) "
                                              "model: zero-shot scores it, fine-tune starts from it, sim-to-real takes its stage one."),
    phantom: Optional[Path] = typer.Option(None, "--phantom", help="Phantom data-set folder: sim-to-real trains stage one on "
                                           "it when --pretrained is not given, and --mix-ratio mixes it into stage two."),
    mix_ratio: float = typer.Option(0.25, "--mix-ratio", min=0.05, max=0.95, help="sim-to-real+mix: share of every "
                                    "stage-two batch drawn from --phantom."),
    end_to_end: Optional[bool] = typer.Option(None, "--end-to-end/--no-end-to-end", help="Also score DATA's whole frames "
                                              "(full/<id>.png + full/boxes.csv) through the shipped locator and each "
                                              "fold's model (default: when DATA has them)."),
    locator_data: Optional[Path] = typer.Option(None, "--locator-data", help="The frames the shipped locator trained "
                                                "on (e.g. ../shared/data/ddti-nodules, with patients.csv): the whole-frame "
                                                "figures are then also given for patients the locator never trained on."),
    mask_fraction: float = _MASK_FRACTION,
    recipe: str = _RECIPE,
    preset: Optional[str] = _PRESET,
    size: Optional[int] = _SIZE,
    steps_stage1: Optional[int] = _STEPS1,
    steps_stage2: Optional[int] = _STEPS2,
    eval_every: Optional[int] = _EVAL_EVERY,
    epochs_stage1: Optional[int] = _EPOCHS1,
    epochs_stage2: Optional[int] = _EPOCHS2,
    batch_size: Optional[int] = _BATCH,
    optimizer: Optional[str] = _OPTIMIZER,
    lr_stage1: Optional[float] = _LR1,
    lr_stage2: Optional[float] = _LR2,
    weight_decay: Optional[float] = _WD,
    schedule: Optional[str] = _SCHEDULE,
    warmup_steps: Optional[int] = _WARMUP,
    min_lr_factor: Optional[float] = _MIN_LR,
    decay: Optional[float] = _DECAY,
    head_lr_factor: Optional[float] = _HEAD_LR,
    seg_loss: Optional[str] = _SEG_LOSS,
    augment: Optional[str] = _AUGMENT,
    precision: Optional[str] = _PRECISION,
    device: str = _DEVICE,
    seed: int = _SEED,
    keep_true_masks: bool = _KEEP_TRUE,
    no_progress: bool = _NO_PROGRESS,
    threads: int = _THREADS,
) -> None:
    """Every method on the same folds: pooled and per-fold AUC (patient-bootstrap CI), accuracy, sensitivity,
    specificity, with and without text-bearing crops and per kind; ROC figure; resumable like sweep.

    The paper's Table 2: --methods csagnet,vgg-unet,alexnet-seg,sononet-ag,vgg16,resnet50,ci,otsu (paired
    per-fold differences against csagnet, attention hit rates, attention.png; docs/comparison.md).
    """
    from edgecalc.eval.commands import compare_command

    raise typer.Exit(compare_command(
        data, methods, folds, fold_ids, out, pretrained=pretrained, phantom=phantom, mix_ratio=mix_ratio, threads=threads,
        end_to_end=end_to_end, locator_data=locator_data,
        mask_fraction=mask_fraction, **_recipe_kwargs(locals()), progress=not no_progress,
    ))


@app.command(rich_help_panel="Deploy")
def locate(
    images: Path = typer.Argument(..., help="An image file or a folder of images (png, jpg, bmp, tif, ...): whole "
                                  "screen frames as a frame grabber delivers them."),
    out: Optional[Path] = typer.Option(None, "--out", help="Write the boxes here as CSV (id,x,y,w,h,score,crop_x,crop_y,"
                                       "crop_side: the nodule box and the square crop the runtime feeds the model); "
                                       "default: print the CSV."),
    overlay: Optional[Path] = typer.Option(None, "--overlay", help="Also write one overlay PNG per image into this folder."),
    margin: float = typer.Option(0.1, "--margin", min=0.0, help="Crop margin (the CSV's crop columns and the overlays), "
                                 "as a share of the box's long side; the runtime's default is 0.1."),
    locator: str = typer.Option("learned", "--locator", help="learned (the shipped network) | classical (the "
                                "dark-blob baseline)."),
    extent: bool = typer.Option(True, "--extent/--no-extent", help="Crop around the nodule's extent (as `live` "
                                "crops) or around the box alone (CSV crop columns and overlays)."),
) -> None:
    """Find the nodule in each image: id,x,y,w,h,score and the model's crop crop_x,crop_y,crop_side, in the
    image's pixels (empty box and crop, score 0: none found).

    Unreadable images are reported by name and skipped. Exit 0 when at least one image was read,
    1 when none could be (or the folder holds no images), 2 on a bad argument or a broken locator bundle.
    """
    from rich.console import Console
    from rich.progress import Progress

    from edgecalc.runtime.locate.images import csv_text, list_images, locate_paths, write_csv

    console = Console(stderr=True)
    try:
        paths = list_images(images)
        if locator == "learned":
            from edgecalc.runtime.locate.learned import LearnedLocator, LocatorBundleError

            try:
                learned = LearnedLocator(threads=1)
                if not extent:
                    learned.crop_threshold = learned.threshold
                locate_fn = learned.locate
            except (LocatorBundleError, FileNotFoundError) as exc:
                raise ValueError(str(exc)) from exc
        elif locator == "classical":
            from edgecalc.runtime.locate.classical import locate_nodule as locate_fn
        else:
            raise ValueError(f"--locator must be learned or classical, got {locator!r}")
    except (ValueError, FileNotFoundError) as exc:
        fail(console, str(exc))
    if not paths:
        fail(console, f"no image files in {images}", 1)
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("locating", total=len(paths))
        results, bad = locate_paths(paths, locate_fn, overlay, margin, lambda p: progress.advance(task))
    for reason in bad:
        console.print(f"[yellow]skipped[/yellow] {escape_markup(reason)}")
    if out is not None:
        write_csv(out, results)
    else:
        typer.echo(csv_text(results), nl=False)
    found = sum(r.box is not None for r in results)
    console.print(f"{len(results)} image(s) located ({found} with a nodule), {len(bad)} skipped"
                  + (f"; boxes -> {out}" if out is not None else ""))
    raise typer.Exit(0 if results else 1)


@app.command(rich_help_panel="Deploy")
def analyze(
    images: Path = typer.Argument(..., help="An image or DICOM file, or a folder of them (png, jpg, bmp, tif, ..., "
                                  ".dcm): whole screen frames as a frame grabber or the scanner delivers them."),
    out: Optional[Path] = typer.Option(None, "--out", help="Write the report here as CSV, one row per image (per "
                                       "frame of a multi-frame DICOM); default: print the CSV."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Also write the report as JSON, with every "
                                            "calcification's area, longest diameter, position, shadow and kind."),
    overlay: Optional[Path] = typer.Option(None, "--overlay", help="Write one overlay PNG per row into this folder: "
                                           "mask, nodule box, crop, and each calcification outlined and labelled "
                                           "(P punctate, M macro, R rim, ? unknown, with its size)."),
    mm_per_px: Optional[float] = typer.Option(None, "--mm-per-px", help="Pixel spacing (mm "
                                              "per pixel, square pixels) for every file, over any the files or their "
                                              "data set record; default: a DICOM file's own, else the data set's "
                                              "labels.csv/meta.jsonl mm_per_px, else none (sizes in pixels)."),
    bundle: Optional[Path] = typer.Option(None, "--bundle", help="Export bundle folder (edgecalc export). "
                                          "Default: the bundle shipped with the package."),
    backend: str = typer.Option("auto", "--backend", help=f"{choices_help(BACKEND_CHOICES)}."),
    precision: str = typer.Option("fp32", "--precision", help=f"{choices_help(PRECISIONS)}: which of the bundle's models to run."),
    locator: str = typer.Option("learned", "--locator", help="learned (the shipped network) | classical (the "
                                "dark-blob baseline)."),
    margin: float = typer.Option(0.1, "--margin", min=0.0, help="Crop margin around the nodule, as a share of its "
                                 "long side (the runtime's default)."),
    threads: int = typer.Option(0, "--threads", min=0, help="CPU threads for the engine (0 = the engine's default)."),
) -> None:
    """The whole cart path on stills: scan area, nodule locator, crop, model and calcification quantification
    (count, largest size, kinds, ACR TI-RADS echogenic-foci points), one row per image.

    Sizes are in mm where the spacing is known (--mm-per-px, the DICOM file, the data set), else in pixels
    (largest_mm empty, kinds needing mm "unknown"). Unreadable files are reported by name and skipped.
    Exit 0 when at least one image was analyzed, 1 when none could be, 2 on a bad argument or bundle.
    """
    from rich.console import Console
    from rich.progress import Progress

    from edgecalc.runtime.analyze import StillAnalyzer, analyze_paths, csv_text, list_inputs, write_reports
    from edgecalc.runtime.engine.backends import BackendUnavailable
    from edgecalc.runtime.engine.bundle import BundleError
    from edgecalc.runtime.live.build import build_pipeline

    console = Console(stderr=True)
    try:
        if mm_per_px is not None and not mm_per_px > 0:
            raise ValueError(f"--mm-per-px must be a positive number of millimetres per pixel; got {mm_per_px}")
        paths = list_inputs(images)
        if locator == "learned":
            from edgecalc.runtime.locate.learned import LearnedLocator, LocatorBundleError

            try:
                locate_fn = LearnedLocator(threads=1).locate
            except (LocatorBundleError, FileNotFoundError) as exc:
                raise ValueError(str(exc)) from exc
        elif locator == "classical":
            from edgecalc.runtime.locate.classical import locate_nodule as locate_fn
        else:
            raise ValueError(f"--locator must be learned or classical, got {locator!r}")
        setup = build_pipeline(bundle, backend=backend, precision=precision, crop="manual", margin=margin,
                               threads=threads)
    except (BundleError, BackendUnavailable, ValueError, FileNotFoundError) as exc:
        fail(console, str(exc))
    if not paths:
        setup.selection.backend.close()
        fail(console, f"no files in {images}", 1)
    console.print(f"bundle {setup.bundle.root}  engine: {escape_markup(setup.selection.reason)}")
    try:
        with Progress(console=console, transient=True) as progress:
            task = progress.add_task("analyzing", total=len(paths))
            rows, bad = analyze_paths(paths, StillAnalyzer(setup.pipeline, locate_fn, margin), mm_per_px, overlay,
                                      lambda p: progress.advance(task))
    finally:
        setup.selection.backend.close()
    for reason in bad:
        console.print(f"[yellow]skipped[/yellow] {escape_markup(reason)}")
    write_reports(rows, out, json_out, bad)
    if out is None:
        typer.echo(csv_text(rows), nl=False)
    called = sum(r.foci.count > 0 for r in rows)
    console.print(f"{len(rows)} image(s) analyzed ({called} with calcifications reported), {len(bad)} skipped"
                  + (f"; report -> {out}" if out is not None else ""))
    raise typer.Exit(0 if rows else 1)


@app.command(rich_help_panel="Set-up")
def doctor(
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON instead of tables."),
) -> None:
    """Report library versions and which inference backends and precisions work on this machine."""
    from edgecalc.doctor import collect_report, render_report

    report = collect_report()
    if as_json:
        import json

        typer.echo(json.dumps(report.to_dict(), indent=2))
    else:
        render_report(report)


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
