"""`--source phantom`: the built-in phantom cine as a frame source, so everything runs with no hardware.

Frames are rendered once into memory (about 15 ms each) and then served like a video file, so the
frame rate seen by the pipeline is the pipeline's, not the generator's. With `fps` set, `read`
paces itself like a frame grabber (one frame every 1/fps s, however slow the consumer), which is
what `--realtime` uses to measure live behaviour: dropped frames and capture-to-display latency.
"""

from __future__ import annotations

import time

import numpy as np


class PhantomCineReader:
    """A FrameReader over `n_frames` of the phantom cine (BGR frames, like a capture card's)."""

    def __init__(self, seed: int = 0, n_frames: int = 90, positive: bool = True, loops: int = 1,
                 fps: float | None = None) -> None:
        import cv2

        from edgecalc.data.phantom import generate_cine

        self.frames = [cv2.cvtColor(f.image, cv2.COLOR_GRAY2BGR) for f in generate_cine(seed, n_frames, positive)]
        self.loops = max(1, int(loops))
        self.period = 1.0 / fps if fps else 0.0
        self._next = None
        self._i = 0

    def read(self) -> tuple[bool, np.ndarray | None]:
        if self._i >= len(self.frames) * self.loops:
            return False, None
        if self.period:
            now = time.perf_counter()
            self._next = now if self._next is None else self._next
            if self._next > now:
                time.sleep(self._next - now)
            self._next += self.period
        frame = self.frames[self._i % len(self.frames)]
        self._i += 1
        return True, frame

    def release(self) -> None:
        self._i = len(self.frames) * self.loops
