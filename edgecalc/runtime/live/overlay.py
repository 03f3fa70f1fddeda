"""Drawing the model's answer onto the full screen frame (OpenCV only).

The model sees a square crop; the sonographer sees the whole screen. `paste_crop` maps a crop-sized
map (mask or attention) back to frame coordinates, and `draw_overlay` paints: the calcification mask
(filled, semi-transparent, with its contour), the nodule box, a score bar with the decision
threshold, the smoothed decision label, the attention map on demand, and a HUD. Everything is drawn
only inside the regions that change, so the cost stays small next to inference.

The scanner's own screen text (preset, probe, depth, frame rate) sits outside the B-mode image, and
so would a HUD in a fixed corner: with a ``HudPlacer`` the score bar, the label and the HUD lines go
into one panel placed outside every scan area, on the emptiest part of the screen that fits it.
``draw_foci`` outlines and labels each measured calcification (``edgecalc analyze`` overlays).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

Box = tuple[int, int, int, int]  # x, y, w, h in frame pixels

MASK_COLOR = (0, 0, 255)  # BGR red: calcification
BOX_COLOR = (0, 220, 255)  # amber: nodule box
POS_COLOR = (40, 40, 235)
NEG_COLOR = (60, 200, 60)


@dataclass
class CropMap:
    """A map computed on the crop, resized to the crop's pixels and cut to the frame.

    ``values`` is (y1 - y0, x1 - x0); ``origin`` = (x0, y0) is where its top-left pixel lies in the
    frame. The live loop keeps maps in this form: nothing frame-sized is allocated per frame.
    """

    values: np.ndarray
    origin: tuple[int, int]

    def full(self, frame_shape: tuple[int, ...]) -> np.ndarray:
        """The map on a zero (False) frame-sized canvas."""
        out = np.zeros((int(frame_shape[0]), int(frame_shape[1])), self.values.dtype)
        x0, y0 = self.origin
        h, w = self.values.shape[:2]
        out[y0:y0 + h, x0:x0 + w] = self.values
        return out


def crop_map(values: np.ndarray, crop: Box, frame_shape: tuple[int, ...]) -> CropMap:
    """A (S, S) map computed on the crop -> a float32 CropMap in frame pixels.

    The crop may reach past the frame edge (it is then cut), and S need not equal the crop side.
    """
    h, w = int(frame_shape[0]), int(frame_shape[1])
    x, y, cw, ch = (int(v) for v in crop)
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + cw, w), min(y + ch, h)
    if cw <= 0 or ch <= 0 or x1 <= x0 or y1 <= y0:
        return CropMap(np.zeros((0, 0), np.float32), (0, 0))
    resized = cv2.resize(values.astype(np.float32, copy=False), (cw, ch), interpolation=cv2.INTER_LINEAR)
    return CropMap(resized[y0 - y:y1 - y, x0 - x:x1 - x], (x0, y0))


def paste_crop(values: np.ndarray, crop: Box, frame_shape: tuple[int, ...]) -> np.ndarray:
    """A (S, S) map computed on the crop -> a float32 (H, W) map in frame coordinates (0 outside)."""
    return crop_map(values, crop, frame_shape).full(frame_shape)


def _as_crop_map(m: np.ndarray | CropMap) -> CropMap:
    return m if isinstance(m, CropMap) else CropMap(np.asarray(m), (0, 0))


@dataclass
class OverlayOptions:
    """What to draw; toggled by keys in `edgecalc live` (m: mask, a: attention)."""

    show_mask: bool = True
    show_attention: bool = False
    mask_alpha: float = 0.45
    attention_alpha: float = 0.4
    threshold: float = 0.5
    hud: list[str] = field(default_factory=list)
    #: where the HUD panel may go; None: the fixed corners (score bar top-right, HUD top-left)
    placer: "HudPlacer | None" = None


#: Gray level above which a screen pixel is "ink" (text, marks, image) the HUD panel must not cover.
INK_LEVEL = 40
#: Font scales tried for the placed panel, largest first: the first whose panel fits on clear screen wins.
PANEL_SCALES = (0.4, 0.33)
PANEL_PAD = 4


class HudPlacer:
    """Where HUD panels of given sizes can go: outside every scan area, covering the least ink.

    ``update(frame, areas)`` takes the screen and its scan areas (x, y, w, h) once in a while (they
    move rarely); ``place(sizes)`` then searches two integral images (~0.1 ms per panel, cached per
    set of sizes). Panels are placed one after the other, each kept off the areas and the panels
    before it; among the positions left, the one covering the fewest ink pixels wins, ties going to
    the topmost, then rightmost. None when a panel finds no position clear of the areas.
    """

    STEP = 4

    def __init__(self) -> None:
        self._ink: np.ndarray | None = None
        self._blocked: np.ndarray | None = None
        self.shape: tuple[int, int] | None = None
        self._cache: dict[tuple, list[tuple[int, int, bool]] | None] = {}

    def update(self, frame: np.ndarray, areas) -> None:
        gray = frame if frame.ndim == 2 else cv2.cvtColor(_to_bgr(frame), cv2.COLOR_BGR2GRAY)
        h, w = gray.shape[:2]
        blocked = np.zeros((h, w), np.uint8)
        for a in areas:
            x, y, aw, ah = (int(v) for v in (a.box if hasattr(a, "box") else a))
            blocked[max(0, y - PANEL_PAD):y + ah + PANEL_PAD, max(0, x - PANEL_PAD):x + aw + PANEL_PAD] = 1
        ink = (gray > INK_LEVEL).view(np.uint8)
        self._ink, self._blocked = cv2.integral(ink), blocked
        self.shape = (h, w)
        self._cache = {}

    def place(self, sizes: list[tuple[int, int]]) -> list[tuple[int, int, bool]] | None:
        """(x, y, covers no ink) for each (w, h) panel in turn; None if one finds no room off the areas."""
        if self._ink is None or self.shape is None:
            return None
        key = tuple((int(w), int(h)) for w, h in sizes)
        if key not in self._cache:
            blocked = self._blocked.copy()
            spots = []
            for w, h in key:
                # the next piece as close as possible to the right of the previous one: reading order
                near = (spots[-1][0] + prev_w + 2, spots[-1][1]) if spots else None
                spot = self._search(w, h, cv2.integral(blocked), near)
                prev_w = w
                if spot is None:
                    spots = None
                    break
                spots.append(spot)
                x, y, _ = spot
                blocked[max(0, y - 2):y + h + 2, max(0, x - 2):x + w + 2] = 1
            self._cache[key] = spots
        return self._cache[key]

    def _search(self, w: int, h: int, blocked: np.ndarray, near: tuple[int, int] | None = None
                ) -> tuple[int, int, bool] | None:
        """The least-ink position clear of ``blocked``: ties to the topmost, then rightmost, or with
        ``near`` (the previous panel) to the closest one, so the pieces of a split panel stay together."""
        H, W = self.shape
        if w > W or h > H:
            return None
        ys = np.arange(0, H - h + 1, self.STEP)
        xs = np.arange(0, W - w + 1, self.STEP)

        def box_sum(ii: np.ndarray) -> np.ndarray:
            return (ii[ys[:, None] + h, xs[None, :] + w] - ii[ys[:, None], xs[None, :] + w]
                    - ii[ys[:, None] + h, xs[None, :]] + ii[ys[:, None], xs[None, :]]).astype(np.int64)

        clear = box_sum(blocked) == 0
        if not clear.any():
            return None
        cost = np.where(clear, box_sum(self._ink), np.iinfo(np.int64).max)
        yy, xx = np.broadcast_to(ys[:, None], cost.shape).ravel(), np.broadcast_to(xs[None, :], cost.shape).ravel()
        if near is None:  # topmost first, then rightmost: the order the eye looks for a status panel
            order = np.lexsort((-xx, yy, cost.ravel()))
        else:
            order = np.lexsort((np.hypot(xx - near[0], yy - near[1]), cost.ravel()))
        i, j = np.unravel_index(int(order[0]), cost.shape)
        return int(xs[j]), int(ys[i]), bool(cost[i, j] == 0)


def _to_bgr(frame: np.ndarray) -> np.ndarray:
    if frame.dtype != np.uint8:  # a 16-bit capture card's frame: OpenCV draws text on 8-bit images only
        from edgecalc.data.preprocess import to_uint8

        frame = to_uint8(frame)
    if frame.ndim == 2:
        return cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
    if frame.shape[2] == 1:
        return cv2.cvtColor(frame[:, :, 0], cv2.COLOR_GRAY2BGR)
    if frame.shape[2] == 4:
        return cv2.cvtColor(frame, cv2.COLOR_BGRA2BGR)
    return frame.copy()


def _blend_region(img: np.ndarray, region: np.ndarray, color: np.ndarray | tuple, alpha: float) -> None:
    """img[region] = (1 - alpha) * img + alpha * color (rounded), in place, only where region is True.

    ``img`` and ``region`` have the same height and width (pass the crop's view of the frame);
    ``color`` is one BGR colour or a per-pixel BGR image of the same size. Works on the region's
    bounding rectangle with OpenCV (addWeighted + a masked copy), not on fancy-indexed pixel lists.
    """
    reg = np.ascontiguousarray(region, dtype=np.uint8)
    x, y, w, h = cv2.boundingRect(reg)
    if w == 0 or h == 0:
        return
    sub = img[y:y + h, x:x + w]
    if np.ndim(color) == 3:
        col = np.asarray(color)[y:y + h, x:x + w]
    else:
        col = np.empty_like(sub)
        col[:] = np.asarray(color, np.uint8)
    blended = cv2.addWeighted(sub, 1.0 - alpha, col, alpha, 0.0)
    np.copyto(sub, blended, where=reg[y:y + h, x:x + w, None].astype(bool))


def _view(img: np.ndarray, cm: CropMap) -> np.ndarray:
    x0, y0 = cm.origin
    h, w = cm.values.shape[:2]
    return img[y0:y0 + h, x0:x0 + w]


def draw_overlay(
    frame: np.ndarray,
    *,
    mask: np.ndarray | CropMap | None = None,
    box: Box | None = None,
    score: float | None = None,
    decision: bool | None = None,
    attention: np.ndarray | CropMap | None = None,
    options: OverlayOptions | None = None,
    extra_hud: list[str] | tuple[str, ...] = (),
) -> np.ndarray:
    """Return a BGR copy of `frame` with the results painted on.

    mask: bool/0-1 calcification mask, (H, W) in frame coordinates or a CropMap (only the crop's
    pixels are touched); attention: likewise, float in [0, 1], drawn only where it is non-zero;
    score: P(calcification); extra_hud: lines shown after ``options.hud`` (this frame's calcifications).
    """
    opt = options or OverlayOptions()
    out = _to_bgr(frame)
    h, w = out.shape[:2]

    if opt.show_attention and attention is not None:
        att = _as_crop_map(attention)
        inside = att.values > 0
        if inside.any():
            heat = cv2.applyColorMap((np.clip(att.values, 0, 1) * 255).astype(np.uint8), cv2.COLORMAP_JET)
            _blend_region(_view(out, att), inside, heat, opt.attention_alpha)

    if opt.show_mask and mask is not None:
        cm = _as_crop_map(mask)
        m = cm.values.astype(bool, copy=False)
        if m.any():
            _blend_region(_view(out, cm), m, MASK_COLOR, opt.mask_alpha)
            contours, _ = cv2.findContours(m.view(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE,
                                           offset=cm.origin)
            cv2.drawContours(out, contours, -1, MASK_COLOR, 1, lineType=cv2.LINE_AA)

    if box is not None and box[2] > 0 and box[3] > 0:
        x, y, bw, bh = (int(v) for v in box)
        cv2.rectangle(out, (x, y), (x + bw - 1, y + bh - 1), BOX_COLOR, 1, lineType=cv2.LINE_AA)

    font, scale = cv2.FONT_HERSHEY_SIMPLEX, max(0.35, min(w, h) / 900)
    hud = list(opt.hud) + list(extra_hud)
    if opt.placer is not None and opt.placer.shape == (h, w):
        if _draw_panel(out, hud, opt, score, decision, font):
            return out
    if score is not None:
        _draw_score_bar(out, float(score), opt.threshold, decision, font, scale)

    y = int(18 * scale / 0.4)
    for line in hud:
        cv2.putText(out, line, (6, y), font, scale, (0, 0, 0), 3, cv2.LINE_AA)
        cv2.putText(out, line, (6, y), font, scale, (255, 255, 255), 1, cv2.LINE_AA)
        y += int(16 * scale / 0.4)
    return out


def _draw_score_bar(out: np.ndarray, score: float, threshold: float, decision: bool | None,
                    font: int, scale: float) -> None:
    """A horizontal bar in the top-right corner, the threshold as a tick, the label under it."""
    h, w = out.shape[:2]
    bw, bh = max(60, w // 6), max(8, h // 45)
    x0, y0 = w - bw - 8, 8
    cv2.rectangle(out, (x0, y0), (x0 + bw, y0 + bh), (60, 60, 60), -1)
    fill = int(round(bw * min(max(score, 0.0), 1.0)))
    positive = decision if decision is not None else score >= threshold
    color = POS_COLOR if positive else NEG_COLOR
    if fill > 0:
        cv2.rectangle(out, (x0, y0), (x0 + fill, y0 + bh), color, -1)
    tx = x0 + int(round(bw * threshold))
    cv2.line(out, (tx, y0 - 2), (tx, y0 + bh + 2), (255, 255, 255), 1)
    label = f"{'CALCIFICATION' if positive else 'no calcification'} {score:.2f}"
    (tw, th), _ = cv2.getTextSize(label, font, scale, 1)
    org = (w - tw - 8, y0 + bh + th + 6)
    cv2.rectangle(out, (org[0] - 3, org[1] - th - 3), (org[0] + tw + 3, org[1] + 4), (0, 0, 0), -1)
    cv2.putText(out, label, org, font, scale, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(out, label, org, font, scale, color, 1, cv2.LINE_AA)


def _panel_size(lines: list[str], font: int, scale: float, bar: bool) -> tuple[int, int]:
    """(width, height) of a panel holding ``lines`` at ``scale`` (and the score bar above them)."""
    tw = max([cv2.getTextSize(t, font, scale, 1)[0][0] for t in lines] + [60 if bar else 0])
    width = 8 * ((tw + 2 * PANEL_PAD + 7) // 8)  # rounded up: the panel does not hop as digits change
    return width, 2 * PANEL_PAD + (_bar_height(scale) + 4 if bar else 0) + _line_step(scale) * len(lines)


def _line_step(scale: float) -> int:
    return int(round(16 * scale / 0.4))


def _bar_height(scale: float) -> int:
    return max(6, _line_step(scale) // 2)


def _draw_panel(out: np.ndarray, hud: list[str], opt: OverlayOptions, score: float | None, decision: bool | None,
                font: int) -> bool:
    """Score bar, label and HUD lines placed by ``opt.placer``: one panel (a column of lines, else one
    row of them) where one fits on clear screen, else one panel per line (at the smallest scale), each
    where it covers the least ink. False when the placer finds no room at all off the scan areas."""
    positive = None
    lines = list(hud)
    if score is not None:
        positive = decision if decision is not None else score >= opt.threshold
        lines.insert(0, f"{'CALCIFICATION' if positive else 'no calcification'} {score:.2f}")
    if not lines:
        return True
    bar = score is not None
    layout = None
    for scale in PANEL_SCALES:
        spots = opt.placer.place([_panel_size(lines, font, scale, bar)])
        if spots is not None and spots[0][2]:
            layout = [(lines, bar, spots[0], scale)]
            break
    if layout is None:  # no clear room for a column of lines: one row of them
        scale = PANEL_SCALES[-1]
        row = ["  ".join(lines)]
        spots = opt.placer.place([_panel_size(row, font, scale, bar)])
        if spots is not None and spots[0][2]:
            layout = [(row, bar, spots[0], scale)]
    if layout is None:  # nor for a row: a panel per line
        groups = [(ln, bar and k == 0) for k, ln in enumerate(lines)]
        spots = opt.placer.place([_panel_size([ln], font, scale, b) for ln, b in groups])
        if spots is None:
            return False
        layout = [([ln], b, spot, scale) for (ln, b), spot in zip(groups, spots)]
    color = POS_COLOR if positive else NEG_COLOR
    for k, (group, with_bar, (x0, y0, _), scale) in enumerate(layout):
        pw, ph = _panel_size(group, font, scale, with_bar)
        cv2.rectangle(out, (x0, y0), (x0 + pw - 1, y0 + ph - 1), (0, 0, 0), -1)
        y = y0 + PANEL_PAD
        if with_bar:
            bw, bh = pw - 2 * PANEL_PAD, _bar_height(scale)
            cv2.rectangle(out, (x0 + PANEL_PAD, y), (x0 + PANEL_PAD + bw, y + bh), (60, 60, 60), -1)
            fill = int(round(bw * min(max(float(score), 0.0), 1.0)))
            if fill > 0:
                cv2.rectangle(out, (x0 + PANEL_PAD, y), (x0 + PANEL_PAD + fill, y + bh), color, -1)
            tx = x0 + PANEL_PAD + int(round(bw * opt.threshold))
            cv2.line(out, (tx, y - 1), (tx, y + bh + 1), (255, 255, 255), 1)
            y += bh + 4
        for j, line in enumerate(group):
            y += _line_step(scale)
            col = color if (bar and k == 0 and j == 0) else (255, 255, 255)
            cv2.putText(out, line, (x0 + PANEL_PAD, y - 3), font, scale, col, 1, cv2.LINE_AA)
    return True


#: Label colour per calcification kind in ``draw_foci`` (BGR).
KIND_COLORS = {"punctate": (0, 255, 255), "macro": (0, 128, 255), "rim": (255, 0, 255), "unknown": (200, 200, 200)}
KIND_TAGS = {"punctate": "P", "macro": "M", "rim": "R", "unknown": "?"}


def draw_foci(out: np.ndarray, foci) -> np.ndarray:
    """Outline each calcification of ``foci`` (an ``edgecalc.runtime.quantify.NoduleFoci``) by its box in
    its kind's colour and label it with the kind's tag and its size (mm, or px where no spacing is
    known), in place; returns ``out``."""
    h, w = out.shape[:2]
    font, scale = cv2.FONT_HERSHEY_SIMPLEX, 0.33
    for c in foci.calcifications:
        x, y, bw, bh = c.box
        col = KIND_COLORS.get(c.kind, (200, 200, 200))
        cv2.rectangle(out, (x - 1, y - 1), (x + bw, y + bh), col, 1)
        size = f"{c.longest_mm:.1f}mm" if c.longest_mm is not None else f"{c.longest_px:.0f}px"
        text = f"{KIND_TAGS.get(c.kind, '?')} {size}"
        (tw, th), _ = cv2.getTextSize(text, font, scale, 1)
        tx = min(max(0, x), max(0, w - tw - 1))
        ty = y - 3 if y - 3 - th >= 0 else min(h - 2, y + bh + th + 3)
        cv2.putText(out, text, (tx, ty), font, scale, (0, 0, 0), 2, cv2.LINE_AA)
        cv2.putText(out, text, (tx, ty), font, scale, col, 1, cv2.LINE_AA)
    return out
