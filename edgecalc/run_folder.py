"""The training run folder: every name in it, and the readers and writers train, eval, sweep, compare and export share.

Kept at the top of the package, below both ``train`` and ``eval``, so evaluation can find a run's
files without importing the training code (which imports evaluation for its final test-fold score).
numpy and the standard library only (no torch). The names are those every run folder has had on
disk since the first runs, so old folders load as they are::

    RUN/
      config.json              the TrainConfig (train reads it typed, TrainConfig.read; others read_config)
      split.json               test fold, validation share, training rest and mask draw (indices + ids)
      log.csv, log.jsonl       one row per validated round, rewritten from the checkpoints
      checkpoints/             stage<k>.json + stage<k>-epoch<E>.safetensors: the resumable state
      stage1/, stage2/         best.safetensors, last.safetensors (each + .json)
      pseudo_masks/<id>.png    stage one's predictions; pseudo_masks.json once every one is on disk
      final.safetensors        (+ .json) stage two's best: the run's result
      metrics.json             the test fold's figures and the run's facts (last: the run is finished)
      eval/                    metrics.json, scores.npz (+ roc.png, attention.png) of the test fold
      end_to_end.npz           (edgecalc compare) whole frames through the locator and this fold's model

An evaluation folder (``eval/``, ``edgecalc eval --out``, a rule's fold in ``edgecalc compare``)
holds ``metrics.json`` and ``scores.npz``: ``read_metrics`` and ``read_scores`` take either folder.
Every writer is atomic (``edgecalc/atomic.py``); every reader names the file it could not use.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from edgecalc.atomic import atomic_write, atomic_write_json, atomic_write_text

CONFIG_FILE = "config.json"
SPLIT_FILE = "split.json"
METRICS_FILE = "metrics.json"  #: in the run folder and in an evaluation folder
FINAL_WEIGHTS = "final.safetensors"
#: The plain weights a folder may hold instead (``python -m edgecalc.export.measure``'s tiny run).
MODEL_WEIGHTS = "model.safetensors"
#: The weights looked for in a folder, in order (``edgecalc export RUN``, ``--init-weights RUN``).
WEIGHTS_FILES = (MODEL_WEIGHTS, FINAL_WEIGHTS)
LOG_CSV = "log.csv"
LOG_JSONL = "log.jsonl"
CHECKPOINT_DIR = "checkpoints"
BEST_WEIGHTS = "best.safetensors"  #: in a stage folder: the best validated round
LAST_WEIGHTS = "last.safetensors"  #: in a stage folder: the stage's last round
PSEUDO_DIR = "pseudo_masks"
PSEUDO_MARKER = "pseudo_masks.json"  #: written once every pseudo mask is on disk
EVAL_DIR = "eval"
SCORES_FILE = "scores.npz"
END_TO_END_FILE = "end_to_end.npz"

#: The index lists of split.json (``indices`` and ``ids`` each hold all four).
SPLIT_PARTS = ("train", "val", "test", "mask_draw")
SCORES_KEYS = ("ids", "labels", "scores")  #: scores.npz; a rule's also holds ``predictions``
END_TO_END_KEYS = ("ids", "labels", "scores", "found", "iou")


# --- paths ------------------------------------------------------------------------------------------

def stage_dir(run: str | Path, stage: int) -> Path:
    """``RUN/stage<k>``: the stage's best and last weights."""
    return Path(run) / f"stage{stage}"


def best_weights(run: str | Path, stage: int) -> Path:
    return stage_dir(run, stage) / BEST_WEIGHTS


def last_weights(run: str | Path, stage: int) -> Path:
    return stage_dir(run, stage) / LAST_WEIGHTS


def checkpoint_dir(run: str | Path) -> Path:
    return Path(run) / CHECKPOINT_DIR


def checkpoint_json_name(stage: int) -> str:
    """The stage's checkpoint JSON in ``checkpoints/`` (it names its tensor file)."""
    return f"stage{stage}.json"


def checkpoint_tensors_name(stage: int, epoch: int | None = None) -> str:
    """The stage's tensor file after ``epoch`` rounds; ``epoch`` None: the one name used before per-epoch files."""
    return f"stage{stage}.safetensors" if epoch is None else f"stage{stage}-epoch{epoch:04d}.safetensors"


def checkpoint_tensors_glob(stage: int) -> str:
    """A glob matching every per-epoch tensor file of the stage (the older ones are removed)."""
    return f"stage{stage}-epoch*.safetensors"


def eval_dir(run: str | Path) -> Path:
    """``RUN/eval``: the test fold's evaluation (``edgecalc eval RUN`` writes there too)."""
    return Path(run) / EVAL_DIR


def final_weights_path(run: str | Path) -> Path:
    """Where the run's final weights go (the writer's side; readers use ``final_weights``)."""
    return Path(run) / FINAL_WEIGHTS


def final_weights(run: str | Path) -> Path:
    """The finished run's final weights; FileNotFoundError (with the resume command) when they are not there yet."""
    path = final_weights_path(run)
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: the run in {run} has not finished (edgecalc train --resume {run})")
    return path


def holds_run(run: str | Path) -> bool:
    """Whether ``run`` holds a (finished or interrupted) run: its config.json is there."""
    return (Path(run) / CONFIG_FILE).is_file()


def is_finished(run: str | Path) -> bool:
    """Whether the run finished: its final weights and metrics.json (written last) are there."""
    return (Path(run) / METRICS_FILE).is_file() and final_weights_path(run).is_file()


#: What a ``--collect-only`` table reads of a trained run: its figures, not its weights.
RUN_FIGURES = (METRICS_FILE, f"{EVAL_DIR}/{SCORES_FILE}")


def require_figures(folder: str | Path, files: Sequence[str | Path]) -> None:
    """Refuse, naming the folder and each missing file, a finished run or method a ``--collect-only`` table
    cannot read (its figures were copied without its weights, or it was never run)."""
    missing = [Path(folder) / f for f in files if not (Path(folder) / f).is_file()]
    if missing:
        raise ValueError(f"{folder}: no finished run to collect ({', '.join(str(p) for p in missing)} missing); "
                         "run it first (the same command without --collect-only)")


def weights_in(folder: str | Path) -> Path | None:
    """The first of ``WEIGHTS_FILES`` in ``folder``, or None."""
    return next((Path(folder) / n for n in WEIGHTS_FILES if (Path(folder) / n).is_file()), None)


# --- JSON files ------------------------------------------------------------------------------------

def _read_json_object(path: Path, what: str) -> dict[str, Any]:
    if not path.is_file():
        raise FileNotFoundError(f"{what} {path} not found")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{what} {path} is not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise ValueError(f"{what} {path} holds a JSON {type(doc).__name__}, not an object")
    return doc


def read_config(run: str | Path) -> dict[str, Any]:
    """``config.json`` as a plain object, for readers below training (eval, sweep): the settings a run was
    trained with, checked for the keys they read (``data``, ``fold``, ``folds``). Training itself reads the
    same file typed (``TrainConfig.read``)."""
    path = Path(run) / CONFIG_FILE
    doc = _read_json_object(path, "training config")
    if not isinstance(doc.get("data"), str):
        raise ValueError(f"training config {path} lacks the data set 'data' (a path)")
    for key in ("fold", "folds"):
        if not isinstance(doc.get(key), int) or isinstance(doc.get(key), bool):
            raise ValueError(f"training config {path} lacks '{key}' (an integer)")
    return doc


def read_split(run: str | Path) -> dict[str, Any]:
    """``split.json``: ``n``, ``indices`` and ``ids`` (each with ``SPLIT_PARTS``), fold, folds, seed, mask fraction."""
    path = Path(run) / SPLIT_FILE
    doc = _read_json_object(path, "split")
    if not isinstance(doc.get("n"), int):
        raise ValueError(f"split {path} lacks the data-set size 'n' (an integer)")
    for key, kind in (("indices", int), ("ids", str)):
        part = doc.get(key)
        bad = [p for p in SPLIT_PARTS if not isinstance(part, dict) or not isinstance(part.get(p), list)
               or not all(isinstance(v, kind) and not isinstance(v, bool) for v in part[p])]
        if bad:
            raise ValueError(f"split {path}: '{key}' needs lists of {kind.__name__} for {', '.join(SPLIT_PARTS)} "
                             f"(bad or missing: {', '.join(bad)})")
        if key == "indices" and any(not 0 <= i < doc["n"] for p in SPLIT_PARTS for i in part[p]):
            raise ValueError(f"split {path}: an index lies outside 0..{doc['n'] - 1}")
    return doc


def write_split(run: str | Path, split: Mapping[str, Any]) -> Path:
    return atomic_write_json(Path(run) / SPLIT_FILE, dict(split))


def read_metrics(folder: str | Path) -> dict[str, Any]:
    """``metrics.json`` of a run folder (``test`` + the run's facts) or of an evaluation folder (the figures)."""
    return _read_json_object(Path(folder) / METRICS_FILE, "metrics")


def write_metrics(folder: str | Path, metrics: Mapping[str, Any]) -> Path:
    return atomic_write_json(Path(folder) / METRICS_FILE, dict(metrics))


def pseudo_masks_done(run: str | Path) -> bool:
    """Whether every pseudo mask is on disk (the marker is written after the last one)."""
    return (Path(run) / PSEUDO_MARKER).is_file()


def read_pseudo_marker(run: str | Path) -> dict[str, Any]:
    """``pseudo_masks.json``: how many masks, the threshold, and the stage-one weights they came from."""
    return _read_json_object(Path(run) / PSEUDO_MARKER, "pseudo-mask marker")


def write_pseudo_marker(run: str | Path, marker: Mapping[str, Any]) -> Path:
    return atomic_write_json(Path(run) / PSEUDO_MARKER, dict(marker))


# --- the logs --------------------------------------------------------------------------------------

def write_logs(run: str | Path, rows: Sequence[Mapping[str, Any]], fields: Sequence[str]) -> None:
    """``log.csv`` (``fields`` as columns, floats to 6 significant digits) and ``log.jsonl`` (every row whole)."""
    lines = [",".join(fields)]
    for r in rows:
        lines.append(",".join("" if r.get(k) is None else (f"{r[k]:.6g}" if isinstance(r[k], float) else str(r[k]))
                              for k in fields))
    atomic_write_text(Path(run) / LOG_CSV, "\n".join(lines) + "\n")
    atomic_write_text(Path(run) / LOG_JSONL, "".join(json.dumps(dict(r)) + "\n" for r in rows))


def read_log(run: str | Path) -> list[dict[str, Any]]:
    """The rows of ``log.jsonl``; ValueError names the line that is not a JSON object."""
    path = Path(run) / LOG_JSONL
    if not path.is_file():
        raise FileNotFoundError(f"log {path} not found")
    rows = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"log {path} line {n} is not valid JSON: {exc}") from None
        if not isinstance(row, dict):
            raise ValueError(f"log {path} line {n} holds a JSON {type(row).__name__}, not an object")
        rows.append(row)
    return rows


# --- score arrays ----------------------------------------------------------------------------------

def _write_npz(path: Path, arrays: dict[str, np.ndarray]) -> Path:
    n = {k: len(v) for k, v in arrays.items()}
    if len(set(n.values())) > 1:
        raise ValueError(f"{path}: arrays of different lengths {n}")

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as fh:  # a file object: np.savez would append .npz to the temporary name
            np.savez_compressed(fh, **arrays)

    return atomic_write(path, write)


def _read_npz(path: Path, keys: Sequence[str], what: str) -> dict[str, np.ndarray]:
    if not path.is_file():
        raise FileNotFoundError(f"{what} {path} not found")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise ValueError(f"{what} {path} is not a readable .npz file: {exc}") from None
    missing = [k for k in keys if k not in arrays]
    if missing:
        raise ValueError(f"{what} {path} lacks {', '.join(missing)} (has {', '.join(sorted(arrays)) or 'nothing'})")
    shapes = {k: v.shape for k, v in arrays.items()}
    if any(len(s) != 1 for s in shapes.values()) or len({s[0] for s in shapes.values()}) > 1:
        raise ValueError(f"{what} {path}: expected 1-D arrays of one length, got shapes {shapes}")
    return arrays


def write_scores(folder: str | Path, ids: Sequence[str], labels: np.ndarray, scores: np.ndarray,
                 predictions: np.ndarray | None = None) -> Path:
    """``scores.npz``: the test images' ids, labels and scores (and a rule's own 0/1 ``predictions``)."""
    arrays = {"ids": np.asarray(ids), "labels": np.asarray(labels), "scores": np.asarray(scores)}
    if predictions is not None:
        arrays["predictions"] = np.asarray(predictions)
    return _write_npz(Path(folder) / SCORES_FILE, arrays)


def read_scores(folder: str | Path) -> dict[str, np.ndarray]:
    """An evaluation folder's ``scores.npz`` as arrays (``SCORES_KEYS``, + ``predictions`` where written)."""
    return _read_npz(Path(folder) / SCORES_FILE, SCORES_KEYS, "scores")


def write_end_to_end(folder: str | Path, ids: Sequence[str], labels: np.ndarray, scores: np.ndarray,
                     found: np.ndarray, iou: np.ndarray) -> Path:
    """``end_to_end.npz``: per whole frame the locator-crop score, whether a nodule was found, the box IoU."""
    return _write_npz(Path(folder) / END_TO_END_FILE, {"ids": np.asarray(ids), "labels": np.asarray(labels),
                                                       "scores": np.asarray(scores), "found": np.asarray(found),
                                                       "iou": np.asarray(iou)})


def read_end_to_end(folder: str | Path) -> dict[str, np.ndarray]:
    return _read_npz(Path(folder) / END_TO_END_FILE, END_TO_END_KEYS, "end-to-end scores")
