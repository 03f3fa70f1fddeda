"""TensorRT engines from the bundle's ONNX models, with the TensorRT Python API (10.x and 11.x).

Precision comes from the ONNX file (design notes section 4): TensorRT 11 networks are always
strongly typed and have no FP16/INT8 builder flags; on TensorRT 10 the same graphs build either
strongly typed (FP16 graph) or with ``BuilderFlag.INT8`` (Q/DQ graph) / ``BuilderFlag.FP16``.
``tensorrt`` and ``cuda-python`` are imported lazily: without them, or without a GPU,
``build_engine`` raises ``EngineUnavailable`` naming what is missing.

What ran where: none of this module's GPU path has run on the machine the kit was written on (no
GPU, no TensorRT wheel); its version checks, optimisation-profile shapes and missing-piece messages
are unit-tested (tests/test_export_tensorrt.py). See docs/export.md.
"""

from __future__ import annotations

import importlib
import shutil
from dataclasses import dataclass
from pathlib import Path

from edgecalc.model.csagnet import INPUT_NAME
from edgecalc.runtime.engine.backends.base import BackendUnavailable
from edgecalc.runtime.engine.backends.tensorrt_backend import import_cudart
from edgecalc.runtime.engine.bundle import EngineTarget, current_engine_target


class EngineUnavailable(RuntimeError):
    """TensorRT, cuda-python or a GPU is missing; the message names which."""


def trt_major(version: str) -> int:
    """Major version of a TensorRT version string ("10.13.3.9" -> 10)."""
    try:
        return int(version.split(".")[0])
    except ValueError:
        raise ValueError(f"cannot read a TensorRT version from {version!r}") from None


def profile_shapes(input_size: int, channels: int, max_batch: int, opt_batch: int | None = None
                   ) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
    """(min, opt, max) input shapes of the optimisation profile: batch 1..max_batch, opt = min(4, max)."""
    if max_batch < 1:
        raise ValueError(f"--max-batch must be >= 1, got {max_batch}")
    opt = opt_batch if opt_batch is not None else min(4, max_batch)
    if not 1 <= opt <= max_batch:
        raise ValueError(f"opt batch {opt} is not within 1..{max_batch}")
    shape = (channels, input_size, input_size)
    return (1, *shape), (opt, *shape), (max_batch, *shape)


def builder_flag_names(trt_version: str, precision: str) -> list[str]:
    """Builder flags to set: none on TensorRT 11 (strongly typed); FP16 / INT8 on 10.x for those graphs."""
    if trt_major(trt_version) >= 11 or precision == "fp32":
        return []
    return {"fp16": ["FP16"], "int8": ["INT8", "FP16"]}[precision]


def network_flags(trt, trt_version: str, precision: str) -> int:
    """``create_network`` flags: strongly typed on 10.x for FP16 graphs; 0 on 11 (always strongly typed).

    INT8 Q/DQ graphs on 10.x build weakly typed with the INT8 flag (the documented explicit-quantization
    path there); FP16 graphs on 10.x build strongly typed so the graph's float32 islands stay float32.
    """
    if trt_major(trt_version) >= 11:
        return 0
    if precision == "fp16":
        return 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    return 0


def missing_pieces() -> list[str]:
    """What stops an engine build here ([] when tensorrt, cuda-python and a GPU are all present)."""
    missing = []
    try:
        importlib.import_module("tensorrt")
    except ImportError as exc:
        missing.append(f"the tensorrt Python package ({exc}; pip install 'edgecalc[trt]')")
    try:
        cudart = import_cudart()  # cuda.bindings.runtime, or the older cuda.cudart
    except BackendUnavailable as exc:
        missing.append(str(exc))
        cudart = None
    if cudart is not None:
        try:
            err, count = cudart.cudaGetDeviceCount()
        except Exception as exc:  # noqa: BLE001 - a missing driver raises here
            err, count = exc, 0
        if not (isinstance(err, int) or hasattr(err, "__int__")) or int(err) != 0 or count < 1:
            missing.append(f"a CUDA GPU (cudaGetDeviceCount: {err}, {count} devices)")
    elif shutil.which("nvidia-smi") is None:
        missing.append("a CUDA GPU (nvidia-smi not found)")
    return missing


def current_target() -> EngineTarget:
    """This machine's GPU name, compute capability and TensorRT version (EngineUnavailable if absent)."""
    missing = missing_pieces()
    if missing:
        raise EngineUnavailable("cannot build a TensorRT engine here: missing " + "; ".join(missing))
    target = current_engine_target()
    if target is None:
        raise EngineUnavailable("cudaGetDeviceProperties found no usable GPU")
    return target


@dataclass
class EngineBuild:
    path: Path
    target: EngineTarget
    timing_cache: Path
    flags: list[str]
    profile: tuple[tuple[int, ...], ...]


def build_engine(onnx_path: str | Path, engine_path: str | Path, precision: str, input_size: int, channels: int,
                 max_batch: int, timing_cache: str | Path, workspace_mb: int = 2048) -> EngineBuild:
    """Parse ``onnx_path``, build a serialized engine for batch 1..``max_batch`` and write it.

    The timing cache is loaded from and saved back to ``timing_cache`` (same GPU + TensorRT only:
    TensorRT ignores a mismatching cache with a warning).
    """
    target = current_target()
    import tensorrt as trt

    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(network_flags(trt, target.tensorrt_version, precision))
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise RuntimeError(f"TensorRT cannot parse {onnx_path}: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_mb << 20)
    flags = builder_flag_names(target.tensorrt_version, precision)
    for flag in flags:
        config.set_flag(getattr(trt.BuilderFlag, flag))
    cache_file = Path(timing_cache)
    cache = config.create_timing_cache(cache_file.read_bytes() if cache_file.is_file() else b"")
    config.set_timing_cache(cache, ignore_mismatch=False)
    shapes = profile_shapes(input_size, channels, max_batch)
    profile = builder.create_optimization_profile()
    profile.set_shape(INPUT_NAME, *shapes)
    config.add_optimization_profile(profile)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise RuntimeError(f"TensorRT failed to build an engine from {onnx_path} (see the log above)")
    Path(engine_path).write_bytes(bytes(serialized))
    cache_file.parent.mkdir(parents=True, exist_ok=True)
    cache_file.write_bytes(bytes(config.get_timing_cache().serialize()))
    return EngineBuild(Path(engine_path), target, cache_file, flags, shapes)

