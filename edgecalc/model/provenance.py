"""Which real images a weights file was fitted on: ``<weights stem>.fitted.json`` beside it.

Why: `edgecalc eval WEIGHTS --data DIR` on the data the weights were fitted on gives an optimistic
figure, and a shipped file carries no run folder (no ``split.json``) to tell. The record lists the
image ids of a real data set (ids like DDTI's ``15_1_r0`` name one image; phantom ids such as
``00000`` repeat in every generated set, so phantoms are not recorded here). Torch-free.

    {"data": "ddti-calc", "what": "score head: fold 0's training and validation crops", "ids": [...]}
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from edgecalc.atomic import atomic_write_json

#: The record's name beside ``NAME.safetensors``: ``NAME.fitted.json``.
FITTED_SUFFIX = ".fitted.json"


@dataclass(frozen=True)
class Fitted:
    data: str
    what: str
    ids: frozenset[str]


def fitted_path(weights: str | Path) -> Path:
    w = Path(weights)
    return w.with_name(w.stem + FITTED_SUFFIX)


def read_fitted(weights: str | Path) -> Fitted | None:
    """The record beside ``weights``, None where there is none; ValueError names a malformed one."""
    path = fitted_path(weights)
    if not path.is_file():
        return None
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        return Fitted(str(doc["data"]), str(doc["what"]), frozenset(str(i) for i in doc["ids"]))
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{path}: not a fitted-on record ({{'data', 'what', 'ids'}}): {exc}") from exc


def write_fitted(weights: str | Path, data: str, what: str, ids: list[str]) -> Path:
    """Write the record beside ``weights`` (atomically)."""
    return atomic_write_json(fitted_path(weights), {"data": data, "what": what, "ids": sorted(ids)})


def fitted_from_run(run_dir: str | Path) -> Fitted:
    """A run's training + validation ids (its ``split.json``, the data named by ``config.json``)."""
    from edgecalc.run_folder import read_config, read_split

    split = read_split(run_dir)
    data = Path(read_config(run_dir)["data"]).name
    what = f"training and validation images of fold {split['fold']} of {split['folds']} (seed {split['seed']})"
    return Fitted(data, what, frozenset(split["ids"]["train"]) | frozenset(split["ids"]["val"]))


def write_from_run(weights: str | Path, run_dir: str | Path) -> Path:
    """Write a run's record (``fitted_from_run``) beside ``weights``."""
    rec = fitted_from_run(run_dir)
    return write_fitted(weights, rec.data, rec.what, list(rec.ids))


if __name__ == "__main__":
    import sys

    if len(sys.argv) != 3:
        raise SystemExit("usage: python -m edgecalc.model.provenance WEIGHTS.safetensors RUN_DIR")
    print(write_from_run(sys.argv[1], sys.argv[2]))
