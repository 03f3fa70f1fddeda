"""Latency statistics the way trtexec reports them: mean, median, p90/p95/p99 after a warm-up."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Callable

import numpy as np


@dataclass
class LatencyStats:
    """Milliseconds over `n` timed calls."""

    n: int
    mean: float
    median: float
    p90: float
    p95: float
    p99: float
    min: float
    max: float

    @classmethod
    def from_ms(cls, ms: list[float] | np.ndarray) -> "LatencyStats":
        a = np.asarray(ms, np.float64)
        if a.size == 0:
            raise ValueError("no timings to summarise")
        p = np.percentile(a, [50, 90, 95, 99])
        return cls(int(a.size), float(a.mean()), float(p[0]), float(p[1]), float(p[2]), float(p[3]),
                   float(a.min()), float(a.max()))

    def to_dict(self) -> dict:
        return asdict(self)


def time_calls(fn: Callable[[], object], n: int, warmup: int) -> LatencyStats:
    """Call `fn` `warmup` times untimed, then `n` times timed with perf_counter."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    for _ in range(max(0, warmup)):
        fn()
    ms = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        ms.append((time.perf_counter() - t) * 1000.0)
    return LatencyStats.from_ms(ms)
