"""Nodule crops as in the paper: the smallest square holding the whole nodule, resized to ``size``."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from edgecalc.data.phantom.anatomy import draw_nodule, nodule_geometry, raster_nodule, texture_parenchyma
from edgecalc.data.phantom.calcifications import add_calcifications
from edgecalc.data.phantom.config import PhantomConfig
from edgecalc.data.phantom.confounders import add_confounders, specular_interface
from edgecalc.data.phantom.fields import uniform
from edgecalc.data.phantom.imaging import Scene, form_envelope, log_compress, speckle_field
from edgecalc.data.preprocess import resize_gray, resize_mask


@dataclass
class PhantomSample:
    """One nodule crop: image and masks uint8 (0/255) at size x size, label 0/1, meta of what was drawn."""

    image: np.ndarray
    mask: np.ndarray
    label: int
    nodule_mask: np.ndarray
    meta: dict = field(default_factory=dict)


def build_nodule_scene(rng: np.random.Generator, cfg: PhantomConfig, scene: Scene, nodule: np.ndarray,
                       positive: bool) -> tuple[np.ndarray, dict]:
    """Nodule content, calcifications (positives) and confounders into ``scene``; returns (calc mask, meta)."""
    info = draw_nodule(scene, rng, cfg, nodule)
    meta = dict(info["meta"])
    calc = np.zeros(scene.shape, dtype=bool)
    cyst = info["cyst"]
    # confounders first, calcifications last, so nothing paints over a calcification's pixels
    meta["confounders"] = add_confounders(scene, rng, cfg, nodule, cyst, positive)
    if positive:
        calc, cmeta = add_calcifications(scene, rng, cfg, nodule & ~cyst if (nodule & ~cyst).any() else nodule,
                                         info["level"])
        meta.update(cmeta)
    else:
        meta.update({"calcification_kinds": [], "low_contrast": False})
    return calc, meta


def render_crop(seed: int, positive: bool, size: int = 192, config: PhantomConfig | None = None) -> dict:
    """Everything behind a crop, including the pre-log envelope (speckle statistics use it)."""
    cfg = config or PhantomConfig()
    rng = np.random.default_rng([int(seed), int(bool(positive)), 0xC0])
    sp = cfg.pixel_spacing_mm
    geom = nodule_geometry(rng, cfg)
    pad = int(np.ceil(1.0 / sp))  # margin for the PSF and the crop's squaring
    bulge = 1.0 + sum(abs(h[1]) for h in geom["harmonics"])
    reach = int(np.ceil(max(geom["ry_mm"], geom["rx_mm"]) * bulge / sp)) + 2
    n = 2 * (reach + pad) + 1
    nodule = raster_nodule(geom, (n, n), n // 2, n // 2, sp)
    ys, xs = np.nonzero(nodule)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    side = max(y1 - y0, x1 - x0)
    cy, cx = (y0 + y1) // 2, (x0 + x1) // 2
    top, left = cy - side // 2, cx - side // 2
    depth_top = uniform(rng, cfg.nodule_depth_mm)  # depth of the crop's top edge
    scene = Scene.blank((n, n), sp, depth_top - top * sp, cfg)
    texture_parenchyma(scene, rng)
    calc, meta = build_nodule_scene(rng, cfg, scene, nodule, positive)
    if rng.random() < cfg.p_specular_interface:
        if specular_interface(scene, rng, cfg, nodule):
            meta["confounders"] = meta["confounders"] + ["specular_interface"]
    speckle = speckle_field(rng, (n, n))
    noise = speckle_field(rng, (n, n))
    tgc_err = uniform(rng, cfg.tgc_error_db_per_mm)
    env = form_envelope(scene, cfg, speckle, noise, tgc_err)
    dr, gain = uniform(rng, cfg.dynamic_range_db), uniform(rng, cfg.gain_db)
    img = log_compress(env, dr, gain, cfg.headroom_db)
    win = (slice(top, top + side), slice(left, left + side))
    meta.update({"nodule": {k: v for k, v in geom.items() if k != "harmonics"}, "dynamic_range_db": round(dr, 3),
                 "gain_db": round(gain, 3), "tgc_error_db_per_mm": round(tgc_err, 4),
                 "crop_side_mm": round(side * sp, 3), "crop_depth_mm": round(depth_top, 3)})
    meta["nodule"] = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in meta["nodule"].items()}
    return {"image_native": img[win], "calc_native": calc[win], "nodule_native": nodule[win],
            "envelope": env, "scene": scene, "nodule_full": nodule, "calc_full": calc, "meta": meta,
            "size": size}


def generate_crop(seed: int, positive: bool, size: int = 192, config: PhantomConfig | None = None) -> PhantomSample:
    """A nodule crop with its exact calcification mask; same arguments -> byte-identical output."""
    r = render_crop(seed, positive, size, config)
    image = resize_gray(r["image_native"], size)
    mask = resize_mask(r["calc_native"].astype(np.uint8) * 255, size) * 255
    nod = resize_mask(r["nodule_native"].astype(np.uint8) * 255, size) * 255
    meta = r["meta"]
    meta.update({"seed": int(seed), "label": int(bool(positive))})
    return PhantomSample(image=np.ascontiguousarray(image), mask=mask.astype(np.uint8), label=int(bool(positive)),
                         nodule_mask=nod.astype(np.uint8), meta=meta)
