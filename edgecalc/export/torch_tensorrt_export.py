"""``edgecalc export --via torch-tensorrt``: a TorchScript module with the TensorRT engine embedded.

For LibTorch (C++) deployments on the cart: ``torch::jit::load("model.trt.ts")`` with the
torch-tensorrt runtime library linked runs the engine without Python and without ONNX. The model is
compiled by torch-tensorrt's dynamo front-end (``torch_tensorrt.compile(ir="dynamo")``) with an
input of batch 1..N, then saved with ``torch_tensorrt.save(..., output_format="torchscript")``.

Precision, as TensorRT 11 wants it (design notes section 4): the network is strongly typed
(``use_explicit_typing=True``); ``fp16`` asks torch-tensorrt's rule-based autocast to lower the
convolutions and keep the sensitive ops (sigmoid, softmax, reductions) in float32. On older
torch-tensorrt releases without autocast, ``enabled_precisions={float16, float32}`` is the
documented equivalent. INT8 is not offered on this route: the kit's INT8 is the calibrated Q/DQ ONNX
graph (``--precision int8``), which TensorRT builds directly.

``torch_tensorrt`` is its own extra (``pip install 'edgecalc[torch-trt]'``; 2.14 pins torch 2.14
and TensorRT 11.1), imported lazily: without it, or without a GPU, ``compile_torch_tensorrt`` raises
``TorchTensorRTUnavailable`` naming what is missing, and the rest of the bundle is still written.

What ran where: the GPU path has not run on the machine the kit was written on (no GPU, no
torch-tensorrt wheel); the argument building, missing-piece messages and the export's handling of
the refusal are unit-tested (tests/test_export_torch_tensorrt.py). See docs/export.md.
"""

from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgecalc.export.choices import VIA_CHOICES
from edgecalc.export.tensorrt_engine import profile_shapes
from edgecalc.runtime.engine.bundle import EngineTarget

#: The bundle file the compiled module is saved to.
ARTIFACT_NAME = "model.trt.ts"
#: Precisions this route compiles (INT8 goes through the Q/DQ ONNX model).
PRECISIONS = ("fp32", "fp16")
INSTALL_HINT = "pip install 'edgecalc[torch-trt]' (torch-tensorrt 2.14 pins torch 2.14 and TensorRT 11.1)"


class TorchTensorRTUnavailable(RuntimeError):
    """torch-tensorrt, CUDA or a GPU is missing, or the precision is not offered; the message says which."""


def missing_pieces(torch_module: Any = None, importer: Any = importlib.import_module) -> list[str]:
    """What stops a torch-tensorrt compile here ([] when torch_tensorrt and a CUDA GPU are present)."""
    missing = []
    try:
        importer("torch_tensorrt")
    except Exception as exc:  # noqa: BLE001 - a broken install (wrong torch) raises more than ImportError
        missing.append(f"the torch_tensorrt package ({type(exc).__name__}: {exc}; {INSTALL_HINT})")
    torch = torch_module if torch_module is not None else importer("torch")
    if not torch.cuda.is_available():
        missing.append(f"a CUDA GPU visible to torch (torch {torch.__version__}, "
                       f"torch.version.cuda = {torch.version.cuda})")
    return missing


def check_precision(precision: str) -> None:
    """Refuse, before any work, a precision this route does not compile."""
    if precision not in PRECISIONS:
        raise TorchTensorRTUnavailable(
            f"--via torch-tensorrt compiles {' or '.join(PRECISIONS)}, not {precision}: INT8 for TensorRT is the "
            "calibrated Q/DQ ONNX model (--precision int8 --engine builds it into an engine)")


def compile_kwargs(compile_params: set[str], precision: str, torch_module: Any) -> dict[str, Any]:
    """The precision arguments of ``torch_tensorrt.compile`` for the installed release.

    ``compile_params``: the keyword names the installed ``torch_tensorrt.dynamo.compile`` accepts.
    New releases (strong typing, rule-based autocast): ``use_explicit_typing`` and, for fp16,
    ``enable_autocast`` + ``low_precision_type``. Older ones: ``enabled_precisions``.
    """
    check_precision(precision)
    torch = torch_module
    if "enable_autocast" in compile_params and "use_explicit_typing" in compile_params:
        kw: dict[str, Any] = {"use_explicit_typing": True}
        if precision == "fp16":
            kw.update(enable_autocast=True, low_precision_type=torch.float16)
        return kw
    if precision == "fp16":
        return {"enabled_precisions": {torch.float16, torch.float32}}
    return {"enabled_precisions": {torch.float32}}


def input_spec(torch_tensorrt: Any, torch_module: Any, input_size: int, channels: int, max_batch: int) -> Any:
    """One ``torch_tensorrt.Input`` for batch 1..max_batch (the same profile as the ONNX engine's)."""
    lo, opt, hi = profile_shapes(input_size, channels, max_batch)
    return torch_tensorrt.Input(min_shape=lo, opt_shape=opt, max_shape=hi, dtype=torch_module.float32, name="image")


def _accepted(fn: Any) -> set[str]:
    try:
        return set(inspect.signature(fn).parameters)
    except (TypeError, ValueError):
        return set()


@dataclass
class TorchTensorRTBuild:
    path: Path
    target: EngineTarget
    torch_tensorrt_version: str
    settings: dict[str, str]


def compile_torch_tensorrt(wrapper: Any, out_path: str | Path, precision: str, input_size: int, channels: int,
                           max_batch: int) -> TorchTensorRTBuild:
    """Compile ``wrapper`` (the export wrapper: image -> mask, score, attention) and save it as TorchScript."""
    check_precision(precision)
    import torch

    missing = missing_pieces(torch)
    if missing:
        raise TorchTensorRTUnavailable("cannot compile with torch-tensorrt here: missing " + "; ".join(missing))
    import torch_tensorrt

    model = wrapper.eval().cuda()
    spec = input_spec(torch_tensorrt, torch, input_size, channels, max_batch)
    kw = compile_kwargs(_accepted(torch_tensorrt.dynamo.compile), precision, torch)
    kw.setdefault("min_block_size", 1)
    with torch.no_grad():
        compiled = torch_tensorrt.compile(model, ir="dynamo", inputs=[spec], **kw)
    example = torch.rand((min(2, max_batch), channels, input_size, input_size), device="cuda")
    save_params = _accepted(torch_tensorrt.save)
    inputs_kw = "arg_inputs" if "arg_inputs" in save_params else "inputs"
    torch_tensorrt.save(compiled, str(out_path), output_format="torchscript", **{inputs_kw: [example]})
    props = torch.cuda.get_device_properties(0)
    trt_version = _tensorrt_version()
    target = EngineTarget(props.name, f"{props.major}.{props.minor}", trt_version)
    settings = {k: (sorted(str(d) for d in v) if isinstance(v, set) else str(v)) for k, v in kw.items()}
    return TorchTensorRTBuild(Path(out_path), target, str(torch_tensorrt.__version__), settings)


def _tensorrt_version() -> str:
    try:
        return str(importlib.import_module("tensorrt").__version__)
    except ImportError:
        return "unknown (tensorrt not importable beside torch_tensorrt)"


def load_runner(path: str | Path):
    """A numpy -> [mask, score, attention] runner of the saved module on the GPU (for the parity report)."""
    import numpy as np
    import torch
    import torch_tensorrt  # noqa: F401 - registers the TensorRT engine class TorchScript needs to load the file

    module = torch.jit.load(str(path)).cuda().eval()

    def run(x: np.ndarray) -> list[np.ndarray]:
        with torch.no_grad():
            outs = module(torch.from_numpy(x).cuda())
        return [t.float().cpu().numpy() for t in outs]

    return run
