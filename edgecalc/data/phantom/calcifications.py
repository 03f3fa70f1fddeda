"""Calcifications (positives only): micro (punctate ≤ 1 mm, no shadow), macro (coarse, shadowing),
rim/eggshell (peripheral arc, shadowing). The returned mask marks exactly the echogenic pixels: the
proximal layer of a shadowing calcification (its deeper part lies in its own shadow and is not seen).

Each drawing function also hands back its parts, one ``(kind, visible mask)`` per calcification
drawn (each punctate focus, each macro, each rim arc), so the data set can record every
calcification's kind, size and position (``truth.py``). Collecting them draws no random number:
a seed's images stay byte-identical."""

from __future__ import annotations

import numpy as np

from edgecalc.data.phantom.config import PhantomConfig
from edgecalc.data.phantom.fields import uniform
from edgecalc.data.phantom.imaging import Scene, db
from edgecalc.data.phantom.shapes import distance_inside, erode, proximal_layer, radial_blob, random_point


def _level(rng: np.random.Generator, cfg: PhantomConfig, nodule_level: float, low: bool) -> float:
    if low:
        return max(nodule_level, 0.2) * db(uniform(rng, cfg.low_contrast_db))
    return db(uniform(rng, cfg.calc_contrast_db))


def add_calcifications(scene: Scene, rng: np.random.Generator, cfg: PhantomConfig, nodule: np.ndarray,
                       nodule_level: float) -> tuple[np.ndarray, dict, list[tuple[str, np.ndarray]]]:
    """Draw one or two kinds of calcification inside ``nodule``; returns (visible mask, meta, parts)."""
    names = list(cfg.calcification_kinds)
    probs = np.array([cfg.calcification_kinds[k] for k in names], dtype=np.float64)
    kinds = [names[int(rng.choice(len(names), p=probs / probs.sum()))]]
    if rng.random() < cfg.p_second_kind:
        other = [k for k in names if k != kinds[0]]
        kinds.append(other[int(rng.integers(len(other)))])
    low = bool(rng.random() < cfg.low_contrast_fraction)
    mask = np.zeros(scene.shape, dtype=bool)
    parts: list[tuple[str, np.ndarray]] = []
    for kind in kinds:
        fn = {"micro": micro, "macro": macro, "rim": rim}[kind]
        mask |= fn(scene, rng, cfg, nodule, _level(rng, cfg, nodule_level, low), parts=parts)
    if not mask.any():  # nodule too small for the drawn kind: fall back to one punctate focus
        mask |= micro(scene, rng, cfg, nodule, _level(rng, cfg, nodule_level, low), count=1, parts=parts)
    return mask, {"calcification_kinds": kinds, "low_contrast": low}, parts


def micro(scene: Scene, rng: np.random.Generator, cfg: PhantomConfig, nodule: np.ndarray, level: float,
          count: int | None = None, parts: list | None = None) -> np.ndarray:
    """Punctate foci ≤ 1 mm, single, clustered or scattered; too small to cast a shadow."""
    sp = scene.spacing_mm
    inner = erode(nodule, 0.6 / sp)
    if not inner.any():
        inner = nodule
    n = count or int(rng.integers(cfg.micro_count[0], cfg.micro_count[1] + 1))
    clustered = n > 2 and rng.random() < 0.6
    centre = random_point(rng, inner)
    mask = np.zeros(scene.shape, dtype=bool)
    if centre is None:
        return mask
    spread = uniform(rng, [1.0, 3.0]) / sp
    for i in range(n):
        if clustered or i == 0:
            p = (centre[0] + rng.normal(0, spread), centre[1] + rng.normal(0, spread)) if i else centre
        else:
            p = random_point(rng, inner)
        d = min(uniform(rng, cfg.micro_diameter_mm), 1.0) / sp
        r = max(d / 2, 0.5)
        foc = radial_blob(scene.shape, p[0], p[1], r * uniform(rng, [0.7, 1.0]), r, 0.0) & nodule
        mask |= foc
        if parts is not None and foc.any():
            parts.append(("micro", foc))
    scene.amp[mask] = level
    return mask


def macro(scene: Scene, rng: np.random.Generator, cfg: PhantomConfig, nodule: np.ndarray, level: float,
          parts: list | None = None) -> np.ndarray:
    """Coarse irregular focus: bright proximal surface, strong attenuation -> posterior shadow."""
    sp = scene.spacing_mm
    d = uniform(rng, cfg.macro_diameter_mm) / sp
    inner = erode(nodule, d / 3)
    p = random_point(rng, inner if inner.any() else nodule)
    if p is None:
        return np.zeros(scene.shape, dtype=bool)
    harm = [(n, uniform(rng, [0.0, 0.15]), uniform(rng, [0, 6.28])) for n in (2, 3, 5)]
    blob = radial_blob(scene.shape, p[0], p[1], d / 2 * uniform(rng, [0.5, 0.9]), d / 2,
                       uniform(rng, [-0.5, 0.5]), harm) & nodule
    vis = proximal_layer(blob, cfg.visible_depth_mm / sp)
    scene.amp[vis] = level
    scene.amp[blob & ~vis] = level * 0.5
    scene.atten[blob] = uniform(rng, cfg.macro_attenuation_db_per_mm)
    if parts is not None and vis.any():
        parts.append(("macro", vis))
    return vis


def rim(scene: Scene, rng: np.random.Generator, cfg: PhantomConfig, nodule: np.ndarray, level: float,
        parts: list | None = None) -> np.ndarray:
    """Eggshell calcification: a bright arc along the proximal periphery, shadowing the nodule beneath."""
    sp = scene.spacing_mm
    t = uniform(rng, cfg.rim_thickness_mm) / sp
    dist = distance_inside(nodule)
    band = (dist > 0.2 / sp) & (dist <= 0.2 / sp + t)
    ys, xs = np.nonzero(nodule)
    cy, cx = ys.mean(), xs.mean()
    yy, xx = np.mgrid[0:scene.shape[0], 0:scene.shape[1]]
    ang = np.arctan2(yy - cy, xx - cx)  # -pi/2 is straight up (towards the probe)
    centre = -np.pi / 2 + uniform(rng, [-0.6, 0.6])
    half = uniform(rng, [0.4, 1.2])
    dang = np.angle(np.exp(1j * (ang - centre)))
    arc = band & (np.abs(dang) <= half)
    vis = proximal_layer(arc, cfg.visible_depth_mm / sp)
    scene.amp[vis] = level
    scene.atten[arc] = uniform(rng, cfg.macro_attenuation_db_per_mm) * uniform(rng, [0.2, 0.6])
    if parts is not None and vis.any():
        parts.append(("rim", vis))
    return vis
