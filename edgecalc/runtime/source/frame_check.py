"""Reject frames the pipeline cannot use, with a reason, instead of crashing on them.

Frame grabbers deliver garbage now and then: a zero-sized buffer at start-up, a black frame while
the scanner freezes, a 16-bit or 4-channel frame from a misconfigured capture card. Such a frame
is skipped and counted; the loop keeps going.
"""

from __future__ import annotations

import numpy as np

MIN_SIDE = 32
#: A frame whose brightest pixel is at most this is treated as blank (frozen / blanked screen).
BLANK_MAX = 4


def frame_problem(frame: object) -> str | None:
    """None if the frame is usable, else a short reason ("empty", "shape (..)", ...)."""
    if frame is None:
        return "no frame"
    if not isinstance(frame, np.ndarray):
        return f"not an array ({type(frame).__name__})"
    if frame.size == 0:
        return "empty"
    if frame.ndim not in (2, 3) or (frame.ndim == 3 and frame.shape[2] not in (1, 3, 4)):
        return f"shape {frame.shape} is not HxW, HxWx1, HxWx3 or HxWx4"
    if frame.shape[0] < MIN_SIDE or frame.shape[1] < MIN_SIDE:
        return f"shape {frame.shape} is smaller than {MIN_SIDE}x{MIN_SIDE}"
    if frame.dtype not in (np.uint8, np.uint16):
        return f"dtype {frame.dtype} (expected uint8 or uint16)"
    # a sparse look first (1/64 of the pixels): a frame with a picture answers there; only a frame
    # that looks black is read in full before it is called blank
    scale = 1 if frame.dtype == np.uint8 else 257
    if int(frame[::8, ::8].max()) // scale <= BLANK_MAX and int(frame.max()) // scale <= BLANK_MAX:
        return "blank (all black)"
    return None
