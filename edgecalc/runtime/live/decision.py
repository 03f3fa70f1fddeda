"""A calcification decision that does not flicker from frame to frame.

The raw per-frame score jitters with speckle and probe motion. The label shown to the sonographer
is driven by an exponential moving average of the score (``alpha`` = weight of the newest frame)
with hysteresis: it turns positive only when the average rises above ``on`` and back to negative
only when it falls below ``off`` (``off < threshold < on``). With alpha = 0.3 a sustained change
flips the label within about 3-5 frames (100-170 ms at 30 fps), and a score hovering near the
threshold never toggles it. ``FociSmoother`` smooths the HUD's calcification count, size and kinds
the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from edgecalc.runtime.quantify import KINDS, tirads_points


@dataclass
class DecisionSmoother:
    """EMA + hysteresis over per-frame calcification scores in [0, 1]."""

    threshold: float = 0.5
    band: float = 0.1
    alpha: float = 0.3
    ema: float | None = None
    positive: bool = False

    def __post_init__(self) -> None:
        if not 0.0 < self.alpha <= 1.0:
            raise ValueError(f"alpha must be in (0, 1], got {self.alpha}")
        if not 0.0 <= self.band < min(self.threshold, 1.0 - self.threshold) * 2:
            raise ValueError(f"band {self.band} does not fit around threshold {self.threshold}")

    @property
    def on(self) -> float:
        return self.threshold + self.band / 2

    @property
    def off(self) -> float:
        return self.threshold - self.band / 2

    def update(self, score: float) -> tuple[float, bool]:
        """Feed one frame's score; return (smoothed score, decision)."""
        s = min(max(float(score), 0.0), 1.0)
        self.ema = s if self.ema is None else self.alpha * s + (1.0 - self.alpha) * self.ema
        if self.positive and self.ema < self.off:
            self.positive = False
        elif not self.positive and self.ema > self.on:
            self.positive = True
        return self.ema, self.positive

    def reset(self) -> None:
        """Forget the history (a new nodule, a new box)."""
        self.ema, self.positive = None, False


@dataclass
class SmoothedFoci:
    """What the HUD shows of the current nodule's calcifications: count, largest size, kinds, points."""

    count: int
    largest: float | None
    units: str
    kinds: tuple[str, ...]

    @property
    def points(self) -> int | None:
        return tirads_points(self.kinds)

    def to_dict(self) -> dict:
        return {"count": self.count, "largest": None if self.largest is None else round(self.largest, 3),
                "units": self.units, "kinds": list(self.kinds), "tirads_ef_points": self.points}


@dataclass
class FociSmoother:
    """The calcification count, largest size and kinds of the current nodule, smoothed like the decision.

    Count and largest size: an EMA with the decision's ``alpha``; each kind: an EMA of its presence
    (1 on a frame that shows it, 0 otherwise) with the decision's hysteresis ``band`` around 1/2, so
    a kind seen on one frame in three neither flickers in nor out. ``reset`` with the decision.
    """

    alpha: float = 0.3
    band: float = 0.1
    count: float | None = None
    largest: float | None = None
    presence: dict = field(default_factory=dict)
    shown: set = field(default_factory=set)

    def update(self, count: int, largest: float | None, kinds, units: str) -> SmoothedFoci:
        """Feed one frame's reported calcifications (count 0 and no kinds when none are called)."""
        a = self.alpha
        self.count = float(count) if self.count is None else a * count + (1 - a) * self.count
        if largest is not None:
            self.largest = float(largest) if self.largest is None else a * largest + (1 - a) * self.largest
        elif self.count < 0.5:
            self.largest = None
        kinds = set(kinds)
        for k in kinds | set(self.presence):
            p = self.presence.get(k)
            v = 1.0 if k in kinds else 0.0
            self.presence[k] = v if p is None else a * v + (1 - a) * p
            if k in self.shown and self.presence[k] < 0.5 - self.band / 2:
                self.shown.discard(k)
            elif k not in self.shown and self.presence[k] > 0.5 + self.band / 2:
                self.shown.add(k)
        return SmoothedFoci(int(round(self.count)), self.largest, units, tuple(k for k in KINDS if k in self.shown))

    def reset(self) -> None:
        self.count, self.largest = None, None
        self.presence, self.shown = {}, set()
