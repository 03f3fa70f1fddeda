"""Which features should the linear probe read? Nested cross-validation of feature variants on DDTI.

Why: the probe on ``phantom-masks``' encoder reached 0.799 pooled on DDTI (docs/real-data.md), just
under issue 15's goal, and its feature set (mean + max of encoder blocks 2-4 and the bridge over a
central ellipse) was fixed by hand. This script scores candidate feature sets the way ``edgecalc train
--linear-probe`` would fit each: per outer fold of the patient-grouped 5-fold split ``edgecalc train
--fold K`` uses, the share and ``C`` are chosen by the same grouped inner cross-validation on that
fold's training crops, and the fold's test crops are scored once. It prints, per variant, the mean
inner-CV AUC (the figure a choice may use: training crops only) and the pooled outer AUC (for the
record; no choice may use it).

    python docs/experiments/probe_features.py --data ../shared/data/ddti-calc [--variants base,seg,...]

Variants: ``base`` (the head before 2026-12-03); ``seg`` (+ the network's mask, mean and max over the
same ellipse, averaged over the image and its mirror: the head's ``linear_head_mask``); ``seg1`` (the
mask of the image only: cheaper, but the answer then depends on the probe's side); ``img`` (+ the
input's own mean and max); ``bright`` (+ the central half's maximum and 99th percentile gray level:
the brightness rule as features); ``b1`` (+ encoder block 1); ``size128`` etc. (the encoder run on
crops resized to that side instead of 96).
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from edgecalc.data.splits import stratified_kfold
from edgecalc.eval.metrics import bootstrap_ci, roc_auc
from edgecalc.model.blocks.linear_head import ellipse_weights, pool_features
from edgecalc.model.csagnet import CSAGNet, encoder_features
from edgecalc.model.shipped import shipped_weights_path
from edgecalc.model.weights import load_model
from edgecalc.train.linear_probe import C_GRID, INNER_FOLDS, SHARE_GRID, fit_logistic
from edgecalc.train.run import _groups, _load_data

VARIANTS = ("base", "seg", "seg1", "img", "seg-img", "bright", "seg-bright", "b1", "size128", "size160", "size192")


@torch.no_grad()
def features(model: CSAGNet, images: np.ndarray, variant: str) -> dict[float, np.ndarray]:
    """{share: (N, F)} for one variant (flip-averaged like the head)."""
    out: dict[float, list[np.ndarray]] = {s: [] for s in SHARE_GRID}
    for i in range(0, len(images), 32):
        x = torch.from_numpy(images[i:i + 32]).float() / 255.0
        passes = [x, torch.flip(x, dims=[3])]
        per_pass: dict[float, list[torch.Tensor]] = {s: [] for s in SHARE_GRID}
        for xx in passes:
            enc = model.encoder(xx)
            maps = ([enc.skips[0]] if variant == "b1" else []) + encoder_features(enc)
            extra = []
            if "seg" in variant:
                extra.append(model(passes[0] if variant == "seg1" else xx).mask)
            if "img" in variant:
                extra.append(xx)
            for s in SHARE_GRID:
                regions = [ellipse_weights(int(f.shape[2]), s) for f in maps + extra]
                per_pass[s].append(pool_features(maps + extra, regions))
        for s in SHARE_GRID:
            out[s].append(torch.stack(per_pass[s]).mean(0).double().numpy())
    feats = {s: np.concatenate(v) for s, v in out.items()}
    if "bright" in variant:
        side = images.shape[2]
        c = side // 4
        centre = images[:, 0, c:side - c, c:side - c].reshape(len(images), -1).astype(np.float64)
        extra = np.stack([centre.max(1), np.percentile(centre, 99, axis=1)], 1)
        feats = {s: np.concatenate([f, extra], 1) for s, f in feats.items()}
    return feats


def nested(feats: dict[float, np.ndarray], labels: np.ndarray, groups: np.ndarray, folds: int = 5, seed: int = 0
           ) -> tuple[float, np.ndarray, list[tuple[float, float, float, float]]]:
    """(mean inner AUC, outer scores, per fold (share, C, inner AUC, test AUC)) — the probe's own choice rule."""
    scores = np.zeros(labels.size)
    rows = []
    for fit, test in stratified_kfold(labels, k=folds, seed=seed, groups=groups):
        inner_folds = stratified_kfold(labels[fit], k=INNER_FOLDS, seed=seed + 3, groups=groups[fit])
        inner = {}
        for s in SHARE_GRID:
            f = feats[s][fit]
            for c in C_GRID:
                sc = np.zeros(fit.size)
                for tr, va in inner_folds:
                    w, b = fit_logistic(f[tr], labels[fit][tr], c)
                    sc[va] = f[va] @ w + b
                inner[(s, c)] = roc_auc(labels[fit], sc)
        s, c = max(inner, key=lambda q: (inner[q], -q[1], -q[0]))
        w, b = fit_logistic(feats[s][fit], labels[fit], c)
        scores[test] = feats[s][test] @ w + b
        rows.append((s, c, inner[(s, c)], roc_auc(labels[test], scores[test])))
    return float(np.mean([r[2] for r in rows])), scores, rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True, help="the DDTI crops folder (labels.csv with patient)")
    ap.add_argument("--weights", default="phantom-masks", help="shipped weights name whose encoder is probed")
    ap.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated, from " + ", ".join(VARIANTS))
    args = ap.parse_args()
    torch.manual_seed(0)
    print("| variant | inner-CV AUC (mean of 5 folds) | pooled outer AUC (95 % CI) | outer per fold |")
    print("|---|---|---|---|")
    for variant in args.variants.split(","):
        if variant not in VARIANTS:
            raise SystemExit(f"unknown variant {variant!r}; choose from {', '.join(VARIANTS)}")
        size = int(variant[4:]) if variant.startswith("size") else 96
        _, images, _, labels, _, table = _load_data(args.data, size)
        groups = _groups(table)
        if groups is None:
            raise SystemExit(f"{args.data}/labels.csv needs a patient column for grouped folds")
        model = load_model(shipped_weights_path(args.weights)).eval()
        if size != model.cfg.input_size:
            at_size = CSAGNet(model.cfg.with_(input_size=size))
            at_size.load_state_dict(model.state_dict())
            model = at_size.eval()
        inner, scores, rows = nested(features(model, images, variant), labels, groups)
        lo, hi = bootstrap_ci(labels, scores, groups=groups)
        print(f"| {variant} | {inner:.4f} | {roc_auc(labels, scores):.3f} ({lo:.3f}–{hi:.3f}) | "
              + ", ".join(f"{r[3]:.3f}" for r in rows) + " |", flush=True)


if __name__ == "__main__":
    main()
