"""CS-AGnet and DS-AGnet (PyTorch): the attention-gated U-Net with its classification branch.

The paper's Table-2 comparison networks live beside them, one file each, listed in ``registry.NETWORKS``.
The names below are imported on first use (PEP 562), so the torch-free parts of this package
(``config``, ``registry``) can be read without torch: the CLI builds its ``--network`` choices from
the registry on a cart that has no torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_WHERE = {
    "PRESETS": "config", "ModelConfig": "config", "get_preset": "config",
    "OUTPUT_NAMES": "csagnet", "CSAGNet": "csagnet", "CSAGNetOutput": "csagnet", "ExportWrapper": "csagnet",
    "DSAGNet": "dsagnet", "DSAGNetOutput": "dsagnet",
    "NETWORKS": "registry", "network_class": "registry",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
    globals()[name] = value
    return value
