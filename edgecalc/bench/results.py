"""The benchmark's results: one row per backend x precision and the report around them.

Their own module so the runner (``bench/run.py``) and the writers (``bench/report.py``) both read it
without importing each other.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass
class Row:
    """One row of the table: the spec's identity, and the result or the reason it did not run."""

    backend: str
    precision: str
    device: str
    status: str  # ok | unavailable | failed
    reason: str = ""
    result: dict = field(default_factory=dict)
    derived: dict = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{self.backend} {self.precision} ({self.device})"


@dataclass
class BenchReport:
    machine: dict
    bundle: str
    model: dict
    data: dict
    options: dict
    peak_gflops: float
    flops_per_image: float | None
    reference: str | None
    rows: list[Row]

    def to_dict(self) -> dict:
        d = asdict(self)
        d["rows"] = [asdict(r) for r in self.rows]
        return d
