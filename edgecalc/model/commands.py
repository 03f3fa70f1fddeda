"""The body of ``edgecalc model info`` (the CLI only parses options): the layer table on stdout."""

from __future__ import annotations

from typing import Any

from edgecalc.errors import CommandError


def model_info_command(console: Any, preset: str, size: int | None, network: str) -> None:
    """Print a network's parameter count, FLOPs per image and per-layer table; a bad preset, size or network
    is a :class:`CommandError` (``console``, stderr, is where the CLI prints it)."""
    from rich.console import Console
    from rich.table import Table

    from edgecalc.model.config import get_preset
    from edgecalc.model.info import model_info
    from edgecalc.model.registry import network_class

    try:
        cfg = get_preset(preset, size)
        model = network_class(network)(cfg)
    except ValueError as exc:
        raise CommandError(str(exc)) from exc
    info = model_info(cfg, model)
    table = Table(title=f"{'CS-AGnet' if network == 'csagnet' else network} '{preset}' at {cfg.input_size}x{cfg.input_size}x{cfg.in_channels}, width {cfg.width}")
    table.add_column("layer")
    table.add_column("output (C, H, W)")
    table.add_column("params", justify="right")
    table.add_column("MFLOP", justify="right")
    for row in info.rows:
        table.add_row(row.name, str(row.output_shape), f"{row.params:,}", f"{row.flops / 1e6:,.1f}")
    table.add_row("total", "", f"{info.params:,}", f"{info.flops / 1e6:,.1f}", style="bold")
    out = Console()
    out.print(table)
    out.print(
        f"preset {preset}: " + (f"filters {cfg.filters}, " if network in ("csagnet", "vgg-unet") else f"width {cfg.width}, ")
        + f"{info.params:,} parameters, "
        f"{info.flops / 1e9:.2f} GFLOP per image (FLOPs = 2 x multiply-accumulates of conv/linear layers)"
    )
