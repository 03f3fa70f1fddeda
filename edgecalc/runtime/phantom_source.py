"""`--source phantom`: the built-in phantom cine as a frame source, so everything runs with no hardware.

Frames are rendered once into memory (about 15 ms each) and then served like a video file, so the
frame rate seen by the pipeline is the pipeline's, not the generator's.
"""

from __future__ import annotations

import numpy as np


class PhantomCineReader:
    """A FrameReader over `n_frames` of the phantom cine (BGR frames, like a capture card's)."""

    def __init__(self, seed: int = 0, n_frames: int = 90, positive: bool = True, loops: int = 1) -> None:
        import cv2

        from edgecalc.data.phantom import generate_cine

        self.frames = [cv2.cvtColor(f.image, cv2.COLOR_GRAY2BGR) for f in generate_cine(seed, n_frames, positive)]
        self.loops = max(1, int(loops))
        self._i = 0

    def read(self) -> tuple[bool, np.ndarray | None]:
        if self._i >= len(self.frames) * self.loops:
            return False, None
        frame = self.frames[self._i % len(self.frames)]
        self._i += 1
        return True, frame

    def release(self) -> None:
        self._i = len(self.frames) * self.loops
