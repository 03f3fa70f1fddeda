"""Parameter count, FLOPs per image and a per-layer table; ``--sweep`` times candidate widths.

FLOPs here are 2 x multiply-accumulates of the convolutions, transposed convolutions and linear
layers (the same convention as ``torch.utils.flop_counter``); BatchNorm, activations, pooling,
resizing and the attention multiply are left out (well under 1 % of the total).

    python -m edgecalc.model.info --preset paper            # the same table as `edgecalc model info`
    python -m edgecalc.model.info --sweep                   # CPU latency of candidate lite widths
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import dataclass

import torch
from torch import nn

from edgecalc.model.config import ModelConfig, get_preset
from edgecalc.model.csagnet import CSAGNet

_COUNTED = (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)


@dataclass
class LayerRow:
    name: str
    output_shape: tuple[int, ...]
    params: int
    flops: int


@dataclass
class ModelInfo:
    config: ModelConfig
    params: int
    flops: int  #: per image, 2 x MACs
    rows: list[LayerRow]


def _macs(module: nn.Module, inp: torch.Tensor, out: torch.Tensor) -> int:
    if isinstance(module, nn.Linear):
        return inp.numel() // inp.shape[-1] * module.in_features * module.out_features
    if isinstance(module, nn.Conv2d):
        k = module.kernel_size[0] * module.kernel_size[1] * module.in_channels // module.groups
        return out.numel() * k
    # ConvTranspose2d: every input pixel meets every weight once.
    return inp.numel() * module.out_channels * module.kernel_size[0] * module.kernel_size[1] // module.groups


def _row_modules(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The table's rows: children of encoder / decoder / classifier, lists and dicts expanded once."""
    rows = []
    for top_name, top in model.named_children():
        for name, child in top.named_children():
            if isinstance(child, (nn.ModuleList, nn.ModuleDict)):
                rows += [(f"{top_name}.{name}.{k}", m) for k, m in child.named_children()]
            else:
                rows.append((f"{top_name}.{name}", child))
    return rows


def model_info(cfg: ModelConfig, model: nn.Module | None = None) -> ModelInfo:
    """Count parameters and FLOPs of one image at ``cfg.input_size`` (a CS-AGnet unless given)."""
    model = (model or CSAGNet(cfg)).eval()
    flops: dict[str, int] = {}
    shapes: dict[str, tuple[int, ...]] = {}
    handles = []
    for name, m in model.named_modules():
        if isinstance(m, _COUNTED):
            handles.append(m.register_forward_hook(lambda mod, i, o, n=name: flops.__setitem__(n, 2 * _macs(mod, i[0], o))))
    rows = _row_modules(model)
    for name, m in rows:
        def keep_shape(mod, i, o, n=name):
            t = o[0] if isinstance(o, (tuple, list)) else o
            shapes[n] = tuple(t.shape[1:])
        handles.append(m.register_forward_hook(keep_shape))
    try:
        with torch.no_grad():
            model(torch.zeros(1, cfg.in_channels, cfg.input_size, cfg.input_size))
    finally:
        for h in handles:
            h.remove()
    table = []
    for name, m in rows:
        table.append(LayerRow(
            name, shapes.get(name, ()), sum(p.numel() for p in m.parameters()),
            sum(v for k, v in flops.items() if k == name or k.startswith(name + ".")),
        ))
    return ModelInfo(cfg, sum(p.numel() for p in model.parameters()), sum(flops.values()), table)


def cpu_latency_ms(cfg: ModelConfig, warmup: int = 5, repeats: int = 30) -> float:
    """Median eager CPU latency (ms) of one forward pass at batch 1, torch.no_grad, eval mode."""
    model = CSAGNet(cfg).eval()
    x = torch.rand(1, cfg.in_channels, cfg.input_size, cfg.input_size)
    times = []
    with torch.no_grad():
        for i in range(warmup + repeats):
            t0 = time.perf_counter()
            model(x)
            if i >= warmup:
                times.append((time.perf_counter() - t0) * 1000.0)
    return statistics.median(times)


def _print_info(info: ModelInfo) -> None:
    print(f"{info.config.name}: {info.params:,} parameters, {info.flops / 1e9:.2f} GFLOP per image")
    for r in info.rows:
        print(f"  {r.name:28s} {str(r.output_shape):18s} {r.params:>11,} {r.flops / 1e6:>10.1f} MFLOP")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="paper")
    ap.add_argument("--size", type=int, default=None)
    ap.add_argument("--sweep", action="store_true", help="time CS-AGnet at several widths (batch 1, CPU)")
    ap.add_argument("--widths", default="1.0,0.75,0.5,0.375,0.25,0.125")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    ap.add_argument("--repeats", type=int, default=30)
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    base = get_preset(args.preset, args.size)
    if not args.sweep:
        _print_info(model_info(base))
        return
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, input {base.input_size}, batch 1")
    print(f"{'width':>6} {'filters':>24} {'params':>11} {'GFLOP':>7} {'median ms':>10}")
    for w in (float(v) for v in args.widths.split(",")):
        cfg = base.with_(width=w, name=f"w{w}")
        info = model_info(cfg)
        ms = cpu_latency_ms(cfg, repeats=args.repeats)
        print(f"{w:>6} {str(cfg.filters):>24} {info.params:>11,} {info.flops / 1e9:>7.2f} {ms:>10.1f}")


if __name__ == "__main__":
    main()
