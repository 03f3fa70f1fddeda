"""Measure what the export costs in accuracy: every INT8 calibration method and FP16 against float32, per CPU engine.

``python -m edgecalc.export.measure [--weights RUN] ...`` exports one bundle per calibration method
(and one FP16 bundle) with the same code ``edgecalc export`` runs and prints the parity figures as a
Markdown table (docs/export.md quotes it). Without ``--weights`` it first trains a small CS-AGnet on
phantom crops for a few minutes (BCE on the mask + cross-entropy on the label): a stand-in until the
kit ships trained weights, so that the figures compare a model whose outputs mean something.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from edgecalc.calibration.calibration_set import phantom_pool
from edgecalc.export.int8 import METHODS
from edgecalc.export.pipeline import ExportOptions, export_bundle
from edgecalc.model import CSAGNet, get_preset
from edgecalc.model.weights import save_model
from edgecalc.run_folder import MODEL_WEIGHTS

TRAIN_SEED_BASE = 500_000


def train_tiny(out: Path, size: int, n: int, epochs: int, width: float, seed: int = 0) -> Path:
    """Train a small CS-AGnet on ``n`` phantom crops; returns the saved ``.safetensors`` path."""
    torch.manual_seed(seed)
    ids, images, masks, labels = phantom_pool(n, TRAIN_SEED_BASE, size)
    x, m, y = torch.from_numpy(images), torch.from_numpy(masks[:, None].astype(np.float32)), torch.from_numpy(labels)
    model = CSAGNet(get_preset("lite", size).with_(width=width, name=f"measure-w{width}"))
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    g = torch.Generator().manual_seed(seed)
    t0 = time.time()
    for epoch in range(epochs):
        model.train()
        perm = torch.randperm(n, generator=g)
        total = 0.0
        for i in range(0, n, 16):
            b = perm[i:i + 16]
            xb, mb = x[b], m[b]
            if torch.rand(1, generator=g) < 0.5:
                xb, mb = xb.flip(-1), mb.flip(-1)
            out_ = model(xb)
            loss = F.binary_cross_entropy(out_.mask, mb) * 5 + F.cross_entropy(out_.logits, y[b])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(b)
        print(f"epoch {epoch + 1}/{epochs}: loss {total / n:.4f} ({time.time() - t0:.0f} s)", flush=True)
    path = out / MODEL_WEIGHTS
    save_model(model.eval(), path)
    return path


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--weights", type=Path, default=None, help="run folder or .safetensors (default: train a tiny one)")
    ap.add_argument("--work", type=Path, default=Path("measure-export"))
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--width", type=float, default=0.25)
    ap.add_argument("--train", type=int, default=384)
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--test", type=int, default=200, help="held-out phantom crops for the parity report")
    ap.add_argument("--calib-size", type=int, default=128)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    weights = args.weights or train_tiny(args.work / "run", args.size, args.train, args.epochs, args.width)
    results = {}
    for name, precision, method in [("fp16", "fp16", None)] + [(f"int8-{m}", "int8", m) for m in METHODS]:
        t0 = time.time()
        opts = ExportOptions(weights, precision, None, args.calib_size, method or "percentile", 0, False, 8,
                             args.work / f"bundle-{name}", None, args.test, command="edgecalc.export.measure")
        res = export_bundle(opts, log=lambda msg: None)
        rows = {(r.artifact, r.backend): r for r in res.rows}
        # every engine that ran the model (onnxruntime, and OpenVINO where installed), float32 from the first bundle
        ran = {b: vars(r) for (a, b), r in rows.items() if a == f"model.{precision}.onnx" and r.status == "ran"}
        results[name] = {"eager": vars(rows["eager", "pytorch"]), "artifact": ran["onnxruntime"], "backends": ran,
                         "seconds": round(time.time() - t0, 1)}
        if "fp32" not in results:
            results = {"fp32": {"eager": vars(rows["eager", "pytorch"]), "seconds": 0.0,
                                "backends": {b: vars(r) for (a, b), r in rows.items()
                                             if a == "model.fp32.onnx" and r.status == "ran"}}, **results}
        print(f"{name}: done in {time.time() - t0:.0f} s", flush=True)
    print("\n| model | AUC | AUC drop | Dice | Dice drop | score max abs diff | score mean abs diff | mask max abs diff | decisions agreeing |")
    print("|---|---|---|---|---|---|---|---|---|")
    eager = next(iter(results.values()))["eager"]
    print(f"| eager float32 | {eager['auc']:.4f} | - | {eager['dice']:.4f} | - | - | - | - | - |")
    for name, r in results.items():
        for backend, a in r["backends"].items():
            print(f"| {name} ({backend} CPU) | {a['auc']:.4f} | {eager['auc'] - a['auc']:+.4f} | {a['dice']:.4f} | "
                  f"{eager['dice'] - a['dice']:+.4f} | {a['score_max_abs']:.2e} | {a['score_mean_abs']:.2e} | "
                  f"{a['mask_max_abs']:.2e} | {a['decision_agreement']:.3f} |")
    if args.json:
        args.json.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "results": results},
                                        indent=2) + "\n")


if __name__ == "__main__":
    main()
