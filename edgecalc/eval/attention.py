"""Does the attention land on the calcification? (the paper's Fig. 8 as a number).

``attention_hit_rate``: per positive image with a non-empty calcification mask, the attention map
(Grid-AG 3 in ``edgecalc eval``) is resized to the mask's size (bilinear, align_corners=False, as
the model resizes its maps), its argmax is taken (first maximum in row-major order on ties, as
``numpy.argmax``), and the image is a *hit* when that position lies inside the mask dilated by
``dilate_px`` pixels: i.e. within Euclidean distance ``dilate_px`` of a mask pixel's centre (a disc
dilation, exact, no structuring-element rounding).

The dilation is meant to be 1 mm. ``dilation_for`` turns a data set's ``mm_per_px`` column of
``labels.csv`` (written by ``edgecalc data phantom``: the crop's side in mm / its side in pixels)
into pixels at the evaluation resolution; images without a known spacing get the stated fallback
radius ``FALLBACK_DILATE_PX`` (pixels at the model's input size) and the result says so. Nothing
here invents millimetres.

Two reference figures come with it: ``chance`` (the mean share of the image the dilated mask
covers, what a uniformly random peak would score) and ``centre`` (a map peaking at the image centre;
crops are centred on the nodule, so this is the "knows where the nodule is" baseline).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

DILATE_MM = 1.0  #: the dilation the metric is defined with
FALLBACK_DILATE_PX = 3.0  #: radius (pixels at the evaluation size) where no pixel spacing is known
ATTENTION_CHANNEL = 2  #: Grid-AG 3 (closest to the output) in the (N, 3, H, W) stacked maps
METRIC_KEY = "attention_hit_rate_grid_ag3"


@dataclass
class HitRate:
    rate: float | None  #: share of hits; None when no image qualified
    hits: int
    n: int  #: positives with a non-empty mask (the images counted)
    per_image: np.ndarray  #: (N,) 1 hit, 0 miss, -1 not counted (negative or empty mask)
    chance: float | None = None  #: mean share of the image the dilated mask covers (a uniformly random peak's hit rate)
    centre: float | None = None  #: hit rate of a map that always peaks at the image centre (crops are nodule-centred)


def resize_bilinear(a: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """2-D map -> (H, W) bilinear, align_corners=False (half-pixel centres, edge clamp), like
    ``torch.nn.functional.interpolate(mode="bilinear", align_corners=False)`` (no antialias)."""
    a = np.asarray(a, np.float64)
    h, w = a.shape
    oh, ow = int(size[0]), int(size[1])
    if (h, w) == (oh, ow):
        return a

    def axis(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        src = (np.arange(n_out, dtype=np.float64) + 0.5) * (n_in / n_out) - 0.5
        src = np.maximum(src, 0.0)  # torch clamps negative source coordinates to 0
        i0 = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
        i1 = np.minimum(i0 + 1, n_in - 1)
        return i0, i1, src - i0

    y0, y1, fy = axis(h, oh)
    x0, x1, fx = axis(w, ow)
    top = a[y0][:, x0] * (1 - fx) + a[y0][:, x1] * fx
    bot = a[y1][:, x0] * (1 - fx) + a[y1][:, x1] * fx
    return top * (1 - fy)[:, None] + bot * fy[:, None]


def peak(att: np.ndarray, size: tuple[int, int]) -> tuple[int, int]:
    """(row, col) of the map's maximum after resizing to ``size``."""
    r = resize_bilinear(np.squeeze(np.asarray(att)), size)
    return tuple(int(v) for v in np.unravel_index(int(np.argmax(r)), r.shape))  # type: ignore[return-value]


def attention_hit_rate(att_maps: Any, masks: Any, dilate_px: float | Sequence[float] | np.ndarray,
                       labels: Any = None) -> HitRate:
    """Share of positives whose attention map peaks inside the mask dilated by ``dilate_px``.

    ``att_maps``: N maps (N, h, w) or (N, 1, h, w), any resolution; ``masks``: N masks (N, H, W) or
    (N, 1, H, W) (or a list of 2-D arrays of differing sizes), nonzero = calcification;
    ``dilate_px``: one radius or one per image, in pixels of the mask; ``labels``: optional (N,)
    0/1 — only label-1 images count (default: every image with a non-empty mask).
    """
    n = len(masks)
    if len(att_maps) != n:
        raise ValueError(f"{len(att_maps)} attention maps for {n} masks")
    radii = np.broadcast_to(np.asarray(dilate_px, np.float64), (n,))
    if (radii < 0).any() or not np.isfinite(radii).all():
        raise ValueError("dilate_px must be finite and >= 0")
    lab = np.ones(n, np.int64) if labels is None else np.asarray(labels).reshape(-1)
    if lab.size != n:
        raise ValueError(f"{lab.size} labels for {n} masks")
    from scipy.ndimage import distance_transform_edt

    per = np.full(n, -1, np.int64)
    cover, centre = [], []
    for i in range(n):
        m = np.squeeze(np.asarray(masks[i])) > 0
        if int(lab[i]) != 1 or not m.any():
            continue
        py, px = peak(att_maps[i], m.shape)
        ys, xs = np.nonzero(m)
        d2 = (ys - py) ** 2 + (xs - px) ** 2
        per[i] = int(d2.min() <= radii[i] ** 2 + 1e-9)
        dilated = distance_transform_edt(~m) <= radii[i] + 1e-9
        cover.append(float(dilated.mean()))
        centre.append(float(dilated[(m.shape[0] - 1) // 2, (m.shape[1] - 1) // 2]))
    counted = int((per >= 0).sum())
    hits = int((per == 1).sum())
    return HitRate(hits / counted if counted else None, hits, counted, per,
                   float(np.mean(cover)) if cover else None, float(np.mean(centre)) if centre else None)


def read_mm_per_px(data: str | Path, ids: Sequence[str]) -> np.ndarray:
    """(N,) ``mm_per_px`` of each id from DATA/labels.csv (NaN where absent, empty or not a positive number)."""
    out = np.full(len(ids), np.nan)
    path = Path(data) / "labels.csv"
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            rows = {(r.get("id") or "").strip(): r for r in csv.DictReader(fh)}
    except OSError:
        return out
    for i, sid in enumerate(ids):
        try:
            v = float((rows.get(sid) or {}).get("mm_per_px") or "nan")
        except ValueError:
            continue
        if np.isfinite(v) and v > 0:
            out[i] = v
    return out


def _native_side(data: Path, sid: str, row_path: str | None) -> int | None:
    """Side (max of width, height) of an image file in pixels, or None if it cannot be read."""
    import cv2

    from edgecalc.data.dataset import IMAGE_EXTS

    cands = [data / row_path] if row_path else [data / "images" / f"{sid}{e}" for e in IMAGE_EXTS]
    for p in cands:
        if p.is_file():
            img = cv2.imread(str(p), cv2.IMREAD_UNCHANGED)
            if img is not None:
                return int(max(img.shape[:2]))
    return None


def dilation_for(data: str | Path | None, ids: Sequence[str], eval_size: int, labels: Any = None) -> tuple[np.ndarray, dict[str, Any]]:
    """Per-image dilation radius in pixels at ``eval_size`` for ``DILATE_MM``, and a description of its source.

    With ``mm_per_px`` in labels.csv (spacing of the image *file*), the radius is
    ``DILATE_MM / (mm_per_px * file_side / eval_size)``; otherwise ``FALLBACK_DILATE_PX``.
    Only positives are looked up (labels, when given).
    """
    n = len(ids)
    radii = np.full(n, FALLBACK_DILATE_PX)
    known = np.zeros(n, bool)
    if data is not None:
        data = Path(data)
        mm = read_mm_per_px(data, ids)
        lookup = np.ones(n, bool) if labels is None else (np.asarray(labels).reshape(-1) == 1)
        paths: dict[str, str] = {}
        try:
            with (data / "labels.csv").open(newline="", encoding="utf-8-sig") as fh:
                paths = {(r.get("id") or "").strip(): (r.get("path") or "").strip() for r in csv.DictReader(fh)}
        except OSError:
            pass
        for i in np.flatnonzero(np.isfinite(mm) & lookup):
            side = _native_side(data, ids[i], paths.get(ids[i]) or None)
            if side:
                radii[i] = DILATE_MM / (mm[i] * side / eval_size)
                known[i] = True
    want = np.ones(n, bool) if labels is None else (np.asarray(labels).reshape(-1) == 1)
    k = radii[known & want]
    n_known, n_want = int((known & want).sum()), int(want.sum())
    fallback = f"fallback {FALLBACK_DILATE_PX:g} px at {eval_size} px input (no mm_per_px in labels.csv; not mm)"
    source = {
        "dilate_mm": DILATE_MM if n_known else None,
        "dilate_source": ("labels.csv mm_per_px" if n_known and n_known == n_want
                          else f"labels.csv mm_per_px for {n_known} of {n_want} images, the rest {fallback}" if n_known
                          else fallback),
        "dilate_px_min": float(k.min()) if k.size else FALLBACK_DILATE_PX,
        "dilate_px_median": float(np.median(k)) if k.size else FALLBACK_DILATE_PX,
        "dilate_px_max": float(k.max()) if k.size else FALLBACK_DILATE_PX,
        "n_images_with_spacing": n_known,
        "fallback_dilate_px": FALLBACK_DILATE_PX,
        "eval_size": int(eval_size),
    }
    return radii, source


def hit_rate_metrics(attention: np.ndarray, masks: np.ndarray, has_mask: np.ndarray, labels: np.ndarray,
                     radii: np.ndarray | None, source: dict[str, Any] | None) -> dict[str, Any]:
    """The ``metrics.json`` entry: Grid-AG 3 maps (channel 2 of ``attention`` (N, 3, H, W)) against ``masks``."""
    n = len(labels)
    if radii is None:
        radii = np.full(n, FALLBACK_DILATE_PX)
        size = int(masks.shape[-1]) if n else 0
        source = {"dilate_mm": None,
                  "dilate_source": f"fallback {FALLBACK_DILATE_PX:g} px at {size} px input (no pixel spacing given; not mm)",
                  "dilate_px_min": FALLBACK_DILATE_PX, "dilate_px_median": FALLBACK_DILATE_PX,
                  "dilate_px_max": FALLBACK_DILATE_PX, "n_images_with_spacing": 0,
                  "fallback_dilate_px": FALLBACK_DILATE_PX, "eval_size": size}
    use = np.asarray(has_mask, bool) & (np.asarray(labels) == 1)
    hr = attention_hit_rate(attention[:, ATTENTION_CHANNEL], np.where(use[:, None, None, None], masks, 0), radii, labels)
    return {"rate": hr.rate, "hits": hr.hits, "n": hr.n, "map": "Grid-AG 3",
            "chance_uniform_peak": hr.chance, "centre_peak_rate": hr.centre, **(source or {})}
