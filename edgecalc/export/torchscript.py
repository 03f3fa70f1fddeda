"""TorchScript export: traced, frozen, saved, reloaded and checked against eager.

LibTorch (C++) deployments load this file. Tracing is enough because ``ExportWrapper``'s forward has
no data-dependent control flow (the model skips its input checks while tracing). Frozen without
the passes that change numerics (``optimize_numerics=False``: no Conv-BatchNorm folding): folding
moved one trained model's mask by 1.3e-4 and the export's exact-parity check refused it, while the
unfolded file reproduces eager bit for bit at the same speed on the CPU.
"""

from __future__ import annotations

import io
from pathlib import Path

import torch

from edgecalc.export.verify import ParityError, max_abs_diffs

TOLERANCE = 1e-4


def export_torchscript(wrapper: torch.nn.Module, example: torch.Tensor, path: str | Path,
                       check: torch.Tensor | None = None, tolerance: float = TOLERANCE) -> dict[str, float]:
    """Trace + freeze ``wrapper`` on ``example``, save to ``path``, reload it and compare with eager.

    ``check`` (default: ``example``) is the batch compared; a different batch size than the example
    proves the batch axis is not baked in. Returns max abs difference per output; raises ParityError
    above ``tolerance``.
    """
    wrapper = wrapper.eval()
    with torch.no_grad():
        traced = torch.jit.trace(wrapper, (example,), check_trace=False)
        frozen = torch.jit.freeze(traced, optimize_numerics=False)
    # saved to memory and written by Python: torch.jit.save writing the file itself aborts the process
    # (an uncaught C++ exception) when the disk is full, where Python raises OSError
    buffer = io.BytesIO()
    torch.jit.save(frozen, buffer)
    Path(path).write_bytes(buffer.getvalue())
    loaded = torch.jit.load(str(path), map_location="cpu")
    batch = example if check is None else check
    with torch.no_grad():
        ref = [t.numpy() for t in wrapper(batch)]
        got = [t.numpy() for t in loaded(batch)]
    diffs = max_abs_diffs(ref, got)
    worst = max(diffs.values())
    if not worst <= tolerance:
        raise ParityError(f"TorchScript differs from eager by {worst:.3g} (> {tolerance:g}): {diffs}")
    return diffs
