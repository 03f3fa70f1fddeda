"""Fit the focus verifier (``edgecalc.runtime.focus_verifier``) on a phantom's crops through one bundle's
model, and write it into that bundle (``edgecalc fit-verifier``).

Each crop goes through the cart's crop path (``StillAnalyzer.analyze_crop``: the bundle's model on the
crop with its nodule mask), its focus candidates are found (``edgecalc.runtime.focus_candidates``) with
the model's probabilities among their features, and a candidate is a focus when it lies on a
component of the truth mask (grown by one pixel). All true candidates are kept and a share
``keep_false`` of the false ones (the nodule's texture gives some 50 false candidates for each true
one), drawn with a seeded generator in crop order. Gradient-boosted trees (scikit-learn's
``HistGradientBoostingClassifier``, 300 rounds at most, learning rate 0.1, seed 0) are fitted on them
and stored as plain node arrays (safetensors), which the runtime evaluates in numpy.

The verifier belongs to the model whose probabilities it was fitted on: export new weights and fit
it again (the trees are cheap: minutes on a 4,000-crop phantom).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np

from edgecalc.runtime.focus_candidates import FEATURES, candidates
from edgecalc.runtime.focus_verifier import VERIFIER_FEATURES, VERIFIER_FILE, TreeEnsemble

#: The defaults, chosen on phantom seed 78 (docs/quantification.md, "A second look at the crop's pixels").
THRESHOLD = 0.9
KEEP_FALSE = 0.15
TREE_PARAMS = {"max_iter": 300, "learning_rate": 0.1, "random_state": 0}


def crop_probabilities(analysis, shape: tuple[int, int]) -> np.ndarray:
    """The model's probabilities over a crop's own pixels (0 where the model did not look)."""
    prob = np.zeros(shape, np.float32)
    res = analysis.result
    if res is None or res.prob_map is None or res.prob_map.values.size == 0:
        return prob
    x0, y0 = res.prob_map.origin
    p = res.prob_map.values
    h, w = min(p.shape[0], shape[0] - y0), min(p.shape[1], shape[1] - x0)
    prob[y0:y0 + h, x0:x0 + w] = p[:h, :w]
    return prob


def true_focus_of(peaks: np.ndarray, truth_mask: np.ndarray) -> np.ndarray:
    """For each candidate, the truth component it lies on (grown by one pixel; 0: none)."""
    from scipy import ndimage

    labels, _ = ndimage.label(truth_mask, np.ones((3, 3)))
    grown = ndimage.grey_dilation(labels, size=(3, 3))
    return grown[peaks[:, 0], peaks[:, 1]] if len(peaks) else np.zeros(0, int)


def collect_candidates(data: str | Path, analyzer, keep_false: float = KEEP_FALSE, seed: int = 0,
                       on_progress: Callable[[], None] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The verifier's training set from a phantom data set's crops: features (n x VERIFIER_FEATURES) and
    labels (bool). ValueError naming the folder when it holds no truth."""
    from edgecalc.eval.quantification import read_gray, load_truth
    from edgecalc.runtime.analyze import SPACING_PHANTOM, Still

    if not 0.0 < keep_false <= 1.0:
        raise ValueError(f"keep_false must lie in (0, 1]; got {keep_false}")
    rng = np.random.default_rng(seed)
    cols = [FEATURES.index(n) for n in VERIFIER_FEATURES]
    feats, labels = [], []
    for t in load_truth(data):
        gray, nodule = read_gray(t.image), read_gray(t.nodule) > 127
        a = analyzer.analyze_crop(Still(t.id, 0, gray, (t.mm_per_px,) * 2, SPACING_PHANTOM), nodule)
        peaks, f = candidates(gray, crop_probabilities(a, gray.shape), nodule, t.mm_per_px)
        focus = true_focus_of(peaks, read_gray(t.mask) > 127)
        keep = (focus > 0) | (rng.random(len(focus)) < keep_false)
        feats.append(f[keep][:, cols])
        labels.append(focus[keep] > 0)
        if on_progress is not None:
            on_progress()
    X = np.concatenate(feats) if feats else np.zeros((0, len(cols)), np.float32)
    y = np.concatenate(labels) if labels else np.zeros(0, bool)
    if not y.any() or y.all():
        raise ValueError(f"{data}: the candidates are all of one class ({int(y.sum())} true of {len(y)}); "
                         "fit on a phantom with positive and negative crops (edgecalc data phantom)")
    return X, y


def fit_trees(X: np.ndarray, y: np.ndarray):
    """The scikit-learn trees (``TREE_PARAMS``)."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    return HistGradientBoostingClassifier(**TREE_PARAMS).fit(X, y)


def trees_from_sklearn(clf) -> TreeEnsemble:
    """A fitted binary ``HistGradientBoostingClassifier`` as node arrays the runtime evaluates."""
    if getattr(clf, "n_trees_per_iteration_", 1) != 1:
        raise ValueError("the focus verifier is a binary classifier: one tree per round")
    nodes = [pred.nodes for (pred,) in clf._predictors]
    if any(n["is_categorical"].any() for n in nodes):
        raise ValueError("categorical splits are not supported by the runtime's trees")
    sizes = np.array([len(n) for n in nodes])
    cat = np.concatenate(nodes)
    return TreeEnsemble(cat["feature_idx"].astype(np.int32), cat["num_threshold"].astype(np.float64),
                        cat["left"].astype(np.int32), cat["right"].astype(np.int32), cat["value"].astype(np.float64),
                        cat["is_leaf"].astype(bool), cat["missing_go_to_left"].astype(bool),
                        np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64),
                        float(np.asarray(clf._baseline_prediction).reshape(-1)[0]))


def _phantom_record(data: Path) -> dict[str, Any] | None:
    """What the phantom's own record says of the data set (generator, seed, size), where it has one."""
    import json

    try:
        doc = json.loads((data / "phantom.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return {k: doc.get(k) for k in ("generator", "seed", "n", "positive", "size")}


def fit_verifier(bundle_dir: str | Path, data: str | Path, threshold: float = THRESHOLD,
                 keep_false: float = KEEP_FALSE, backend: str = "onnxruntime", command: str | None = None,
                 on_progress: Callable[[], None] | None = None) -> dict[str, Any]:
    """Fit the verifier on ``data`` through ``bundle_dir``'s model and write it into the bundle
    (the file, then the manifest, atomically). Returns the manifest's new ``focus_verifier`` entry."""
    from safetensors.numpy import save as save_bytes

    from edgecalc.atomic import atomic_write_bytes
    from edgecalc.runtime.analyze import StillAnalyzer
    from edgecalc.runtime.engine.bundle import load_bundle
    from edgecalc.runtime.live.build import build_pipeline
    from edgecalc.runtime.locate.learned import LearnedLocator

    if not 0.0 < threshold < 1.0:
        raise ValueError(f"--threshold must lie in (0, 1); got {threshold}")
    bundle_dir = Path(bundle_dir)
    setup = build_pipeline(bundle_dir, backend=backend, crop="manual")
    setup.pipeline.verifier = None  # the candidates' probabilities are the model's alone
    analyzer = StillAnalyzer(setup.pipeline, LearnedLocator(threads=1).locate)
    X, y = collect_candidates(data, analyzer, keep_false, on_progress=on_progress)
    clf = fit_trees(X, y)
    trees = trees_from_sklearn(clf)
    atomic_write_bytes(bundle_dir / VERIFIER_FILE, save_bytes(trees.arrays()))
    bundle = load_bundle(bundle_dir, verify=False)
    entry = {"file": VERIFIER_FILE, "threshold": float(threshold), "features": list(VERIFIER_FEATURES),
             "fitted_on": str(data), "data_set": _phantom_record(Path(data)), "candidates": int(len(y)), "true_candidates": int(y.sum()),
             "keep_false": float(keep_false), "trees": int(len(trees.roots)), "params": dict(TREE_PARAMS),
             "command": command or f"fit_verifier({str(bundle_dir)!r}, {str(data)!r}, {threshold}, {keep_false})"}
    bundle.manifest.focus_verifier = entry
    bundle.manifest.add_file(bundle_dir, VERIFIER_FILE, "verifier", None,
                             notes="focus verifier trees (edgecalc fit-verifier)")
    bundle.manifest.write(bundle_dir)
    return entry


def fit_verifier_command(bundle: Path | None, data: Path, threshold: float, keep_false: float, backend: str,
                         progress: bool) -> int:
    """``edgecalc fit-verifier``: CommandError (exit 2) on a bad bundle, data set or value."""
    from rich.progress import Progress

    from edgecalc.errors import CommandError
    from edgecalc.eval.quantification import load_truth
    from edgecalc.runtime.engine.bundle import BundleError
    from edgecalc.runtime.shipped import resolve_bundle

    try:
        bundle_dir = resolve_bundle(bundle)
        n = len(load_truth(data))
        with Progress(disable=not progress, transient=True) as bar:
            task = bar.add_task(f"candidates of {n} crops", total=n)
            command = (f"edgecalc fit-verifier {data}" + (f" --bundle {bundle}" if bundle is not None else "")
                       + f" --threshold {threshold} --keep-false {keep_false} --backend {backend}")
            entry = fit_verifier(bundle_dir, data, threshold, keep_false, backend, command,
                                 on_progress=lambda: bar.advance(task))
    except (ValueError, BundleError, FileNotFoundError, OSError) as exc:
        raise CommandError(str(exc)) from exc
    print(f"fitted {entry['trees']} trees on {entry['candidates']} candidates ({entry['true_candidates']} true) "
          f"from {data}; wrote {bundle_dir / entry['file']} and its manifest entry (threshold {entry['threshold']})")
    return 0
