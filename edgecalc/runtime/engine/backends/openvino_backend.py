"""OpenVINO on the CPU: usually the fastest engine on Intel/AMD carts (fp32, Q/DQ int8, bf16)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgecalc.runtime.engine.backends.base import BackendUnavailable, InferenceBackend, as_input_batch
from edgecalc.runtime.engine.bundle import BundleError, check_onnx_file


class OpenVinoBackend(InferenceBackend):
    """An OpenVINO compiled model read straight from the bundle's ONNX file.

    hint "LATENCY" tunes streams for one request at a time (the live loop); threads=0 lets
    OpenVINO choose. OpenVINO silently computes in bf16 on CPUs with AMX / AVX512-BF16 unless told
    otherwise, so float32 is asked for explicitly; `inference_precision="bf16"` opts in to bf16.
    """

    name = "openvino"

    def __init__(self, model_path: str | Path, *, precision: str = "fp32", threads: int = 0,
                 device: str = "CPU", inference_precision: str | None = None) -> None:
        try:
            import openvino as ov
        except ImportError as exc:
            raise BackendUnavailable(f"openvino is not installed (pip install 'edgecalc[openvino]'): {exc}") from exc
        path = Path(model_path)
        if not path.is_file():
            raise FileNotFoundError(f"ONNX model {path} not found")
        core = ov.Core()
        if device not in core.available_devices:
            raise BackendUnavailable(f"OpenVINO device {device} not available (have {core.available_devices})")
        config: dict[str, object] = {"PERFORMANCE_HINT": "LATENCY"}
        if threads:
            config["INFERENCE_NUM_THREADS"] = int(threads)
        config["INFERENCE_PRECISION_HINT"] = inference_precision or "f32"
        check_onnx_file(path)  # its external data, if any, must lie beside it: checked before OpenVINO reads
        try:
            self.compiled = core.compile_model(core.read_model(str(path)), device, config)
        except (RuntimeError, ValueError) as exc:  # malformed models: RuntimeError; a name that is not UTF-8: UnicodeDecodeError
            raise BundleError(f"OpenVINO cannot load {path}: {exc}") from exc
        self.on_gpu = device.upper().startswith("GPU")
        self.request = self.compiled.create_infer_request()
        self.precision = inference_precision or precision
        self.input_name = self.compiled.inputs[0].get_any_name()
        self.output_names = tuple(o.get_any_name() for o in self.compiled.outputs)

    def infer(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        res = self.request.infer({0: as_input_batch(batch)})
        return {o.get_any_name(): np.asarray(res[o], dtype=np.float32) for o in self.compiled.outputs}
