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


def collect_report() -> DoctorReport:
    """Probe the environment and decide every backend x precision row."""
    rep = DoctorReport()
    libs = rep.libraries
    libs.append(LibraryInfo("python", platform.python_version(), f"{sys.executable}"))
    libs.append(LibraryInfo("platform", platform.platform(),
                            f"{cpu_name()}, {os.cpu_count()} logical cores"))

    import edgecalc
    libs.append(LibraryInfo("edgecalc", edgecalc.__version__))

    np, why = try_import("numpy")
    libs.append(LibraryInfo("numpy", np.__version__ if np else None, why))

    cv2, why = try_import("cv2")
    cv_detail = why
    if cv2 is not None:
        gui = [ln.strip() for ln in cv2.getBuildInformation().splitlines() if ln.strip().startswith("GUI:")]
        cv_detail = gui[0] if gui else ""
    libs.append(LibraryInfo("opencv", cv2.__version__ if cv2 else None, cv_detail))

    # --- GPU -------------------------------------------------------------------------------
    gpu, gpu_reason = nvidia_smi_gpu()

    # --- torch -----------------------------------------------------------------------------
    torch, torch_why = try_import("torch")
    torch_cuda = False
    if torch is not None:
        torch_cuda = bool(torch.cuda.is_available())
        build = f"CUDA {torch.version.cuda} build" if torch.version.cuda else "CPU-only build"
        detail = f"{build}; CUDA available: {torch_cuda}"
        if torch_cuda and gpu is None:
            gpu, gpu_reason = torch.cuda.get_device_name(0), ""
        libs.append(LibraryInfo("torch", torch.__version__, detail))
    else:
        libs.append(LibraryInfo("torch", None, f"{torch_why} ({install_hint('pytorch')})"))
    rep.gpu, rep.gpu_reason = gpu, gpu_reason
    libs.append(LibraryInfo("CUDA GPU", gpu, gpu_reason))

    # --- onnxruntime -----------------------------------------------------------------------
    ort, ort_why = try_import("onnxruntime")
    providers: list[str] = []
    if ort is not None:
        providers = list(ort.get_available_providers())
        libs.append(LibraryInfo("onnxruntime", ort.__version__, "providers: " + ", ".join(providers)))
    else:
        libs.append(LibraryInfo("onnxruntime", None, ort_why))

    onnx, onnx_why = try_import("onnx")
    libs.append(LibraryInfo("onnx", onnx.__version__ if onnx else None,
                            "" if onnx else f"{onnx_why} (needed to export; pip install 'edgecalc[train]')"))

    # --- OpenVINO --------------------------------------------------------------------------
    ov, ov_why = try_import("openvino")
    ov_devices: list[str] = []
    ov_caps: list[str] = []
    if ov is not None:
        try:
            core = ov.Core()
            ov_devices = list(core.available_devices)
            if "CPU" in ov_devices:
                ov_caps = list(core.get_property("CPU", "OPTIMIZATION_CAPABILITIES"))
        except Exception as exc:  # noqa: BLE001 - report, never crash
            ov_why = f"installed but Core() failed: {exc}"
        libs.append(LibraryInfo("openvino", ov.get_version() if hasattr(ov, "get_version") else "?",
                                "devices: " + ", ".join(ov_devices) + (
                                    f"; CPU capabilities: {', '.join(ov_caps)}" if ov_caps else "")))
    else:
        libs.append(LibraryInfo("openvino", None, f"{ov_why} ({install_hint('openvino')})"))

    # --- TensorRT + cuda-python ------------------------------------------------------------
    trt, trt_why = try_import("tensorrt")
    libs.append(LibraryInfo("tensorrt", trt.__version__ if trt else None,
                            "" if trt else f"{trt_why} ({install_hint('tensorrt')})"))
    cudart, cudart_why = try_import("cuda.bindings.runtime")
    cuda_py_version = None
    if cudart is not None:
        try:
            from importlib.metadata import version

            cuda_py_version = version("cuda-python")
        except Exception:  # noqa: BLE001
            cuda_py_version = "?"
    libs.append(LibraryInfo("cuda-python", cuda_py_version,
                            "" if cudart else f"{cudart_why} ({install_hint('tensorrt')})"))

    # --- DICOM input -----------------------------------------------------------------------
    libs.append(_dicom_library())

    # --- backend x precision: the rows of the one table (runtime/engine/formats.py) --------
    add = rep.backends.append
    no_gpu = gpu_reason if gpu is None else ""

    for b in TORCH_BACKENDS:
        for f in formats_of(b):
            if torch is None:
                add(BackendStatus(b, f.precision, f.device, False, f"torch {torch_why}: {install_hint(b)}"))
            elif f.device == "cpu":
                add(BackendStatus(b, f.precision, f.device, True, f"torch {torch.__version__}"))
            elif torch_cuda:
                add(BackendStatus(b, f.precision, f.device, True, f"torch CUDA on {gpu}"))
            else:
                add(BackendStatus(b, f.precision, f.device, False,
                                  no_gpu or f"torch is a {torch.version.cuda or 'CPU-only'} build"))

    ort_all = "/".join(precisions_of("onnxruntime"))
    for f in formats_of("onnxruntime"):
        if ort is None:
            add(BackendStatus("onnxruntime", f.precision, f.device, False, f"onnxruntime {ort_why}"))
        else:
            add(BackendStatus("onnxruntime", f.precision, f.device, True,
                              "CPUExecutionProvider" + (f" ({f.note})" if f.note else "")))
    if ort is not None:
        for ep in ("CUDAExecutionProvider", "TensorrtExecutionProvider"):
            if ep in providers and gpu is not None:
                add(BackendStatus("onnxruntime", ort_all, ep.replace("ExecutionProvider", " EP"), True, f"on {gpu}"))
            elif ep in providers:
                add(BackendStatus("onnxruntime", ort_all, ep.replace("ExecutionProvider", " EP"), False, f"provider present but {no_gpu}"))
            else:
                add(BackendStatus("onnxruntime", ort_all, ep.replace("ExecutionProvider", " EP"), False,
                                  "not in this onnxruntime build (pip install onnxruntime-gpu)"))

    ov_all = "/".join(precisions_of("openvino"))
    if ov is None:
        add(BackendStatus("openvino", ov_all, "cpu", False, f"openvino {ov_why}: {install_hint('openvino')}"))
    elif "CPU" not in ov_devices:
        add(BackendStatus("openvino", ov_all, "cpu", False, f"OpenVINO sees no CPU device ({ov_why or ov_devices})"))
    else:
        for f in formats_of("openvino"):
            if f.precision == "bf16":
                has_bf16 = "BF16" in ov_caps
                add(BackendStatus("openvino", "bf16", f.device, has_bf16,
                                  "CPU reports BF16" if has_bf16 else "CPU reports no BF16 support"))
            else:
                add(BackendStatus("openvino", f.precision, f.device, True,
                                  "OpenVINO CPU plugin" + (f" ({f.note})" if f.note else "")))

    trt_missing = []
    if trt is None:
        trt_missing.append(f"tensorrt {trt_why}")
    if cudart is None:
        trt_missing.append(f"cuda-python {cudart_why}")
    if gpu is None:
        trt_missing.append(no_gpu)
    for f in formats_of("tensorrt"):
        if trt_missing:
            add(BackendStatus("tensorrt", f.precision, f.device, False, "; ".join(trt_missing)))
        else:
            add(BackendStatus("tensorrt", f.precision, f.device, True,
                              f"TensorRT {trt.__version__} on {gpu} (precision from the ONNX graph: "
                              f"{'strongly typed' if int(trt.__version__.split('.')[0]) >= 11 else 'builder flags'})"))

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
