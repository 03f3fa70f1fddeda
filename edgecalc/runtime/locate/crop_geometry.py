"""The square nodule crop the model sees: the smallest square holding the nodule box plus a margin.

The paper feeds the network square crops around the nodule; both the classical and the learned
locator hand their box to ``square_crop`` so training and the cart cut crops the same way.
"""

from __future__ import annotations

Box = tuple[int, int, int, int]  # x, y, w, h in frame pixels


def _as_box(name: str, box) -> Box:
    try:
        x, y, w, h = (int(v) for v in box)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be (x, y, w, h); got {box!r}") from None
    if w <= 0 or h <= 0:
        raise ValueError(f"{name} {box!r} has a non-positive width or height")
    return x, y, w, h


def square_crop(box, scan_area=None, margin: float = 0.1, frame_shape: tuple[int, ...] | None = None) -> Box:
    """The smallest square (x, y, side, side) holding ``box`` grown by ``margin`` x its long side on
    each side, kept inside the scan area (and the frame).

    When the square sticks out it is shifted back in first and shrunk only when the scan area is
    narrower than the square, so it stays square whenever the area allows; a box longer than the
    area's short side gives the smallest rectangle holding it (the box is never cut). ``scan_area`` is a
    (x, y, w, h) tuple or anything with ``.x .y .w .h`` (a ScanArea); None means the whole frame.
    Raises ValueError for a malformed box, a negative margin, or a box outside the scan area.
    """
    bx, by, bw, bh = _as_box("box", box)
    if margin < 0:
        raise ValueError(f"margin must be >= 0; got {margin}")
    limit = _limit(scan_area, frame_shape)
    lx, ly, lw, lh = limit
    if bx >= lx + lw or by >= ly + lh or bx + bw <= lx or by + bh <= ly:
        raise ValueError(f"box {box!r} lies outside the scan area / frame {limit}")
    side = int(round(max(bw, bh) * (1.0 + 2.0 * margin)))
    side = max(side, bw, bh, 1)
    cx, cy = bx + bw / 2.0, by + bh / 2.0
    x, w = _fit_axis(cx, side, lx, lw)
    y, h = _fit_axis(cy, side, ly, lh)
    s = min(w, h)  # the area is narrower than the square along one axis: shrink the other to match,
    if s < w:      # but never below the box, which must stay whole (then the crop is not square)
        x, w = _fit_axis(cx, max(s, bw), lx, lw)
    if s < h:
        y, h = _fit_axis(cy, max(s, bh), ly, lh)
    return x, y, w, h


def _fit_axis(center: float, side: int, lo: int, length: int) -> tuple[int, int]:
    """A segment of ``side`` centred on ``center``, shifted (then shortened) to lie in [lo, lo+length)."""
    side = min(side, length)
    start = int(round(center - side / 2.0))
    start = min(max(start, lo), lo + length - side)
    return start, side


def _limit(scan_area, frame_shape) -> Box:
    if scan_area is not None:
        if all(hasattr(scan_area, k) for k in ("x", "y", "w", "h")):
            scan_area = (scan_area.x, scan_area.y, scan_area.w, scan_area.h)
        x, y, w, h = _as_box("scan_area", scan_area)
    elif frame_shape is not None:
        x, y, w, h = 0, 0, int(frame_shape[1]), int(frame_shape[0])
    else:
        raise ValueError("square_crop needs a scan_area or a frame_shape to clip to")
    if frame_shape is not None:
        H, W = int(frame_shape[0]), int(frame_shape[1])
        x0, y0 = max(0, x), max(0, y)
        x1, y1 = min(W, x + w), min(H, y + h)
        if x1 <= x0 or y1 <= y0:
            raise ValueError(f"scan area {(x, y, w, h)} lies outside a frame of shape {tuple(frame_shape)}")
        x, y, w, h = x0, y0, x1 - x0, y1 - y0
    return x, y, w, h
