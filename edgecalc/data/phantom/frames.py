"""Full screen frames: the scan area (a neck cross-section with the nodule) inside scanner furniture
(text column, depth marks, grey bar, probe icon), like the frames a grabber on an ultrasound cart
delivers (cf. the DDTI frames)."""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from edgecalc.data.phantom.anatomy import draw_frame_anatomy, nodule_geometry, raster_nodule
from edgecalc.data.phantom.config import PhantomConfig
from edgecalc.data.phantom.crops import boost_schedule, build_nodule_scene, check_sizes
from edgecalc.data.phantom.fields import uniform
from edgecalc.data.phantom.truth import CALCIFICATIONS_KEY, calcification_records
from edgecalc.data.phantom.imaging import Scene, echo_fields, envelope_of, log_compress, speckle_field
from edgecalc.data.phantom.visibility import smallest_visible_boost, visibility_at_sizes
from edgecalc.data.phantom.shapes import erode, random_point


@dataclass
class PhantomFrame:
    """One screen frame; masks in frame pixels (0/255); boxes are (x, y, w, h)."""

    image: np.ndarray
    mask: np.ndarray
    nodule_mask: np.ndarray
    nodule_box: tuple[int, int, int, int]
    scan_area: tuple[int, int, int, int]
    label: int
    meta: dict = field(default_factory=dict)


def layout(rng: np.random.Generator, width: int, height: int) -> tuple[int, int, int, int]:
    """Scan area (x, y, w, h) inside the screen, leaving room for the furniture."""
    ws = int(round(width * uniform(rng, [0.5, 0.66])))
    hs = int(round(height * uniform(rng, [0.7, 0.84])))
    x0 = (width - ws) // 2 + int(round(uniform(rng, [-0.04, 0.0]) * width))
    y0 = int(round(uniform(rng, [0.02, 0.14]) * height))
    y0 = min(y0, height - hs - int(0.04 * height))
    return max(int(0.12 * width), x0), max(2, y0), ws, hs


def build_frame_scene(rng: np.random.Generator, cfg: PhantomConfig, shape: tuple[int, int], positive: bool,
                      nodule_x_range: tuple[float, float] = (0.25, 0.75), with_nodule: bool = True) -> dict:
    """Neck anatomy + nodule + calcifications/confounders on a grid of ``shape`` (frame spacing).

    ``with_nodule=False`` leaves the anatomy alone: the negatives a nodule locator needs to learn
    that plain thyroid speckle holds nothing.
    """
    sp = cfg.frame_pixel_spacing_mm
    scene = Scene.blank(shape, sp, 0.0, cfg)
    anat = draw_frame_anatomy(scene, rng, cfg)
    thyroid = anat["thyroid"]
    if not with_nodule:
        empty = np.zeros(shape, dtype=bool)
        meta = dict(anat["meta"], nodule=None, confounders=[], calcification_kinds=[], low_contrast=False)
        return {"scene": scene, "nodule": empty, "calc": empty.copy(), "parts": [], "meta": meta}
    geom = nodule_geometry(rng, cfg)
    # the nodule must fit in the lobe: shrink until an interior point exists
    for _ in range(8):
        r = max(geom["ry_mm"], geom["rx_mm"]) / sp
        allowed = erode(thyroid, 0.6 * r)
        xs = np.arange(shape[1])
        allowed[:, (xs < nodule_x_range[0] * shape[1]) | (xs > nodule_x_range[1] * shape[1])] = False
        if allowed.any():
            break
        for k in ("ry_mm", "rx_mm", "long_axis_mm"):
            geom[k] *= 0.8
    p = random_point(rng, allowed if allowed.any() else thyroid)
    nodule = raster_nodule(geom, shape, p[0], p[1], sp)
    calc, meta, parts = build_nodule_scene(rng, cfg, scene, nodule, positive)
    meta.update(anat["meta"])
    meta["nodule"] = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in geom.items() if k != "harmonics"}
    return {"scene": scene, "nodule": nodule, "calc": calc, "parts": parts, "meta": meta}


def draw_furniture(canvas: np.ndarray, rng: np.random.Generator, area: tuple[int, int, int, int],
                   depth_mm: float, style: dict | None = None) -> dict:
    """Scanner screen decorations around the scan area (in place); returns the style used."""
    h, w = canvas.shape
    x0, y0, ws, hs = area
    st = style or {
        "preset": ["P100", "P90", "P80"][int(rng.integers(3))],
        "probe": ["12L6", "L12-5", "14L5"][int(rng.integers(3))],
        "fps": int(rng.integers(18, 40)),
        "dr": int(rng.integers(55, 75)),
        "gn": int(rng.integers(60, 99)),
        "label": ["", "DER", "IZQ", "TIROIDES", "LT LOBE", "RT LOBE"][int(rng.integers(6))],
    }
    font = cv2.FONT_HERSHEY_PLAIN
    col = 235
    lines = [st["preset"], st["probe"], "9.0", f"{st['fps']}fps", f"DR{st['dr']}", "2DG", str(st["gn"])]
    for i, t in enumerate(lines):
        cv2.putText(canvas, t, (w - 42, 14 + 12 * i), font, 0.75, col, 1, cv2.LINE_8)
    # depth marks every 1 cm on the left of the scan area, labels at 0 and 5 cm
    px_per_cm = hs / max(depth_mm / 10.0, 1e-6)
    for cm in range(0, int(depth_mm // 10) + 1):
        yy = int(round(y0 + cm * px_per_cm))
        if yy >= h:
            break
        cv2.circle(canvas, (x0 - 50, yy), 1, col, -1)
        if cm in (0, 5):
            cv2.putText(canvas, str(cm), (x0 - 62, yy + 4), font, 0.8, col, 1, cv2.LINE_8)
    # focus marker
    fy = int(y0 + hs * 0.4)
    cv2.fillPoly(canvas, [np.array([[x0 - 45, fy - 3], [x0 - 40, fy], [x0 - 45, fy + 3]], np.int32)], col)
    # top ticks
    for k in range(6):
        cv2.circle(canvas, (int(x0 + k * ws / 5), 4), 1, 200, -1)
    # grey bar
    bx, by, bh = 8, int(h * 0.44), int(h * 0.28)
    ramp = np.linspace(255, 0, bh)[:, None] * np.ones((1, 10))
    canvas[by:by + bh, bx:bx + 10] = np.round(ramp).astype(np.uint8)
    # probe icon
    cx, cy = w - 38, h - 18
    cv2.ellipse(canvas, (cx, cy), (18, 12), 0, 180, 360, col, 1)
    cv2.line(canvas, (cx - 18, cy), (cx - 18, cy + 10), col, 1)
    cv2.line(canvas, (cx + 18, cy), (cx + 18, cy + 10), col, 1)
    cv2.line(canvas, (cx - 18, cy + 10), (cx + 18, cy + 10), col, 1)
    cv2.ellipse(canvas, (cx, cy + 2), (5, 6), 0, 0, 360, col, 1)
    cv2.line(canvas, (cx - 58, h - 30), (cx - 50, h - 30), col, 1)
    if st["label"]:
        cv2.putText(canvas, st["label"], (x0 + 10, h - 14), font, 1.0, col, 1, cv2.LINE_8)
    return st


def _box(mask: np.ndarray) -> tuple[int, int, int, int]:
    ys, xs = np.nonzero(mask)
    return int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1)


def nodule_square(nodule: np.ndarray) -> tuple[slice, slice]:
    """The smallest square holding the nodule (as the crops are cut), clipped to the image."""
    ys, xs = np.nonzero(nodule)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    side = max(y1 - y0, x1 - x0)
    top = max(0, (y0 + y1) // 2 - side // 2)
    left = max(0, (x0 + x1) // 2 - side // 2)
    return slice(top, top + side), slice(left, left + side)


def _visible_frame_image(built: dict, cfg: PhantomConfig, ri: np.ndarray, ri_calc: np.ndarray | None,
                         imaging: dict, calc: np.ndarray, nodule: np.ndarray) -> tuple[float, np.ndarray]:
    """(boost, scan-area image): the smallest calcification boost, not below the one an earlier frame
    of the same scan needed (``built['visibility_boost_db']``, so a cine does not flicker), at which
    the nodule's square crop shows its calcification at 192 px and the check sizes."""
    def image(b: float) -> np.ndarray:
        return log_compress(envelope_of(ri, ri_calc, b), imaging["dynamic_range_db"], imaging["gain_db"],
                            cfg.headroom_db)

    if ri_calc is None or not nodule.any():
        return 0.0, image(0.0)
    sq = nodule_square(nodule)
    sizes = check_sizes(cfg, 192)
    start = float(built.get("visibility_boost_db", 0.0))
    sched = [b for b in boost_schedule(cfg) if b >= start] or [start]
    b, img, _ = smallest_visible_boost(
        sched, image, lambda im: visibility_at_sizes(im[sq], calc[sq], nodule[sq], sizes, cfg.visibility_margin_gray))
    built["visibility_boost_db"] = b
    return b, img


def compose_frame(built: dict, cfg: PhantomConfig, area: tuple[int, int, int, int], width: int, height: int,
                  speckle: np.ndarray, noise: np.ndarray, imaging: dict, style: dict | None,
                  rng: np.random.Generator, x_off: int = 0) -> tuple[PhantomFrame, dict]:
    """Image the scene's window starting at column ``x_off`` and put it on a screen."""
    x0, y0, ws, hs = area
    sl = (slice(0, hs), slice(x_off, x_off + ws))
    sc = built["scene"]
    win = Scene(sc.spacing_mm, sc.depth0_mm, sc.amp[sl], sc.coh[sl], sc.atten[sl])
    calc_win = built["calc"][sl]
    part = calc_win if built["positive"] and calc_win.any() else None
    ri, ri_calc = echo_fields(win, cfg, speckle[sl], noise[sl], imaging["tgc_error_db_per_mm"], part)
    boost, img = _visible_frame_image(built, cfg, ri, ri_calc, imaging, calc_win, built["nodule"][sl])
    canvas = np.zeros((height, width), dtype=np.uint8)
    canvas[y0:y0 + hs, x0:x0 + ws] = img
    style = draw_furniture(canvas, rng, area, hs * sc.spacing_mm, style)
    mask = np.zeros((height, width), dtype=np.uint8)
    nod = np.zeros((height, width), dtype=np.uint8)
    mask[y0:y0 + hs, x0:x0 + ws] = built["calc"][sl].astype(np.uint8) * 255
    nod[y0:y0 + hs, x0:x0 + ws] = built["nodule"][sl].astype(np.uint8) * 255
    meta = dict(built["meta"], **imaging, depth_mm=round(hs * sc.spacing_mm, 3), visibility_boost_db=float(boost))
    meta[CALCIFICATIONS_KEY] = calcification_records(built.get("parts", []), sl, sc.spacing_mm, 1.0, (x0, y0))
    meta["mm_per_px"] = sc.spacing_mm
    box = _box(nod) if nod.any() else (0, 0, 0, 0)
    label = int(bool(mask.any())) if built["positive"] else 0
    return PhantomFrame(canvas, mask, nod, box, area, label, meta), style


def generate_frame(seed: int, positive: bool, width: int = 560, height: int = 360,
                   config: PhantomConfig | None = None, with_nodule: bool = True) -> PhantomFrame:
    """A full screen frame holding one nodule (or none: ``with_nodule=False``, then ``positive`` is
    ignored and the box is empty); same arguments -> byte-identical output."""
    cfg = config or PhantomConfig()
    rng = np.random.default_rng([int(seed), int(bool(positive and with_nodule)), 0xF0 if with_nodule else 0xF1])
    area = layout(rng, width, height)
    built = build_frame_scene(rng, cfg, (area[3], area[2]), positive and with_nodule, with_nodule=with_nodule)
    built["positive"] = bool(positive and with_nodule)
    shape = (area[3], area[2])
    speckle, noise = speckle_field(rng, shape), speckle_field(rng, shape)
    imaging = {"tgc_error_db_per_mm": round(uniform(rng, cfg.tgc_error_db_per_mm), 4),
               "dynamic_range_db": round(uniform(rng, cfg.dynamic_range_db), 3),
               "gain_db": round(uniform(rng, cfg.gain_db), 3)}
    frame, _ = compose_frame(built, cfg, area, width, height, speckle, noise, imaging, None, rng)
    frame.meta.update({"seed": int(seed)})
    return frame
