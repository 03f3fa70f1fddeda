"""A calcification decision that does not flicker from frame to frame.

The raw per-frame score jitters with speckle and probe motion. The label shown to the sonographer
is driven by an exponential moving average of the score (``alpha`` = weight of the newest frame)
with hysteresis: it turns positive only when the average rises above ``on`` and back to negative
only when it falls below ``off`` (``off < threshold < on``). With alpha = 0.3 a sustained change
flips the label within about 3-5 frames (100-170 ms at 30 fps), and a score hovering near the
threshold never toggles it.
"""

from __future__ import annotations

from dataclasses import dataclass


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
