"""Training throughput: images per second of one optimiser step (forward + backward + AdamW) per
preset, input size and precision, on this machine. What the ``cpu`` recipe's size and budget were
chosen from (docs/results.md).

    python -m edgecalc.bench.train_speed [--configs lite:96,lite:128] [--precisions fp32,bf16] [--threads 2]
    python -m edgecalc.bench.train_speed --networks csagnet,vgg16 --configs lite:96 --precisions fp32

``--networks`` (registry names, default csagnet) times each network's step as ``edgecalc train``
runs it: the segmentation terms only for networks with pixel targets (none for the image-label ones).

A step is the recipe's: batch augmentation, CS-AGnet forward (under bfloat16 autocast for bf16),
BCE+Dice deep supervision + cross-entropy in float32, backward, AdamW. Median over ``--steps`` timed
steps after ``--warmup``; prints a Markdown table and, with ``--json``, writes the rows.
"""

from __future__ import annotations

import argparse
import json
import platform

import torch

from edgecalc.bench.timing import time_calls


def step_fn(preset: str, size: int, precision: str, batch: int, width: float | None = None, network: str = "csagnet"):
    """One (final-stage) training step of the cpu recipe as a zero-argument callable (seeded data)."""
    from edgecalc.model import get_preset
    from edgecalc.model.registry import get_spec, network_class
    from edgecalc.train.augment import batch_augment
    from edgecalc.train.losses import combined_loss
    from edgecalc.train.precision import autocast

    torch.manual_seed(0)
    cfg = get_preset(preset, size)
    if width is not None:
        cfg = cfg.with_(width=width)
    model = network_class(network)(cfg).train()
    has_target = None if get_spec(network).supervision != "labels" else torch.zeros(batch, dtype=torch.bool)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    images = (torch.rand(batch, 1, size, size) * 255).to(torch.uint8)
    masks = (torch.rand(batch, 1, size, size) > 0.995).float()
    labels = torch.arange(batch) % 2
    gen = torch.Generator().manual_seed(0)
    device = torch.device("cpu")

    def step() -> None:
        x, m = batch_augment(images, masks, gen)
        with autocast(precision, device):
            out = model(x)
        loss, _ = combined_loss(out, m, labels, seg_loss="bce-dice", has_target=has_target)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def main(argv: list[str] | None = None) -> None:
    from edgecalc.train.precision import cpu_has_native_bf16

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--configs", default="lite:96,lite:128,lite:160,lite:192,lite@0.5:96",
                    help="comma-separated preset[@width]:size")
    ap.add_argument("--precisions", default="fp32,bf16", help="comma-separated: fp32, bf16")
    ap.add_argument("--networks", default="csagnet", help="comma-separated registry networks (edgecalc/model/registry.py)")
    ap.add_argument("--batch", type=int, default=16, help="images per step")
    ap.add_argument("--steps", type=int, default=8, help="timed steps per row")
    ap.add_argument("--warmup", type=int, default=3, help="untimed steps first")
    ap.add_argument("--threads", type=int, default=2, help="torch threads")
    ap.add_argument("--json", default=None, help="write the rows here")
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    rows = []
    print(f"CPU: {platform.processor() or platform.machine()}; torch {torch.__version__}; "
          f"native bf16: {cpu_has_native_bf16()}; threads {a.threads}; batch {a.batch}")
    print("| network | preset | width | size | precision | img/s | median ms per step |")
    print("|---|---|---|---|---|---|---|")
    for net in a.networks.split(","):
        for item in a.configs.split(","):
            name, size = item.split(":")
            preset, _, width = name.partition("@")
            for prec in a.precisions.split(","):
                fn = step_fn(preset, int(size), prec, a.batch, float(width) if width else None, net)
                stats = time_calls(fn, a.steps, a.warmup)
                row = {"network": net, "preset": preset, "width": float(width) if width else None, "size": int(size),
                       "precision": prec, "img_per_s": round(a.batch / (stats.median / 1000.0), 1),
                       "median_ms": round(stats.median, 1)}
                rows.append(row)
                print(f"| {net} | {preset} | {row['width'] or 'preset'} | {size} | {prec} | {row['img_per_s']} | "
                      f"{row['median_ms']} |", flush=True)
    if a.json:
        with open(a.json, "w") as fh:
            json.dump({"threads": a.threads, "batch": a.batch, "native_bf16": cpu_has_native_bf16(), "rows": rows}, fh, indent=2)


if __name__ == "__main__":
    main()
