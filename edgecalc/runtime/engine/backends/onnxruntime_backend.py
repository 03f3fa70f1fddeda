"""onnxruntime: the portable CPU engine (and CUDA / TensorRT providers where installed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgecalc.runtime.engine.backends.base import BackendUnavailable, InferenceBackend, as_input_batch
from edgecalc.runtime.engine.bundle import BundleError, check_onnx_file

#: Preferred order when `providers` is not given; the first available one wins.
PROVIDER_ORDER = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")


class OnnxRuntimeBackend(InferenceBackend):
    """An onnxruntime InferenceSession over one ONNX file (fp32, fp16 or Q/DQ int8).

    threads: intra-op threads (0 = onnxruntime's default, one per physical core). Graph
    optimisation is ORT_ENABLE_ALL, which fuses Q/DQ pairs into integer kernels on the CPU.
    """

    name = "onnxruntime"

    def __init__(self, model_path: str | Path, *, precision: str = "fp32", threads: int = 0,
                 providers: list[str] | None = None, gpu: bool = False) -> None:
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise BackendUnavailable(f"onnxruntime is not installed ({exc})") from exc
        path = Path(model_path)
        if not path.is_file():
            raise FileNotFoundError(f"ONNX model {path} not found")
        available = ort.get_available_providers()
        if providers is None:
            wanted = PROVIDER_ORDER if gpu else ("CPUExecutionProvider",)
            providers = [p for p in wanted if p in available]
        missing = [p for p in providers if p not in available]
        if missing:
            raise BackendUnavailable(f"onnxruntime provider(s) {missing} not available (have {available})")
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        if threads:
            opts.intra_op_num_threads = int(threads)
            opts.inter_op_num_threads = 1
        check_onnx_file(path)  # its external data, if any, must lie beside it: checked before onnxruntime reads
        try:
            self.session = ort.InferenceSession(str(path), sess_options=opts, providers=providers)
        except Exception as exc:  # noqa: BLE001 - onnxruntime's own exception types (Fail, InvalidProtobuf, ...)
            raise BundleError(f"onnxruntime cannot load {path}: {exc}") from exc
        self.providers = self.session.get_providers()
        self.on_gpu = self.providers[0] in ("CUDAExecutionProvider", "TensorrtExecutionProvider")
        self.precision = precision
        self.input_name = self.session.get_inputs()[0].name
        self.output_names = tuple(o.name for o in self.session.get_outputs())
        self.model_path = path

    def infer(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        self.require_open()
        outs = self.session.run(list(self.output_names), {self.input_name: as_input_batch(batch)})
        return {n: np.asarray(o, dtype=np.float32) for n, o in zip(self.output_names, outs)}

    def close(self) -> None:
        self.session = None  # the session owns the model's weights and its thread pools
        super().close()

    def describe(self) -> str:
        return f"onnxruntime {self.precision} ({self.providers[0]})"
