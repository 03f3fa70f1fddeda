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

    Outputs are named by position, with the names the ONNX graph declares in that order
    (``onnx_tensor_names``): a compiled output's ``get_any_name()`` is only the lexicographically first
    of its tensor names, and OpenVINO adds names when it folds an ``Identity`` or shares one tensor
    between two outputs (measured with OpenVINO 2026.4: an output ``alpha`` fed by an Identity came back
    as ``a_internal``), so the name would not be the manifest's.
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
        inputs, outputs = onnx_tensor_names(ov, path)
        if len(outputs) != len(self.compiled.outputs) or len(set(outputs)) != len(outputs):
            raise BundleError(f"OpenVINO compiled {path} to {len(self.compiled.outputs)} output(s), but the ONNX "
                              f"graph declares {list(outputs)}")
        self.input_name = inputs[0] if inputs else self.compiled.inputs[0].get_any_name()
        self.output_names = outputs

    def infer(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        res = self.request.infer({0: as_input_batch(batch)})
        return {name: np.asarray(res[i], dtype=np.float32) for i, name in enumerate(self.output_names)}


def onnx_tensor_names(ov, path: Path) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(inputs, outputs): the tensor names an ONNX file's graph declares, in its order (OpenVINO's ONNX frontend).

    OpenVINO keeps the graph's output order (output ``i`` of the compiled model is graph output ``i``),
    so these name the outputs by position. The frontend's failures are not RuntimeErrors
    (``GeneralFailure`` and its kin derive from Exception), hence the broad catch.
    """
    try:
        model = ov.frontend.FrontEndManager().load_by_framework("onnx").load(str(path))
        names = [tuple(place.get_names()) for place in (*model.get_inputs(), *model.get_outputs())]
    except Exception as exc:  # noqa: BLE001 - openvino.frontend's own exception types
        raise BundleError(f"OpenVINO cannot read the tensor names of {path}: {exc}") from exc
    n_in = len(model.get_inputs())
    if any(len(n) != 1 for n in names):
        raise BundleError(f"{path}: an ONNX input or output has no single tensor name ({names})")
    flat = tuple(n[0] for n in names)
    return flat[:n_in], flat[n_in:]
