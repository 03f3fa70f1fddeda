"""Bright structures that are NOT calcification, in both classes: they are why brightness rules fail.

Comet-tail artefacts of colloid, hyperechoic fibrous strands, bright cyst walls and septations,
spongiform microcysts with bright back walls, specular capsule/fascia interfaces. None enters the
calcification mask.
"""

from __future__ import annotations

import cv2
import numpy as np

from edgecalc.data.phantom.anatomy import cystic_parts, specular_capsule
from edgecalc.data.phantom.config import PhantomConfig
from edgecalc.data.phantom.fields import uniform
from edgecalc.data.phantom.imaging import Scene, coherent_gain, db
from edgecalc.data.phantom.shapes import boundary, erode, radial_blob, random_point, vertical_normal_weight


def add_confounders(scene: Scene, rng: np.random.Generator, cfg: PhantomConfig, nodule: np.ndarray,
                    cyst: np.ndarray, positive: bool) -> list[str]:
    """Draw each confounder with its probability (a little more often in negatives); returns the names."""
    boost = 1.0 if positive else cfg.confounder_boost_negative
    present = []
    if rng.random() < min(1.0, cfg.p_cyst_wall * boost):
        if not cyst.any():
            cyst |= cystic_parts(scene, rng, cfg, nodule, n_max=2)
        if cyst.any():
            cyst_walls(scene, rng, cfg, cyst)
            present.append("cyst_wall")
    if rng.random() < min(1.0, cfg.p_spongiform * boost):
        cyst |= spongiform(scene, rng, cfg, nodule)
        present.append("spongiform")
    if rng.random() < min(1.0, cfg.p_strands * boost):
        strands(scene, rng, cfg, nodule)
        present.append("fibrous_strands")
    if rng.random() < min(1.0, cfg.p_comet_tail * boost):
        comet_tails(scene, rng, cfg, nodule, cyst)
        present.append("comet_tail")
    if rng.random() < min(1.0, cfg.p_specular_capsule * boost):
        specular_capsule(scene, rng, cfg, nodule)
        present.append("specular_capsule")
    return present


def comet_tails(scene: Scene, rng: np.random.Generator, cfg: PhantomConfig, nodule: np.ndarray,
                cyst: np.ndarray) -> None:
    """Inspissated colloid: a tiny bright focus with a tapering tail of reverberation echoes below it."""
    sp = scene.spacing_mm
    g = coherent_gain(cfg, sp)
    where = cyst if cyst.any() and rng.random() < 0.7 else erode(nodule, 1.0 / sp)
    n = int(rng.integers(1, 4))
    for _ in range(n):
        p = random_point(rng, where if where.any() else nodule)
        if p is None:
            return
        r = uniform(rng, [0.12, 0.3]) / sp
        foc = radial_blob(scene.shape, p[0], p[1], r * 0.7, r, 0.0)
        lvl = db(uniform(rng, [18.0, 30.0]))
        scene.amp[foc] = lvl
        step = max(1, int(round(uniform(rng, [0.15, 0.3]) / sp)))
        n_echo = int(rng.integers(3, 8))
        half_w = r * 1.2
        decay = uniform(rng, [1.5, 3.5])
        for k in range(1, n_echo + 1):
            y = int(p[0] + r + k * step)
            if y >= scene.shape[0]:
                break
            hw = max(0.5, half_w * (1 - k / (n_echo + 1)))
            x0, x1 = int(round(p[1] - hw)), int(round(p[1] + hw)) + 1
            scene.coh[y, max(0, x0):max(0, x1)] += lvl / g * db(-decay * k) * 2.0


def strands(scene: Scene, rng: np.random.Generator, cfg: PhantomConfig, nodule: np.ndarray) -> None:
    """Hyperechoic fibrous septa: curved bright bands 0.3-0.7 mm thick, a few mm long."""
    sp = scene.spacing_mm
    g = coherent_gain(cfg, sp)
    ys, xs = np.nonzero(nodule)
    size = max(np.ptp(ys), np.ptp(xs)) + 1
    canvas = np.zeros(scene.shape, dtype=np.uint8)
    for _ in range(int(rng.integers(1, 3))):
        p = random_point(rng, nodule)
        length = min(uniform(rng, [2.0, 7.0]) / sp, 0.8 * size)
        ang = uniform(rng, [-0.6, 0.6]) + (0.0 if rng.random() < 0.7 else np.pi / 2)
        bend = uniform(rng, [-0.3, 0.3]) * length
        t = np.linspace(-0.5, 0.5, 16)
        px = p[1] + t * length * np.cos(ang) - bend * (t * t - 0.25) * np.sin(ang)
        py = p[0] + t * length * np.sin(ang) + bend * (t * t - 0.25) * np.cos(ang)
        pts = np.round(np.stack([px, py], 1) * 16).astype(np.int32)
        th = max(1, int(round(uniform(rng, [0.15, 0.4]) / sp)))
        cv2.polylines(canvas, [pts], False, 255, th, cv2.LINE_8, 4)
    band = (canvas > 0) & nodule
    lvl = db(uniform(rng, [10.0, 22.0]))
    scene.amp[band] = lvl * np.exp(0.4 * rng.standard_normal(int(band.sum())))
    edge = boundary(band)
    scene.coh[edge] += lvl / g * 0.6 * vertical_normal_weight(band, 2.0)[edge]


def cyst_walls(scene: Scene, rng: np.random.Generator, cfg: PhantomConfig, cyst: np.ndarray) -> None:
    """Cyst walls and septations echo brightly, specularly where they face the beam."""
    sp = scene.spacing_mm
    g = coherent_gain(cfg, sp)
    lvl = db(uniform(rng, [14.0, 28.0]))
    edge = boundary(cyst)
    wall = cyst & ~erode(cyst, 0.15 / sp)
    scene.amp[wall] = lvl * 0.25
    scene.coh[edge] += lvl / g * vertical_normal_weight(cyst, 3.0)[edge]
    # septations: thin lines across the fluid
    canvas = np.zeros(scene.shape, dtype=np.uint8)
    ys, xs = np.nonzero(cyst)
    for _ in range(int(rng.integers(0, 3))):
        a, b = random_point(rng, cyst), random_point(rng, cyst)
        if a is None or a == b:
            continue
        cv2.line(canvas, (a[1], a[0]), (b[1], b[0]), 255, max(1, int(round(0.2 / sp))))
    sep = (canvas > 0) & cyst
    scene.amp[sep] = lvl * 0.5
    scene.coh[sep] += lvl / g * 0.5 * vertical_normal_weight(sep | ~cyst, 2.0)[sep]


def spongiform(scene: Scene, rng: np.random.Generator, cfg: PhantomConfig, nodule: np.ndarray) -> np.ndarray:
    """Aggregated microcysts (0.5-2 mm) with bright back walls: punctate bright echoes, not calcifications."""
    sp = scene.spacing_mm
    g = coherent_gain(cfg, sp)
    inner = erode(nodule, 0.5 / sp)
    area_mm2 = inner.sum() * sp * sp
    n = int(min(40, max(5, area_mm2 / uniform(rng, [8.0, 20.0]))))
    cysts = np.zeros(scene.shape, dtype=bool)
    walls = np.zeros(scene.shape, dtype=bool)
    lvl = db(uniform(rng, [14.0, 26.0]))
    for _ in range(n):
        p = random_point(rng, inner)
        if p is None:
            break
        r = uniform(rng, [0.25, 0.8]) / sp
        c = radial_blob(scene.shape, p[0], p[1], r * uniform(rng, [0.6, 1.0]), r, 0.0) & inner
        if not c.any():
            continue
        cysts |= c
        # back wall: the distal rim of the microcyst
        back = c & ~np.roll(c, -max(1, int(0.15 / sp)), axis=0)
        walls |= back
    scene.amp[cysts] = 0.03
    scene.atten[cysts] = cfg.fluid_attenuation_db_per_mm
    scene.amp[walls] = lvl
    scene.coh[walls] += lvl / g * 0.7
    return cysts


def specular_interface(scene: Scene, rng: np.random.Generator, cfg: PhantomConfig, avoid: np.ndarray) -> bool:
    """A fascia-like specular line crossing the parenchyma (outside ``avoid``)."""
    sp = scene.spacing_mm
    h, w = scene.shape
    g = coherent_gain(cfg, sp)
    y0 = uniform(rng, [0.05, 0.95]) * h
    slope = uniform(rng, [-0.08, 0.08])
    xs = np.arange(w)
    ys = np.round(y0 + slope * (xs - w / 2) + 0.0008 * uniform(rng, [-1, 1]) * (xs - w / 2) ** 2).astype(int)
    ok = (ys >= 0) & (ys < h)
    xs, ys = xs[ok], ys[ok]
    keep = ~avoid[ys, xs]
    if not keep.any():
        return False
    scene.coh[ys[keep], xs[keep]] += db(uniform(rng, [12.0, 22.0])) / g
    return True
