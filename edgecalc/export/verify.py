"""Small shared checks: output-by-output differences and the error export raises on a parity failure."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from edgecalc.model.csagnet import OUTPUT_NAMES


class ParityError(RuntimeError):
    """An artifact disagrees with the eager float32 model beyond its tolerance."""


def max_abs_diffs(ref: Sequence[np.ndarray], got: Sequence[np.ndarray],
                  names: Sequence[str] = OUTPUT_NAMES) -> dict[str, float]:
    """{output name: max |ref - got|}; shapes must match (else ParityError naming the output)."""
    out = {}
    for name, a, b in zip(names, ref, got):
        a, b = np.asarray(a, np.float32), np.asarray(b, np.float32)
        if a.shape != b.shape:
            raise ParityError(f"output {name!r}: shape {b.shape}, eager gives {a.shape}")
        out[name] = float(np.max(np.abs(a - b))) if a.size else 0.0
    return out
