"""This machine's measured compute peak, for the "% of peak" column: a large float32 matrix product.

A model can never run faster than FLOPs / peak; the ratio says how much headroom a backend leaves.
numpy's BLAS is used (multi-threaded, vectorised), so the figure is what the CPU really sustains on
dense GEMM, not a datasheet number.
"""

from __future__ import annotations

import time

import numpy as np


def measure_peak_gflops(n: int = 1536, repeats: int = 5) -> float:
    """Best-of-`repeats` GFLOP/s of an n x n float32 matmul (2 n^3 FLOPs)."""
    rng = np.random.default_rng(0)
    a = rng.random((n, n), dtype=np.float32)
    b = rng.random((n, n), dtype=np.float32)
    a @ b  # warm-up: thread pool, page faults
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t)
    return 2.0 * n ** 3 / best / 1e9


def floor_ms(flops_per_image: float, batch: int, peak_gflops: float) -> float:
    """The compute floor: the fewest milliseconds this batch could take at the measured peak."""
    return flops_per_image * batch / (peak_gflops * 1e9) * 1000.0
