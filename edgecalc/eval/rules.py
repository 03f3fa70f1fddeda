"""The paper's brightness rules (Table 2): calcification called from gray levels alone, no training.

Each reads the nodule's pixels of a crop; their thresholds are tuned on training folds and scored on
test folds (``evaluate_rule``; ``edgecalc compare`` methods ``brightness``, ``ci``, ``otsu``), as
the paper tunes them.

* **max-intensity rule** (the calcification index idea of Chen et al.: calcifications are the
  brightest echoes in the nodule) — feature: the maximum gray level inside the nodule after a 3×3
  median (so one speckle pixel is not a "focus"); positive if feature ≥ T, T the threshold with the
  best training accuracy.
* **Otsu rule** (after Choi et al.) — t1 = Otsu threshold of the nodule's pixels, t2 = Otsu threshold
  of the pixels above t1 (the brightest class of a recursive split); feature: area in pixels of the
  largest 8-connected component of nodule pixels ≥ t2 (after the same median); positive if
  feature ≥ A, A tuned like T.
* **CI rule** (Chen et al.'s calcification index, the paper's reference [4]) — the definition of [4]
  could not be found (neither the paper nor the kit's reference search holds it; the paper only
  says CI "quantitatively characterizes the calcification" with brightness thresholds, and Li et
  al. [5] ran a snake on "CI images", so CI is a per-pixel map). Implemented: the CI map is each
  pixel's gray level (after the 3×3 median) divided by the mean gray level of the nodule, i.e. how
  many times brighter than its own nodule a pixel echoes — a gray-scale ratio, as used to quantify
  echogenicity in thyroid ultrasound, and unlike the max-intensity rule independent of the
  scanner's gain; feature: the maximum of the map inside the nodule; positive if ≥ C, C tuned
  like T. Written down so it can be swapped for [4]'s definition when it is at hand.

Real crops come without a nodule outline (``ddti-calc``: the nodule's box grown by 10 %), so
``central_ellipse`` stands in for it: the ellipse inscribed in the crop's central ``share``, with
``share`` tuned on the training folds too (``tune_brightness``).
"""

from __future__ import annotations

from typing import Callable, Sequence

import cv2
import numpy as np

from edgecalc.data.splits import stratified_kfold

#: Candidate shares of the crop side for the stand-in nodule region (tuned on the training folds).
CENTRE_SHARES = (0.4, 0.5, 0.6, 0.7, 0.8, 1.0)


def _otsu(values: np.ndarray) -> float:
    v = np.asarray(values, dtype=np.uint8).reshape(-1, 1)
    if v.size == 0 or v.min() == v.max():
        return float(v.max() if v.size else 0)
    t, _ = cv2.threshold(v, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    return float(t)


def max_intensity_feature(image: np.ndarray, nodule: np.ndarray) -> float:
    """Maximum (3×3-median) gray level inside the nodule."""
    m = cv2.medianBlur(image, 3)
    inside = nodule > 0
    return float(m[inside].max()) if inside.any() else 0.0


def otsu_feature(image: np.ndarray, nodule: np.ndarray) -> float:
    """Area (px) of the largest connected component of the brightest recursive-Otsu class in the nodule."""
    m = cv2.medianBlur(image, 3)
    inside = nodule > 0
    if not inside.any():
        return 0.0
    t1 = _otsu(m[inside])
    upper = m[inside & (m > t1)]
    if upper.size == 0:
        return 0.0
    # a one-valued brightest class (e.g. a saturated calcification) is that class itself, not empty
    bright = (inside & (m >= upper.min() if upper.min() == upper.max() else m > _otsu(upper))).astype(np.uint8)
    n, _, stats, _ = cv2.connectedComponentsWithStats(bright, connectivity=8)
    return float(stats[1:, cv2.CC_STAT_AREA].max()) if n > 1 else 0.0


def calcification_index_feature(image: np.ndarray, nodule: np.ndarray) -> float:
    """Maximum of the CI map (3×3-median gray level / the nodule's mean gray level) inside the nodule."""
    m = cv2.medianBlur(image, 3)
    inside = nodule > 0
    if not inside.any():
        return 0.0
    mean = float(image[inside].mean())
    return float(m[inside].max()) / max(mean, 1.0)


#: The rules ``edgecalc compare`` runs, by method name: the feature read inside the stand-in nodule.
RULE_FEATURES = {"brightness": max_intensity_feature, "ci": calcification_index_feature, "otsu": otsu_feature}


def best_threshold(feature: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """Threshold (positive if feature ≥ T) with the best accuracy on these data; (T, accuracy)."""
    f = np.asarray(feature, dtype=np.float64)
    y = np.asarray(labels).astype(np.int64)
    cands = np.unique(np.concatenate([f, [np.inf]]))
    best = (float(cands[0]), -1.0)
    for t in cands:
        acc = float(np.mean((f >= t).astype(np.int64) == y))
        if acc > best[1]:
            best = (float(t), acc)
    return best


def evaluate_rule(feature: np.ndarray, labels: np.ndarray, k: int = 5, seed: int = 0) -> dict:
    """k-fold: tune on train, score on test. Returns per-fold and mean test accuracy, sens, spec."""
    y = np.asarray(labels).astype(np.int64)
    folds = []
    for tr, te in stratified_kfold(y, k=k, seed=seed):
        t, train_acc = best_threshold(feature[tr], y[tr])
        pred = (feature[te] >= t).astype(np.int64)
        tp = int(np.sum((pred == 1) & (y[te] == 1)))
        tn = int(np.sum((pred == 0) & (y[te] == 0)))
        folds.append({"threshold": t, "train_accuracy": train_acc, "accuracy": float(np.mean(pred == y[te])),
                      "sensitivity": tp / max(1, int(np.sum(y[te] == 1))),
                      "specificity": tn / max(1, int(np.sum(y[te] == 0)))})
    out = {key: float(np.mean([f[key] for f in folds])) for key in ("accuracy", "sensitivity", "specificity")}
    out["accuracy_std"] = float(np.std([f["accuracy"] for f in folds]))
    out["folds"] = folds
    return out


def central_ellipse(shape: tuple[int, ...], share: float) -> np.ndarray:
    """uint8 mask (0/255) of the ellipse inscribed in the central ``share`` of an image of ``shape``."""
    h, w = int(shape[0]), int(shape[1])
    m = np.zeros((h, w), np.uint8)
    axes = (max(1, int(round(w * share / 2))), max(1, int(round(h * share / 2))))
    cv2.ellipse(m, (w // 2, h // 2), axes, 0, 0, 360, 255, -1)
    return m


def centre_features(images: Sequence[np.ndarray], shares: Sequence[float] = CENTRE_SHARES,
                    feature: Callable[[np.ndarray, np.ndarray], float] = max_intensity_feature) -> np.ndarray:
    """(N, len(shares)) ``feature`` (default: max intensity) of 2-D uint8 crops inside each central ellipse."""
    return np.asarray([[feature(im, central_ellipse(im.shape, s)) for s in shares] for im in images], dtype=np.float64)


def tune_brightness(features: np.ndarray, labels: np.ndarray, shares: Sequence[float] = CENTRE_SHARES) -> dict:
    """Pick the share with the best training AUC, then its threshold with the best training accuracy."""
    from edgecalc.eval.metrics import roc_auc

    y = np.asarray(labels).astype(np.int64)
    aucs = [roc_auc(y, features[:, k]) for k in range(features.shape[1])]
    k = int(np.argmax(aucs))
    threshold, train_acc = best_threshold(features[:, k], y)
    return {"share": float(shares[k]), "column": k, "threshold": threshold, "train_auc": float(aucs[k]),
            "train_accuracy": train_acc}
