"""TensorRT engines (10.x and 11.x) with cuda-python buffers and one CUDA stream.

The shape of NVIDIA's `common_runtime.py`: device buffers allocated once for the profile's largest
batch, pinned host buffers, `set_input_shape` + `set_tensor_address` per call, `execute_async_v3`
on our stream, copies back, one synchronise. CUDA events around the execute give the GPU compute
time the way trtexec reports it. cuda-python is used rather than pycuda (design.md §4); its module
moved to `cuda.bindings.runtime` in 12.6+/13.x, with `cuda.cudart` as the older spelling.

Nothing here can run without an NVIDIA GPU and the TensorRT wheel; everything imports lazily, and a
missing piece raises BackendUnavailable naming it.
"""

from __future__ import annotations

import ctypes
from pathlib import Path
from typing import Any

import numpy as np

from edgecalc.runtime.engine.backends.base import BackendUnavailable, InferenceBackend, as_input_batch


def import_cudart() -> Any:
    """cuda-python's runtime module under either of its names, or BackendUnavailable."""
    try:
        from cuda.bindings import runtime as cudart  # cuda-python >= 12.6 / 13.x
        return cudart
    except ImportError:
        pass
    try:
        from cuda import cudart  # older cuda-python
        return cudart
    except ImportError as exc:
        raise BackendUnavailable(f"cuda-python is not installed (pip install 'edgecalc[trt]'): {exc}") from exc


def import_tensorrt() -> Any:
    try:
        import tensorrt as trt
    except ImportError as exc:
        raise BackendUnavailable(f"tensorrt is not installed (pip install 'edgecalc[trt]'): {exc}") from exc
    return trt


def cuda_check(result: tuple) -> Any:
    """Unpack a cuda-python call's (err, *values), raising on any error code."""
    err, *values = result if isinstance(result, tuple) else (result,)
    code = int(err) if not hasattr(err, "value") else int(err.value)
    if code != 0:
        raise RuntimeError(f"CUDA error {err}")
    if not values:
        return None
    return values[0] if len(values) == 1 else tuple(values)


class _Binding:
    """One I/O tensor: name, dtype, pinned host array and device pointer sized for max batch."""

    def __init__(self, cudart: Any, name: str, dtype: np.dtype, max_shape: tuple[int, ...], is_input: bool) -> None:
        self.name, self.dtype, self.is_input = name, np.dtype(dtype), is_input
        self.max_shape = max_shape
        count = int(np.prod(max_shape))
        self.nbytes = count * self.dtype.itemsize
        self.host_ptr = cuda_check(cudart.cudaMallocHost(self.nbytes))
        ctype = np.ctypeslib.as_ctypes_type(self.dtype)
        self.host = np.ctypeslib.as_array(ctypes.cast(self.host_ptr, ctypes.POINTER(ctype)), (count,))
        self.device = cuda_check(cudart.cudaMalloc(self.nbytes))


class TensorRTBackend(InferenceBackend):
    """A deserialised TensorRT engine; `infer` handles any batch within the optimisation profile."""

    name = "tensorrt"
    on_gpu = True

    def __init__(self, engine_path: str | Path, *, precision: str = "fp16") -> None:
        trt = import_tensorrt()
        cudart = import_cudart()
        path = Path(engine_path)
        if not path.is_file():
            raise FileNotFoundError(f"TensorRT engine {path} not found")
        count = cuda_check(cudart.cudaGetDeviceCount())
        if not count:
            raise BackendUnavailable("no CUDA GPU visible to cuda-python")
        self._trt, self._cudart = trt, cudart
        self.logger = trt.Logger(trt.Logger.WARNING)
        self.runtime = trt.Runtime(self.logger)
        self.engine = self.runtime.deserialize_cuda_engine(path.read_bytes())
        if self.engine is None:
            raise RuntimeError(f"TensorRT could not deserialise {path}: built by another TensorRT version or "
                               "for another GPU? Rebuild it with `edgecalc export ... --engine` on this machine.")
        self.context = self.engine.create_execution_context()
        self.stream = cuda_check(cudart.cudaStreamCreate())
        self.ev_start = cuda_check(cudart.cudaEventCreate())
        self.ev_end = cuda_check(cudart.cudaEventCreate())
        self.precision = precision
        self.bindings: dict[str, _Binding] = {}
        inputs, outputs = [], []
        for i in range(self.engine.num_io_tensors):
            name = self.engine.get_tensor_name(i)
            is_input = self.engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT
            dtype = trt.nptype(self.engine.get_tensor_dtype(name))
            (inputs if is_input else outputs).append((name, dtype))
        if len(inputs) != 1:
            raise RuntimeError(f"engine {path} has {len(inputs)} inputs; edgecalc engines have exactly one")
        self.input_name = inputs[0][0]
        self.max_input_shape = tuple(self.engine.get_tensor_profile_shape(self.input_name, 0)[2])
        self.min_batch = int(self.engine.get_tensor_profile_shape(self.input_name, 0)[0][0])
        self.context.set_input_shape(self.input_name, self.max_input_shape)
        self.bindings[self.input_name] = _Binding(cudart, self.input_name, inputs[0][1], self.max_input_shape, True)
        for name, dtype in outputs:
            shape = tuple(self.context.get_tensor_shape(name))
            self.bindings[name] = _Binding(cudart, name, dtype, shape, False)
        self.output_names = tuple(n for n, _ in outputs)
        self.last_gpu_ms: float | None = None

    def infer(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        self.require_open()
        cudart = self._cudart
        x = as_input_batch(batch)
        if not (self.min_batch <= x.shape[0] <= self.max_input_shape[0]) or x.shape[1:] != self.max_input_shape[1:]:
            raise ValueError(f"batch of shape {x.shape} is outside the engine's profile "
                             f"(batch {self.min_batch}..{self.max_input_shape[0]}, item {self.max_input_shape[1:]})")
        inp = self.bindings[self.input_name]
        n = x.size
        inp.host[:n] = x.astype(inp.dtype, copy=False).ravel()
        self.context.set_input_shape(self.input_name, x.shape)
        h2d, d2h = cudart.cudaMemcpyKind.cudaMemcpyHostToDevice, cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost
        cuda_check(cudart.cudaMemcpyAsync(inp.device, inp.host_ptr, n * inp.dtype.itemsize, h2d, self.stream))
        for b in self.bindings.values():
            self.context.set_tensor_address(b.name, int(b.device))
        cuda_check(cudart.cudaEventRecord(self.ev_start, self.stream))
        if not self.context.execute_async_v3(self.stream):
            raise RuntimeError("TensorRT execute_async_v3 failed")
        cuda_check(cudart.cudaEventRecord(self.ev_end, self.stream))
        shapes = {}
        for name in self.output_names:
            b = self.bindings[name]
            shape = tuple(self.context.get_tensor_shape(name))
            shapes[name] = shape
            nbytes = int(np.prod(shape)) * b.dtype.itemsize
            cuda_check(cudart.cudaMemcpyAsync(b.host_ptr, b.device, nbytes, d2h, self.stream))
        cuda_check(cudart.cudaStreamSynchronize(self.stream))
        self.last_gpu_ms = float(cuda_check(cudart.cudaEventElapsedTime(self.ev_start, self.ev_end)))
        return {name: self.bindings[name].host[: int(np.prod(s))].reshape(s).astype(np.float32)
                for name, s in shapes.items()}

    def close(self) -> None:
        cudart = getattr(self, "_cudart", None)
        if cudart is None:
            super().close()
            return
        for b in getattr(self, "bindings", {}).values():
            cudart.cudaFree(b.device)
            cudart.cudaFreeHost(b.host_ptr)
        self.bindings = {}
        for ev in (getattr(self, "ev_start", None), getattr(self, "ev_end", None)):
            if ev is not None:
                cudart.cudaEventDestroy(ev)
        if getattr(self, "stream", None) is not None:
            cudart.cudaStreamDestroy(self.stream)
            self.stream = None
        self._cudart = None
        super().close()
