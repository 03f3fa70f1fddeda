"""The default weights shipped inside the package (trained by the kit's CPU recipe on the phantom).

Trained on synthetic phantoms only — not for clinical use; see ``docs/model-card.md``. Export and
``edgecalc eval`` without a run folder call ``default_weights_path()``.
"""

from __future__ import annotations

from pathlib import Path

import torch

#: File name inside ``edgecalc/assets/weights/`` (its JSON config sits beside it).
DEFAULT_WEIGHTS_NAME = "csagnet-lite-phantom.safetensors"


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


def load_default_model(map_location: str = "cpu") -> torch.nn.Module:
    """The shipped CS-AGnet in eval mode."""
    from edgecalc.model.weights import load_model

    return load_model(default_weights_path(), map_location=map_location)
