"""Probes of this machine: the CPU's name, the GPU nvidia-smi sees, whether a module imports.

The library under ``edgecalc doctor`` (which reports them) and under ``bench`` and the runtime's
latency cache (which key measurements by machine). Cheap, torch-free, and never raises: a failing
probe is a reason string.
"""

from __future__ import annotations

import importlib
import platform
import shutil
import subprocess
from typing import Any


def try_import(name: str) -> tuple[Any | None, str]:
    """Import a module, returning (module, "") or (None, reason)."""
    try:
        return importlib.import_module(name), ""
    except ImportError as exc:  # ModuleNotFoundError included
        missing = getattr(exc, "name", None)
        if missing == name or (missing and name.startswith(missing + ".")):
            return None, "not installed"
        return None, f"fails to import: {exc}"
    except Exception as exc:  # a broken install must not crash the doctor
        return None, f"fails to import: {type(exc).__name__}: {exc}"


def _cpuinfo(field: str) -> str | None:
    """The first ``field`` of ``/proc/cpuinfo`` (Linux), None where there is none."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith(field):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def cpu_name() -> str:
    """The CPU's model name (``/proc/cpuinfo``), else what ``platform`` knows."""
    return _cpuinfo("model name") or platform.processor() or platform.machine()


#: CPU flags (``/proc/cpuinfo``) of an int8 dot-product instruction that accumulates in 32 bits. Without
#: one, int8 kernels fall back to AVX2's ``vpmaddubsw``, whose 16-bit intermediate can saturate: the
#: shipped INT8 model lost a fifth of its decisions in OpenVINO on such a CPU (docs/performance.md).
INT8_DOT_FLAGS: tuple[str, ...] = ("avx512_vnni", "avx_vnni", "amx_int8")


def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags from ``/proc/cpuinfo``; empty where it cannot be read (not Linux)."""
    return frozenset((_cpuinfo("flags") or "").split())


def int8_dot_class(flags: frozenset[str] | None = None) -> str | None:
    """``"vnni"`` (a 32-bit-accumulating int8 dot product), ``"no-vnni"``, or None when the flags are unknown."""
    flags = cpu_flags() if flags is None else flags
    if not flags:
        return None
    return "vnni" if any(f in flags for f in INT8_DOT_FLAGS) else "no-vnni"


def nvidia_smi_gpu() -> tuple[str | None, str]:
    """GPU name and driver from nvidia-smi, without any CUDA library."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return None, "no GPU (nvidia-smi not found)"
    try:
        out = subprocess.run(
            [exe, "--query-gpu=name,driver_version,compute_cap", "--format=csv,noheader"],
            capture_output=True, text=True, timeout=10, check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, f"nvidia-smi failed: {exc}"
    line = out.stdout.strip().splitlines()[0] if out.stdout.strip() else ""
    if out.returncode != 0 or not line:
        return None, f"nvidia-smi found no GPU ({out.stderr.strip() or 'exit ' + str(out.returncode)})"
    parts = [p.strip() for p in line.split(",")]
    name = parts[0]
    extra = f"driver {parts[1]}" if len(parts) > 1 else ""
    if len(parts) > 2:
        extra += f", compute capability {parts[2]}"
    return f"{name} ({extra})" if extra else name, ""
