"""Figures per subgroup: which positives a model finds and which negatives fool it.

Read from the data-set folder beside ``labels.csv``, where present:

* ``labels.csv`` column ``kinds`` (phantom: ``micro``, ``macro|rim`` ...) or ``kind`` (DDTI: micro /
  macro / none): each positive counts under every kind it holds;
* ``meta.jsonl`` (phantom): ``low_contrast`` (positives) and ``confounders`` (negatives).

Positives: n, sensitivity at the threshold, AUC of that subgroup against *all* negatives (so the
figures compare). Negatives: n and specificity per confounder. Nothing is reported for a data set
that carries none of these columns.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from edgecalc.eval.metrics import THRESHOLD, roc_auc


def patient_groups(data_dir: str | Path | None, ids: Sequence[str]) -> np.ndarray | None:
    """The ``patient`` column of labels.csv for ``ids``, when every one of them has it; else None."""
    if data_dir is None or not (Path(data_dir) / "labels.csv").is_file():
        return None
    rows = _rows(Path(data_dir))
    vals = [(rows.get(i, {}).get("patient") or "").strip() for i in ids]
    return np.asarray(vals) if vals and all(vals) else None


def _rows(data_dir: Path) -> dict[str, dict[str, str]]:
    with (data_dir / "labels.csv").open(newline="", encoding="utf-8-sig") as fh:
        return {r["id"]: r for r in csv.DictReader(fh)}


def _meta(data_dir: Path) -> dict[str, dict[str, Any]]:
    path = data_dir / "meta.jsonl"
    if not path.is_file():
        return {}
    out = {}
    for line in path.read_text().splitlines():
        if line.strip():
            rec = json.loads(line)
            out[str(rec.get("id"))] = rec
    return out


def _positive_group(scores: np.ndarray, labels: np.ndarray, members: np.ndarray, threshold: float) -> dict[str, Any]:
    neg = labels == 0
    pos = members & (labels == 1)
    n = int(pos.sum())
    entry: dict[str, Any] = {"n": n, "sensitivity": float((scores[pos] > threshold).mean()) if n else None}
    if n and neg.any():
        keep = pos | neg
        entry["auc_vs_all_negatives"] = roc_auc(labels[keep], scores[keep])
    return entry


def subgroup_figures(data_dir: str | Path, ids: Sequence[str], labels: np.ndarray, scores: np.ndarray,
                     threshold: float = THRESHOLD) -> dict[str, Any]:
    """``{"positives_by_kind": {...}, "positives_by_contrast": {...}, "negatives_by_confounder": {...}}`` (present keys only)."""
    data_dir = Path(data_dir)
    labels = np.asarray(labels).astype(np.int64)
    scores = np.asarray(scores, dtype=np.float64)
    if not (data_dir / "labels.csv").is_file():
        return {}
    rows, meta = _rows(data_dir), _meta(data_dir)
    out: dict[str, Any] = {}
    column = next((c for c in ("kinds", "kind") if rows and c in next(iter(rows.values()))), None)
    if column is not None:
        kinds = [set(k for k in (rows.get(i, {}).get(column) or "").split("|") if k and k != "none") for i in ids]
        names = sorted(set().union(*kinds)) if kinds else []
        out["positives_by_kind"] = {k: _positive_group(scores, labels, np.array([k in s for s in kinds]), threshold)
                                    for k in names}
    if meta:
        low = np.array([bool(meta.get(i, {}).get("low_contrast")) for i in ids])
        out["positives_by_contrast"] = {"low_contrast": _positive_group(scores, labels, low, threshold),
                                        "normal": _positive_group(scores, labels, ~low, threshold)}
        conf = [set(meta.get(i, {}).get("confounders") or []) for i in ids]
        neg = labels == 0
        by: dict[str, Any] = {}
        for name in sorted(set().union(*conf)) if conf else []:
            members = np.array([name in c for c in conf]) & neg
            if members.any():
                by[name] = {"n": int(members.sum()), "specificity": float((scores[members] <= threshold).mean())}
        none = np.array([not c for c in conf]) & neg
        if none.any():
            by["(none)"] = {"n": int(none.sum()), "specificity": float((scores[none] <= threshold).mean())}
        out["negatives_by_confounder"] = by
    return out


def format_subgroups(fig: dict[str, Any]) -> list[tuple[str, str]]:
    """Rows (label, value) for the evaluation table."""
    rows = []
    for key, title in (("positives_by_kind", "positives, kind"), ("positives_by_contrast", "positives, contrast")):
        for name, e in fig.get(key, {}).items():
            auc = e.get("auc_vs_all_negatives")
            sens = e.get("sensitivity")
            rows.append((f"{title} {name} (n {e['n']})",
                         f"sens {'-' if sens is None else f'{sens:.3f}'}, AUC vs negatives {'-' if auc is None else f'{auc:.3f}'}"))
    for name, e in fig.get("negatives_by_confounder", {}).items():
        rows.append((f"negatives with {name} (n {e['n']})", f"spec {e['specificity']:.3f}"))
    return rows
