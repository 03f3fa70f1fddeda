"""Paired per-fold differences: each method (or mask fraction) minus a reference, fold by fold.

Why its own module: ``compare`` (Table 2, against CS-AGnet) and ``sweep`` (Table 1, against the default
p) both report them, paired on the same test images, so a fold-to-fold spread does not hide a
consistent gap; the summary they take is compare's (``{"methods": {name: {"per_fold": [{"fold", metric...}]}}}``).
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np

PAIRED_METRICS = ("auc", "accuracy", "sensitivity", "specificity")


def paired_differences(summary: dict[str, Any], reference: str) -> dict[str, Any]:
    """Per method: fold-by-fold ``method - reference`` of each metric, their mean and std, and the folds
    on which the reference's AUC (and accuracy) is higher. Folds where either value is missing are left out."""
    ref = {f["fold"]: f for f in summary["methods"][reference]["per_fold"]}
    out: dict[str, Any] = {}
    for m, e in summary["methods"].items():
        if m == reference:
            continue
        entry: dict[str, Any] = {}
        for key in PAIRED_METRICS:
            d = [f[key] - ref[f["fold"]][key] for f in e["per_fold"]
                 if f.get(key) is not None and ref.get(f["fold"], {}).get(key) is not None]
            v = np.asarray(d, np.float64)
            entry[key] = {"per_fold": [float(x) for x in v], "mean": float(v.mean()) if v.size else None,
                          "std": float(v.std(ddof=1)) if v.size > 1 else None,
                          "reference_higher": int((v < 0).sum()), "n_folds": int(v.size)}
        out[m] = entry
    return out


def format_paired(paired: dict[str, Any], reference: str) -> str:
    """Markdown: the paired per-fold differences against ``reference`` and a plain verdict per method."""
    buf = io.StringIO()
    buf.write(f"\nPaired per-fold differences, method − {reference} (mean ± std over folds; negative: {reference} "
              f"is higher), and on how many folds {reference} is higher:\n\n| method | ΔAUC | Δaccuracy | Δsensitivity | "
              f"Δspecificity | {reference} higher (AUC / accuracy) |\n|---|---|---|---|---|---|\n")
    for m, e in paired.items():
        cells = []
        for key in PAIRED_METRICS:
            f = e[key]
            cells.append("-" if f["mean"] is None else (f"{f['mean']:+.3f}" if f["std"] is None else
                                                         f"{f['mean']:+.3f} ± {f['std']:.3f}"))
        a, c = e["auc"], e["accuracy"]
        buf.write(f"| {m} | " + " | ".join(cells) + f" | {a['reference_higher']}/{a['n_folds']} / "
                  f"{c['reference_higher']}/{c['n_folds']} |\n")
    buf.write("\n")
    for m, e in paired.items():
        a = e["auc"]
        if a["mean"] is None:
            continue
        verdict = "higher" if a["mean"] < 0 else "lower" if a["mean"] > 0 else "equal"
        buf.write(f"- {reference} vs {m}: {reference}'s AUC is {verdict} on average ({-a['mean']:+.3f}), higher on "
                  f"{a['reference_higher']} of {a['n_folds']} folds.\n")
    return buf.getvalue()
