"""The "Deploy" panel: ``edgecalc live | recover | demo | bench | export | locate | analyze``.

Thin: options here, the bodies in the stage packages (runtime/live/commands.py, runtime/live/recover.py,
bench/commands.py, export/commands.py, runtime/commands.py), called through :func:`edgecalc.cli.errors.run`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from edgecalc.bench.commands import bench_command
from edgecalc.cli import options as opt
from edgecalc.cli.errors import run
from edgecalc.export.choices import DEFAULT_CALIB_METHOD
from edgecalc.export.commands import export_command
from edgecalc.model.shipped import DEFAULT_SHIPPED_NAME, SHIPPED_WEIGHTS
from edgecalc.run_folder import WEIGHTS_FILES
from edgecalc.runtime.commands import analyze_command, locate_command
from edgecalc.runtime.engine.formats import BACKEND_CHOICES, BENCH_BACKENDS, PRECISIONS, choices_help
from edgecalc.runtime.live.commands import demo_command, live_command
from edgecalc.runtime.live.demo import DEMO_LOG, DEMO_SNAPSHOTS, DEMO_SUMMARY, DEMO_VIDEO
from edgecalc.runtime.live.recover import recover_command

PANEL = "Deploy"


def live(
    camera: Optional[int] = typer.Option(None, "--camera", help="Camera / capture-card index (OpenCV). Give this or --source."),
    source: Optional[str] = typer.Option(None, "--source", help="Video file, DICOM cine (played at its recorded "
                                         "frame rate; the [dicom] extra), RTSP/HTTP URL, GStreamer pipeline "
                                         "('... ! appsink'), or 'phantom' for the built-in phantom cine."),
    bundle: Optional[Path] = opt.BUNDLE,
    backend: opt.Backend = typer.Option("auto", "--backend", help=f"{choices_help(BACKEND_CHOICES)}. "
                                "auto = a TensorRT engine for this GPU if the bundle has one, else the fastest CPU "
                                "engine measured at start-up."),
    precision: opt.RunPrecision = opt.PRECISION_RUN,
    crop: opt.Crop = typer.Option("auto", "--crop", help="auto: scan-area detection + nodule locator; manual: draw the "
                             "box with the mouse ('r' redraws); fixed: the --roi box on every frame."),
    roi: Optional[str] = typer.Option(None, "--roi", parser=opt.roi, metavar="X,Y,W,H",
                                      help="x,y,w,h of the nodule in frame pixels, for --crop fixed."),
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
    threads: int = opt.ENGINE_THREADS,
    loop: opt.Loop = typer.Option("auto", "--loop", help="pipelined: the model call on a worker thread, overlapped with "
                             "the neighbouring frames' crop and overlay; serial: one after the other; auto: "
                             "pipelined for GPU engines, serial for CPU ones (measured: docs/live.md)."),
    attention: bool = typer.Option(False, "--attention", help="Start with the attention map shown ('a' toggles)."),
    summary_json: Optional[Path] = typer.Option(None, "--summary-json", help="Also write the end-of-run summary as JSON."),
    mm_per_px: Optional[float] = typer.Option(None, "--mm-per-px", help="Pixel spacing of the "
                                              "frames (mm per pixel, square pixels) for the HUD's calcification sizes; "
                                              "default: the source's own (a DICOM file's), else sizes in pixels."),
    refine: str = opt.REFINE,
) -> None:
    """Run the model live on frames from a camera, file, stream or the phantom, with the overlay."""
    run(live_command, **locals())


def recover(
    video: Path = typer.Argument(..., help="The file `live --record` was given (OUT.mp4 or OUT.avi); its segments "
                                 "are read from OUT.mp4.segments/ beside it, as its index.json lists them."),
    force: bool = typer.Option(False, "--force", help="Replace OUT when it exists (by default recover refuses to, "
                               "naming it); never with a file that holds fewer frames than it."),
) -> None:
    """Finish a recording that a kill or power loss left as segments: check each one the index lists decodes
    to its frames, join the good ones losslessly into OUT (as a clean stop would) and report what was kept
    and what was lost, in frames and seconds.

    The folder is removed when every listed segment went into OUT, else kept. Run it once the recording
    process is gone. Exit 0 (also when OUT was joined already), 2 when there is no index, the index is
    broken, no segment plays, or OUT exists without --force; 130 on Ctrl-C or SIGTERM (during the checks
    nothing is changed; from the join on, the join is finished first and reported) (docs/live.md).
    """
    run(recover_command, **locals())


def demo(
    out: Path = typer.Option(Path("demo"), "--out", help=f"Folder for {DEMO_VIDEO}, {DEMO_LOG}, {DEMO_SUMMARY} and {DEMO_SNAPSHOTS}."),
    frames: int = typer.Option(90, "--frames", min=1, help="Length of the phantom cine (frames): the first half "
                               "scans a nodule with calcifications, the rest one without."),
    backend: opt.Backend = typer.Option("auto", "--backend", help=f"{choices_help(BACKEND_CHOICES)}."),
    precision: opt.RunPrecision = typer.Option("fp32", "--precision", help="fp32 | int8 (the shipped bundle holds both)."),
    bundle: Optional[Path] = typer.Option(None, "--bundle", help="Bundle to run (default: the shipped one)."),
) -> None:
    """The shipped model on the built-in phantom cine (a nodule with calcifications, then one without), headless:
    writes a video, segment-named snapshots and a summary with each segment's scores against the truth."""
    run(demo_command, **locals())


def bench(
    bundle: Optional[Path] = typer.Argument(None, help="Export bundle folder. Default: the bundle shipped with the package."),
    backends: opt.Items = typer.Option(",".join(BENCH_BACKENDS), "--backends", parser=opt.BACKENDS_LIST, metavar="BACKEND,...",
                                       help=f"Comma-separated backends to measure, from: {', '.join(BENCH_BACKENDS)}; "
                                       "every precision the bundle holds is measured."),
    data: Optional[Path] = typer.Option(None, "--data", help="Data-set folder for the accuracy columns "
                                        "(default: 64 phantom crops from seeds no training or export uses)."),
    n_data: int = typer.Option(64, "--n-data", min=2, help="Number of phantom crops when --data is not given."),
    batch: opt.Items = typer.Option("1,4", "--batch", parser=opt.BATCH_LIST, metavar="N,...",
                                    help="Comma-separated batch sizes to time (positive integers)."),
    n: int = typer.Option(200, "--n", min=1, help="Timed calls per row and batch size."),
    warmup: int = typer.Option(20, "--warmup", min=0, help="Untimed calls before timing."),
    threads: int = typer.Option(0, "--threads", min=0, help="CPU threads per engine (0 = each engine's default)."),
    weights: Optional[Path] = typer.Option(None, "--weights", help="Safetensors for the PyTorch rows (default: "
                                           "the bundle's source weights, found by checksum)."),
    out: Path = typer.Option(Path("bench"), "--out", help="Folder for bench.json and bench.md."),
) -> None:
    """Measure latency, throughput, memory and accuracy of every backend x precision, in one run."""
    run(bench_command, **locals())


def export_cmd(
    weights: Optional[Path] = typer.Argument(None, help=f"Run folder ({' or '.join(WEIGHTS_FILES)} + .json), "
                                             "a .safetensors file, or the name of shipped weights "
                                             f"({', '.join(SHIPPED_WEIGHTS)}; docs/model-card.md). Default: the "
                                             f"weights shipped with the kit ({DEFAULT_SHIPPED_NAME})."),
    precision: opt.RunPrecision = typer.Option("fp32", "--precision", help=f"{choices_help(PRECISIONS)}: the reduced-precision ONNX model "
                                  "(and engine) to add; TorchScript and float32 ONNX are always written."),
    calib: Optional[Path] = typer.Option(None, "--calib", help="Data-set folder (images/<id>.png, labels.csv) to "
                                         "calibrate INT8 on. Default: phantom crops the kit generates."),
    calib_size: int = typer.Option(256, "--calib-size", help="Calibration images, stratified by class."),
    calib_method: opt.CalibMethod = typer.Option(DEFAULT_CALIB_METHOD, "--calib-method", help="minmax | entropy | percentile "
                                     "(default chosen by measurement, docs/export.md)."),
    calib_seed: int = typer.Option(0, "--calib-seed", help="Seed of the calibration draw (recorded in the manifest)."),
    engine: Optional[bool] = typer.Option(None, "--engine/--no-engine", help="Build a TensorRT engine. Default: "
                                          "on when a GPU, TensorRT and cuda-python are present."),
    max_batch: int = typer.Option(8, "--max-batch", help="Largest batch of the engine's optimisation profile (1..N)."),
    out: Path = typer.Option(Path("bundle"), "--out", help="Bundle folder to write (replaced only when complete)."),
    triton: Optional[Path] = typer.Option(None, "--triton", help="Also lay the bundle out as a Triton model repository here."),
    parity_size: int = typer.Option(64, "--parity-size", help="Held-out phantom crops for the parity report."),
    via: opt.Via = typer.Option("onnx", "--via", help="onnx | torch-tensorrt: with torch-tensorrt, also compile with "
                            "torch-tensorrt's dynamo front-end and save model.trt.ts (TorchScript with the engine "
                            "embedded, for LibTorch/C++); fp32 or fp16; needs a GPU and the torch-trt extra (pip install 'edgecalc\\[torch-trt]')."),
) -> None:
    """Export weights to a bundle: TorchScript, ONNX (fp32 + fp16/int8), TensorRT engine, manifest, parity report."""
    run(export_command, **locals())


def locate(
    images: Path = typer.Argument(..., help="An image file or a folder of images (png, jpg, bmp, tif, ...): whole "
                                  "screen frames as a frame grabber delivers them."),
    out: Optional[Path] = typer.Option(None, "--out", help="Write the boxes here as CSV (id,x,y,w,h,score,crop_x,crop_y,"
                                       "crop_side: the nodule box and the square crop the runtime feeds the model); "
                                       "default: print the CSV."),
    overlay: Optional[Path] = typer.Option(None, "--overlay", help="Also write one overlay PNG per image into this folder."),
    margin: float = typer.Option(0.1, "--margin", min=0.0, help="Crop margin (the CSV's crop columns and the overlays), "
                                 "as a share of the box's long side; the runtime's default is 0.1."),
    locator: opt.Locator = opt.LOCATOR,
    extent: bool = typer.Option(True, "--extent/--no-extent", help="Crop around the nodule's extent (as `live` "
                                "crops) or around the box alone (CSV crop columns and overlays)."),
) -> None:
    """Find the nodule in each image: id,x,y,w,h,score and the model's crop crop_x,crop_y,crop_side, in the
    image's pixels (empty box and crop, score 0: none found).

    Unreadable images are reported by name and skipped. Exit 0 when at least one image was read,
    1 when none could be (or the folder holds no images), 2 on a bad argument or a broken locator bundle.
    """
    run(locate_command, **locals())


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
    bundle: Optional[Path] = opt.BUNDLE,
    backend: opt.Backend = typer.Option("auto", "--backend", help=f"{choices_help(BACKEND_CHOICES)}."),
    precision: opt.RunPrecision = opt.PRECISION_RUN,
    locator: opt.Locator = opt.LOCATOR,
    margin: float = typer.Option(0.1, "--margin", min=0.0, help="Crop margin around the nodule, as a share of its "
                                 "long side (the runtime's default)."),
    threads: int = opt.ENGINE_THREADS,
    refine: str = opt.REFINE,
) -> None:
    """The whole cart path on stills: scan area, nodule locator, crop, model and calcification quantification
    (count, largest size, kinds, ACR TI-RADS echogenic-foci points), one row per image.

    Sizes are in mm where the spacing is known (--mm-per-px, the DICOM file, the data set), else in pixels
    (largest_mm empty, kinds needing mm "unknown"). Unreadable files are reported by name and skipped.
    Exit 0 when at least one image was analyzed, 1 when none could be, 2 on a bad argument or bundle.
    """
    run(analyze_command, **locals())


#: This panel's commands by name, in the order --help lists them.
COMMANDS = {"live": live, "recover": recover, "demo": demo, "bench": bench, "export": export_cmd, "locate": locate, "analyze": analyze}
