"""Drawing the model's answer onto the full screen frame (OpenCV only).

The model sees a square crop; the sonographer sees the whole screen. `paste_crop` maps a crop-sized
map (mask or attention) back to frame coordinates, and `draw_overlay` paints: the calcification mask
(filled, semi-transparent, with its contour), the nodule box, a score bar with the decision
threshold, the smoothed decision label, the attention map on demand, and a HUD. Everything is drawn
only inside the regions that change, so the cost stays small next to inference.
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


def _to_bgr(frame: np.ndarray) -> np.ndarray:
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
) -> np.ndarray:
    """Return a BGR copy of `frame` with the results painted on.

    mask: bool/0-1 calcification mask, (H, W) in frame coordinates or a CropMap (only the crop's
    pixels are touched); attention: likewise, float in [0, 1], drawn only where it is non-zero;
    score: P(calcification).
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
    if score is not None:
        _draw_score_bar(out, float(score), opt.threshold, decision, font, scale)

    y = int(18 * scale / 0.4)
    for line in opt.hud:
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
