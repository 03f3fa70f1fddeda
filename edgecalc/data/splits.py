"""Seeded, stratified splits: k-fold cross-validation and the draw of the training images whose masks
may be used (the paper's fraction p). Grouped by patient when known, so no patient straddles a split."""

from __future__ import annotations

import numpy as np


def _groups(labels: np.ndarray, groups) -> tuple[np.ndarray, np.ndarray]:
    """Unique groups and each group's label (a group is positive if any of its images is)."""
    if groups is None:
        g = np.arange(len(labels))
    else:
        g = np.unique(np.asarray(groups).astype(str), return_inverse=True)[1]
    ng = int(g.max()) + 1 if len(g) else 0
    glab = np.zeros(ng, dtype=np.int64)
    np.maximum.at(glab, g, labels)
    return g, glab


def stratified_kfold(labels, k: int = 5, seed: int = 0, groups=None) -> list[tuple[np.ndarray, np.ndarray]]:
    """``k`` (train_idx, test_idx) pairs, class-stratified, deterministic for a seed.

    With ``groups`` (e.g. the ``patient`` column) whole groups go to one fold, stratified by the
    group's label (positive if any image is).
    """
    labels = np.asarray(labels).astype(np.int64)
    if k < 2:
        raise ValueError(f"k={k}: need at least 2 folds")
    g, glab = _groups(labels, groups)
    if len(glab) < k:
        raise ValueError(f"{len(glab)} {'groups' if groups is not None else 'images'} cannot fill {k} folds")
    rng = np.random.default_rng([int(seed), 0x5F])
    fold_of_group = np.empty(len(glab), dtype=np.int64)
    offset = 0
    for c in (0, 1):
        members = rng.permutation(np.flatnonzero(glab == c))
        fold_of_group[members] = (np.arange(len(members)) + offset) % k
        offset += len(members)
    fold = fold_of_group[g]
    idx = np.arange(len(labels))
    return [(idx[fold != f], idx[fold == f]) for f in range(k)]


def draw_mask_subset(train_idx, labels, fraction: float, seed: int, groups=None) -> np.ndarray:
    """The training images whose pixel masks may be used: ``round(fraction · n)`` of ``train_idx``,
    stratified by class, deterministic for a seed; whole patients when ``groups`` is given."""
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction={fraction} must lie in [0, 1]")
    train_idx = np.asarray(train_idx, dtype=np.int64)
    labels = np.asarray(labels).astype(np.int64)
    rng = np.random.default_rng([int(seed), 0xA5])
    if groups is None:
        chosen = []
        for c in (0, 1):
            members = rng.permutation(train_idx[labels[train_idx] == c])
            chosen.append(members[: int(round(fraction * len(members)))])
        return np.sort(np.concatenate(chosen))
    gnames = np.asarray(groups).astype(str)[train_idx]
    uniq, inv = np.unique(gnames, return_inverse=True)
    glab = np.zeros(len(uniq), dtype=np.int64)
    np.maximum.at(glab, inv, labels[train_idx])
    keep = np.zeros(len(uniq), dtype=bool)
    for c in (0, 1):
        members = rng.permutation(np.flatnonzero(glab == c))
        target = fraction * int(np.sum(np.isin(inv, members)))
        count = 0
        for m in members:
            if count >= target - 1e-9:
                break
            keep[m] = True
            count += int(np.sum(inv == m))
    return np.sort(train_idx[keep[inv]])
