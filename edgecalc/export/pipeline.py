"""``edgecalc export``: weights -> TorchScript + ONNX (+ FP16 / INT8 / engine) + manifest + parity, one bundle.

Order matters for "no partial bundle": everything that can fail on bad input (weights, calibration
folder, calibration size) is checked before the first byte is written, and everything is written
into a staged folder that only becomes ``--out`` once parity has passed.
"""

from __future__ import annotations

import copy
import shlex
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

import edgecalc
from edgecalc.calibration import cache as calib_cache
from edgecalc.calibration.calibration_set import CalibrationSet, from_folder, from_phantom
from edgecalc.data.preprocess import PREPROCESSING_SPEC
from edgecalc.export import int8 as int8_mod
from edgecalc.export.bundle_writer import staged_folder
from edgecalc.export.fp16 import export_fp16
from edgecalc.export.onnx_export import export_onnx
from edgecalc.export.parity import (
    ParityRow, exact_failures, onnx_checks, open_runners, parity_set, run_parity, skipped_row, write_parity,
)
from edgecalc.export.provenance import created_now, library_versions
from edgecalc.export import torch_tensorrt_export as torch_trt
from edgecalc.export.torchscript import export_torchscript
from edgecalc.export.verify import ParityError
from edgecalc.export.weights_source import resolve_weights
from edgecalc.model.csagnet import INPUT_NAME, OUTPUT_NAMES, ExportWrapper
from edgecalc.model.info import model_info
from edgecalc.model.weights import load_model, read_config
from edgecalc.runtime.engine.bundle import Bundle, Manifest, load_bundle, sha256_file
from edgecalc.runtime.engine.formats import PRECISIONS, bundle_file

TS_FILE, FP32_FILE = bundle_file("torchscript", "fp32"), bundle_file("onnx", "fp32")
DECISION_THRESHOLD = 0.5
TIMING_CACHE_NAME = "tensorrt.timing-cache"

#: The facts of csagnet.py's module docstring, as the manifest states them.
OUTPUT_MEANINGS = {
    "mask": "float32 (N, 1, H, W): full-resolution sigmoid calcification probability per pixel",
    "score": "float32 (N, 1): P(calcification), the final softmax's positive-class (index 1) value",
    "attention": "float32 (N, 3, H, W) in [0, 1]: the three Grid-AG maps read by module C, resized bilinearly "
                 "(align_corners=False) to the input size; channel 0 = Grid-AG 1 (next to the bridge), "
                 "channel 2 = Grid-AG 3 (closest to the output, the map the paper shows)",
}


def output_meanings(network: str) -> dict[str, str]:
    """``OUTPUT_MEANINGS`` as they hold for ``network``: the comparison networks say what their maps are."""
    from edgecalc.model.registry import get_spec

    if network == "csagnet":
        return OUTPUT_MEANINGS
    spec = get_spec(network)
    mask = OUTPUT_MEANINGS["mask"] if spec.supervision != "labels" else (
        "float32 (N, 1, H, W): P(calcification) x the shown attention map (no segmentation branch: not a mask "
        "any pixel was trained on)")
    return {**OUTPUT_MEANINGS, "mask": mask,
            "attention": f"float32 (N, 3, H, W) in [0, 1]: {network}'s three maps resized bilinearly (align_corners=False) "
                         f"to the input size; channel 2 = {spec.attention} ({spec.cls.split(':')[0]})"}


class ExportError(RuntimeError):
    """Bad input to the export (the message names the file or option)."""


@dataclass
class ExportOptions:
    weights: str | Path | None = None
    precision: str = "fp32"
    calib: str | Path | None = None
    calib_size: int = 256
    calib_method: str = int8_mod.DEFAULT_METHOD
    calib_seed: int = 0
    engine: bool | None = None  #: None: build when a GPU and TensorRT are present
    max_batch: int = 8
    out: str | Path = "bundle"
    triton: str | Path | None = None
    parity_size: int = 64
    via: str = "onnx"  #: "torch-tensorrt": also a TorchScript module with the engine embedded
    command: str = field(default_factory=lambda: shlex.join(["edgecalc", *sys.argv[1:]]))


@dataclass
class ExportResult:
    bundle: Path
    rows: list[ParityRow]
    notes: list[str]
    engine_error: str | None = None
    calibration_cache_hit: bool | None = None
    triton_models: list[Path] = field(default_factory=list)
    via_error: str | None = None


def load_for_export(weights: str | Path | None) -> tuple[Path, torch.nn.Module]:
    """Resolve and load the weights (any network of the registry); ExportError naming the file on any problem."""
    from edgecalc.model.registry import NETWORKS

    path = resolve_weights(weights)
    try:
        arch, _ = read_config(path)
    except (ValueError, KeyError) as exc:
        raise ExportError(f"{path.with_suffix('.json')}: {exc}") from exc
    if arch not in NETWORKS:
        raise ExportError(f"{path} holds a {arch} (stage-one segmentation network); export needs a CS-AGnet or another "
                          f"network with its classification branch ({', '.join(NETWORKS)}: stage-two / final weights)")
    try:
        model = load_model(path)
    except ValueError as exc:
        raise ExportError(str(exc)) from exc
    return path, model.eval()


def build_calibration(opts: ExportOptions, size: int, log: Callable[[str], None]) -> CalibrationSet:
    """The calibration set from ``--calib`` or, without it, from generated phantom crops (said so)."""
    if opts.calib is None:
        log(f"no --calib given: calibrating INT8 on {opts.calib_size} phantom crops the kit generates")
        return from_phantom(size, opts.calib_size, opts.calib_seed)
    log(f"calibration set: {opts.calib_size} images from {opts.calib}, stratified by class, seed {opts.calib_seed}")
    return from_folder(opts.calib, size, opts.calib_size, opts.calib_seed)


def export_bundle(opts: ExportOptions, log: Callable[[str], None] = print) -> ExportResult:
    """Run the whole export; see the module docstring. Raises ExportError / CalibrationError on bad input."""
    if opts.precision not in PRECISIONS:
        raise ExportError(f"--precision {opts.precision!r} is not one of {', '.join(PRECISIONS)}")
    if opts.precision == "int8":
        int8_mod.ort_method(opts.calib_method)  # a bad method fails before any work
    if opts.via not in torch_trt.VIA_CHOICES:
        raise ExportError(f"--via {opts.via!r} is not one of {', '.join(torch_trt.VIA_CHOICES)}")
    if opts.via == "torch-tensorrt":
        try:
            torch_trt.check_precision(opts.precision)
        except torch_trt.TorchTensorRTUnavailable as exc:
            raise ExportError(str(exc)) from exc
    from edgecalc.export import tensorrt_engine as trt_mod

    trt_mod.profile_shapes(16, 1, opts.max_batch)  # checks --max-batch
    weights_path, model = load_for_export(opts.weights)
    cfg = model.cfg
    size, channels = cfg.input_size, cfg.in_channels
    calib = build_calibration(opts, size, log) if opts.precision == "int8" else None
    missing = trt_mod.missing_pieces()
    want_engine = (not missing) if opts.engine is None else opts.engine
    notes: list[str] = []
    engine_error = via_error = None

    log(f"held-out parity set: {opts.parity_size} phantom crops at {size}x{size}")
    pset = parity_set(size, opts.parity_size)
    wrapper = ExportWrapper(model).eval()
    example = torch.from_numpy(pset.images[:2])
    check = torch.from_numpy(pset.images[:3])
    with torch.no_grad():
        ref = [t.numpy() for t in wrapper(torch.from_numpy(pset.images))]

    info = model_info(cfg, model)
    arch, _ = read_config(weights_path)
    manifest = Manifest(
        model={"architecture": arch, "preset": cfg.name, "config": cfg.to_dict(),
               "params": info.params, "flops_per_image": info.flops, "flops_counting": "2 x MACs of conv/linear layers"},
        input={"name": INPUT_NAME, "shape": [-1, channels, size, size], "dtype": "float32", "range": [0.0, 1.0],
               "layout": "NCHW", "dynamic_axes": {"0": "batch"}, "max_batch_engine": opts.max_batch},
        preprocessing=dict(PREPROCESSING_SPEC, function="edgecalc.data.preprocess.preprocess", size=size),
        outputs=[{"name": n, "shape": [-1, 1 if n != "attention" else 3, size, size] if n != "score" else [-1, 1],
                  "dtype": "float32", "meaning": output_meanings(arch)[n]} for n in OUTPUT_NAMES],
        decision={"output": "score", "threshold": DECISION_THRESHOLD, "positive": "calcification (score >= threshold)"},
        source_weights={"file": weights_path.name, "sha256": sha256_file(weights_path),
                        "config_sha256": sha256_file(weights_path.with_suffix(".json"))},
        libraries=library_versions(), edgecalc_version=edgecalc.__version__, command=opts.command,
        created=created_now(),
    )
    cache_hit = None
    with staged_folder(opts.out) as tmp:
        log("[1/5] TorchScript: trace, freeze, reload, compare with eager")
        export_torchscript(wrapper, example, tmp / TS_FILE, check)
        manifest.add_file(tmp, TS_FILE, "torchscript", "fp32")
        log("[2/5] ONNX float32 (opset 17, dynamic batch): export, check with onnxruntime")
        export_onnx(wrapper, example, tmp / FP32_FILE, check)
        manifest.add_file(tmp, FP32_FILE, "onnx", "fp32")
        #: (file, runtime backend, precision) of every artifact the cart can load: parity opens each through
        #: the runtime's own backends (parity.backend_runner), so a backend bug fails the export; an ONNX
        #: model through each CPU engine that loads ONNX (parity.onnx_checks: onnxruntime, OpenVINO).
        checked = [(TS_FILE, "torchscript", "fp32"), *onnx_checks(FP32_FILE, "fp32")]
        fp16_file, int8_file = bundle_file("onnx", "fp16"), bundle_file("onnx", "int8")
        if opts.precision == "fp16":
            log("[3/5] FP16 ONNX (float32 I/O; sigmoid, softmax, attention normalisation, alpha resize in float32)")
            converter = export_fp16(tmp / FP32_FILE, tmp / fp16_file)
            manifest.add_file(tmp, fp16_file, "onnx", "fp16", notes=f"converter: {converter}")
            checked += onnx_checks(fp16_file, "fp16")
        elif opts.precision == "int8":
            assert calib is not None
            key = calib_cache.cache_key(sha256_file(tmp / FP32_FILE), calib.digest(), opts.calib_method)
            cpath, cache_hit = calib_cache.lookup(key)
            cpath.parent.mkdir(parents=True, exist_ok=True)
            log(f"[3/5] INT8 Q/DQ ONNX, {opts.calib_method} calibration on {len(calib)} images: "
                + (f"reusing cached ranges {cpath}" if cache_hit else f"calibrating (ranges cached in {cpath})"))
            int8_mod.quantize_int8(tmp / FP32_FILE, tmp / int8_file, calib.images,
                                   opts.calib_method, cpath)
            manifest.add_file(tmp, int8_file, "onnx", "int8",
                              notes=int8_mod.MANIFEST_NOTES)
            manifest.calibration = dict(calib.record(opts.calib_method), cache_key=key, cache_reused=cache_hit)
            checked += onnx_checks(int8_file, "int8")
        else:
            log("[3/5] --precision fp32: no reduced-precision model")
        engine_row = None
        if want_engine:
            onnx_name = bundle_file("onnx", opts.precision)
            engine_name = bundle_file("engine", opts.precision)
            log(f"[4/5] TensorRT engine from {onnx_name}, batch 1..{opts.max_batch}")
            try:
                build = trt_mod.build_engine(tmp / onnx_name, tmp / engine_name, opts.precision, size, channels,
                                             opts.max_batch, calib_cache.cache_dir().parent / TIMING_CACHE_NAME)
                manifest.add_file(tmp, engine_name, "engine", opts.precision, engine=build.target,
                                  notes=f"profile min/opt/max {build.profile}; builder flags {build.flags or 'none (strongly typed)'}")
                checked.append((engine_name, "tensorrt", opts.precision))
            except trt_mod.EngineUnavailable as exc:
                engine_error = f"--engine: {exc}; the rest of the bundle is written without an engine"
                engine_row = skipped_row(engine_name, "tensorrt", opts.precision, str(exc))
        else:
            log("[4/5] no TensorRT engine (" + ("--no-engine" if opts.engine is False else "missing: " + "; ".join(missing)) + ")")
        via_row = via_runner = None
        if opts.via == "torch-tensorrt":
            log(f"[4/5] torch-tensorrt (dynamo, {opts.precision}, batch 1..{opts.max_batch}): compile and save "
                f"{torch_trt.ARTIFACT_NAME} (TorchScript with the engine embedded)")
            try:
                tb = torch_trt.compile_torch_tensorrt(copy.deepcopy(wrapper), tmp / torch_trt.ARTIFACT_NAME,
                                                      opts.precision, size, channels, opts.max_batch)
                manifest.add_file(tmp, torch_trt.ARTIFACT_NAME, "torchscript-trt", opts.precision, engine=tb.target,
                                  notes=f"torch-tensorrt {tb.torch_tensorrt_version}, dynamo, settings {tb.settings}; "
                                        "load with torch_tensorrt imported (Python) or the torchtrt runtime linked (C++)")
                via_runner = (torch_trt.ARTIFACT_NAME, "torch-tensorrt", opts.precision,  # no cart backend: its own loader
                              torch_trt.load_runner(tmp / torch_trt.ARTIFACT_NAME))
            except torch_trt.TorchTensorRTUnavailable as exc:
                via_error = f"--via torch-tensorrt: {exc}; the rest of the bundle is written without {torch_trt.ARTIFACT_NAME}"
                via_row = skipped_row(torch_trt.ARTIFACT_NAME, "torch-tensorrt", opts.precision, str(exc))
        log("[5/5] parity of every artifact against eager float32, each run by the runtime's own backend")
        runners, unavailable = open_runners(Bundle(tmp, manifest), checked)
        rows = run_parity(ref, runners + ([via_runner] if via_runner else []), pset, DECISION_THRESHOLD)
        rows += unavailable + [r for r in (engine_row, via_row) if r is not None]
        bad = exact_failures(rows)
        if bad:
            raise ParityError("export refused: " + "; ".join(bad))
        write_parity(tmp / "parity.json", rows, pset, DECISION_THRESHOLD)
        manifest.add_file(tmp, "parity.json", "report", None)
        manifest.write(tmp)
        load_bundle(tmp)  # what the runtime will do: every checksum must hold before the rename
    result = ExportResult(Path(opts.out), rows, notes, engine_error, cache_hit, via_error=via_error)
    if opts.triton is not None:
        from edgecalc.export.triton import write_triton_repository

        def is_repo(folder: Path) -> bool:
            return all((m / "config.pbtxt").is_file() for m in folder.iterdir() if m.is_dir())

        with staged_folder(opts.triton, is_repo, "a Triton model repository") as ttmp:
            result.triton_models = write_triton_repository(load_bundle(opts.out), ttmp, opts.max_batch)
        result.triton_models = [Path(opts.triton) / p.name for p in result.triton_models]
    return result

