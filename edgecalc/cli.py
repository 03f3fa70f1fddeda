"""The ``edgecalc`` command (typer).

Every command imports its heavy dependencies inside its own function, so ``edgecalc --help`` and
the cart commands start fast and never load torch unless they need it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

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


@app.command()
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


model_app = typer.Typer(help="Inspect the CS-AGnet model: parameters, FLOPs, layers.", no_args_is_help=True)
app.add_typer(model_app, name="model")


@model_app.command("info")
def model_info_cmd(
    preset: str = typer.Option("paper", "--preset", help="Model preset: paper or lite."),
    size: int = typer.Option(None, "--size", help="Input size (a multiple of 16); default the preset's."),
) -> None:
    """Print CS-AGnet's parameter count, FLOPs per image (2 x MACs) and a per-layer table."""
    from rich.console import Console
    from rich.table import Table

    from edgecalc.model.config import get_preset
    from edgecalc.model.info import model_info

    try:
        cfg = get_preset(preset, size)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    info = model_info(cfg)
    table = Table(title=f"CS-AGnet '{preset}' at {cfg.input_size}x{cfg.input_size}x{cfg.in_channels}, width {cfg.width}")
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
        f"preset {preset}: filters {cfg.filters}, {info.params:,} parameters, "
        f"{info.flops / 1e9:.2f} GFLOP per image (FLOPs = 2 x multiply-accumulates of conv/linear layers)"
    )


data_app = typer.Typer(help="Data: the ultrasound phantom (default data set) and the data-set checker.",
                       no_args_is_help=True)
app.add_typer(data_app, name="data")


@data_app.command("phantom")
def data_phantom_cmd(
    out: str = typer.Option(..., "--out", help="Folder to write the data set into (created if absent)."),
    n: int = typer.Option(1207, "--n", help="Number of nodule crops (the paper's data set: 1207)."),
    positive: int = typer.Option(551, "--positive", help="How many of them carry calcifications (paper: 551)."),
    size: int = typer.Option(192, "--size", help="Side in pixels of the square crops (paper: 192)."),
    frames: bool = typer.Option(False, "--frames", help="Also write a 560x360 screen frame per crop under frames/."),
    video: bool = typer.Option(False, "--video", help="Also write a cine loop (cine.mp4, or cine.avi) for the live demo."),
    seed: int = typer.Option(0, "--seed", help="Seed: the same seed gives byte-identical images."),
    workers: int = typer.Option(0, "--workers", help="Worker processes; 0 = one per CPU core. Output does not depend on it."),
) -> None:
    """Generate the phantom data set: images/, masks/, nodules/, labels.csv and phantom.json."""
    import time

    from edgecalc.data.phantom import write_phantom_dataset

    if not 0 <= positive <= n:
        raise typer.BadParameter(f"--positive {positive} must lie between 0 and --n {n}")
    t0 = time.perf_counter()
    path = write_phantom_dataset(out, n=n, positive=positive, size=size, seed=seed, frames=frames, video=video,
                                 progress=True, workers=workers or None)
    typer.echo(f"wrote {n} crops ({positive} with calcification) to {path} in {time.perf_counter() - t0:.1f} s")


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


@app.command("export")
def export_cmd(
    weights: Optional[Path] = typer.Argument(None, help="Run folder (model.safetensors or final.safetensors + .json) "
                                             "or a .safetensors file. Default: the weights shipped with the kit."),
    precision: str = typer.Option("fp32", "--precision", help="fp32 | fp16 | int8: the reduced-precision ONNX model "
                                  "(and engine) to add; TorchScript and float32 ONNX are always written."),
    calib: Optional[Path] = typer.Option(None, "--calib", help="Data-set folder (images/<id>.png, labels.csv) to "
                                         "calibrate INT8 on. Default: phantom crops the kit generates."),
    calib_size: int = typer.Option(256, "--calib-size", help="Calibration images, stratified by class."),
    calib_method: str = typer.Option("percentile", "--calib-method", help="minmax | entropy | percentile "
                                     "(default chosen by measurement, docs/export.md)."),
    calib_seed: int = typer.Option(0, "--calib-seed", help="Seed of the calibration draw (recorded in the manifest)."),
    engine: Optional[bool] = typer.Option(None, "--engine/--no-engine", help="Build a TensorRT engine. Default: "
                                          "on when a GPU, TensorRT and cuda-python are present."),
    max_batch: int = typer.Option(8, "--max-batch", help="Largest batch of the engine's optimisation profile (1..N)."),
    out: Path = typer.Option(Path("bundle"), "--out", help="Bundle folder to write (replaced only when complete)."),
    triton: Optional[Path] = typer.Option(None, "--triton", help="Also lay the bundle out as a Triton model repository here."),
    parity_size: int = typer.Option(64, "--parity-size", help="Held-out phantom crops for the parity report."),
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
                         triton, parity_size)
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
    if result.engine_error:
        console.print(f"[red]error:[/red] {escape_markup(result.engine_error)}")
        raise typer.Exit(3)


# --- training, evaluation, sweep (edgecalc.train / edgecalc.eval) ---


@app.command("train")
def train_cmd(
    data: Optional[Path] = typer.Argument(None, help="Data-set folder (images/, masks/, labels.csv); omit with --resume."),
    mask_fraction: float = typer.Option(0.3, "--mask-fraction", help="Share p of the training images whose pixel masks "
                                        "stage one uses (the paper's 10 %..100 %); 1.0 = deep supervision."),
    preset: str = typer.Option("lite", "--preset", help="Model preset: paper (the published widths) or lite (width 0.25)."),
    size: Optional[int] = typer.Option(None, "--size", help="Input size, a multiple of 16; default the preset's (192)."),
    epochs_stage1: int = typer.Option(20, "--epochs-stage1", min=1, help="Epochs of stage one (DS-AGnet on the masked images)."),
    epochs_stage2: int = typer.Option(20, "--epochs-stage2", min=1, help="Epochs of stage two (CS-AGnet on all training images)."),
    batch_size: int = typer.Option(16, "--batch-size", min=1, help="Images per step (per process under torchrun)."),
    fold: int = typer.Option(0, "--fold", min=0, help="Which cross-validation fold is the test set (0-based)."),
    folds: int = typer.Option(5, "--folds", min=2, help="Number of cross-validation folds (the paper: 5)."),
    val_fraction: float = typer.Option(0.1, "--val-fraction", help="Share of the training fold held out to pick the best epoch."),
    out: Optional[Path] = typer.Option(None, "--out", help="Run folder; default runs/<preset><size>-p<fraction>-fold<k>."),
    device: str = typer.Option("cpu", "--device", help="cpu or cuda (one GPU per process under torchrun)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the split, mask draw, initialisation, shuffling and flips."),
    keep_true_masks: bool = typer.Option(False, "--keep-true-masks", help="Stage two: use the true mask instead of the "
                                         "pseudo mask for the images drawn for stage one (not the paper's default)."),
    resume: Optional[Path] = typer.Option(None, "--resume", help="Continue this run folder from its last checkpoint "
                                          "(with its own config.json; other options are ignored)."),
    no_progress: bool = typer.Option(False, "--no-progress", help="No progress bars (validation lines still print)."),
    threads: int = typer.Option(0, "--threads", min=0, help="torch CPU threads per process (0 = torch's default); 1 is "
                                "fastest on a machine shared with other jobs."),
) -> None:
    """Two-stage collaborative training: DS-AGnet on the masked fraction, pseudo masks, then CS-AGnet."""
    from edgecalc.train.commands import train_cmd as run_train

    code = run_train(
        resume, threads=threads, data=data, mask_fraction=mask_fraction, preset=preset, size=size, epochs_stage1=epochs_stage1,
        epochs_stage2=epochs_stage2, batch_size=batch_size, fold=fold, folds=folds, val_fraction=val_fraction,
        out=out, device=device, seed=seed, keep_true_masks=keep_true_masks, progress=not no_progress,
    )
    raise typer.Exit(code)


@app.command("eval")
def eval_cmd(
    run_dir: Optional[Path] = typer.Argument(None, help="Run folder of `edgecalc train`; omit to evaluate the shipped default weights."),
    data: Optional[Path] = typer.Option(None, "--data", help="Data-set folder to evaluate on; default the run's own test split "
                                        "(required without RUN_DIR)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Folder for metrics.json, roc.png, attention.png; default "
                                       "RUN_DIR/eval[/<data name>], or edgecalc-eval/ for the shipped weights."),
    device: str = typer.Option("cpu", "--device", help="cpu or cuda."),
) -> None:
    """Accuracy, sensitivity, specificity, AUC, Dice/IoU, confusion matrix, ROC and attention figures."""
    from edgecalc.eval.commands import eval_command

    raise typer.Exit(eval_command(run_dir, data, out, device))


@app.command("sweep")
def sweep_cmd(
    data: Path = typer.Argument(..., help="Data-set folder."),
    fractions: str = typer.Option("0.1,0.3,0.5,1.0", "--fractions", help="Comma-separated pixel-mask fractions p."),
    folds: int = typer.Option(5, "--folds", min=2, help="Number of cross-validation folds."),
    fold_ids: Optional[str] = typer.Option(None, "--fold-ids", help="Comma-separated folds to run (default all of --folds)."),
    out: Path = typer.Option(Path("runs/sweep"), "--out", help="Sweep folder: one run per p<fraction>/fold<k>, table1.md, roc.png."),
    preset: str = typer.Option("lite", "--preset", help="Model preset: paper or lite."),
    size: Optional[int] = typer.Option(None, "--size", help="Input size, a multiple of 16; default the preset's."),
    epochs_stage1: int = typer.Option(20, "--epochs-stage1", min=1, help="Epochs of stage one."),
    epochs_stage2: int = typer.Option(20, "--epochs-stage2", min=1, help="Epochs of stage two."),
    batch_size: int = typer.Option(16, "--batch-size", min=1, help="Images per step."),
    device: str = typer.Option("cpu", "--device", help="cpu or cuda."),
    seed: int = typer.Option(0, "--seed", help="Seed of every run (split, draw, initialisation, shuffling, flips)."),
    keep_true_masks: bool = typer.Option(False, "--keep-true-masks", help="Stage two keeps the true masks of the drawn images."),
    no_progress: bool = typer.Option(False, "--no-progress", help="No progress bars."),
    threads: int = typer.Option(0, "--threads", min=0, help="torch CPU threads (0 = torch's default)."),
) -> None:
    """Train + eval per mask fraction and fold: the paper's Table 1 (Markdown) and Fig. 7 (one ROC per fraction)."""
    from edgecalc.eval.commands import sweep_command

    raise typer.Exit(sweep_command(
        data, fractions, folds, fold_ids, out, threads=threads, preset=preset, size=size, epochs_stage1=epochs_stage1,
        epochs_stage2=epochs_stage2, batch_size=batch_size, device=device, seed=seed,
        keep_true_masks=keep_true_masks, progress=not no_progress,
    ))


@app.command()
def locate(
    images: Path = typer.Argument(..., help="An image file or a folder of images (png, jpg, bmp, tif, ...): whole "
                                  "screen frames as a frame grabber delivers them."),
    out: Optional[Path] = typer.Option(None, "--out", help="Write the boxes here as CSV (id,x,y,w,h,score); "
                                       "default: print the CSV."),
    overlay: Optional[Path] = typer.Option(None, "--overlay", help="Also write one overlay PNG per image into this folder."),
    margin: float = typer.Option(0.1, "--margin", min=0.0, help="Crop margin drawn on the overlays, as a share of "
                                 "the box's long side (the CSV holds the box itself)."),
    locator: str = typer.Option("learned", "--locator", help="learned (the shipped network) | classical (the "
                                "dark-blob baseline)."),
) -> None:
    """Find the nodule in each image: id,x,y,w,h,score in the image's pixels (empty box, score 0: none found).

    Unreadable images are reported by name and skipped. Exit 0 when at least one image was read,
    1 when none could be (or the folder holds no images), 2 on a bad argument or a broken locator bundle.
    """
    from rich.console import Console
    from rich.progress import Progress

    from edgecalc.runtime.locate_images import csv_text, list_images, locate_paths, write_csv

    console = Console(stderr=True)
    try:
        paths = list_images(images)
        if locator == "learned":
            from edgecalc.runtime.learned_locator import LearnedLocator, LocatorBundleError

            try:
                locate_fn = LearnedLocator(threads=1).locate
            except (LocatorBundleError, FileNotFoundError) as exc:
                raise ValueError(str(exc)) from exc
        elif locator == "classical":
            from edgecalc.runtime.classical_locator import locate_nodule as locate_fn
        else:
            raise ValueError(f"--locator must be learned or classical, got {locator!r}")
    except (ValueError, FileNotFoundError) as exc:
        console.print(f"[red]error:[/red] {escape_markup(str(exc))}")
        raise typer.Exit(2)
    if not paths:
        console.print(f"[red]error:[/red] no image files in {escape_markup(str(images))}")
        raise typer.Exit(1)
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


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
