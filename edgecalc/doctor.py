"""`edgecalc doctor`: what is installed, and which backend x precision can run here, and why not.

An engineer setting up a cart wants one screen that says "TensorRT: not installed" or "CUDA: no GPU"
instead of a stack trace in the middle of `edgecalc live`. Every probe here is cheap and never
raises: a failing import becomes a reason string. torch is imported only to report it (this module
is not part of the torch-free runtime). The probes themselves live in ``edgecalc/machine.py`` (bench
and the runtime's latency cache use them too); the rows come from ``runtime/engine/formats.py``.
"""

from __future__ import annotations

import dataclasses
import os
import platform
import sys
from dataclasses import dataclass, field
from typing import Any

from edgecalc.machine import cpu_name, nvidia_smi_gpu, try_import
from edgecalc.runtime.engine.formats import TORCH_BACKENDS, formats_of, install_hint, precisions_of


@dataclass
class LibraryInfo:
    """One library or system component: its version, or why it is absent, plus a detail line."""

    name: str
    version: str | None
    detail: str = ""


@dataclass
class BackendStatus:
    """Whether `backend` can run the model at `precision` on `device`; `reason` says why (not)."""

    backend: str
    precision: str
    device: str
    usable: bool
    reason: str


@dataclass
class DoctorReport:
    """Everything `edgecalc doctor` prints, also available as JSON (`--json`)."""

    libraries: list[LibraryInfo] = field(default_factory=list)
    backends: list[BackendStatus] = field(default_factory=list)
    gpu: str | None = None
    gpu_reason: str = ""
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _dicom_library() -> LibraryInfo:
    """pydicom and which of its plugins decode the encodings ultrasound files come in."""
    pydicom, why = try_import("pydicom")
    if pydicom is None:
        return LibraryInfo("pydicom", None, f"{why} (DICOM input: pip install 'edgecalc[dicom]')")
    from edgecalc.data.dicom import DECODED_SYNTAXES

    parts = []
    for label, uid in DECODED_SYNTAXES.items():
        try:
            from pydicom.pixels import get_decoder

            decoder = get_decoder(uid)
            plugins = list(decoder.available_plugins) or (["pydicom (native)"] if decoder.is_available else [])
        except Exception:  # noqa: BLE001 - report, never crash
            plugins = []
        parts.append(f"{label}: {', '.join(plugins) if plugins else 'no decoder'}")
    return LibraryInfo("pydicom", pydicom.__version__, "; ".join(parts))


@dataclass
class Probes:
    """What the backend rows are decided from: each engine's module (None when absent) and why not.

    Filled by the ``_probe_*`` functions from this environment; a test fills it by hand to check the rows' logic
    for machines it is not running on (no torch, a GPU, TensorRT present).
    """

    torch: Any = None
    torch_why: str = ""
    torch_cuda: bool = False
    gpu: str | None = None
    gpu_reason: str = ""
    ort: Any = None
    ort_why: str = ""
    providers: list[str] = field(default_factory=list)
    ov: Any = None
    ov_why: str = ""
    ov_devices: list[str] = field(default_factory=list)
    ov_caps: list[str] = field(default_factory=list)
    trt: Any = None
    trt_why: str = ""
    cudart: Any = None
    cudart_why: str = ""


def _base_libraries() -> list[LibraryInfo]:
    """Python, the platform, edgecalc, numpy and OpenCV (with its GUI backend: `live` needs one to show)."""
    import edgecalc

    libs = [LibraryInfo("python", platform.python_version(), f"{sys.executable}"),
            LibraryInfo("platform", platform.platform(), f"{cpu_name()}, {os.cpu_count()} logical cores"),
            LibraryInfo("edgecalc", edgecalc.__version__)]
    np, why = try_import("numpy")
    libs.append(LibraryInfo("numpy", np.__version__ if np else None, why))
    cv2, why = try_import("cv2")
    cv_detail = why
    if cv2 is not None:
        gui = [ln.strip() for ln in cv2.getBuildInformation().splitlines() if ln.strip().startswith("GUI:")]
        cv_detail = gui[0] if gui else ""
    libs.append(LibraryInfo("opencv", cv2.__version__ if cv2 else None, cv_detail))
    return libs


def _probe_torch(p: Probes) -> list[LibraryInfo]:
    """torch and the GPU (nvidia-smi first; torch's CUDA names the GPU where nvidia-smi is missing)."""
    p.gpu, p.gpu_reason = nvidia_smi_gpu()
    p.torch, p.torch_why = try_import("torch")
    if p.torch is None:
        torch_lib = LibraryInfo("torch", None, f"{p.torch_why} ({install_hint('pytorch')})")
    else:
        p.torch_cuda = bool(p.torch.cuda.is_available())
        build = f"CUDA {p.torch.version.cuda} build" if p.torch.version.cuda else "CPU-only build"
        if p.torch_cuda and p.gpu is None:
            p.gpu, p.gpu_reason = p.torch.cuda.get_device_name(0), ""
        torch_lib = LibraryInfo("torch", p.torch.__version__, f"{build}; CUDA available: {p.torch_cuda}")
    return [torch_lib, LibraryInfo("CUDA GPU", p.gpu, p.gpu_reason)]


def _probe_onnx(p: Probes) -> list[LibraryInfo]:
    """onnxruntime with its execution providers, and onnx (export needs it)."""
    p.ort, p.ort_why = try_import("onnxruntime")
    if p.ort is not None:
        p.providers = list(p.ort.get_available_providers())
        ort_lib = LibraryInfo("onnxruntime", p.ort.__version__, "providers: " + ", ".join(p.providers))
    else:
        ort_lib = LibraryInfo("onnxruntime", None, p.ort_why)
    onnx, onnx_why = try_import("onnx")
    return [ort_lib, LibraryInfo("onnx", onnx.__version__ if onnx else None,
                                 "" if onnx else f"{onnx_why} (needed to export; pip install 'edgecalc[train]')")]


def _probe_openvino(p: Probes) -> list[LibraryInfo]:
    """OpenVINO's devices and its CPU's capabilities (BF16 decides the bf16 row)."""
    p.ov, p.ov_why = try_import("openvino")
    if p.ov is None:
        return [LibraryInfo("openvino", None, f"{p.ov_why} ({install_hint('openvino')})")]
    try:
        from edgecalc.runtime.engine.backends.openvino_backend import cpu_devices_and_capabilities

        p.ov_devices, p.ov_caps = cpu_devices_and_capabilities()
    except Exception as exc:  # noqa: BLE001 - report, never crash
        p.ov_why = f"installed but Core() failed: {exc}"
    caps = f"; CPU capabilities: {', '.join(p.ov_caps)}" if p.ov_caps else ""
    return [LibraryInfo("openvino", p.ov.get_version() if hasattr(p.ov, "get_version") else "?",
                        "devices: " + ", ".join(p.ov_devices) + caps)]


def _probe_tensorrt(p: Probes) -> list[LibraryInfo]:
    """TensorRT and cuda-python (the TensorRT backend needs both, and a GPU)."""
    p.trt, p.trt_why = try_import("tensorrt")
    p.cudart, p.cudart_why = try_import("cuda.bindings.runtime")
    cuda_py_version = None
    if p.cudart is not None:
        try:
            from importlib.metadata import version

            cuda_py_version = version("cuda-python")
        except Exception:  # noqa: BLE001
            cuda_py_version = "?"
    return [LibraryInfo("tensorrt", p.trt.__version__ if p.trt else None,
                        "" if p.trt else f"{p.trt_why} ({install_hint('tensorrt')})"),
            LibraryInfo("cuda-python", cuda_py_version,
                        "" if p.cudart else f"{p.cudart_why} ({install_hint('tensorrt')})")]


def _torch_rows(p: Probes) -> list[BackendStatus]:
    rows = []
    for b in TORCH_BACKENDS:
        for f in formats_of(b):
            if p.torch is None:
                rows.append(BackendStatus(b, f.precision, f.device, False, f"torch {p.torch_why}: {install_hint(b)}"))
            elif f.device == "cpu":
                rows.append(BackendStatus(b, f.precision, f.device, True, f"torch {p.torch.__version__}"))
            elif p.torch_cuda:
                rows.append(BackendStatus(b, f.precision, f.device, True, f"torch CUDA on {p.gpu}"))
            else:
                rows.append(BackendStatus(b, f.precision, f.device, False,
                                          _no_gpu(p) or f"torch is a {p.torch.version.cuda or 'CPU-only'} build"))
    return rows


def _onnxruntime_rows(p: Probes) -> list[BackendStatus]:
    rows = []
    for f in formats_of("onnxruntime"):
        if p.ort is None:
            rows.append(BackendStatus("onnxruntime", f.precision, f.device, False, f"onnxruntime {p.ort_why}"))
        else:
            rows.append(BackendStatus("onnxruntime", f.precision, f.device, True,
                                      "CPUExecutionProvider" + (f" ({f.note})" if f.note else "")))
    if p.ort is None:
        return rows
    every = "/".join(precisions_of("onnxruntime"))
    for ep in ("CUDAExecutionProvider", "TensorrtExecutionProvider"):
        device = ep.replace("ExecutionProvider", " EP")
        if ep in p.providers and p.gpu is not None:
            rows.append(BackendStatus("onnxruntime", every, device, True, f"on {p.gpu}"))
        elif ep in p.providers:
            rows.append(BackendStatus("onnxruntime", every, device, False, f"provider present but {_no_gpu(p)}"))
        else:
            rows.append(BackendStatus("onnxruntime", every, device, False,
                                      "not in this onnxruntime build (pip install onnxruntime-gpu)"))
    return rows


def _openvino_rows(p: Probes) -> list[BackendStatus]:
    every = "/".join(precisions_of("openvino"))
    if p.ov is None:
        return [BackendStatus("openvino", every, "cpu", False, f"openvino {p.ov_why}: {install_hint('openvino')}")]
    if "CPU" not in p.ov_devices:
        return [BackendStatus("openvino", every, "cpu", False, f"OpenVINO sees no CPU device ({p.ov_why or p.ov_devices})")]
    rows = []
    for f in formats_of("openvino"):
        if f.precision == "bf16":
            has_bf16 = "BF16" in p.ov_caps
            rows.append(BackendStatus("openvino", "bf16", f.device, has_bf16,
                                      "CPU reports BF16" if has_bf16 else "CPU reports no BF16 support"))
        else:
            rows.append(BackendStatus("openvino", f.precision, f.device, True,
                                      "OpenVINO CPU plugin" + (f" ({f.note})" if f.note else "")))
    return rows


def _tensorrt_rows(p: Probes) -> list[BackendStatus]:
    missing = []
    if p.trt is None:
        missing.append(f"tensorrt {p.trt_why}")
    if p.cudart is None:
        missing.append(f"cuda-python {p.cudart_why}")
    if p.gpu is None:
        missing.append(_no_gpu(p))
    if missing:
        return [BackendStatus("tensorrt", f.precision, f.device, False, "; ".join(missing)) for f in formats_of("tensorrt")]
    typing = "strongly typed" if int(p.trt.__version__.split(".")[0]) >= 11 else "builder flags"
    return [BackendStatus("tensorrt", f.precision, f.device, True,
                          f"TensorRT {p.trt.__version__} on {p.gpu} (precision from the ONNX graph: {typing})")
            for f in formats_of("tensorrt")]


def _no_gpu(p: Probes) -> str:
    return p.gpu_reason if p.gpu is None else ""


def backend_rows(p: Probes) -> list[BackendStatus]:
    """Every backend x precision row of the one table (``runtime/engine/formats.py``), decided from ``p``."""
    return _torch_rows(p) + _onnxruntime_rows(p) + _openvino_rows(p) + _tensorrt_rows(p)


def collect_report() -> DoctorReport:
    """Probe the environment and decide every backend x precision row."""
    p = Probes()
    libraries = (_base_libraries() + _probe_torch(p) + _probe_onnx(p) + _probe_openvino(p) + _probe_tensorrt(p)
                 + [_dicom_library()])
    rep = DoctorReport(libraries=libraries, backends=backend_rows(p), gpu=p.gpu, gpu_reason=p.gpu_reason)
    display = os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    if not display and sys.platform.startswith("linux"):
        rep.notes.append("no DISPLAY: `edgecalc live` needs --headless here (or a display / X forwarding)")
    return rep


def render_report(rep: DoctorReport) -> None:
    """Print the report as two rich tables."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console()
    t = Table(title="edgecalc doctor: libraries", title_justify="left")
    t.add_column("component")
    t.add_column("version")
    t.add_column("detail", overflow="fold")
    for lib in rep.libraries:
        t.add_row(lib.name, escape(lib.version) if lib.version else "[red]-[/red]", escape(lib.detail))
    console.print(t)

    b = Table(title="inference backends usable here", title_justify="left")
    b.add_column("backend")
    b.add_column("precision")
    b.add_column("device")
    b.add_column("usable")
    b.add_column("why", overflow="fold")
    for s in rep.backends:
        b.add_row(s.backend, s.precision, s.device,
                  "[green]yes[/green]" if s.usable else "[red]no[/red]", escape(s.reason))
    console.print(b)
    for note in rep.notes:
        console.print(f"note: {escape(note)}")
