"""The "Data and model" panel: ``edgecalc model info`` and ``edgecalc data phantom | import-dicom | check``.

Thin: options here, the bodies in edgecalc/model/commands.py and edgecalc/data/commands.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from edgecalc.cli import options as opt
from edgecalc.cli.errors import run
from edgecalc.data.commands import check_command, import_dicom_command, phantom_command
from edgecalc.model.commands import model_info_command

PANEL = "Data and model"

model_app = typer.Typer(help="Inspect the CS-AGnet model: parameters, FLOPs, layers.", no_args_is_help=True)
data_app = typer.Typer(help="Data: the ultrasound phantom (default data set) and the data-set checker.",
                       no_args_is_help=True)
#: The groups of this panel, by command name, in the order --help lists them.
GROUPS = {"model": model_app, "data": data_app}


@model_app.command("info")
def model_info_cmd(
    preset: opt.Preset = typer.Option("paper", "--preset", help="Model preset: paper or lite."),
    size: int = typer.Option(None, "--size", help="Input size (a multiple of 16); default the preset's."),
    network: opt.Network = typer.Option("csagnet", "--network", help="A network of edgecalc/model/registry.py (csagnet, "
                                "vgg-unet, alexnet-seg, sononet-ag, vgg16, resnet50; docs/comparison.md)."),
) -> None:
    """Print a network's (default CS-AGnet's) parameter count, FLOPs per image (2 x MACs) and a per-layer table."""
    run(model_info_command, preset=preset, size=size, network=network)


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
    sets: Optional[list[str]] = typer.Option(None, "--set", parser=opt.phantom_setting, metavar="KEY=VALUE", help="KEY=VALUE (repeatable): one PhantomConfig field, "
                                             "VALUE as JSON, applied after --config; e.g. --set dynamic_range_db=[45,60]."),
) -> None:
    """Generate the phantom data set: images/, masks/, nodules/, labels.csv, meta.jsonl and phantom.json."""
    run(phantom_command, out=out, n=n, positive=positive, size=size, frames=frames, video=video, dicom=dicom, seed=seed,
        workers=workers, config=config, sets=sets)


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
    run(import_dicom_command, src=src, out=out, every=every)


@data_app.command("check")
def data_check_cmd(
    path: str = typer.Argument(..., help="Data-set folder (images/, optional masks/, labels.csv)."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Validate a data set: every problem with its file and reason, then a summary. Exit 1 on errors."""
    run(check_command, path=path, as_json=as_json)
