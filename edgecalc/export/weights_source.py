"""Where the weights to export come from: a run folder, a .safetensors file, or the shipped default.

One function decides; without a path it takes the weights shipped in ``edgecalc/assets/weights``
(``edgecalc.model.shipped``).
"""

from __future__ import annotations

from pathlib import Path

def shipped_weights() -> Path | None:
    """The default weights shipped with the kit (``edgecalc.model.shipped``), or None when absent."""
    from edgecalc.model.shipped import default_weights_path

    try:
        return default_weights_path()
    except FileNotFoundError:
        return None
#: File names looked for, in order, inside a run folder.
RUN_FOLDER_NAMES = ("model.safetensors", "final.safetensors")


class WeightsNotFound(FileNotFoundError):
    """No usable weights at the given path (or no shipped default yet)."""


def resolve_weights(path: str | Path | None, shipped: Path | None = None) -> Path:
    """The ``.safetensors`` file to export, with its JSON config beside it.

    ``path`` is a run folder (holding ``model.safetensors`` or ``final.safetensors`` + ``.json``) or a
    ``.safetensors`` file; None means the shipped default (``shipped`` overrides it for tests).
    """
    if path is None:
        default = shipped if shipped is not None else shipped_weights()
        if default is None or not Path(default).is_file():
            raise WeightsNotFound(
                "this installation carries no default weights (edgecalc/assets/weights); "
                "pass WEIGHTS: a run folder containing model.safetensors or final.safetensors with its "
                ".json config, or a .safetensors file"
            )
        path = default
    p = Path(path)
    if p.is_dir():
        for name in RUN_FOLDER_NAMES:
            if (p / name).is_file():
                p = p / name
                break
        else:
            raise WeightsNotFound(f"run folder {p} holds none of {', '.join(RUN_FOLDER_NAMES)}")
    elif not p.exists():
        raise WeightsNotFound(f"weights file {p} does not exist")
    if p.suffix != ".safetensors":
        raise WeightsNotFound(f"{p} is not a .safetensors file (weights are never read from pickles)")
    if not p.with_suffix(".json").is_file():
        raise WeightsNotFound(f"config {p.with_suffix('.json')} not found beside {p}")
    return p
