"""A fixed, seeded train/validation split of the DDTI frames, grouped by patient (or original frame).

With ``patients.csv`` beside the frames (``id,patient,...``: the DDTI patient of every id) every
frame of a patient lands on one side, so the locator is scored on patients it never saw. Without
it, ids 1xxxx and 2xxxx sharing their last four digits, the two halves of one dual-window frame
(data README), are kept together. The split is written once as JSON (ids only) and read back by
training and evaluation, so both always agree. numpy only.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Callable, Mapping

import numpy as np

from edgecalc.atomic import atomic_write_json

SPLIT_FORMAT = "edgecalc-locator-split"
PATIENTS_FILE = "patients.csv"


def group_of(frame_id: int) -> str:
    """The original frame an id comes from: halves of a dual-window frame share a group."""
    return f"dual-{frame_id % 10000}" if frame_id >= 10000 else f"single-{frame_id}"


def read_patients(root: str | Path) -> dict[int, str] | None:
    """``root/patients.csv`` as id -> patient, or None when the folder has none; ValueError naming a bad row."""
    path = Path(root) / PATIENTS_FILE
    if not path.is_file():
        return None
    out: dict[int, str] = {}
    with path.open(newline="", encoding="utf-8-sig") as fh:
        for line, row in enumerate(csv.DictReader(fh), start=2):
            try:
                out[int(row["id"])] = str(row["patient"]).strip()
            except (KeyError, TypeError, ValueError):
                raise ValueError(f"{path}:{line}: need integer id and a patient, got {row!r}") from None
    return out


def grouping(patients: Mapping[int, str] | None) -> Callable[[int], str]:
    """The group of a frame id: its patient where ``patients`` names it, else its original frame."""
    if not patients:
        return group_of
    return lambda i: f"patient-{patients[i]}" if i in patients else group_of(i)


def make_split(ids: list[int], val_share: float = 0.2, seed: int = 0,
               patients: Mapping[int, str] | None = None) -> dict[str, list[int]]:
    """Shuffle the groups (patients, else original frames) with ``seed``; the first ``val_share`` of the frames go to validation."""
    if not 0.0 < val_share < 1.0:
        raise ValueError(f"val_share must lie in (0, 1), got {val_share}")
    key = grouping(patients)
    groups: dict[str, list[int]] = {}
    for i in sorted(ids):
        groups.setdefault(key(i), []).append(i)
    names = sorted(groups)
    order = np.random.default_rng(seed).permutation(len(names))
    val: list[int] = []
    target = val_share * len(ids)
    for k in order:
        if len(val) >= target:
            break
        val.extend(groups[names[k]])
    val_set = set(val)
    return {"train": sorted(i for i in ids if i not in val_set), "val": sorted(val_set)}


def write_split(path: str | Path, split: dict[str, list[int]], seed: int, val_share: float, by_patient: bool = False) -> None:
    """Write the split JSON atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {"format": SPLIT_FORMAT, "seed": seed, "val_share": val_share,
           "grouping": f"by patient ({PATIENTS_FILE})" if by_patient else
                       "ids >= 10000 grouped by id % 10000 (the two halves of a dual-window frame)",
           "train": split["train"], "val": split["val"]}
    atomic_write_json(path, doc, indent=1)


def read_split(path: str | Path, patients: Mapping[int, str] | None = None) -> dict[str, list[int]]:
    """The split's train and val ids; ValueError naming the file when it is malformed or leaks a group
    (a dual-window frame, or with ``patients`` a patient, on both sides)."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"split file {path} not found") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"split file {path} is not valid JSON: {exc}") from exc
    if doc.get("format") != SPLIT_FORMAT or not isinstance(doc.get("train"), list) or not isinstance(doc.get("val"), list):
        raise ValueError(f"{path} is not an {SPLIT_FORMAT} file with train and val id lists")
    train, val = [int(i) for i in doc["train"]], [int(i) for i in doc["val"]]
    leak = {group_of(i) for i in train} & {group_of(i) for i in val}
    if leak:
        raise ValueError(f"split {path} puts halves of the same frame on both sides: {sorted(leak)[:5]}")
    if patients:
        key = grouping(patients)
        leak = {key(i) for i in train} & {key(i) for i in val}
        if leak:
            raise ValueError(f"split {path} puts frames of the same patient on both sides: {sorted(leak)[:5]} "
                             f"(made before {PATIENTS_FILE} existed? delete it to make a patient-grouped one)")
    return {"train": train, "val": val}
