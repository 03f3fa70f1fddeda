"""A fixed, seeded train/validation split of the DDTI frames, grouped by original frame.

Ids 1xxxx and 2xxxx sharing their last four digits are the two halves of one dual-window frame
(data README): a split that put one half in training and the other in validation would score the
locator on a frame it has half seen. The split is written once as JSON (ids only) and read back by
training and evaluation, so both always agree. numpy only.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from edgecalc.atomic import atomic_write_json

SPLIT_FORMAT = "edgecalc-locator-split"


def group_of(frame_id: int) -> str:
    """The original frame an id comes from: halves of a dual-window frame share a group."""
    return f"dual-{frame_id % 10000}" if frame_id >= 10000 else f"single-{frame_id}"


def make_split(ids: list[int], val_share: float = 0.2, seed: int = 0) -> dict[str, list[int]]:
    """Shuffle the groups with ``seed`` and put the first ``val_share`` of the frames in validation."""
    if not 0.0 < val_share < 1.0:
        raise ValueError(f"val_share must lie in (0, 1), got {val_share}")
    groups: dict[str, list[int]] = {}
    for i in sorted(ids):
        groups.setdefault(group_of(i), []).append(i)
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


def write_split(path: str | Path, split: dict[str, list[int]], seed: int, val_share: float) -> None:
    """Write the split JSON atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {"format": SPLIT_FORMAT, "seed": seed, "val_share": val_share,
           "grouping": "ids >= 10000 grouped by id % 10000 (the two halves of a dual-window frame)",
           "train": split["train"], "val": split["val"]}
    atomic_write_json(path, doc, indent=1)


def read_split(path: str | Path) -> dict[str, list[int]]:
    """The split's train and val ids; ValueError naming the file when it is malformed or leaks a group."""
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
    return {"train": train, "val": val}
