"""Open the right inference engine for a bundle: named, or `auto` = the fastest usable one here.

`auto` prefers a TensorRT engine built for this GPU; otherwise it takes the CPU engine that
`edgecalc bench` measured fastest on this machine for this bundle (cached per machine), and without
such a measurement it times the CPU engines that can load the bundle's model at the requested
precision (a few warm runs each on a blank input) and keeps the fastest. The choice and the timings are returned so the runtime can print why.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from edgecalc.runtime.engine.backends import BackendUnavailable, InferenceBackend, open_backend
from edgecalc.runtime.engine.bundle import Bundle, BundleError
from edgecalc.runtime.engine.formats import BACKEND_CHOICES, ONNX_CPU_BACKENDS, precisions_of
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
    measured = {k.split("/")[0]: v for k, v in measured_latencies(bundle.manifest).items()
                if k.split("/")[1] == precision and k.endswith("/cpu") and k.split("/")[0] in ONNX_CPU_BACKENDS}
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
    for cand in ONNX_CPU_BACKENDS:
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
