"""The weights shipped inside the package: the default (the full-mask network trained on a 12,070-crop
phantom, with a score head fitted on real DDTI crops and the phantom together) and, by name, the others
in ``SHIPPED_WEIGHTS``.

Not for clinical use; see ``docs/model-card.md``. Export and ``edgecalc eval`` without a run folder
call ``default_weights_path()``. Torch-free until a model is loaded (the CLI reads the names).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

#: File name inside ``edgecalc/assets/weights/`` (its JSON config sits beside it).
DEFAULT_WEIGHTS_NAME = "csagnet-lite-ddti-phantom-12k.safetensors"
#: The default's name among ``SHIPPED_WEIGHTS`` (what help texts and the model card call it).
DEFAULT_SHIPPED_NAME = "ddti-phantom-12k"

#: Every weights file the kit ships, by the name commands accept in place of a path
#: (``edgecalc export ddti``, ``edgecalc eval ddti --data ...``); docs/model-card.md describes each.
SHIPPED_WEIGHTS: dict[str, str] = {
    # the default (since 2026-12-06): phantom-masks-12k with a linear score head fitted on DDTI crops and the phantom at once
    DEFAULT_SHIPPED_NAME: DEFAULT_WEIGHTS_NAME,
    # the full-mask recipe on a 12,070-crop phantom, steps doubled (the default's network, docs/quantification.md)
    "phantom-masks-12k": "csagnet-lite-phantom-masks-12k.safetensors",
    # phantom-masks with the same kind of head (the default from 2026-12-03 to 2026-12-06)
    "ddti-phantom": "csagnet-lite-ddti-phantom.safetensors",
    # the kit's CPU recipe on the phantom, p = 30 % masks (the default until 2026-12-03)
    "phantom": "csagnet-lite-phantom.safetensors",
    # the same recipe with every phantom mask in both stages (better masks, docs/quantification.md)
    "phantom-masks": "csagnet-lite-phantom-masks.safetensors",
    # phantom-masks with a linear score head fitted on real DDTI crops alone (docs/real-data.md)
    "ddti": "csagnet-lite-ddti.safetensors",
}


def weights_dir() -> Path:
    return Path(__file__).resolve().parents[1] / "assets" / "weights"


def default_weights_path() -> Path:
    """Path of the shipped CS-AGnet weights (``.safetensors``; the ``.json`` config beside it).

    FileNotFoundError says how to get weights when the package was installed without them.
    """
    path = weights_dir() / DEFAULT_WEIGHTS_NAME
    if not path.is_file() or not path.with_suffix(".json").is_file():
        raise FileNotFoundError(
            f"the shipped default weights {path} (and its .json) are missing from this installation; "
            "train your own with `edgecalc train DATA` and pass the run folder"
        )
    return path


def shipped_weights_path(name: str) -> Path:
    """The shipped weights called ``name`` (a key of ``SHIPPED_WEIGHTS``); KeyError / FileNotFoundError say why not."""
    if name not in SHIPPED_WEIGHTS:
        raise KeyError(f"no shipped weights called {name!r}; the kit ships {', '.join(SHIPPED_WEIGHTS)}")
    path = weights_dir() / SHIPPED_WEIGHTS[name]
    if not path.is_file() or not path.with_suffix(".json").is_file():
        raise FileNotFoundError(f"the shipped weights {name!r} ({path} and its .json) are missing from this installation")
    return path


def load_default_model(map_location: str = "cpu") -> "torch.nn.Module":
    """The shipped CS-AGnet in eval mode."""
    from edgecalc.model.weights import load_model

    return load_model(default_weights_path(), map_location=map_location)
