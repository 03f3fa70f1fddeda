"""Calibration-range cache: the same model, images and method never calibrate twice.

Calibrating runs the float model over every calibration image (and, for entropy / percentile,
builds histograms): minutes on a cart-class CPU at 256 images. The ranges onnxruntime computes are
stored as JSON (onnxruntime's own ``calibration_cache_path`` format, no pickle) under a key that is
the sha256 of the float32 ONNX model's bytes, the calibration set's ids and pixels, and the method,
so a different model, image set or method can never pick up stale ranges.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

ENV_VAR = "EDGECALC_CACHE_DIR"


def cache_dir() -> Path:
    """``$EDGECALC_CACHE_DIR`` or ``~/.cache/edgecalc``, plus ``calibration``."""
    base = os.environ.get(ENV_VAR) or os.path.join(os.path.expanduser("~"), ".cache", "edgecalc")
    return Path(base) / "calibration"


def cache_key(model_sha256: str, calib_digest: str, method: str, extra: dict | None = None) -> str:
    """sha256 over the model, the calibration set and the method (plus any option that changes ranges)."""
    payload = json.dumps({"model": model_sha256, "calibration": calib_digest, "method": method,
                          "extra": extra or {}}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()


def lookup(key: str) -> tuple[Path, bool]:
    """(path, hit): the cache file for ``key`` and whether ranges are already there."""
    path = cache_dir() / f"{key}.json"
    return path, path.is_file()
