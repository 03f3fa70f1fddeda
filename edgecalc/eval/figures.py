"""Figures (matplotlib, Agg backend, no display needed): ROC curves, attention panels, the methods' attention grid."""

from __future__ import annotations

import textwrap

from pathlib import Path
from typing import Mapping, Sequence

import numpy as np


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    from edgecalc.atomic import atomic_write

    return atomic_write(Path(path), lambda p: fig.savefig(p, dpi=110, bbox_inches="tight", format="png"))


def roc_figure(curves: Mapping[str, tuple[np.ndarray, np.ndarray, float]], path: str | Path, title: str = "ROC") -> Path:
    """One ROC curve per entry ``name -> (fpr, tpr, auc)``; calcification = positive."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 5))
    for i, (name, (fpr, tpr, auc)) in enumerate(curves.items()):
        # the colour cycle holds 10: past it the line style changes, so no two curves look alike
        ax.plot(fpr, tpr, lw=1.6, ls=("-", "--", ":", "-.")[(i // 10) % 4], label=f"{name} (AUC {auc:.3f})")
    ax.plot([0, 1], [0, 1], ls="--", lw=0.8, color="grey")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    ax.set_xlabel("false-positive rate (1 - specificity)")
    ax.set_ylabel("true-positive rate (sensitivity)")
    ax.set_title(title)
    ax.legend(loc="lower right", fontsize=8)
    try:
        return _save(fig, Path(path))
    finally:
        plt.close(fig)


def attention_figure(
    images: np.ndarray,
    true_masks: np.ndarray,
    attention: np.ndarray,
    pred_masks: np.ndarray,
    scores: np.ndarray,
    labels: np.ndarray,
    ids: Sequence[str],
    path: str | Path,
    map_names: Sequence[str] = ("Grid-AG 1", "Grid-AG 2", "Grid-AG 3"),
) -> Path:
    """One row per image: input, true mask, the three attention maps (CS-AGnet: Grid-AG 1, 2, 3;
    ``map_names`` for other networks), predicted mask; score and label in the title.

    ``images``/``true_masks``/``pred_masks`` (N, 1, H, W); ``attention`` (N, 3, H, W).
    """
    plt = _plt()
    n = images.shape[0]
    cols = ["input", "true mask", *map_names, "predicted mask"]
    fig, axes = plt.subplots(max(n, 1), len(cols), figsize=(2.0 * len(cols), 2.1 * max(n, 1)), squeeze=False)
    for r in range(n):
        panels = [images[r, 0], true_masks[r, 0], attention[r, 0], attention[r, 1], attention[r, 2], pred_masks[r, 0]]
        for c, (name, panel) in enumerate(zip(cols, panels)):
            ax = axes[r, c]
            cmap = "gray" if c in (0, 1, 5) else "jet"
            ax.imshow(panel, cmap=cmap, vmin=0, vmax=1, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(name, fontsize=9)
        truth = "calcification" if int(labels[r]) == 1 else "none"
        axes[r, 0].set_ylabel(f"{ids[r]}\ntrue: {truth}\nscore {float(scores[r]):.3f}", fontsize=8)
    try:
        return _save(fig, Path(path))
    finally:
        plt.close(fig)


#: Characters per line of an attention-grid column title (a column is about 1.7 inches at fontsize 7).
GRID_TITLE_CHARS = 22


def attention_grid(
    images: np.ndarray,
    true_masks: np.ndarray,
    maps: Mapping[str, tuple[str, np.ndarray, np.ndarray]],
    labels: np.ndarray,
    ids: Sequence[str],
    path: str | Path,
) -> Path:
    """The paper's Fig. 10: one row per image; input, true mask, then one column per method's map.

    ``images``/``true_masks`` (N, 1, H, W) at one display size; ``maps``: method -> (what the map is,
    maps (N, H', W') in [0, 1], scores (N,)), each map resized bilinearly to H x W for display.
    """
    from edgecalc.eval.attention import resize_bilinear

    plt = _plt()
    n, size = images.shape[0], images.shape[-2:]
    cols = ["input", "true mask", *maps]
    fig, axes = plt.subplots(max(n, 1), len(cols), figsize=(1.9 * len(cols), 2.0 * max(n, 1) + 0.4), squeeze=False)
    for r in range(n):
        panels = [images[r, 0], true_masks[r, 0]] + [resize_bilinear(m[1][r], size) for m in maps.values()]
        for c, panel in enumerate(panels):
            ax = axes[r, c]
            ax.imshow(panel, cmap="gray" if c < 2 else "jet", vmin=0, vmax=1, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if c >= 2:
                ax.set_xlabel(f"score {float(list(maps.values())[c - 2][2][r]):.2f}", fontsize=7)
        truth = "calcification" if int(labels[r]) == 1 else "none"
        axes[r, 0].set_ylabel(f"{ids[r]}\ntrue: {truth}", fontsize=7)
    for c, name in enumerate(cols):
        # the map's name wrapped to the column's width: long names ("CAM of the finest scale's head") overlapped
        title = name if c < 2 else name + "\n" + textwrap.fill(f"({maps[name][0]})", GRID_TITLE_CHARS)
        axes[0, c].set_title(title, fontsize=7)
    try:
        return _save(fig, Path(path))
    finally:
        plt.close(fig)
