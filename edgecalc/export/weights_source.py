"""Where the weights to export come from: a run folder, a .safetensors file, shipped weights by name, or the shipped default.

One function decides; without a path it takes the weights shipped in ``edgecalc/assets/weights``
(``edgecalc.model.shipped``).
"""

from __future__ import annotations

from pathlib import Path

from edgecalc.model.shipped import SHIPPED_WEIGHTS, default_weights_path, shipped_weights_path
from edgecalc.run_folder import WEIGHTS_FILES, weights_in


def shipped_weights() -> Path | None:
    """The default weights shipped with the kit (``edgecalc.model.shipped``), or None when absent."""
    try:
        return default_weights_path()
    except FileNotFoundError:
        return None


class WeightsNotFound(FileNotFoundError):
    """No usable weights at the given path (or no shipped default yet)."""


def resolve_weights(path: str | Path | None, shipped: Path | None = None) -> Path:
    """The ``.safetensors`` file to export, with its JSON config beside it.

    ``path`` is a run folder (holding one of ``run_folder.WEIGHTS_FILES`` + ``.json``), a
    ``.safetensors`` file, or the name of shipped weights (a key of ``SHIPPED_WEIGHTS``)
    when no such path exists; None means the shipped default (``shipped`` overrides it for tests).
    """
    if path is None:
        default = shipped if shipped is not None else shipped_weights()
        if default is None or not Path(default).is_file():
            raise WeightsNotFound(
                "this installation carries no default weights (edgecalc/assets/weights); "
                f"pass WEIGHTS: a run folder containing {' or '.join(WEIGHTS_FILES)} with its "
                ".json config, or a .safetensors file"
            )
        path = default
    p = Path(path)
    if not p.exists() and str(path) in SHIPPED_WEIGHTS:  # a shipped file by name (a real path wins)
        p = shipped_weights_path(str(path))
    if p.is_dir():
        found = weights_in(p)
        if found is None:
            raise WeightsNotFound(f"run folder {p} holds none of {', '.join(WEIGHTS_FILES)}")
        p = found
    elif not p.exists():
        raise WeightsNotFound(f"weights file {p} does not exist (shipped weights by name: {', '.join(SHIPPED_WEIGHTS)})")
    if p.suffix != ".safetensors":
        raise WeightsNotFound(f"{p} is not a .safetensors file (weights are never read from pickles)")
    if not p.with_suffix(".json").is_file():
        raise WeightsNotFound(f"config {p.with_suffix('.json')} not found beside {p}")
    return p
