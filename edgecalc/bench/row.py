"""One benchmark row, run in its own process: load, warm up, time, measure accuracy, report JSON.

`python -m edgecalc.bench.row SPEC.json` reads the row's spec and the shared inputs (an .npz written
by the parent, loaded without pickle), and writes `RESULT.json` + `RESULT.npz` (the row's scores and
binary masks, so the parent can count decisions that agree with the reference row). Running each
row in a fresh process keeps its peak RSS, its thread pool and its warm caches its own.
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from edgecalc.bench.memory import peak_rss_mb
from edgecalc.bench.timing import LatencyStats, time_calls
from edgecalc.data.preprocess import preprocess
from edgecalc.runtime.engine.formats import formats_of

OUTPUTS = ("mask", "score", "attention")


@dataclass
class RowSpec:
    """What one row runs. `model_path` is a bundle artifact, or the weights for the pytorch rows."""

    backend: str
    precision: str
    device: str
    model_path: str
    data_npz: str
    result_json: str
    result_npz: str
    batches: list[int] = field(default_factory=lambda: [1])
    n: int = 200
    warmup: int = 20
    threads: int = 0
    input_size: int = 192
    threshold: float = 0.5
    options: dict = field(default_factory=dict)


Infer = Callable[[np.ndarray], list[np.ndarray]]


def _pytorch_runner(spec: RowSpec) -> tuple[Infer, Callable[[], float | None]]:
    """Eager PyTorch (optionally CUDA fp16 / CUDA graphs); second value = last GPU time (ms) or None."""
    import torch

    from edgecalc.model.csagnet import ExportWrapper
    from edgecalc.model.weights import load_model

    if spec.threads:
        torch.set_num_threads(spec.threads)
    device = torch.device(spec.device)
    model = ExportWrapper(load_model(spec.model_path)).eval().to(device)
    dtype = torch.float16 if spec.precision == "fp16" else torch.float32
    if spec.options.get("channels_last"):
        model = model.to(memory_format=torch.channels_last)
    model = model.to(dtype)
    gpu = device.type == "cuda"
    events = (torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)) if gpu else None
    graphs: dict[int, tuple] = {}
    last = {"gpu_ms": None}

    def eager(x: np.ndarray) -> list[np.ndarray]:
        with torch.inference_mode():
            t = torch.from_numpy(x).to(device=device, dtype=dtype)
            if spec.options.get("channels_last"):
                t = t.contiguous(memory_format=torch.channels_last)
            if events:
                events[0].record()
            outs = model(t)
            if events:
                events[1].record()
            res = [o.float().cpu().numpy() for o in outs]
            if events:
                last["gpu_ms"] = events[0].elapsed_time(events[1])
            return res

    def graphed(x: np.ndarray) -> list[np.ndarray]:
        b = x.shape[0]
        if b not in graphs:
            static_in = torch.zeros(x.shape, device=device, dtype=dtype)
            s = torch.cuda.Stream()
            s.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(s), torch.inference_mode():
                for _ in range(3):
                    model(static_in)
            torch.cuda.current_stream().wait_stream(s)
            g = torch.cuda.CUDAGraph()
            with torch.cuda.graph(g), torch.inference_mode():
                static_out = model(static_in)
            graphs[b] = (g, static_in, static_out)
        g, static_in, static_out = graphs[b]
        static_in.copy_(torch.from_numpy(x).to(device=device, dtype=dtype))
        events[0].record()
        g.replay()
        events[1].record()
        res = [o.float().cpu().numpy() for o in static_out]
        last["gpu_ms"] = events[0].elapsed_time(events[1])
        return res

    return (graphed if spec.options.get("cuda_graphs") else eager), (lambda: last["gpu_ms"])


def _backend_runner(spec: RowSpec) -> tuple[Infer, Callable[[], float | None], Callable[[], None]]:
    from edgecalc.runtime.engine.backends import open_backend

    opts: dict = {}
    artifact = next((f.artifact for f in formats_of(spec.backend)), None)
    if formats_of(spec.backend, "cpu"):  # a CPU engine: it takes a thread count
        opts["threads"] = spec.threads
    if artifact in ("onnx", "engine"):  # one file per precision: the backend is told which
        opts["precision"] = spec.precision
    if spec.backend == "openvino" and spec.options.get("inference_precision"):
        opts["inference_precision"] = spec.options["inference_precision"]
    if spec.backend == "onnxruntime" and spec.device == "cuda":
        opts["gpu"] = True
    be = open_backend(spec.backend, spec.model_path, **opts)

    def infer(x: np.ndarray) -> list[np.ndarray]:
        out = be.infer(x)
        return [out[k] for k in OUTPUTS]

    return infer, (lambda: getattr(be, "last_gpu_ms", None)), be.close


def _tile(images: np.ndarray, b: int) -> np.ndarray:
    reps = int(np.ceil(b / len(images)))
    return np.ascontiguousarray(np.concatenate([images] * reps)[:b])


def run_row(spec: RowSpec) -> dict:
    """Measure one row; returns the result dict (also written to spec.result_json)."""
    data = np.load(spec.data_npz, allow_pickle=False)
    images, raw = data["images"], data["raw"]
    t0 = time.perf_counter()
    close: Callable[[], None] = lambda: None  # noqa: E731
    if spec.backend == "pytorch":
        infer, gpu_ms = _pytorch_runner(spec)
    else:
        infer, gpu_ms, close = _backend_runner(spec)
    infer(images[:1])  # first call is part of loading (graph optimisation, lazy init)
    load_ms = (time.perf_counter() - t0) * 1000.0

    model_lat: dict[str, dict] = {}
    gpu_lat: dict[str, dict] = {}
    throughput: dict[str, float] = {}
    for b in spec.batches:
        x = _tile(images, b)
        gpu_times: list[float] = []

        def call(x=x, gpu_times=gpu_times):
            infer(x)
            g = gpu_ms()
            if g is not None:
                gpu_times.append(g)

        stats = time_calls(call, spec.n, spec.warmup)
        model_lat[str(b)] = stats.to_dict()
        throughput[str(b)] = b / (stats.mean / 1000.0)
        if gpu_times:
            gpu_lat[str(b)] = LatencyStats.from_ms(gpu_times[-spec.n:]).to_dict()

    # preprocess + call + post-process, batch 1, from the raw uint8 crop as a frame grabber gives it
    i = {"k": 0}

    def e2e():
        crop = raw[i["k"] % len(raw)]
        i["k"] += 1
        outs = infer(preprocess(crop, spec.input_size)[None])
        mask = outs[0][0, 0] > spec.threshold
        _ = (mask.astype(np.uint8), float(outs[1].reshape(-1)[0]) >= spec.threshold)

    e2e_stats = time_calls(e2e, spec.n, min(spec.warmup, 5))

    # accuracy over every input, in chunks of the largest batch
    chunk = max(spec.batches)
    scores, masks = [], []
    for s in range(0, len(images), chunk):
        outs = infer(np.ascontiguousarray(images[s:s + chunk]))
        scores.append(outs[1].reshape(-1))
        masks.append(outs[0][:, 0] > spec.threshold)
    close()
    scores_a = np.concatenate(scores).astype(np.float32)
    masks_a = np.concatenate(masks).astype(bool)
    np.savez_compressed(spec.result_npz, scores=scores_a, masks=masks_a)
    result = {
        "backend": spec.backend, "precision": spec.precision, "device": spec.device, "status": "ok",
        "model_path": spec.model_path, "file_mb": _file_mb(spec.model_path), "load_ms": load_ms,
        "threads": spec.threads or "default", "cpu_count": os.cpu_count(),
        "model_latency_ms": model_lat, "e2e_latency_ms": e2e_stats.to_dict(), "throughput_ips": throughput,
        "gpu_compute_ms": gpu_lat or None, "peak_rss_mb": peak_rss_mb(), "options": spec.options,
    }
    Path(spec.result_json).write_text(json.dumps(result, indent=2))
    return result


def _file_mb(path: str) -> float | None:
    p = Path(path)
    return p.stat().st_size / 2 ** 20 if p.is_file() else None


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m edgecalc.bench.row SPEC.json", file=sys.stderr)
        return 2
    spec = RowSpec(**json.loads(Path(argv[0]).read_text()))
    run_row(spec)
    return 0


def spec_json(spec: RowSpec) -> str:
    return json.dumps(asdict(spec))


if __name__ == "__main__":
    raise SystemExit(main())
