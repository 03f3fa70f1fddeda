"""The focus verifier: gradient-boosted trees that keep the focus candidates (``focus_candidates``) that
are echogenic foci, run in numpy (no torch, no scikit-learn), and the new foci they add to the mask.

Why: the model's mask misses dim foci that the crop's own pixels still show (docs/quantification.md,
"A second look at the crop's pixels"). The trees are fitted by ``edgecalc fit-verifier`` on a phantom's
candidates through one bundle's model (its probabilities are features), so they live in that bundle:
``BUNDLE/focus_verifier.safetensors`` (the trees' nodes) and the manifest's ``focus_verifier`` entry
(threshold, features, provenance). A verified candidate adds its half-maximum blob to the refined
mask only where the blob touches none of the mask's components: a focus already counted keeps its
own size, and the count grows by the foci the model missed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edgecalc.runtime.focus_candidates import FEATURES, blobs_mask, candidates

VERIFIER_FILE = "focus_verifier.safetensors"
#: The node arrays the file holds (every tree's nodes one after the other; ``roots``: each tree's first).
NODE_ARRAYS = ("feature", "threshold", "left", "right", "value", "is_leaf", "missing_left", "roots", "baseline")
#: The candidate features the trees read, in their column order (``FEATURES`` less the pixel position).
VERIFIER_FEATURES = tuple(n for n in FEATURES if n not in ("y", "x"))


class VerifierError(ValueError):
    """The verifier file or its manifest entry is missing, malformed, or for other features (says which)."""


@dataclass(frozen=True)
class TreeEnsemble:
    """A binary gradient-boosted tree ensemble: probability = sigmoid(baseline + sum of leaf values)."""

    feature: np.ndarray  #: int32, per node: the column it splits on
    threshold: np.ndarray  #: float64: go left when the value <= threshold
    left: np.ndarray  #: int32: child indices, relative to the tree's root
    right: np.ndarray
    value: np.ndarray  #: float64: a leaf's contribution
    is_leaf: np.ndarray  #: bool
    missing_left: np.ndarray  #: bool: where a NaN goes
    roots: np.ndarray  #: int64: each tree's first node
    baseline: float

    def predict(self, X: np.ndarray) -> np.ndarray:
        """The probability of the positive class for each row of ``X`` (n x features)."""
        X = np.asarray(X, dtype=np.float64)
        n = X.shape[0]
        if n == 0:
            return np.zeros(0)
        node = np.broadcast_to(self.roots, (n, len(self.roots))).copy()  # every tree at once
        rows = np.arange(n)[:, None]
        while True:
            leaf = self.is_leaf[node]
            if leaf.all():
                break
            x = X[rows, self.feature[node]]
            go_left = np.where(np.isnan(x), self.missing_left[node], x <= self.threshold[node])
            child = np.where(go_left, self.left[node], self.right[node])
            node = np.where(leaf, node, self.roots[None, :] + child)
        raw = self.baseline + self.value[node].sum(axis=1)
        return 1.0 / (1.0 + np.exp(-raw))

    def arrays(self) -> dict[str, np.ndarray]:
        return {name: np.atleast_1d(np.asarray(getattr(self, name))) for name in NODE_ARRAYS}

    @classmethod
    def from_arrays(cls, a: dict[str, np.ndarray], source: str = "the trees") -> "TreeEnsemble":
        missing = [k for k in NODE_ARRAYS if k not in a]
        if missing:
            raise VerifierError(f"{source} lacks {', '.join(missing)}")
        sizes = {len(a[k]) for k in ("feature", "threshold", "left", "right", "value", "is_leaf", "missing_left")}
        if len(sizes) != 1 or a["roots"].size == 0:
            raise VerifierError(f"{source}: the node arrays differ in length or there is no tree")
        return cls(a["feature"].astype(np.int32), a["threshold"].astype(np.float64), a["left"].astype(np.int32),
                   a["right"].astype(np.int32), a["value"].astype(np.float64), a["is_leaf"].astype(bool),
                   a["missing_left"].astype(bool), a["roots"].astype(np.int64), float(a["baseline"].reshape(-1)[0]))


@dataclass(frozen=True)
class FocusVerifier:
    """The trees and the probability at or above which a candidate is a focus."""

    trees: TreeEnsemble
    threshold: float

    def verified(self, gray: np.ndarray, prob: np.ndarray, nodule: np.ndarray, mm_per_px: float) -> np.ndarray:
        """The pixels (n x 2) of the candidates the trees call foci."""
        peaks, f = candidates(gray, prob, nodule, mm_per_px)
        if len(peaks) == 0:
            return peaks
        cols = [FEATURES.index(n) for n in VERIFIER_FEATURES]
        return peaks[self.trees.predict(f[:, cols]) >= self.threshold]

    def add_new_foci(self, mask: np.ndarray, gray: np.ndarray, prob: np.ndarray, nodule: np.ndarray,
                     mm_per_px: float) -> np.ndarray:
        """``mask`` (bool) with the half-maximum blobs of the verified candidates that touch none of its
        components (nor, through their own blobs, one that does)."""
        if not np.asarray(nodule).any():
            return mask
        peaks = self.verified(gray, prob, np.asarray(nodule, bool), mm_per_px)
        if len(peaks) == 0:
            return mask
        added = blobs_mask(gray, peaks, mm_per_px)
        _, labels = cv2.connectedComponents(added.astype(np.uint8), connectivity=8)
        near = cv2.dilate(mask.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
        touching = np.unique(labels[near & added])
        return mask | (added & ~np.isin(labels, touching))


def load_verifier(bundle_dir: str | Path, entry: dict[str, Any] | None) -> FocusVerifier | None:
    """The bundle's verifier from its manifest's ``focus_verifier`` entry (None: the bundle has none)."""
    if entry is None:
        return None
    from safetensors.numpy import load_file

    path = Path(bundle_dir) / str(entry.get("file", VERIFIER_FILE))
    features = tuple(entry.get("features", ()))
    if features != VERIFIER_FEATURES:
        raise VerifierError(f"{path}: fitted on features {list(features)}, this edgecalc computes "
                            f"{list(VERIFIER_FEATURES)}; fit it again with `edgecalc fit-verifier`")
    threshold = entry.get("threshold")
    if not isinstance(threshold, (int, float)) or not 0.0 < float(threshold) < 1.0:
        raise VerifierError(f"{path}: the manifest's focus_verifier.threshold must lie in (0, 1); got {threshold!r}")
    try:
        arrays = load_file(str(path))
    except (OSError, ValueError) as exc:  # missing file, bad header
        raise VerifierError(f"{path}: {exc}") from None
    return FocusVerifier(TreeEnsemble.from_arrays(arrays, str(path)), float(threshold))
