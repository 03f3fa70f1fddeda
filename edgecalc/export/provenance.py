"""What a bundle records about how it was made: library versions and the time, for both bundle writers.

``edgecalc export`` (the model's bundle) and ``python -m edgecalc.locator.train`` (the locator's)
state the same provenance in their manifests (``runtime/engine/manifest.py``), so it is read here once.
"""

from __future__ import annotations

import datetime as _dt
import importlib.metadata
import sys

#: The distributions whose versions a manifest records (None when not installed).
RECORDED_LIBRARIES = ("torch", "onnx", "onnxruntime", "numpy", "opencv-python", "safetensors", "tensorrt",
                      "nvidia-modelopt", "torch-tensorrt", "scikit-learn")


def library_versions() -> dict[str, str | None]:
    """{"python": version, distribution: version or None} for ``RECORDED_LIBRARIES``."""
    out: dict[str, str | None] = {"python": sys.version.split()[0]}
    for dist in RECORDED_LIBRARIES:
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            out[dist] = None
    return out


def created_now() -> str:
    """The current UTC time as an ISO 8601 string to the second (a manifest's ``created``)."""
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
