"""Nodule crops as in the paper: the smallest square holding the whole nodule, resized to ``size``."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from edgecalc.data.phantom.anatomy import draw_nodule, nodule_geometry, raster_nodule, texture_parenchyma
from edgecalc.data.phantom.calcifications import add_calcifications
from edgecalc.data.phantom.config import PhantomConfig
from edgecalc.data.phantom.confounders import add_confounders, specular_interface
from edgecalc.data.phantom.fields import uniform
from edgecalc.data.phantom.truth import CALCIFICATIONS_KEY, calcification_records
from edgecalc.data.phantom.imaging import Scene, echo_fields, envelope_of, log_compress, speckle_field
from edgecalc.data.phantom.visibility import smallest_visible_boost, visibility_at_sizes
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
                       positive: bool) -> tuple[np.ndarray, dict, list[tuple[str, np.ndarray]]]:
    """Nodule content, calcifications (positives) and confounders into ``scene``; returns (calc mask, meta,
    parts: one (kind, visible mask) per calcification drawn)."""
    info = draw_nodule(scene, rng, cfg, nodule)
    meta = dict(info["meta"])
    calc = np.zeros(scene.shape, dtype=bool)
    parts: list[tuple[str, np.ndarray]] = []
    cyst = info["cyst"]
    # confounders first, calcifications last, so nothing paints over a calcification's pixels
    meta["confounders"] = add_confounders(scene, rng, cfg, nodule, cyst, positive)
    if positive:
        calc, cmeta, parts = add_calcifications(scene, rng, cfg, nodule & ~cyst if (nodule & ~cyst).any() else nodule,
                                         info["level"])
        meta.update(cmeta)
    else:
        meta.update({"calcification_kinds": [], "low_contrast": False})
    return calc, meta, parts


def _scene_echo(seed: int, positive: bool, cfg: PhantomConfig, redraw: int = 0) -> dict:
    """Draw everything random of a crop and beamform it; the calcification's echo is kept apart so
    its level can be raised afterwards without touching any other pixel or random draw."""
    key = [int(seed), int(bool(positive)), 0xC0] + ([int(redraw)] if redraw else [])
    rng = np.random.default_rng(key)
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
    calc, meta, parts = build_nodule_scene(rng, cfg, scene, nodule, positive)
    if rng.random() < cfg.p_specular_interface:
        if specular_interface(scene, rng, cfg, nodule):
            meta["confounders"] = meta["confounders"] + ["specular_interface"]
    speckle = speckle_field(rng, (n, n))
    noise = speckle_field(rng, (n, n))
    tgc_err = uniform(rng, cfg.tgc_error_db_per_mm)
    ri, ri_calc = echo_fields(scene, cfg, speckle, noise, tgc_err, calc if positive else None)
    dr, gain = uniform(rng, cfg.dynamic_range_db), uniform(rng, cfg.gain_db)
    win = (slice(top, top + side), slice(left, left + side))
    meta.update({"nodule": {k: v for k, v in geom.items() if k != "harmonics"}, "dynamic_range_db": round(dr, 3),
                 "gain_db": round(gain, 3), "tgc_error_db_per_mm": round(tgc_err, 4),
                 "crop_side_mm": round(side * sp, 3), "crop_depth_mm": round(depth_top, 3)})
    meta["nodule"] = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in meta["nodule"].items()}
    return {"ri": ri, "ri_calc": ri_calc, "dr": dr, "gain": gain, "win": win, "scene": scene, "nodule_full": nodule,
            "calc_full": calc, "parts": parts, "meta": meta}


def _at_size(e: dict, cfg: PhantomConfig, size: int, boost_db: float) -> tuple[np.ndarray, np.ndarray]:
    """(native crop, crop at ``size``) with the calcification's echo raised by ``boost_db``."""
    win = (slice(None),) + e["win"]
    sub = e["ri_calc"][win] if e["ri_calc"] is not None else None
    native = log_compress(envelope_of(e["ri"][win], sub, boost_db), e["dr"], e["gain"], cfg.headroom_db)
    return native, resize_gray(native, size)


def boost_schedule(cfg: PhantomConfig) -> list[float]:
    """The calcification boosts tried in order: 0, step, 2·step, … ≤ max (dB)."""
    k = int(np.floor(cfg.visibility_max_boost_db / cfg.visibility_step_db + 1e-9)) if cfg.visibility_step_db > 0 else 0
    return [round(i * cfg.visibility_step_db, 6) for i in range(k + 1)]


def check_sizes(cfg: PhantomConfig, size: int) -> list[int]:
    """Output size first, then the configured check sizes (96 px: the kit's training size)."""
    return [int(size)] + [int(s) for s in cfg.visibility_check_sizes if int(s) != int(size)]


def render_crop(seed: int, positive: bool, size: int = 192, config: PhantomConfig | None = None) -> dict:
    """Everything behind a crop, including the pre-log envelope (speckle statistics use it).

    A positive is rendered with the smallest calcification boost (``boost_schedule``) at which its
    calcification is visible (``visibility.calcification_visibility``) at every ``check_sizes``;
    if no boost up to the cap suffices (the nodule's own bright structures reach white), the whole
    scene is redrawn from a derived seed, at most ``visibility_max_redraws`` times.
    """
    cfg = config or PhantomConfig()
    sizes = check_sizes(cfg, size)
    best = None
    for redraw in range(int(cfg.visibility_max_redraws) + 1 if positive else 1):
        e = _scene_echo(seed, positive, cfg, redraw)
        calc_native, nod_native = e["calc_full"][e["win"]], e["nodule_full"][e["win"]]
        mask = resize_mask(calc_native.astype(np.uint8) * 255, size) * 255
        nod = resize_mask(nod_native.astype(np.uint8) * 255, size) * 255
        if not positive:
            native, image = _at_size(e, cfg, size, 0.0)
            e["meta"].update({"visibility_boost_db": 0.0, "visibility_margin_gray": None, "visibility_redraws": 0})
            break
        boost, (native, image), vis = smallest_visible_boost(
            boost_schedule(cfg), lambda b: _at_size(e, cfg, size, b),
            lambda r: visibility_at_sizes(r[1], mask, nod, sizes, cfg.visibility_margin_gray))
        ok = all(v["visible"] for v in vis.values())
        e["meta"].update({"visibility_boost_db": float(boost), "visible": ok, "visibility_redraws": redraw,
                          "visibility_margin_gray": {str(k): v["margin"] for k, v in vis.items()}})
        if best is None or ok:
            best = (e, native, image, mask, nod, boost)
        if ok:
            break
    if positive:
        e, native, image, mask, nod, boost = best
    env = envelope_of(e["ri"], e["ri_calc"], boost if positive else 0.0)
    return {"image_native": native, "calc_native": e["calc_full"][e["win"]], "nodule_native": e["nodule_full"][e["win"]],
            "envelope": env, "scene": e["scene"], "nodule_full": e["nodule_full"], "calc_full": e["calc_full"],
            "meta": e["meta"], "size": size, "image": image, "mask": mask, "nodule": nod, "parts": e["parts"],
            "window": e["win"]}


def generate_crop(seed: int, positive: bool, size: int = 192, config: PhantomConfig | None = None) -> PhantomSample:
    """A nodule crop with its exact calcification mask; same arguments -> byte-identical output.

    Every positive's calcification outshines the nodule around it at the output size and at the
    configured check sizes (see :func:`render_crop`); ``meta`` records the boost applied.
    """
    cfg = config or PhantomConfig()
    r = render_crop(seed, positive, size, cfg)
    meta = r["meta"]
    side = r["window"][0].stop - r["window"][0].start
    meta.update({"seed": int(seed), "label": int(bool(positive)),
                 CALCIFICATIONS_KEY: calcification_records(r["parts"], r["window"], cfg.pixel_spacing_mm, size / side)})
    return PhantomSample(image=np.ascontiguousarray(r["image"]), mask=r["mask"].astype(np.uint8),
                         label=int(bool(positive)), nodule_mask=r["nodule"].astype(np.uint8), meta=meta)
