"""The one table of inference backends x precisions: what each needs and which bundle file it runs.

Ultralytics drives export, benchmark and inference from one ``export_formats()`` table; this is
ours. ``doctor`` (what runs here), ``bench`` (which rows to plan), engine selection, the bundle
reader, export and the CLI's choices all read it, so a backend or precision is added in one place.
Torch-free: plain data.
"""

from __future__ import annotations

from dataclasses import dataclass

#: The precisions a bundle's models come in (``edgecalc export --precision``, ``live --precision``).
PRECISIONS = ("fp32", "fp16", "int8")

#: The file an artifact kind has in the bundle (``{precision}`` filled in); what ``export`` writes.
BUNDLE_FILES = {"torchscript": "model.ts", "onnx": "model.{precision}.onnx", "engine": "model.{precision}.engine"}


@dataclass(frozen=True)
class Backend:
    """One inference engine the kit can time or run."""

    name: str
    module: str  #: the Python package it imports (what ``doctor`` probes)
    extra: str  #: the ``pip install 'edgecalc[EXTRA]'`` that brings it ("" = the base install)
    needs: str  #: what else it needs, in words
    implementation: tuple[str, str] | None  #: (module, class) of the runtime backend; None = bench only


@dataclass(frozen=True)
class Format:
    """One backend x precision x device, and the bundle artifact (``Artifact.kind``) it loads."""

    backend: str
    precision: str
    device: str  #: "cpu" | "cuda"
    artifact: str | None  #: None = the bundle's source weights (PyTorch eager, the reference)
    note: str = ""
    exact: bool = False  #: export's parity check fails on any difference from eager beyond float noise


_IMPL = "edgecalc.runtime.engine.backends."

#: In the order ``edgecalc bench`` lists them (the reference first).
BACKEND_TABLE: tuple[Backend, ...] = (
    Backend("pytorch", "torch", "train", "the bundle's source weights (the reference row)", None),
    Backend("torchscript", "torch", "train", "the bundle's TorchScript module",
            (_IMPL + "torchscript_backend", "TorchScriptBackend")),
    Backend("onnxruntime", "onnxruntime", "", "nothing more (CPU provider)",
            (_IMPL + "onnxruntime_backend", "OnnxRuntimeBackend")),
    Backend("openvino", "openvino", "openvino", "an x86 or ARM CPU OpenVINO supports",
            (_IMPL + "openvino_backend", "OpenVinoBackend")),
    Backend("tensorrt", "tensorrt", "trt", "an NVIDIA GPU, TensorRT and cuda-python; an engine built for that GPU",
            (_IMPL + "tensorrt_backend", "TensorRTBackend")),
)

FORMATS: tuple[Format, ...] = (
    Format("pytorch", "fp32", "cpu", None),
    Format("pytorch", "fp32", "cuda", None),
    Format("pytorch", "fp16", "cuda", None, "autocast; also timed with CUDA graphs"),
    Format("torchscript", "fp32", "cpu", "torchscript", "the TorchScript module is float32 only", exact=True),
    Format("onnxruntime", "fp32", "cpu", "onnx", exact=True),
    Format("onnxruntime", "fp16", "cpu", "onnx", "runs FP16 graphs (rarely faster than fp32 on a CPU)"),
    Format("onnxruntime", "int8", "cpu", "onnx", "runs Q/DQ INT8 graphs"),
    Format("openvino", "fp32", "cpu", "onnx"),
    Format("openvino", "int8", "cpu", "onnx", "runs Q/DQ INT8 graphs"),
    Format("openvino", "bf16", "cpu", "onnx", "the fp32 graph with inference precision bf16, where the CPU has BF16"),
    Format("tensorrt", "fp32", "cuda", "engine"),
    Format("tensorrt", "fp16", "cuda", "engine"),
    Format("tensorrt", "int8", "cuda", "engine"),
)

BACKENDS: dict[str, Backend] = {b.name: b for b in BACKEND_TABLE}
#: The backends that need torch (``doctor`` reports them together).
TORCH_BACKENDS: tuple[str, ...] = tuple(b.name for b in BACKEND_TABLE if b.module == "torch")
#: (backend, precision) pairs that must reproduce eager exactly (``export/parity.py``).
EXACT_PARITY: frozenset[tuple[str, str]] = frozenset((f.backend, f.precision) for f in FORMATS if f.exact)
#: Every backend ``edgecalc bench`` can time, in table order.
BENCH_BACKENDS: tuple[str, ...] = tuple(BACKENDS)
#: The backends the cart can run (``live --backend``), TensorRT first: ``auto`` tries it first.
RUNTIME_BACKENDS: tuple[str, ...] = ("tensorrt",) + tuple(b.name for b in BACKEND_TABLE
                                                          if b.implementation and b.name != "tensorrt")
BACKEND_CHOICES: tuple[str, ...] = ("auto",) + RUNTIME_BACKENDS
#: The CPU engines that load the bundle's ONNX models: what ``auto`` times when nothing was measured.
ONNX_CPU_BACKENDS: tuple[str, ...] = tuple(dict.fromkeys(
    f.backend for f in FORMATS if f.artifact == "onnx" and f.device == "cpu"))


#: The export's parity report inside a bundle: every artifact through the cart's backends against eager.
PARITY_FILE = "parity.json"
#: How much further a backend's AUC / Dice may fall from eager than the most faithful backend's for the
#: same precision before ``auto`` stops choosing it (the INT8 targets of docs/export.md: AUC drop <= 0.005,
#: Dice drop <= 0.02; an engine that runs the same file worse than another is never the fast choice).
PARITY_AUC_MARGIN = 0.005
PARITY_DICE_MARGIN = 0.02
#: The CPU engines whose INT8 faithfulness depends on the CPU's int8 instructions (``machine.int8_dot_class``):
#: their INT8 parity row vouches only for CPUs of the class it was measured on. OpenVINO ran the same INT8
#: file within the targets on a VNNI / AMX Xeon and at AUC 0.86 on an AVX2 EPYC; onnxruntime held on both
#: (docs/export.md, "Again on an Intel Xeon").
INT8_ISA_SENSITIVE: tuple[str, ...] = ("openvino",)


def bundle_file(artifact: str, precision: str) -> str:
    """The bundle's file name for an artifact kind at a precision, e.g. ``model.int8.onnx``."""
    return BUNDLE_FILES[artifact].format(precision=precision)


def install_hint(backend: str) -> str:
    """``pip install 'edgecalc[EXTRA]'`` for a backend, or "" where the base install has it."""
    extra = BACKENDS[backend].extra
    return f"pip install 'edgecalc[{extra}]'" if extra else ""


def formats_of(backend: str, device: str | None = None) -> tuple[Format, ...]:
    """The table's rows for one backend (and device)."""
    return tuple(f for f in FORMATS if f.backend == backend and (device is None or f.device == device))


def precisions_of(backend: str, artifact: str | None = None, device: str | None = None) -> tuple[str, ...]:
    """The precisions a backend runs (from bundle artifacts of kind ``artifact``), in table order."""
    return tuple(f.precision for f in formats_of(backend, device) if artifact is None or f.artifact == artifact)


def choices_help(choices: tuple[str, ...]) -> str:
    """``a | b | c`` for an option's help text."""
    return " | ".join(choices)
