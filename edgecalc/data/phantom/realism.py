"""Realism measured: the envelope speckle SNR (the brightness rules live in ``edgecalc.eval.rules``)."""

from __future__ import annotations

import numpy as np


def envelope_snr(envelope: np.ndarray, region: np.ndarray, window: int = 24) -> list[float]:
    """Envelope SNR (mean/std) in square windows lying wholly inside ``region`` (homogeneous tissue)."""
    out = []
    h, w = envelope.shape
    for y in range(0, h - window + 1, window):
        for x in range(0, w - window + 1, window):
            if region[y:y + window, x:x + window].all():
                e = envelope[y:y + window, x:x + window]
                out.append(float(e.mean() / e.std()))
    return out
