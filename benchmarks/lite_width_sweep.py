"""Choose the ``lite`` preset: CPU latency (batch 1) and a short phantom training per candidate width.

    python benchmarks/lite_width_sweep.py                     # the run quoted in docs/model.md

For each width: parameters and FLOPs at 192 x 192, median eager CPU latency at batch 1 (192 x 192),
then a short fully supervised CS-AGnet training (combined loss, Adam) on phantom crops at
``--train-size`` and accuracy / AUC / Dice on held-out phantom crops. Short and small on purpose (it
runs on a laptop CPU); the training issue measures the real recipe.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from edgecalc.data.phantom import generate_crop
from edgecalc.model import CSAGNet, get_preset
from edgecalc.model.info import cpu_latency_ms, model_info
from edgecalc.train.losses import combined_loss


def phantom_set(seeds: range, size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    samples = [generate_crop(s, positive=s % 2 == 0, size=size) for s in seeds]
    x = torch.from_numpy(np.stack([s.image for s in samples])[:, None].astype(np.float32) / 255.0)
    m = torch.from_numpy(np.stack([s.mask for s in samples])[:, None] > 0).float()
    y = torch.tensor([s.label for s in samples])
    return x, m, y


def auc(score: np.ndarray, label: np.ndarray) -> float:
    """Mann-Whitney AUC (ties count one half)."""
    pos, neg = score[label == 1], score[label == 0]
    return float(((pos[:, None] > neg[None]).sum() + 0.5 * (pos[:, None] == neg[None]).sum()) / (len(pos) * len(neg)))


def train_and_score(width: float, train, test, size: int, steps: int, batch: int, lr: float, seed: int) -> dict:
    torch.manual_seed(seed)
    model = CSAGNet(get_preset("lite", size).with_(width=width)).train()
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    x, m, y = train
    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    for _ in range(steps):
        idx = torch.from_numpy(rng.choice(len(x), batch, replace=False))
        xb, mb = x[idx], m[idx]
        if rng.random() < 0.5:  # the paper's flips
            xb, mb = xb.flip(-1), mb.flip(-1)
        if rng.random() < 0.5:
            xb, mb = xb.flip(-2), mb.flip(-2)
        opt.zero_grad()
        loss, _ = combined_loss(model(xb), mb, y[idx])
        loss.backward()
        opt.step()
    train_s = time.perf_counter() - t0
    model.eval()
    xt, mt, yt = test
    with torch.no_grad():
        out = model(xt)
    score = out.score.numpy()
    pred = (out.mask > 0.5).float()
    pos = yt == 1
    inter = (pred[pos] * mt[pos]).sum((1, 2, 3))
    dice = (2 * inter / (pred[pos].sum((1, 2, 3)) + mt[pos].sum((1, 2, 3)) + 1e-6)).mean().item()
    return {"acc": float(((score > 0.5) == yt.numpy()).mean()), "auc": auc(score, yt.numpy()), "dice": dice,
            "train_s": train_s}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--widths", default="0.125,0.25,0.375,0.5")
    ap.add_argument("--train-size", type=int, default=96)
    ap.add_argument("--n-train", type=int, default=96)
    ap.add_argument("--n-test", type=int, default=96)
    ap.add_argument("--steps", type=int, default=150)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    train = phantom_set(range(args.n_train), args.train_size)
    test = phantom_set(range(100_000, 100_000 + args.n_test), args.train_size)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; latency at 192x192 batch 1; "
          f"training {args.steps} steps x {args.batch} on {args.n_train} phantom crops at {args.train_size} px, "
          f"tested on {args.n_test} held-out crops")
    print("| width | filters | params | GFLOP @192 | CPU ms @192 (median) | test acc | test AUC | Dice (pos) | train s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for w in (float(v) for v in args.widths.split(",")):
        cfg = get_preset("lite").with_(width=w)
        info = model_info(cfg)
        ms = cpu_latency_ms(cfg)
        r = train_and_score(w, train, test, args.train_size, args.steps, args.batch, args.lr, args.seed)
        print(f"| {w} | {cfg.filters} | {info.params:,} | {info.flops / 1e9:.2f} | {ms:.1f} | {r['acc']:.3f} | "
              f"{r['auc']:.3f} | {r['dice']:.3f} | {r['train_s']:.0f} |", flush=True)


if __name__ == "__main__":
    main()
