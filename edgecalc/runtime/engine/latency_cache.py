"""Measurements kept per machine, so `--backend auto` in the runtime picks by what was measured here.

`edgecalc bench` records the median batch-1 latency of each CPU row under a key made of this
machine (CPU name, cores, GPU) and the bundle's float32 ONNX checksum; `engine.select` looks the
bundle up before falling back to its own quick timing. The file is small JSON in the user's cache
folder (`$XDG_CACHE_HOME/edgecalc`, else `~/.cache/edgecalc`), or `$EDGECALC_CACHE_DIR`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from edgecalc.atomic import atomic_write_json


def cache_file() -> Path:
    root = os.environ.get("EDGECALC_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "edgecalc")
    return Path(root) / "backend-latency.json"


def machine_key() -> str:
    from edgecalc.machine import cpu_name, nvidia_smi_gpu

    return f"{cpu_name()}|{os.cpu_count()}|{nvidia_smi_gpu()[0] or 'no-gpu'}"


def bundle_key(manifest) -> str | None:
    art = manifest.artifact("onnx", "fp32")
    return art.sha256 if art is not None else None


def _load() -> dict:
    try:
        return json.loads(cache_file().read_text())
    except (OSError, ValueError):
        return {}


def record_measurements(report) -> None:
    """Store each ok CPU row's batch-1 median latency for this machine and bundle."""
    from edgecalc.runtime.engine.bundle import load_bundle

    key = bundle_key(load_bundle(report.bundle, verify=False).manifest)
    if key is None:
        return
    data = _load()
    entry = data.setdefault(machine_key(), {}).setdefault(key, {})
    for r in report.rows:
        if r.status == "ok" and "1" in r.result.get("model_latency_ms", {}):
            entry[f"{r.backend}/{r.precision}/{r.device}"] = r.result["model_latency_ms"]["1"]["median"]
    path = cache_file()
    try:
        atomic_write_json(path, data)
    except OSError:
        pass  # a read-only home must not fail the benchmark


def measured_latencies(manifest) -> dict[str, float]:
    """{"backend/precision/device": median ms} measured on this machine for this bundle, or {}."""
    key = bundle_key(manifest)
    if key is None:
        return {}
    return dict(_load().get(machine_key(), {}).get(key, {}))
