"""Phantom speed (pytest-benchmark; not part of the default test run: pytest's testpaths is tests/).

    pytest benchmarks/test_phantom_speed.py --benchmark-only

The issue's target: the default data set (1,207 crops at 192×192) in ≤ 60 s on a 2-core machine.
"""

from __future__ import annotations

from edgecalc.data.phantom import generate_crop, generate_frame, write_phantom_dataset


def test_crop_192(benchmark):
    seeds = iter(range(10**9))
    benchmark(lambda: generate_crop(next(seeds), True, 192))


def test_frame_560x360(benchmark):
    seeds = iter(range(10**9))
    benchmark(lambda: generate_frame(next(seeds), True))


def test_default_dataset_1207(benchmark, tmp_path):
    runs = iter(range(100))
    result = benchmark.pedantic(
        lambda: write_phantom_dataset(tmp_path / f"run{next(runs)}", progress=False), rounds=1, iterations=1)
    assert (result / "labels.csv").is_file()
