"""OpenVINO on the CPU: usually the fastest engine on Intel/AMD carts (fp32, Q/DQ int8, bf16)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgecalc.runtime.engine.backends.base import BackendUnavailable, InferenceBackend, as_input_batch
from edgecalc.runtime.engine.backends.signal_stack import keeping_signal_stack
from edgecalc.runtime.engine.bundle import BundleError, check_onnx_file


class OpenVinoBackend(InferenceBackend):
    """An OpenVINO compiled model read straight from the bundle's ONNX file.

    hint "LATENCY" tunes streams for one request at a time (the live loop); threads=0 lets
    OpenVINO choose. OpenVINO silently computes in bf16 on CPUs with AMX / AVX512-BF16 unless told
    otherwise, so float32 is asked for explicitly; `inference_precision="bf16"` opts in to bf16.

    Outputs are named by position with the names the ONNX file's graph declares (``onnx_io_names``):
    a compiled output's ``get_any_name()`` is only the first of its tensor names, and OpenVINO adds
    names when it folds an ``Identity`` (an output ``alpha`` fed by one came back as ``a_internal``).
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
        check_onnx_file(path)  # its external data, if any, must lie beside it: checked before OpenVINO reads
        # OpenVINO's CPU plugin and each compiled model swap in a signal stack of their own, which they unmap
        # when freed: freed out of order, they would leave this thread's stack unmapped (signal_stack.py)
        with keeping_signal_stack():
            core = ov.Core()
            if device not in core.available_devices:
                raise BackendUnavailable(f"OpenVINO device {device} not available (have {core.available_devices})")
            config: dict[str, object] = {"PERFORMANCE_HINT": "LATENCY"}
            if threads:
                config["INFERENCE_NUM_THREADS"] = int(threads)
            config["INFERENCE_PRECISION_HINT"] = inference_precision or "f32"
            try:
                self.compiled = core.compile_model(core.read_model(str(path)), device, config)
            except (RuntimeError, ValueError) as exc:  # malformed models: RuntimeError; a name that is not UTF-8: UnicodeDecodeError
                raise BundleError(f"OpenVINO cannot load {path}: {exc}") from exc
            self.request = self.compiled.create_infer_request()
        self.on_gpu = device.upper().startswith("GPU")
        self.precision = inference_precision or precision
        inputs, outputs = onnx_io_names(path)
        if len(outputs) != len(self.compiled.outputs) or len(inputs) != len(self.compiled.inputs):
            raise BundleError(f"OpenVINO compiled {path} to {len(self.compiled.inputs)} input(s) and "
                              f"{len(self.compiled.outputs)} output(s), but its ONNX graph declares inputs "
                              f"{list(inputs)} and outputs {list(outputs)}")
        self.input_name, self.output_names = inputs[0], outputs

    def infer(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        self.require_open()
        res = self.request.infer({0: as_input_batch(batch)})
        return {name: np.asarray(res[i], dtype=np.float32) for i, name in enumerate(self.output_names)}

    def close(self) -> None:
        # the request holds the compiled model, which holds the plugin's weights and thread pool: dropping
        # both lets OpenVINO free them now instead of whenever the backend object is collected
        self.request = None
        self.compiled = None
        super().close()


def cpu_devices_and_capabilities() -> tuple[list[str], list[str]]:
    """(OpenVINO's devices, its CPU's ``OPTIMIZATION_CAPABILITIES``), under the signal-stack guard (loading
    the plugin swaps in a stack it unmaps later). Raises what OpenVINO raises; ImportError without it."""
    import openvino as ov

    with keeping_signal_stack():
        core = ov.Core()
        devices = list(core.available_devices)
        caps = list(core.get_property("CPU", "OPTIMIZATION_CAPABILITIES")) if "CPU" in devices else []
    return devices, caps


def onnx_io_names(path: Path) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(inputs, outputs): the names an ONNX file's graph declares, in its order, read with ``onnx``.

    OpenVINO keeps that order (compiled output ``i`` is graph output ``i``), so these name its outputs
    by position. Initializers listed among the inputs (older exporters) are not inputs.
    """
    try:
        import onnx
    except ImportError as exc:
        raise BackendUnavailable(f"the openvino backend reads output names with onnx, which is not installed "
                                 f"(pip install onnx): {exc}") from exc
    try:
        graph = onnx.load(str(path), load_external_data=False).graph
    except Exception as exc:  # noqa: BLE001 - onnx raises protobuf's DecodeError and its own kin
        raise BundleError(f"cannot read the graph's input and output names of {path}: {exc}") from exc
    constants = {t.name for t in graph.initializer}
    inputs = tuple(v.name for v in graph.input if v.name not in constants)
    outputs = tuple(v.name for v in graph.output)
    if not inputs or not outputs or len(set(outputs)) != len(outputs):
        raise BundleError(f"{path}: its ONNX graph declares inputs {list(inputs)} and outputs {list(outputs)}; "
                          "the backend needs an input and distinct output names")
    return inputs, outputs
