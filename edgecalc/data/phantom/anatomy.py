"""Thyroid anatomy: parenchyma, the nodule (shape, margin, echogenicity, halo, cystic parts) and, for
full frames, skin, strap muscles, carotid artery and trachea."""

from __future__ import annotations

import numpy as np

from edgecalc.data.phantom.config import PhantomConfig
from edgecalc.data.phantom.fields import smooth_field, uniform
from edgecalc.data.phantom.imaging import Scene, coherent_gain, db
from edgecalc.data.phantom.shapes import (boundary, erode, radial_blob, random_point,
                                           vertical_normal_weight)


def nodule_geometry(rng: np.random.Generator, cfg: PhantomConfig) -> dict:
    """Draw the nodule's shape in mm: semi-axes, tilt, lobulation and margin harmonics."""
    lo, hi = cfg.nodule_long_axis_mm
    long_axis = float(np.exp(uniform(rng, [np.log(lo), np.log(hi)])))
    aspect = uniform(rng, cfg.nodule_aspect)
    taller = rng.random() < 0.2  # taller-than-wide
    a = long_axis / 2
    b = a * aspect
    ry, rx = (a, b) if taller else (b, a)
    lobulated = bool(rng.random() < cfg.p_lobulated)
    irregular = bool(rng.random() < cfg.p_irregular_margin)
    harm = [(2, uniform(rng, [0.0, 0.06]), uniform(rng, [0, 2 * np.pi]))]
    if lobulated:
        for n in (3, 4, 5):
            harm.append((n, uniform(rng, [0.03, 0.09]), uniform(rng, [0, 2 * np.pi])))
    if irregular:
        for n in range(7, 19, 2):
            harm.append((n, uniform(rng, [0.01, 0.035]), uniform(rng, [0, 2 * np.pi])))
    return {"ry_mm": ry, "rx_mm": rx, "angle": uniform(rng, [-0.35, 0.35]), "harmonics": harm,
            "lobulated": lobulated, "irregular_margin": irregular, "taller_than_wide": bool(taller),
            "long_axis_mm": long_axis}


def raster_nodule(geom: dict, grid: tuple[int, int], cy: float, cx: float, spacing: float) -> np.ndarray:
    """The nodule's bool mask on a grid, centred at (cy, cx) px."""
    return radial_blob(grid, cy, cx, geom["ry_mm"] / spacing, geom["rx_mm"] / spacing, geom["angle"],
                       geom["harmonics"])


def texture_parenchyma(scene: Scene, rng: np.random.Generator, region: np.ndarray | None = None) -> None:
    """Thyroid parenchyma: homogeneous, mildly hyperechoic, slow ±1 dB texture."""
    f = np.exp(0.12 * smooth_field(rng, scene.shape, 3.0 / scene.spacing_mm))
    if region is None:
        scene.amp *= f
    else:
        scene.amp[region] *= f[region]


def draw_nodule(scene: Scene, rng: np.random.Generator, cfg: PhantomConfig, nodule: np.ndarray) -> dict:
    """Fill the nodule: echogenicity class, heterogeneous texture, optional halo, cystic parts,
    specular capsule. Returns meta and the masks later steps need (``cyst``, ``solid``)."""
    sp = scene.spacing_mm
    names = list(cfg.echogenicity)
    probs = np.array([cfg.echogenicity[k][0] for k in names], dtype=np.float64)
    kind = names[int(rng.choice(len(names), p=probs / probs.sum()))]
    level = uniform(rng, cfg.echogenicity[kind][1:3])
    tex = np.exp(uniform(rng, [0.15, 0.35]) * smooth_field(rng, scene.shape, uniform(rng, [0.8, 2.5]) / sp))
    scene.amp[nodule] = level * tex[nodule]
    meta = {"echogenicity": kind, "echo_level": round(level, 4)}
    halo = bool(rng.random() < cfg.p_halo)
    if halo:
        width = uniform(rng, cfg.halo_width_mm) / sp
        ring = nodule & ~erode(nodule, width)
        scene.amp[ring] = uniform(rng, [0.3, 0.5]) * scene.amp[ring]
    meta["halo"] = halo
    cyst = np.zeros(scene.shape, dtype=bool)
    if rng.random() < cfg.p_cystic:
        cyst = cystic_parts(scene, rng, cfg, nodule)
    meta["cystic"] = bool(cyst.any())
    return {"meta": meta, "cyst": cyst, "level": level}


def cystic_parts(scene: Scene, rng: np.random.Generator, cfg: PhantomConfig, nodule: np.ndarray,
                 n_max: int = 3) -> np.ndarray:
    """Anechoic fluid blobs inside the nodule; low attenuation gives posterior enhancement."""
    sp = scene.spacing_mm
    ys, xs = np.nonzero(nodule)
    size = max(ys.max() - ys.min(), xs.max() - xs.min()) + 1
    cyst = np.zeros(scene.shape, dtype=bool)
    inner = erode(nodule, 0.8 / sp)
    for _ in range(int(rng.integers(1, n_max + 1))):
        p = random_point(rng, inner)
        if p is None:
            break
        r = size * uniform(rng, [0.1, 0.28])
        harm = [(3, uniform(rng, [0, 0.15]), uniform(rng, [0, 6.28]))]
        cyst |= radial_blob(scene.shape, p[0], p[1], r * uniform(rng, [0.6, 1.0]), r, uniform(rng, [0, 3.14]), harm)
    cyst &= inner
    scene.amp[cyst] = 0.02
    scene.atten[cyst] = cfg.fluid_attenuation_db_per_mm
    return cyst


def specular_capsule(scene: Scene, rng: np.random.Generator, cfg: PhantomConfig, nodule: np.ndarray) -> None:
    """The nodule's capsule echoes specularly where it faces the beam (top and bottom)."""
    edge = boundary(nodule)
    wgt = vertical_normal_weight(nodule, 4.0)
    level = db(uniform(rng, [10.0, 24.0])) / coherent_gain(cfg, scene.spacing_mm)
    scene.coh[edge] += level * wgt[edge]


def draw_frame_anatomy(scene: Scene, rng: np.random.Generator, cfg: PhantomConfig) -> dict:
    """Neck cross-section for a full frame: skin, fat, strap muscles, thyroid lobe, carotid, trachea.

    Returns the thyroid mask (where the nodule may sit) and meta.
    """
    h, w = scene.shape
    sp = scene.spacing_mm
    z = (np.arange(h) + 0.5) * sp + scene.depth0_mm
    x = (np.arange(w) + 0.5) * sp
    zz = z[:, None] + np.zeros((1, w))
    amp = scene.amp
    # subcutaneous fat: moderately echogenic, streaky
    fat_bottom = uniform(rng, [2.0, 3.5]) + 0.4 * smooth_field(rng, (1, w), 8 / sp)[0]
    strap_bottom = fat_bottom + uniform(rng, [3.0, 5.5]) + 0.6 * smooth_field(rng, (1, w), 10 / sp)[0]
    fat = zz < fat_bottom[None, :]
    amp[fat] *= 0.8 * np.exp(0.5 * smooth_field(rng, (h, w), 0.6 / sp))[fat]
    strap = (~fat) & (zz < strap_bottom[None, :])
    stri = np.exp(0.6 * smooth_field(rng, (h, w), 0.5 / sp) * 0 + 0.5 * np.sin(zz * 2 * np.pi / uniform(rng, [0.8, 1.4])))
    amp[strap] = 0.35 * stri[strap]
    # fascia: specular lines at layer boundaries
    g = coherent_gain(cfg, sp)
    for zb, lvl in ((fat_bottom, 14.0), (strap_bottom, 16.0)):
        rows = np.clip(((zb - scene.depth0_mm) / sp).astype(int), 0, h - 1)
        scene.coh[rows, np.arange(w)] += db(lvl + uniform(rng, [-3, 3])) / g
    scene.coh[0:max(1, int(0.3 / sp)), :] += db(20.0) / g  # skin / gel interface
    # thyroid lobe: from below the straps to 14-20 mm deeper, rounded at the lateral end
    side = 1 if rng.random() < 0.5 else -1  # medial side (trachea) on the left or right
    lobe_depth = uniform(rng, [14.0, 19.0])
    thyroid = (zz >= strap_bottom[None, :] + 0.3) & (zz < strap_bottom[None, :] + lobe_depth)
    # lateral rounding of the lobe
    xe = x if side > 0 else x[::-1]
    lat_end = uniform(rng, [0.82, 0.95]) * x[-1]
    cz = strap_bottom + lobe_depth / 2
    round_off = ((xe[None, :] - (lat_end - lobe_depth / 2)) / (lobe_depth / 2)) ** 2 + ((zz - cz[None, :]) / (lobe_depth / 2)) ** 2
    thyroid &= (xe[None, :] < lat_end - lobe_depth / 2) | (round_off <= 1.0)
    deep = ~thyroid & ~fat & ~strap  # deep soft tissue and longus colli: darker, heterogeneous
    amp[deep] *= (0.4 * np.exp(0.4 * smooth_field(rng, (h, w), 1.5 / sp)))[deep]
    texture_parenchyma(scene, rng, thyroid)
    # carotid: anechoic circle with bright walls lateral to the lobe
    r_car = uniform(rng, [3.0, 4.0]) / sp
    cx_car = (lat_end + r_car * sp * 0.6) / sp
    cx_car = cx_car if side > 0 else w - cx_car
    cy_car = (float(np.mean(cz)) - scene.depth0_mm + uniform(rng, [0.0, 3.0])) / sp
    car = radial_blob((h, w), cy_car, cx_car, r_car, r_car * 1.05, 0.0)
    wall = car & ~erode(car, 0.6 / sp)
    amp[wall] = db(8.0)
    inner = car & ~wall
    amp[inner] = 0.015
    scene.atten[inner] = cfg.fluid_attenuation_db_per_mm
    scene.coh[boundary(car)] += db(14.0) / g * vertical_normal_weight(car)[boundary(car)]
    # trachea: bright curved anterior wall (air), total shadow with reverberation lines below
    r_tr = uniform(rng, [8.0, 11.0]) / sp
    cx_tr = -r_tr * 0.35 if side > 0 else w + r_tr * 0.35
    cy_tr = (float(np.mean(strap_bottom)) + 2.0 - scene.depth0_mm) / sp + r_tr
    tr = radial_blob((h, w), cy_tr, cx_tr, r_tr, r_tr * 1.2, 0.0)
    ring = tr & ~erode(tr, 1.0 / sp)
    amp[ring] = db(10.0)
    scene.coh[boundary(tr)] += db(22.0) / g * vertical_normal_weight(tr)[boundary(tr)]
    scene.atten[tr & ~ring] = 60.0
    thyroid &= ~tr & ~car
    return {"thyroid": thyroid, "meta": {"medial_side": "left" if side > 0 else "right"}}
