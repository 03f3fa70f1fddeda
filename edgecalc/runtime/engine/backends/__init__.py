"""Inference backends behind one interface (`InferenceBackend.infer`).

Each backend module imports its engine lazily, so importing this package costs nothing and never
pulls in torch; `open_backend("torchscript", ...)` is the only path that loads torch.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from edgecalc.runtime.engine.backends.base import BackendClosed, BackendUnavailable, InferenceBackend, as_input_batch
from edgecalc.runtime.engine.formats import BACKEND_TABLE

#: backend name -> (module, class), from the one table (``engine/formats.py``). The preference of
#: `auto` on a CPU-only cart is decided by measurement in the runtime, not here.
BACKENDS: dict[str, tuple[str, str]] = {b.name: b.implementation for b in BACKEND_TABLE if b.implementation}


def open_backend(name: str, model_path: str | Path, **options: Any) -> InferenceBackend:
    """Load `model_path` with the named backend; BackendUnavailable says what is missing."""
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)}")
    module, cls = BACKENDS[name]
    return getattr(importlib.import_module(module), cls)(model_path, **options)


__all__ = ["BACKENDS", "BackendClosed", "BackendUnavailable", "InferenceBackend", "as_input_batch", "open_backend"]
