"""``edgecalc train --linear-probe``: fit only a linear score head on a frozen CS-AGnet's encoder.

Why: a real data set with case-level labels and a few hundred crops (DDTI: 301 crops, 83
negatives) is too small to move a whole network; fine-tuning overfits in the first 100 steps
(docs/real-data.md). Freezing the phantom-trained encoder and fitting one linear layer on its
pooled features (``model/blocks/linear_head.py``) is the standard small-data transfer and scores
better there. The fit is an L2-regularised logistic regression (scikit-learn, L-BFGS: deterministic,
seconds on a CPU) on standardised features. Its strength ``C``, the central share the features
pool over and whether the segmentation mask's mean and maximum join them are chosen together by a
patient-grouped inner cross-validation on the training images only, so the test fold never takes
part in any choice. The features are averaged over each image
and its left-right mirror, as the head does at inference. The standardisation is then folded into
the layer: the result is an ordinary CS-AGnet weights file whose ``score`` is the fitted head, with
the encoder, decoder (mask, attention) and module C of the starting weights unchanged.

With ``mix`` (``--mix-data PHANTOM --mix-ratio R``) the phantom's crops join every fit with ``R`` of
the total sample weight: one head for both domains. The inner folds split the real images only (the
phantom crops are in every inner training part and never scored), so ``C`` and the share are still
chosen by how the head ranks held-out real patients. The trade-off this buys, measured, is in
docs/real-data.md ("One head for both domains").
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from edgecalc.data.splits import stratified_kfold
from edgecalc.eval.metrics import roc_auc
from edgecalc.model.blocks.linear_head import MASK_FEATURES, ellipse_weights, pool_features
from edgecalc.model.csagnet import CSAGNet, encoder_features

#: Inverse regularisation strengths tried (scikit-learn's ``C``: larger = weaker L2 penalty).
C_GRID = (0.001, 0.003, 0.01, 0.03, 0.1)
#: Central shares tried for the pooling region (1.5: the whole map).
SHARE_GRID = (0.5, 0.7, 0.9, 1.5)
#: Whether the mask's two pooled features join (False first: on a tie, the head without them).
MASK_GRID = (False, True)
INNER_FOLDS = 5


@torch.no_grad()
def pooled_features(model: CSAGNet, images: np.ndarray, shares: tuple[float, ...], flip: bool = True,
                    batch: int = 64, device: str | torch.device = "cpu", mask: bool = False) -> dict[float, np.ndarray]:
    """The head's input features of uint8 images (N, 1, S, S) for every share -> {share: float64 (N, F)}.

    With ``flip`` each is the mean over the image and its left-right mirror; with ``mask`` the
    network's mask adds its mean and maximum as the last two columns — what ``PooledLinearHead`` computes.
    """
    model = model.to(device).eval()
    out: dict[float, list[np.ndarray]] = {s: [] for s in shares}
    for i in range(0, len(images), batch):
        x = torch.from_numpy(np.ascontiguousarray(images[i:i + batch])).to(device).float().mul_(1.0 / 255.0)
        encs = [model.encoder(x)] + ([model.encoder(torch.flip(x, dims=[3]))] if flip else [])
        maps = [encoder_features(e) for e in encs]
        segs = [model.decoder(e).pyramid[-1] for e in encs] if mask else []
        for s in shares:
            regions = [ellipse_weights(int(f.shape[2]), s).to(f) for f in maps[0]]
            f = torch.stack([pool_features(m, regions) for m in maps]).mean(dim=0)
            if segs:
                region = [ellipse_weights(int(segs[0].shape[2]), s).to(segs[0])]
                g = torch.stack([pool_features([m], region) for m in segs]).mean(dim=0)
                f = torch.cat([f, g], dim=1)
            out[s].append(f.double().cpu().numpy())
    return {s: np.concatenate(v) for s, v in out.items()}


def fit_logistic(features: np.ndarray, labels: np.ndarray, c: float,
                 weights: np.ndarray | None = None) -> tuple[np.ndarray, float]:
    """Standardise, fit the (sample-weighted) logistic regression, fold the standardisation back:
    (weights (F,), bias) acting on the raw features."""
    from sklearn.linear_model import LogisticRegression

    mean = features.mean(axis=0)
    std = features.std(axis=0)
    std[std < 1e-12] = 1.0  # a constant feature carries nothing; keep its weight finite
    lr = LogisticRegression(C=c, max_iter=5000).fit((features - mean) / std, labels, sample_weight=weights)
    w = lr.coef_[0] / std
    return w, float(lr.intercept_[0] - (w * mean).sum())


def _with_mix(feats: np.ndarray, labels: np.ndarray, idx: np.ndarray, mix: tuple[np.ndarray, np.ndarray, float] | None
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """The fit's features, labels and sample weights: the real images ``idx``, plus the mix at its share."""
    if mix is None:
        return feats[idx], labels[idx], None
    mfeats, mlabels, ratio = mix
    w_mix = ratio * idx.size / ((1.0 - ratio) * mlabels.size)  # the mix holds `ratio` of the total weight
    weights = np.concatenate([np.ones(idx.size), np.full(mlabels.size, w_mix)])
    return np.concatenate([feats[idx], mfeats]), np.concatenate([labels[idx], mlabels]), weights


def fit_linear_probe(model: CSAGNet, images: np.ndarray, labels: np.ndarray, groups: np.ndarray | None,
                     seed: int = 0, c_grid: tuple[float, ...] = C_GRID, share_grid: tuple[float, ...] = SHARE_GRID,
                     mask_grid: tuple[bool, ...] = MASK_GRID, flip: bool = True, device: str | torch.device = "cpu", console: Any = None,
                     mix: tuple[np.ndarray, np.ndarray, float] | None = None) -> tuple[CSAGNet, dict[str, Any]]:
    """The network with a fitted ``encoder-linear`` score head, and what was chosen.

    ``images`` uint8 (N, 1, S, S) with ``labels`` (and ``groups``, e.g. patients) are the training
    images; the inner folds split them by group. ``mix`` = (uint8 images, labels, ratio): crops of
    another data set (the phantom) added to every fit with ``ratio`` of the total weight, never scored.
    Returns a new CS-AGnet (eval mode) and ``{"c", "share", "mask", "inner_auc" (per choice), ...}``.
    """
    labels = np.asarray(labels, dtype=np.int64)
    if not 0 < labels.sum() < labels.size:
        raise ValueError(f"the linear probe needs both classes among its {labels.size} training images "
                         f"({int(labels.sum())} positive)")
    if mix is not None and not 0 < mix[2] < 1:
        raise ValueError(f"the mix's share of the fit must lie in (0, 1), got {mix[2]}")
    if not mask_grid:
        raise ValueError("mask_grid needs at least one choice (False: encoder features only, True: with the mask's)")
    with_mask = any(mask_grid)
    full = pooled_features(model, images, share_grid, flip=flip, device=device, mask=with_mask)
    mfull = None if mix is None else pooled_features(model, mix[0], share_grid, flip=flip, device=device, mask=with_mask)
    feats: dict[tuple[float, bool], np.ndarray] = {}  # per (share, mask)
    mix_at: dict[tuple[float, bool], tuple[np.ndarray, np.ndarray, float] | None] = {}
    for share in share_grid:
        for m in mask_grid:
            cols = slice(None) if m or not with_mask else slice(0, -MASK_FEATURES)
            feats[(share, m)] = full[share][:, cols]
            mix_at[(share, m)] = None if mfull is None else (mfull[share][:, cols], np.asarray(mix[1], dtype=np.int64),
                                                            float(mix[2]))
    n_groups = len(np.unique(groups)) if groups is not None else labels.size
    folds = stratified_kfold(labels, k=min(INNER_FOLDS, n_groups), seed=seed + 3, groups=groups)
    inner: dict[tuple[float, bool, float], float] = {}
    for (share, m), f in feats.items():
        for c in c_grid:
            scores = np.zeros(labels.size)
            for tr, va in folds:
                x, y, sw = _with_mix(f, labels, tr, mix_at[(share, m)])
                w, b = fit_logistic(x, y, c, sw)
                scores[va] = f[va] @ w + b
            inner[(share, m, c)] = roc_auc(labels, scores)
        if console is not None:
            console.print(f"linear probe: share {share:g}{', with the mask' if m else ''}, inner cross-validated AUC "
                          + ", ".join(f"{inner[(share, m, c)]:.3f} (C {c:g})" for c in c_grid))
    # ties: the stronger penalty, then without the mask, then the smaller region
    share, use_mask, c = max(inner, key=lambda k: (inner[k], -k[2], -int(k[1]), -k[0]))
    x, y, sw = _with_mix(feats[(share, use_mask)], labels, np.arange(labels.size), mix_at[(share, use_mask)])
    w, b = fit_logistic(x, y, c, sw)
    probe = CSAGNet(model.cfg.with_(score_head="encoder-linear", linear_head_share=share, linear_head_flip=flip,
                                    linear_head_mask=use_mask))
    state = {k: v for k, v in model.state_dict().items() if not k.startswith("linear_head.")}
    missing, unexpected = probe.load_state_dict(state, strict=False)
    if unexpected or any(not k.startswith("linear_head.") for k in missing):
        raise ValueError(f"the starting weights do not fit a CS-AGnet of their own config (missing {missing}, "
                         f"unexpected {unexpected})")
    with torch.no_grad():
        probe.linear_head.fc.weight.copy_(torch.from_numpy(w).float()[None])
        probe.linear_head.fc.bias.fill_(b)
    if console is not None:
        mixed = "" if mix is None else f" + {len(mix[1])} mixed-in images at {mix[2]:g} of the weight"
        console.print(f"linear probe: chose share {share:g}{', with the mask' if use_mask else ''}, C {c:g} "
                      f"(inner AUC {inner[(share, use_mask, c)]:.3f}); "
                      f"fitted on {labels.size} images ({int(labels.sum())} positive){mixed}")
    return probe.eval(), {"c": c, "share": share, "mask": bool(use_mask), "flip": flip, "inner_folds": len(folds),
                          "inner_auc": {f"share {s:g}{', mask' if m else ''}, C {cc:g}": v for (s, m, cc), v in inner.items()},
                          "n": int(labels.size), "n_positive": int(labels.sum()),
                          "n_mix": 0 if mix is None else int(len(mix[1])), "mix_ratio": 0.0 if mix is None else float(mix[2]),
                          "features": int(feats[(share, use_mask)].shape[1])}
