"""Plan, run and summarise the benchmark rows of one bundle on one machine.

Rows: PyTorch eager float32 (the reference, from the bundle's source weights), TorchScript, every
ONNX model of the bundle on onnxruntime and OpenVINO (plus OpenVINO bf16 where the CPU has it), the
bundle's TensorRT engines, and CUDA PyTorch float32 / FP16 / CUDA graphs where a GPU is present. A
row that cannot run here is kept, with the reason instead of numbers. Everything runs on the same
inputs in the same run, so ratios between rows are meaningful even on a noisy machine.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from edgecalc.bench.peak import floor_ms, measure_peak_gflops
from edgecalc.bench.report import write_reports
from edgecalc.bench.results import BenchReport, Row
from edgecalc.bench.row import RowSpec
from edgecalc.data.preprocess import preprocess_batch, resize_mask, to_gray_u8
from edgecalc.machine import cpu_name, nvidia_smi_gpu
from edgecalc.runtime.engine.bundle import Bundle, BundleError, current_engine_target, load_bundle, sha256_file
from edgecalc.runtime.engine.formats import BENCH_BACKENDS, formats_of, install_hint, precisions_of

#: Phantom crops used when no --data is given: seeds far from the training and parity sets.
BENCH_SEED_BASE = 7_000_000


@dataclass
class BenchOptions:
    bundle: str | Path | None = None
    backends: tuple[str, ...] = BENCH_BACKENDS
    data: str | Path | None = None
    n_data: int = 64
    batches: tuple[int, ...] = (1, 4)
    n: int = 200
    warmup: int = 20
    threads: int = 0
    weights: str | Path | None = None
    out: str | Path = "bench"
    row_timeout_s: float = 1800.0


def _have(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def _gpu_present() -> bool:
    return nvidia_smi_gpu()[0] is not None


def reference_weights(bundle: Bundle, explicit: str | Path | None) -> tuple[Path | None, str]:
    """The safetensors the bundle was exported from (checked by sha256), or why there are none."""
    if explicit is not None:
        p = Path(explicit)
        return (p, "") if p.is_file() else (None, f"weights {p} not found")
    src = bundle.manifest.source_weights or {}
    candidates = [Path(src[k]) for k in ("path", "file") if src.get(k)]
    try:
        from edgecalc.model.shipped import default_weights_path

        candidates.append(default_weights_path())
    except (ImportError, FileNotFoundError):
        pass
    for c in candidates:
        if c.is_file() and (not src.get("sha256") or sha256_file(c) == src["sha256"]):
            return c, ""
    return None, ("the bundle's source weights are not on this machine "
                  f"({src.get('path', 'no path recorded')}); pass --weights to add the PyTorch rows")


def load_inputs(bundle: Bundle, opts: BenchOptions) -> tuple[dict, dict]:
    """(arrays for the .npz: images, raw, labels, masks; a description of the data)."""
    size = bundle.input_size
    if opts.data is not None:
        from edgecalc.data.dataset import load_dataset

        ids, images, masks, labels, _ = load_dataset(opts.data, size=size)
        import cv2

        raw = []
        for i in ids:
            img = cv2.imread(str(Path(opts.data) / "images" / f"{i}.png"), cv2.IMREAD_UNCHANGED)
            raw.append(to_gray_u8(img))
        side = max(r.shape[0] for r in raw)
        raw_a = np.stack([cv2.resize(r, (side, side)) for r in raw])
        mask_a = np.stack([m if m is not None else np.zeros((size, size), np.uint8) for m in masks])
        desc = {"source": str(opts.data), "n": len(ids)}
        return {"images": images, "raw": raw_a, "labels": np.asarray(labels, np.int64), "masks": mask_a,
                "has_mask": np.array([m is not None for m in masks])}, desc
    from edgecalc.data.phantom import generate_crop

    samples = [generate_crop(BENCH_SEED_BASE + i, positive=(i % 2 == 0), size=192) for i in range(opts.n_data)]
    raw_a = np.stack([s.image for s in samples])
    return ({"images": preprocess_batch(list(raw_a), size), "raw": raw_a,
             "labels": np.array([s.label for s in samples], np.int64),
             "masks": np.stack([resize_mask(s.mask, size) for s in samples]),
             "has_mask": np.ones(opts.n_data, bool)},
            {"source": f"phantom crops, seeds {BENCH_SEED_BASE}..{BENCH_SEED_BASE + opts.n_data - 1}",
             "n": opts.n_data})


def plan_rows(bundle: Bundle, opts: BenchOptions) -> tuple[list[Row], list[RowSpec | None]]:
    """Every candidate row, with a spec (runnable) or None (the row carries the reason)."""
    rows: list[Row] = []
    specs: list[RowSpec | None] = []
    arts = bundle.manifest.artifacts

    def add(backend: str, precision: str, device: str, path: str | None, reason: str = "",
            label: str | None = None, **options) -> None:
        """One row; `label` names the precision in the table when it differs from the spec's."""
        if backend not in opts.backends:
            return
        # the reason is for a row that cannot run; one that can carries none
        rows.append(Row(backend, label or precision, device, "planned" if path else "unavailable", "" if path else reason))
        specs.append(None if path is None else RowSpec(
            backend=backend, precision=precision, device=device, model_path=str(path), data_npz="",
            result_json="", result_npz="", batches=list(opts.batches), n=opts.n, warmup=opts.warmup,
            threads=opts.threads, input_size=bundle.input_size, threshold=bundle.threshold, options=options))

    torch_ok = _have("torch")
    weights, why_w = reference_weights(bundle, opts.weights) if torch_ok else (None, "")
    no_torch = f"torch is not installed ({install_hint('pytorch')})"
    add("pytorch", "fp32", "cpu", str(weights) if weights else None, no_torch if not torch_ok else why_w)
    gpu = _gpu_present()
    if gpu:
        cuda_rows = [(f.precision, {}) for f in formats_of("pytorch", "cuda")] + [("fp16", {"cuda_graphs": True})]
        for prec, extra in cuda_rows:
            add("pytorch", prec, "cuda", str(weights) if (weights and torch_ok) else None,
                no_torch if not torch_ok else why_w, label=prec + ("+cudagraph" if extra else ""), **extra)
    ts = bundle.manifest.artifact("torchscript")
    add("torchscript", "fp32", "cpu", str(bundle.root / ts.file) if (ts and torch_ok) else None,
        no_torch if not torch_ok else "the bundle has no TorchScript module")
    onnx_arts = [a for a in arts if a.kind == "onnx"]
    ort_ok, ov_ok = _have("onnxruntime"), _have("openvino")
    for a in onnx_arts:
        add("onnxruntime", a.precision, "cpu", str(bundle.root / a.file) if ort_ok else None,
            "onnxruntime is not installed")
    for a in onnx_arts:
        if a.precision not in precisions_of("openvino", "onnx"):
            continue  # OpenVINO decides its own compute precision; the fp32 and int8 graphs are the inputs
        add("openvino", a.precision, "cpu", str(bundle.root / a.file) if ov_ok else None,
            f"openvino is not installed ({install_hint('openvino')})")
    if ov_ok and _openvino_bf16():
        fp32 = bundle.manifest.artifact("onnx", "fp32")
        if fp32 is not None:
            add("openvino", "bf16", "cpu", str(bundle.root / fp32.file), inference_precision="bf16")
    engines = [a for a in arts if a.kind == "engine"]
    if not engines:
        add("tensorrt", "fp16", "cuda", None, "the bundle has no TensorRT engine (edgecalc export ... --engine on a GPU)")
    target = current_engine_target() if engines else None
    for a in engines:
        try:
            path = bundle.engine_path(a.precision, target)
            add("tensorrt", a.precision, "cuda", str(path))
        except BundleError as exc:
            add("tensorrt", a.precision, "cuda", None, str(exc))
    return rows, specs


def _openvino_bf16() -> bool:
    try:
        from edgecalc.runtime.engine.backends.openvino_backend import cpu_devices_and_capabilities

        return "BF16" in cpu_devices_and_capabilities()[1]
    except Exception:  # noqa: BLE001
        return False


def _flops(bundle: Bundle) -> float | None:
    f = bundle.manifest.model.get("flops_per_image")
    if f:
        return float(f)
    if not _have("torch"):
        return None
    from edgecalc.model.config import ModelConfig
    from edgecalc.model.info import model_info

    return float(model_info(ModelConfig.from_dict(bundle.manifest.model["config"])).flops)


def run_bench(opts: BenchOptions, log: Callable[[str], None] = print) -> BenchReport:
    """Run every row in its own process; derive ratios, % of peak, accuracy and agreement."""
    from edgecalc.runtime.shipped import resolve_bundle

    bundle = load_bundle(resolve_bundle(opts.bundle))
    out = Path(opts.out)
    out.mkdir(parents=True, exist_ok=True)
    arrays, data_desc = load_inputs(bundle, opts)
    log("measuring this machine's float32 GEMM peak ...")
    peak = measure_peak_gflops()
    flops = _flops(bundle)
    rows, specs = plan_rows(bundle, opts)
    scores: dict[str, np.ndarray] = {}
    masks: dict[str, np.ndarray] = {}
    with tempfile.TemporaryDirectory(prefix="edgecalc-bench-") as tmp:
        data_npz = str(Path(tmp) / "inputs.npz")
        np.savez(data_npz, **arrays)
        for k, (row, spec) in enumerate(zip(rows, specs)):
            if spec is None:
                log(f"[{k + 1}/{len(rows)}] {row.label}: not run ({row.reason})")
                continue
            log(f"[{k + 1}/{len(rows)}] {row.label} ...")
            spec.data_npz = data_npz
            spec.result_json = str(Path(tmp) / f"row{k}.json")
            spec.result_npz = str(Path(tmp) / f"row{k}.npz")
            spec_path = Path(tmp) / f"row{k}.spec.json"
            spec_path.write_text(json.dumps(asdict(spec)))
            proc = subprocess.run([sys.executable, "-m", "edgecalc.bench.row", str(spec_path)],
                                  capture_output=True, text=True, timeout=opts.row_timeout_s,
                                  env={**os.environ, "PYTHONWARNINGS": "ignore"})
            if proc.returncode != 0 or not Path(spec.result_json).is_file():
                row.status, row.reason = "failed", (proc.stderr.strip().splitlines() or ["no output"])[-1]
                log(f"    failed: {row.reason}")
                continue
            row.status, row.result = "ok", json.loads(Path(spec.result_json).read_text())
            res = np.load(spec.result_npz, allow_pickle=False)
            scores[row.label], masks[row.label] = res["scores"], res["masks"]
    reference = next((r.label for r in rows if r.status == "ok" and r.backend == "pytorch" and r.device == "cpu"), None)
    if reference is None:
        reference = next((r.label for r in rows if r.status == "ok" and r.backend == "onnxruntime"
                          and r.precision == "fp32"), None)
    _derive(rows, reference, scores, masks, arrays, flops, peak, opts)
    report = BenchReport(
        machine={"cpu": cpu_name(), "cores": os.cpu_count(), "gpu": _gpu_name()},
        bundle=str(bundle.root), model=bundle.manifest.model, data=data_desc,
        options={k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(opts).items()},
        peak_gflops=peak, flops_per_image=flops, reference=reference, rows=rows)
    write_reports(report, out)
    from edgecalc.runtime.engine.latency_cache import record_measurements

    record_measurements(report)
    return report


def _gpu_name() -> str | None:
    return nvidia_smi_gpu()[0]


def _derive(rows: list[Row], reference: str | None, scores: dict, masks: dict, arrays: dict,
            flops: float | None, peak: float, opts: BenchOptions) -> None:
    from edgecalc.eval.metrics import dice_per_image, roc_auc

    labels, true_masks = arrays["labels"], arrays["masks"]
    has_mask = arrays.get("has_mask", np.ones(labels.size, bool))
    ref_row = next((r for r in rows if r.label == reference), None)
    ref_ms = ref_row.result["model_latency_ms"]["1"]["median"] if ref_row and "1" in ref_row.result.get(
        "model_latency_ms", {}) else None
    for r in rows:
        if r.status != "ok":
            continue
        d: dict = {}
        lat = r.result["model_latency_ms"]
        if ref_ms and "1" in lat:
            d["ratio_to_reference"] = lat["1"]["median"] / ref_ms
        if flops:
            d["pct_of_peak"] = {b: 100.0 * floor_ms(flops, int(b), peak) / v["median"] for b, v in lat.items()}
        try:
            d["auc"] = roc_auc(labels, scores[r.label])
        except ValueError as exc:
            d["auc"], d["auc_note"] = None, str(exc)
        pos = (labels == 1) & has_mask  # a positive without a mask has no Dice (real crops with case labels)
        d["dice"] = float(np.mean(dice_per_image(masks[r.label][pos], true_masks[pos]))) if pos.any() else None
        if reference in scores:
            ref_dec = scores[reference] >= 0.5
            d["decision_agreement"] = float(np.mean((scores[r.label] >= 0.5) == ref_dec))
            d["max_abs_score_diff"] = float(np.max(np.abs(scores[r.label] - scores[reference])))
        r.derived = d
