"""Could a second look at the crop's own pixels find the foci the model's mask misses?

Why: the count of issue 17 falls short because the mask misses dim foci (local z 2-4) in clusters
(docs/quantification.md). Mammography CADe finds microcalcifications in two steps: candidates (local
maxima standing out of their surroundings), then a classifier that rejects the false ones. This
measures, on phantoms written with ``edgecalc data phantom``, what that would give here:

1. ``collect DATA OUT.npz [BUNDLE] [keep=F]``: each crop through the cart's crop path (``analyze_crop``),
   keeping the model's probability map (crop pixels) and its reported foci, and the candidates
   (``edgecalc.runtime.focus_candidates``) with their features, their 2 mm view, and which true focus each
   lies on (``keep``: the share of false candidates kept, for a training set);
2. ``score TRAIN.npz VAL.npz [--cnn]``: the candidates' recall of the true foci and the count a perfect
   verifier would reach; how many speckle maxima stand out as much as a focus; then verifiers fitted
   on TRAIN (gradient-boosted trees on the features; with ``--cnn`` also a small CNN on the view),
   scored on VAL: the true foci no reported focus covers that they find, the false candidates they
   add, and the count within +-1 with those added to the model's foci;
3. ``evaluate TRAIN.npz DATA THRESHOLD [--frames] [--cnn]``: ``edgecalc.eval.quantification``'s own scoring,
   with the half-maximum blobs of the candidates the trees verify added to the refined mask where they
   touch none of its components (new foci only; the kit's ``FocusVerifier``, fitted on TRAIN). The
   "touching or not" row of docs/quantification.md came from an earlier form of this command that
   added every verified blob;
4. ``montage TRAIN.npz VAL.npz OUT.png``: missed true foci beside false candidates at the same local z.

    edgecalc data phantom --n 4000 --positive 2000 --seed 91 --out /work/phantom/vtrain-91
    python docs/experiments/focus_candidates.py collect /work/phantom/vtrain-91 /tmp/fcp-91.npz keep=0.15
    python docs/experiments/focus_candidates.py collect /work/phantom/val-78 /tmp/fcp-78.npz
    python docs/experiments/focus_candidates.py score /tmp/fcp-91.npz /tmp/fcp-78.npz --cnn
    python docs/experiments/focus_candidates.py evaluate /tmp/fcp-91.npz /work/phantom/val-78 0.9 [--frames]
    python docs/experiments/focus_candidates.py montage /tmp/fcp-91.npz /tmp/fcp-78.npz docs/img/focus-candidates-78.png
"""

from __future__ import annotations

import sys

import numpy as np

from edgecalc.eval.quantification import read_gray, load_truth, true_foci
from edgecalc.runtime.analyze import SPACING_PHANTOM, Still, StillAnalyzer
from edgecalc.runtime.focus_candidates import FEATURES, candidates
from edgecalc.runtime.live.build import build_pipeline
from edgecalc.runtime.locate.learned import LearnedLocator
from edgecalc.train.focus_verifier import crop_probabilities, true_focus_of


PATCH_PX, PATCH_MM_PER_PX = 25, 0.08  #: the CNN verifier's view: 2 mm square at the phantom's native spacing


def patches(gray: np.ndarray, prob: np.ndarray, peaks: np.ndarray, feats: np.ndarray, mm: float) -> np.ndarray:
    """Each candidate's 2 mm square (n x 2 x 25 x 25, float16): the gray as z against its near ring, and
    the model's probability; the crop resampled to 0.08 mm/px first."""
    import cv2

    scale = mm / PATCH_MM_PER_PX
    h = PATCH_PX // 2
    g = cv2.resize(gray.astype(np.float32), None, fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR)
    p = cv2.resize(prob.astype(np.float32), (g.shape[1], g.shape[0]), interpolation=cv2.INTER_LINEAR)
    cy = np.clip(np.round(peaks[:, 0] * scale).astype(int), 0, g.shape[0] - 1) + h
    cx = np.clip(np.round(peaks[:, 1] * scale).astype(int), 0, g.shape[1] - 1) + h
    g, p = np.pad(g, h, mode="reflect"), np.pad(p, h)
    out = np.zeros((len(peaks), 2, PATCH_PX, PATCH_PX), np.float16)
    for i, (y, x) in enumerate(zip(cy, cx)):
        win = g[y - h:y + h + 1, x - h:x + h + 1]
        out[i, 0] = (win - win.mean()) / (win.std() + 1e-3)
        out[i, 1] = p[y - h:y + h + 1, x - h:x + h + 1]
    return out


def collect(data: str, out: str, bundle: str | None = None, keep_negative: float = 1.0) -> None:
    from scipy import ndimage

    setup = build_pipeline(bundle, backend="onnxruntime", crop="manual")
    setup.pipeline.verifier = None  # the model's own foci and probabilities, as fit-verifier collects them
    analyzer = StillAnalyzer(setup.pipeline, LearnedLocator(threads=1).locate)
    feats, labels, crop_of, focus_of, views = [], [], [], [], []
    rng = np.random.default_rng(0)
    crops = []  # per crop: id, label, true count, reported count, reports, n true foci covered by candidates
    rep_boxes = []
    truths = load_truth(data)
    for ci, t in enumerate(truths):
        gray, nodule = read_gray(t.image), read_gray(t.nodule) > 127
        calc = read_gray(t.mask) > 127
        a = analyzer.analyze_crop(Still(t.id, 0, gray, (t.mm_per_px,) * 2, SPACING_PHANTOM), nodule)
        prob = crop_probabilities(a, gray.shape)
        truth, _ = true_foci(t, gray, nodule) if t.label else (None, None)
        n_true = ndimage.label(calc, np.ones((3, 3)))[1]
        peaks, f = candidates(gray, prob, nodule, t.mm_per_px)
        lab = true_focus_of(peaks, calc)
        sel = (lab > 0) | (rng.random(len(lab)) < keep_negative)
        peaks, f, lab = peaks[sel], f[sel], lab[sel]
        views.append(patches(gray, prob, peaks, f, t.mm_per_px))
        feats.append(f)
        labels.append(lab > 0)
        focus_of.append(lab)
        crop_of.append(np.full(len(peaks), ci))
        boxes = [c.box for c in a.foci.calcifications]
        rep_boxes.append(boxes)
        crops.append((t.label, truth.count if truth is not None else 0, a.foci.count, int(a.foci.count > 0),
                      n_true, len(set(lab[lab > 0].tolist()))))
        if ci % 100 == 0:
            print(f"{ci}/{len(truths)} crops; {sum(len(x) for x in feats)} candidates", flush=True)
    # each candidate: inside a reported focus's box (grown by 1 px)?
    covered = []
    for ci, (f, boxes) in enumerate(zip(feats, rep_boxes)):
        ys, xs = f[:, FEATURES.index("y")], f[:, FEATURES.index("x")]
        cov = np.zeros(len(f), bool)
        for x, y, w, h in boxes:
            cov |= (xs >= x - 1) & (xs <= x + w) & (ys >= y - 1) & (ys <= y + h)
        covered.append(cov)
    np.savez_compressed(out, features=np.concatenate(feats), label=np.concatenate(labels),
                        crop=np.concatenate(crop_of), focus=np.concatenate(focus_of),
                        covered=np.concatenate(covered), crops=np.array(crops), names=np.array(FEATURES),
                        patches=np.concatenate(views))
    print(f"wrote {out}: {len(crops)} crops, {sum(len(x) for x in feats)} candidates")


def _load(path: str) -> dict:
    return dict(np.load(path))


def _columns(names) -> list[int]:
    return [i for i, n in enumerate(names) if n not in ("x", "y")]


def fit_trees(tr: dict):
    from sklearn.ensemble import HistGradientBoostingClassifier

    return HistGradientBoostingClassifier(max_iter=300, learning_rate=0.1, random_state=0).fit(
        tr["features"][:, _columns(tr["names"])], tr["label"])


def fit_cnn(tr: dict, epochs: int = 8):
    """A small CNN on each candidate's 2 mm view (gray, probability) with the features beside it."""
    import torch
    import torch.nn as nn

    torch.manual_seed(0)
    cols = _columns(tr["names"])
    mu, sd = tr["features"][:, cols].mean(0), tr["features"][:, cols].std(0) + 1e-6

    def block(i: int, o: int) -> nn.Module:
        return nn.Sequential(nn.Conv2d(i, o, 3, padding=1), nn.BatchNorm2d(o), nn.ReLU())

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Sequential(block(2, 16), block(16, 16), nn.MaxPool2d(2), block(16, 32), block(32, 32),
                                      nn.MaxPool2d(2), block(32, 32))
            self.fc = nn.Sequential(nn.Linear(32 * 6 * 6 + len(cols), 64), nn.ReLU(), nn.Linear(64, 1))

        def forward(self, p, f):
            return self.fc(torch.cat([self.conv(p).flatten(1), f], 1)).squeeze(1)

    def inputs(d: dict):
        return (torch.tensor(d["patches"].astype(np.float32)),
                torch.tensor((d["features"][:, cols] - mu) / sd, dtype=torch.float32))

    xp, xf = inputs(tr)
    y = torch.tensor(tr["label"].astype(np.float32))
    net, batch = Net(), 256
    opt = torch.optim.AdamW(net.parameters(), 1e-3, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, 3e-3, total_steps=epochs * ((len(y) + batch - 1) // batch))
    loss = nn.BCEWithLogitsLoss()
    for epoch in range(epochs):
        net.train()
        for b in torch.randperm(len(y)).split(batch):
            p = xp[b].clone()
            flip = torch.rand(len(b)) < 0.5  # lateral mirror: the image's physics is left-right symmetric
            p[flip] = p[flip].flip(-1)
            out = loss(net(p, xf[b]), y[b])
            opt.zero_grad()
            out.backward()
            opt.step()
            sched.step()
        print(f"cnn epoch {epoch + 1}/{epochs}: last batch loss {out.item():.4f}", flush=True)
    net.eval()

    def predict(d: dict) -> np.ndarray:
        vp, vf = inputs(d)
        with torch.no_grad():
            return torch.cat([torch.sigmoid(net(vp[i:i + 4096], vf[i:i + 4096])) for i in range(0, len(vf), 4096)]).numpy()
    return predict


def report(va: dict, p: np.ndarray, name: str) -> None:
    """What a verifier's probabilities ``p`` for VAL's candidates would do to the count."""
    from scipy.sparse.csgraph import connected_components
    from sklearn.metrics import average_precision_score, roc_auc_score

    names = list(va["names"])
    f, lab, crop, focus, covered = va["features"], va["label"], va["crop"], va["focus"], va["covered"]
    y, x, mm = (f[:, names.index(n)] for n in ("y", "x", "mm_per_px"))
    label, true_n, rep_n, reports, n_true, _ = va["crops"].T
    pos = label == 1
    print(f"\n## {name}: AUC {roc_auc_score(lab, p):.4f}, average precision {average_precision_score(lab, p):.3f}")
    print(f"today (the model's foci): count within +-1 on positives {(np.abs(rep_n - true_n) <= 1)[pos].mean():.3f}")
    unc = ~covered
    in_pos = np.isin(crop, np.where(pos)[0])
    ids = lambda s: set(zip(crop[s].tolist(), focus[s].tolist()))  # noqa: E731
    missed = ids(lab & in_pos) - ids(lab & in_pos & covered)  # true foci no reported focus covers
    print("| verifier threshold | true foci outside the reported ones found (of %d) | false candidates added, per positive | "
          "per negative | count within +-1, added candidates merged within 1 mm | the same, each added one a focus |"
          % len(missed))
    print("|---|---|---|---|---|---|")
    for thr in (0.5, 0.7, 0.8, 0.9, 0.95):
        keep = (p >= thr) & unc
        got = ids(keep & lab) & missed
        false = keep & ~lab
        counts = {}
        for d in (1.0, 0.0):
            n = rep_n.copy()
            for ci in np.where(pos & (reports == 1))[0]:
                idx = np.where(keep & (crop == ci))[0]
                if len(idx):
                    dist = np.hypot(y[idx, None] - y[None, idx], x[idx, None] - x[None, idx]) * mm[idx][:, None]
                    n[ci] += connected_components(dist <= d, directed=False)[0]
            counts[d] = (np.abs(n - true_n) <= 1)[pos].mean()
        neg_crops = np.isin(crop, np.where(~pos)[0])
        print(f"| {thr:.2f} | {len(got)} | {(false & ~neg_crops).sum() / pos.sum():.2f} | "
              f"{(false & neg_crops).sum() / (~pos).sum():.2f} | {counts[1.0]:.3f} | {counts[0.0]:.3f} |")


def score(train: str, val: str, cnn: bool = False) -> None:
    tr, va = _load(train), _load(val)
    names = list(va["names"])
    label = va["crops"][:, 0] == 1
    z, lab = va["features"][:, names.index("z_near")], va["label"]
    in_pos = np.isin(va["crop"], np.where(label)[0])
    ceiling = [len(set(va["focus"][(va["crop"] == ci) & lab].tolist())) for ci in np.where(label)[0]]
    true_n = va["crops"][label, 1]
    print(f"{len(lab)} candidates in {len(label)} crops; true foci holding one: "
          f"{va['crops'][label, 5].sum() / va['crops'][label, 4].sum():.3f}; count within +-1 of a perfect verifier "
          f"(each true focus once): {(np.abs(np.array(ceiling) - true_n) <= 1).mean():.3f}")
    print("| candidate's local z | true, per positive crop | speckle and confounders, per positive crop | per negative crop |")
    print("|---|---|---|---|")
    for lo, hi in ((1, 2), (2, 3), (3, 4), (4, 6), (6, np.inf)):
        s = (z >= lo) & (z < hi)
        print(f"| {lo:g} to {hi:g} | {(s & lab & in_pos).sum() / label.sum():.2f} | "
              f"{(s & ~lab & in_pos).sum() / label.sum():.2f} | {(s & ~in_pos).sum() / (~label).sum():.2f} |")
    from edgecalc.train.focus_verifier import trees_from_sklearn

    trees = fit_trees(tr)
    X = va["features"][:, _columns(va["names"])]
    p = trees.predict_proba(X)[:, 1]
    print(f"\nthe runtime's numpy trees ({len(trees_from_sklearn(trees).roots)}) against scikit-learn on these "
          f"candidates: largest difference {np.abs(trees_from_sklearn(trees).predict(X) - p).max():.1e}")
    report(va, p, "gradient-boosted trees on the features")
    if cnn:
        report(va, fit_cnn(tr)(va), "a CNN on the 2 mm view and the features")


def evaluate_with(train: str, data: str, frames: bool, threshold: float, cnn: bool = False) -> None:
    """The cart's own scoring (``edgecalc.eval.quantification``) with the trees fitted on TRAIN (or, with
    ``cnn``, the CNN) as the pipeline's focus verifier (new foci only: ``FocusVerifier.add_new_foci``)."""
    from dataclasses import dataclass
    from typing import Callable

    from edgecalc.eval.quantification import evaluate, markdown
    from edgecalc.runtime.focus_verifier import FocusVerifier
    from edgecalc.train.focus_verifier import trees_from_sklearn

    tr = _load(train)
    trees = trees_from_sklearn(fit_trees(tr))

    @dataclass(frozen=True)
    class CnnVerifier(FocusVerifier):
        predict: Callable = None

        def verified(self, gray, prob, nodule, mm_per_px):
            peaks, f = candidates(gray, prob, nodule, mm_per_px)
            if len(peaks) == 0:
                return peaks
            p = self.predict({"features": f, "patches": patches(gray, prob, peaks, f, mm_per_px)})
            return peaks[p >= self.threshold]

    setup = build_pipeline(None, backend="onnxruntime", crop="manual")
    setup.pipeline.verifier = (CnnVerifier(trees, threshold, fit_cnn(tr)) if cnn
                               else FocusVerifier(trees, threshold))
    analyzer = StillAnalyzer(setup.pipeline, LearnedLocator(threads=1).locate)
    print(markdown(evaluate(data, frames, analyzer=analyzer)), end="")


def montage(train: str, val: str, out: str, n: int = 10) -> None:
    """A picture of the problem: VAL's 2 mm views of true foci no reported focus covers (the brightest
    candidate of each) beside false candidates of the same crops at the same local z (3 to 6), each
    with the trees' probability."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tr, va = _load(train), _load(val)
    p = fit_trees(tr).predict_proba(va["features"][:, _columns(va["names"])])[:, 1]
    names = list(va["names"])
    z, g = va["features"][:, names.index("z_near")], va["features"][:, names.index("over_p99")]
    lab, crop, focus, covered = va["label"], va["crop"], va["focus"], va["covered"]
    label, _, _, reports, _, _ = va["crops"].T
    in_rep = np.isin(crop, np.where((label == 1) & (reports == 1))[0])
    covered_ids = set(zip(crop[covered & lab].tolist(), focus[covered & lab].tolist()))
    best: dict = {}
    for i in np.where(lab & in_rep & ~covered & (z >= 3) & (z < 6))[0]:
        k = (int(crop[i]), int(focus[i]))
        if k not in covered_ids and (k not in best or g[i] > g[best[k]]):
            best[k] = i
    rng = np.random.default_rng(0)
    true_i = rng.choice(sorted(best.values()), size=min(n, len(best)), replace=False)
    pool = np.where(~lab & in_rep & np.isin(crop, crop[true_i]) & (z >= 3) & (z < 6))[0]
    false_i = rng.choice(pool, size=min(n, len(pool)), replace=False)
    fig, axes = plt.subplots(2, n, figsize=(1.5 * n, 3.6))
    for row, (idx, what) in enumerate(((true_i, "missed focus"), (false_i, "speckle"))):
        for ax, i in zip(axes[row], idx):
            ax.imshow(va["patches"][i, 0].astype(np.float32), cmap="gray", vmin=-2.5, vmax=4)
            ax.set_title(f"z {z[i]:.1f}, p {p[i]:.2f}", fontsize=8)
            ax.set_xticks([])
            ax.set_yticks([])
        axes[row][0].set_ylabel(what, fontsize=9)
    fig.suptitle("2 mm around each candidate (seed 78, positive crops the model reports): true foci the mask "
                 "misses (top) and false candidates of the same crops at the same local z (bottom)", fontsize=9)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    print(f"wrote {out}")


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "collect":
        keep = [a for a in sys.argv[4:] if a.startswith("keep=")]
        rest = [a for a in sys.argv[4:] if not a.startswith("keep=")]
        collect(sys.argv[2], sys.argv[3], rest[0] if rest else None, float(keep[0][5:]) if keep else 1.0)
    elif cmd == "evaluate":
        evaluate_with(sys.argv[2], sys.argv[3], "--frames" in sys.argv, float(sys.argv[4]), "--cnn" in sys.argv)
    elif cmd == "montage":
        montage(sys.argv[2], sys.argv[3], sys.argv[4])
    elif cmd == "score":
        score(sys.argv[2], sys.argv[3], "--cnn" in sys.argv)
    else:
        raise SystemExit(__doc__)
