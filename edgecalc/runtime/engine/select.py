"""Open the right inference engine for a bundle: named, or `auto` = the fastest usable one here.

`auto` prefers a TensorRT engine built for this GPU; otherwise it takes the CPU engine that
`edgecalc bench` measured fastest on this machine for this bundle (cached per machine), and without
such a measurement it times the CPU engines that can load the bundle's model at the requested
precision (a few warm runs each on a blank input) and keeps the fastest. The choice and the timings are returned so the runtime can print why.

Fast is not enough: the same INT8 file can run faithfully in one engine and badly in another (on an
AVX2 CPU without VNNI, OpenVINO ran the shipped INT8 model at AUC 0.86 where onnxruntime kept 0.94).
So `auto` only considers the CPU engines that the bundle's parity report (`parity.json`, written by
`edgecalc export`) shows running this precision about as faithfully as the best one
(`parity_rejections`); an engine the report does not cover is left out while another is covered.
An OpenVINO INT8 row measured on a CPU of another int8 class (VNNI / AMX or not) does not cover this
one: the same file ran faithfully on a VNNI Xeon and lost a fifth of its decisions on an AVX2 EPYC.
A backend named by the user is opened as asked.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

import numpy as np

from edgecalc.runtime.engine.backends import BackendUnavailable, InferenceBackend, open_backend
from edgecalc.runtime.engine.bundle import Bundle, BundleError
from edgecalc.machine import int8_dot_class
from edgecalc.runtime.engine.formats import (BACKEND_CHOICES, INT8_ISA_SENSITIVE, ONNX_CPU_BACKENDS, PARITY_AUC_MARGIN,
                                             PARITY_DICE_MARGIN, PARITY_FILE, precisions_of)
from edgecalc.runtime.engine.latency_cache import measured_latencies


@dataclass
class Selection:
    backend: InferenceBackend
    reason: str
    timings_ms: dict[str, float] = field(default_factory=dict)
    rejected: dict[str, str] = field(default_factory=dict)


def open_for_bundle(bundle: Bundle, name: str, precision: str = "fp32", threads: int = 0) -> InferenceBackend:
    """Load the bundle's artifact for `precision` with backend `name` (not `auto`)."""
    outputs = tuple(o["name"] for o in bundle.manifest.outputs)
    if name == "tensorrt":
        return open_backend("tensorrt", bundle.engine_path(precision), precision=precision)
    if name == "torchscript":
        if precision not in precisions_of("torchscript"):
            raise BundleError(f"the TorchScript module is float32 only; asked for {precision}")
        return open_backend("torchscript", bundle.path("torchscript"), output_names=outputs, threads=threads)
    if name in ONNX_CPU_BACKENDS:
        return open_backend(name, bundle.path("onnx", precision), precision=precision, threads=threads)
    raise ValueError(f"unknown backend {name!r}; choose one of {', '.join(BACKEND_CHOICES)}")


def _time_backend(backend: InferenceBackend, size: int, warmup: int = 3, runs: int = 7) -> float:
    x = np.zeros((1, 1, size, size), np.float32)
    for _ in range(warmup):
        backend.infer(x)
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        backend.infer(x)
        times.append(time.perf_counter() - t)
    return float(np.median(times) * 1000.0)


def _parity_report(bundle: Bundle) -> tuple[dict[tuple[str, str], dict], str | None]:
    """The bundle's parity rows that ran, by (backend, precision), and the int8 class of the CPU they ran
    on (None where the report does not say); ({}, None) without a readable report."""
    path = bundle.root / PARITY_FILE
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        rows = {(r["backend"], r["precision"]): r for r in doc.get("rows", [])
                if isinstance(r, dict) and r.get("status") == "ran"}
        machine = doc.get("machine")
        return rows, machine.get("int8_dot") if isinstance(machine, dict) else None
    except (OSError, ValueError, AttributeError, KeyError, TypeError):
        return {}, None


def parity_rejections(bundle: Bundle, precision: str, candidates: tuple[str, ...] = ONNX_CPU_BACKENDS) -> dict[str, str]:
    """The candidates `auto` must not choose at `precision`, each with the reason from `parity.json`.

    Measured against eager: a candidate whose AUC or Dice drop exceeds the best candidate's by more
    than PARITY_AUC_MARGIN / PARITY_DICE_MARGIN is refused; while any candidate has a row, one
    without a row is refused too (unverified). An INT8 row of an INT8_ISA_SENSITIVE engine counts only
    where this CPU's int8 class (``machine.int8_dot_class``) is the report's, when both are known.
    No report, or no eager row: nothing is refused.
    """
    rows, report_class = _parity_report(bundle)
    here_class = int8_dot_class() if precision == "int8" and report_class is not None else None
    elsewhere: set[str] = set()
    if here_class is not None and here_class != report_class:
        elsewhere = {c for c in INT8_ISA_SENSITIVE if (c, precision) in rows}
    eager = rows.get(("pytorch", "fp32"))
    have = {c: rows[(c, precision)] for c in candidates if (c, precision) in rows and c not in elsewhere}
    if eager is None:
        return {}

    def other_cpu(c: str) -> str:
        return (f"not verified on this CPU: {bundle.root / PARITY_FILE} measured {c} {precision} on a CPU of int8 "
                f"class {report_class}, this one is {here_class} ({c}'s INT8 accuracy depends on it; export the "
                "bundle on a CPU like this one to check it)")

    if not have:  # nothing verified here: refuse only what was measured elsewhere, while another engine is left
        return {c: other_cpu(c) for c in candidates if c in elsewhere} if set(candidates) - elsewhere else {}

    def drop(row: dict, key: str) -> float:
        ref, val = eager.get(key), row.get(key)
        return float(ref) - float(val) if isinstance(ref, (int, float)) and isinstance(val, (int, float)) else 0.0

    best_auc = min(drop(r, "auc") for r in have.values())
    best_dice = min(drop(r, "dice") for r in have.values())
    out: dict[str, str] = {}
    for c in candidates:
        row = have.get(c)
        if c in elsewhere:
            out[c] = other_cpu(c)
        elif row is None:
            out[c] = (f"not verified: {bundle.root / PARITY_FILE} has no {c} {precision} row (export the bundle where {c} "
                      "is installed to check it)")
        elif drop(row, "auc") > best_auc + PARITY_AUC_MARGIN or drop(row, "dice") > best_dice + PARITY_DICE_MARGIN:
            out[c] = (f"runs {precision} less faithfully than another engine here: AUC {row.get('auc')}, Dice {row.get('dice')} "
                      f"against eager {eager.get('auc')}, {eager.get('dice')} ({bundle.root / PARITY_FILE})")
    return out


def select_backend(bundle: Bundle, name: str = "auto", precision: str = "fp32", threads: int = 0) -> Selection:
    """Open backend `name`, or for `auto` the fastest usable one; BackendUnavailable lists every reason."""
    if name != "auto":
        return Selection(open_for_bundle(bundle, name, precision, threads), f"{name} (asked for)")
    rejected: dict[str, str] = {}
    try:
        trt = open_for_bundle(bundle, "tensorrt", precision)
        return Selection(trt, "tensorrt: an engine built for this GPU is in the bundle")
    except (BackendUnavailable, BundleError, FileNotFoundError, RuntimeError) as exc:
        rejected["tensorrt"] = str(exc)
    unfaithful = parity_rejections(bundle, precision)
    rejected.update(unfaithful)
    candidates = tuple(c for c in ONNX_CPU_BACKENDS if c not in unfaithful)
    measured = {k.split("/")[0]: v for k, v in measured_latencies(bundle.manifest).items()
                if k.split("/")[1] == precision and k.endswith("/cpu") and k.split("/")[0] in candidates}
    if measured:
        for cand in sorted(measured, key=measured.get):
            try:
                be = open_for_bundle(bundle, cand, precision, threads)
            except (BackendUnavailable, BundleError, FileNotFoundError) as exc:
                rejected[cand] = str(exc)
                continue
            why = ", ".join(f"{k} {v:.1f} ms" for k, v in sorted(measured.items(), key=lambda kv: kv[1]))
            return Selection(be, f"{cand}: fastest in this machine's `edgecalc bench` ({why})", measured, rejected)
    timings: dict[str, float] = {}
    best: InferenceBackend | None = None
    for cand in candidates:
        try:
            be = open_for_bundle(bundle, cand, precision, threads)
        except (BackendUnavailable, BundleError, FileNotFoundError) as exc:
            rejected[cand] = str(exc)
            continue
        timings[cand] = _time_backend(be, bundle.input_size)
        if best is None or timings[cand] < timings[best.name]:
            if best is not None:
                best.close()
            best = be
        else:
            be.close()
    if best is None:
        raise BackendUnavailable("no backend can run this bundle here: "
                                 + "; ".join(f"{k}: {v}" for k, v in rejected.items()))
    why = ", ".join(f"{k} {v:.1f} ms" for k, v in timings.items())
    return Selection(best, f"{best.name}: fastest measured here ({why})", timings, rejected)
