"""Classification and segmentation metrics (numpy only, so export parity reports can reuse them).

Calcification is the positive class (label 1), as in the paper. A prediction is positive when the
final softmax's calcification probability exceeds 0.5 (= the argmax of the two-class softmax; a tie
goes to class 0, as ``argmax`` does). AUC is the rank statistic (Mann-Whitney U / (n_pos * n_neg))
with tied scores counted one half, which equals the trapezoidal area under the ROC curve.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

THRESHOLD = 0.5


def _labels(labels: Any, name: str = "labels") -> np.ndarray:
    y = np.asarray(labels).reshape(-1)
    if y.size == 0:
        raise ValueError(f"{name} is empty: nothing to evaluate")
    if not np.isin(y, (0, 1)).all():
        bad = np.unique(y[~np.isin(y, (0, 1))])[:5]
        raise ValueError(f"{name} must be 0 (no calcification) or 1 (calcification); found {bad.tolist()}")
    return y.astype(np.int64)


def _scores(scores: Any, n: int) -> np.ndarray:
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    if s.size != n:
        raise ValueError(f"{s.size} scores for {n} labels")
    if not np.isfinite(s).all():
        raise ValueError(f"scores contain {int((~np.isfinite(s)).sum())} NaN/inf value(s)")
    return s


def _need_both_classes(y: np.ndarray, what: str) -> None:
    n_pos = int(y.sum())
    if n_pos == 0 or n_pos == y.size:
        only = "positive (calcification)" if n_pos else "negative (no calcification)"
        raise ValueError(
            f"{what} needs both classes, but all {y.size} labels are {only}; evaluate on a set "
            "with calcified and non-calcified nodules"
        )


def confusion_matrix(labels: Any, predictions: Any) -> np.ndarray:
    """2 x 2 counts ``[[TN, FP], [FN, TP]]`` (rows: true class 0, 1; columns: predicted 0, 1)."""
    y = _labels(labels)
    p = _labels(predictions, "predictions")
    if p.size != y.size:
        raise ValueError(f"{p.size} predictions for {y.size} labels")
    cm = np.zeros((2, 2), dtype=np.int64)
    np.add.at(cm, (y, p), 1)
    return cm


def predict(scores: Any, threshold: float = THRESHOLD) -> np.ndarray:
    """Class predictions from calcification probabilities: 1 where score > threshold."""
    return (np.asarray(scores, dtype=np.float64).reshape(-1) > threshold).astype(np.int64)


def accuracy(labels: Any, predictions: Any) -> float:
    cm = confusion_matrix(labels, predictions)
    return float((cm[0, 0] + cm[1, 1]) / cm.sum())


def sensitivity(labels: Any, predictions: Any) -> float:
    """TP / (TP + FN): the share of calcified nodules found. ValueError without positives."""
    cm = confusion_matrix(labels, predictions)
    if cm[1].sum() == 0:
        raise ValueError("sensitivity needs at least one positive (calcification) label; there is none")
    return float(cm[1, 1] / cm[1].sum())


def specificity(labels: Any, predictions: Any) -> float:
    """TN / (TN + FP): the share of non-calcified nodules cleared. ValueError without negatives."""
    cm = confusion_matrix(labels, predictions)
    if cm[0].sum() == 0:
        raise ValueError("specificity needs at least one negative (no calcification) label; there is none")
    return float(cm[0, 0] / cm[0].sum())


def _average_ranks(x: np.ndarray) -> np.ndarray:
    """1-based ranks with ties given their average rank."""
    order = np.argsort(x, kind="mergesort")
    xs = x[order]
    boundaries = np.flatnonzero(np.diff(xs)) + 1
    starts = np.concatenate(([0], boundaries))
    ends = np.concatenate((boundaries, [xs.size]))
    ranks_sorted = np.repeat((starts + ends + 1) / 2.0, ends - starts)
    ranks = np.empty_like(ranks_sorted)
    ranks[order] = ranks_sorted
    return ranks


def roc_auc(labels: Any, scores: Any) -> float:
    """Area under the ROC curve of ``scores`` (higher = calcification), ties counted one half."""
    y = _labels(labels)
    s = _scores(scores, y.size)
    _need_both_classes(y, "AUC")
    n_pos = int(y.sum())
    n_neg = y.size - n_pos
    r = _average_ranks(s)
    u = r[y == 1].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def roc_curve(labels: Any, scores: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(false-positive rates, true-positive rates, thresholds), from (0, 0) to (1, 1).

    One point per distinct score (descending); ``thresholds[0]`` is +inf (nothing predicted positive).
    """
    y = _labels(labels)
    s = _scores(scores, y.size)
    _need_both_classes(y, "an ROC curve")
    order = np.argsort(-s, kind="mergesort")
    s_sorted, y_sorted = s[order], y[order]
    last_of_run = np.r_[np.flatnonzero(np.diff(s_sorted)), s_sorted.size - 1]
    tps = np.cumsum(y_sorted)[last_of_run]
    fps = (last_of_run + 1) - tps
    tpr = np.r_[0.0, tps / y.sum()]
    fpr = np.r_[0.0, fps / (y.size - y.sum())]
    thresholds = np.r_[np.inf, s_sorted[last_of_run]]
    return fpr, tpr, thresholds


def _binary_masks(pred: Any, true: Any, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(pred)
    t = np.asarray(true)
    if p.shape != t.shape:
        raise ValueError(f"predicted masks {p.shape} and true masks {t.shape} differ in shape")
    if p.ndim < 2:
        raise ValueError(f"masks need at least 2 dimensions (H, W); got shape {p.shape}")
    p = p.reshape((-1,) + p.shape[-2:]) if p.ndim > 2 else p[None]
    t = t.reshape((-1,) + t.shape[-2:]) if t.ndim > 2 else t[None]
    return p.astype(np.float64) > threshold, t.astype(np.float64) > threshold


def dice_per_image(pred: Any, true: Any, threshold: float = THRESHOLD) -> np.ndarray:
    """Dice 2|P∩T| / (|P| + |T|) per image of (N, ..., H, W) masks; 1.0 where both are empty."""
    p, t = _binary_masks(pred, true, threshold)
    inter = (p & t).sum(axis=(1, 2)).astype(np.float64)
    total = p.sum(axis=(1, 2)) + t.sum(axis=(1, 2))
    return np.where(total == 0, 1.0, 2 * inter / np.maximum(total, 1))


def iou_per_image(pred: Any, true: Any, threshold: float = THRESHOLD) -> np.ndarray:
    """IoU |P∩T| / |P∪T| per image; 1.0 where both are empty."""
    p, t = _binary_masks(pred, true, threshold)
    inter = (p & t).sum(axis=(1, 2)).astype(np.float64)
    union = (p | t).sum(axis=(1, 2))
    return np.where(union == 0, 1.0, inter / np.maximum(union, 1))


@dataclass(frozen=True)
class ClassificationReport:
    """The paper's four figures plus the confusion matrix and the counts behind them."""

    accuracy: float
    sensitivity: float
    specificity: float
    auc: float
    confusion_matrix: list[list[int]]  #: [[TN, FP], [FN, TP]]
    n: int
    n_positive: int
    threshold: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def classification_report(labels: Any, scores: Any, threshold: float = THRESHOLD) -> ClassificationReport:
    """Accuracy, sensitivity, specificity (at ``score > threshold``) and AUC.

    Raises ValueError with a plain message when the labels hold a single class.
    """
    y = _labels(labels)
    s = _scores(scores, y.size)
    _need_both_classes(y, "a classification report (sensitivity, specificity, AUC)")
    pred = predict(s, threshold)
    cm = confusion_matrix(y, pred)
    return ClassificationReport(
        accuracy=accuracy(y, pred),
        sensitivity=sensitivity(y, pred),
        specificity=specificity(y, pred),
        auc=roc_auc(y, s),
        confusion_matrix=cm.tolist(),
        n=int(y.size),
        n_positive=int(y.sum()),
        threshold=float(threshold),
    )


def bootstrap_ci(
    labels: Any,
    scores: Any,
    metric: str = "auc",
    n_boot: int = 2000,
    seed: int = 0,
    groups: Any = None,
    level: float = 0.95,
    threshold: float = THRESHOLD,
) -> tuple[float, float]:
    """Percentile bootstrap interval of ``metric`` (``auc`` or ``accuracy``), resampling images or ``groups``.

    With ``groups`` (e.g. patient ids) whole groups are drawn with replacement, so images of one
    patient never count as independent evidence. Resamples holding a single class are redrawn
    (AUC is undefined there). Seeded: the same call gives the same interval.
    """
    y = _labels(labels)
    s = _scores(scores, y.size)
    _need_both_classes(y, "a bootstrap interval")
    if metric not in ("auc", "accuracy"):
        raise ValueError(f"metric must be auc or accuracy, got {metric!r}")
    if groups is None:
        members = None
    else:
        g = np.unique(np.asarray(groups), return_inverse=True)[1]
        order = np.argsort(g, kind="stable")
        members = np.split(order, np.flatnonzero(np.diff(g[order])) + 1)
    rng = np.random.default_rng(seed)
    values: list[float] = []
    tries = 0
    while len(values) < n_boot and tries < 20 * n_boot:
        tries += 1
        if members is None:
            idx = rng.integers(0, y.size, y.size)
        else:
            idx = np.concatenate([members[k] for k in rng.integers(0, len(members), len(members))])
        yb = y[idx]
        if yb.min() == yb.max():
            continue
        values.append(roc_auc(yb, s[idx]) if metric == "auc" else accuracy(yb, predict(s[idx], threshold)))
    lo, hi = np.quantile(np.asarray(values), [(1 - level) / 2, 1 - (1 - level) / 2])
    return float(lo), float(hi)
