"""Mixed precision for training: bfloat16 autocast where the hardware runs it natively, float32 elsewhere.

Measured (docs/results.md): on an Intel Xeon with AVX-512 BF16 and AMX a training step of ``lite`` at
96 px ran 1.5-1.8x faster under ``torch.autocast("cpu", dtype=torch.bfloat16)``; on an AVX2-only AMD
EPYC the same autocast is emulated and 8.7x *slower* (``python -m edgecalc.bench.train_speed``).
Hence ``auto`` asks the hardware, never assumes. Losses are computed in float32 (train/losses.py casts up).
"""

from __future__ import annotations

import contextlib

import torch


def cpu_has_native_bf16() -> bool:
    """True when this CPU has AVX-512 BF16 or AMX instructions (what oneDNN uses for bfloat16)."""
    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    cpu = getattr(torch, "cpu", None)
    return any(bool(getattr(cpu, name, lambda: False)()) for name in probes)


def resolve_precision(precision: str, device: torch.device) -> str:
    """``auto`` | ``fp32`` | ``bf16`` -> the precision this run trains in (``fp32`` or ``bf16``).

    ``bf16`` asked for explicitly is honoured even where it is slow (the user decides); ``auto``
    picks bf16 on a CUDA GPU that supports it and on a CPU with native bf16, else fp32.
    """
    if precision not in ("auto", "fp32", "bf16"):
        raise ValueError(f"precision must be auto, fp32 or bf16, got {precision!r}")
    if precision != "auto":
        return precision
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    return "bf16" if cpu_has_native_bf16() else "fp32"


def autocast(precision: str, device: torch.device) -> contextlib.AbstractContextManager:
    """The forward pass's context: bfloat16 autocast for ``bf16``, nothing for ``fp32``."""
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()
