"""Reproduce the figures and numbers of ``docs/phantom.md``.

    python -m edgecalc.eval.phantom_report --out docs/img [--data DIR] [--real ../shared/data]

Writes ``phantom_grid.png`` (phantom crops, masks outlined, next to the two real nodules),
``phantom_frames.png`` (phantom frames next to real DDTI frames) and ``phantom_metrics.json``
(brightness rules tuned on train folds and scored on test folds, calcification visibility at the data
set's size and at 96 px, envelope speckle SNR, speed).
"""

from __future__ import annotations

import argparse
import csv
import json
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from edgecalc.data.phantom import generate_crop, generate_frame, write_phantom_dataset
from edgecalc.data.phantom.crops import render_crop
from edgecalc.data.phantom.realism import envelope_snr
from edgecalc.data.phantom.shapes import distance_inside
from edgecalc.data.phantom.visibility import EXCLUDE_PX, MARGIN_GRAY, PERCENTILE, visibility_at_sizes
from edgecalc.eval.rules import evaluate_rule, max_intensity_feature, otsu_feature


def _tile(img: np.ndarray, mask: np.ndarray | None, size: int, title: str) -> np.ndarray:
    t = cv2.cvtColor(cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA), cv2.COLOR_GRAY2BGR)
    if mask is not None and mask.any():
        m = cv2.resize(mask, (size, size), interpolation=cv2.INTER_NEAREST)
        cs, _ = cv2.findContours((m > 0).astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        cv2.drawContours(t, cs, -1, (0, 0, 255), 1)
    cv2.putText(t, title, (3, size - 5), cv2.FONT_HERSHEY_PLAIN, 0.8, (0, 255, 255), 1, cv2.LINE_AA)
    return t


def real_crops(real_dir: Path) -> list[tuple[np.ndarray, np.ndarray, str]]:
    """The two real nodules: a square of 170 px (of 500) centred on the calcification."""
    out = []
    for name in ("P_TT-2271", "P_TT-4050"):
        img = cv2.imread(str(real_dir / f"{name}.png"), cv2.IMREAD_GRAYSCALE)
        m = cv2.imread(str(real_dir / f"{name}_calcification_mask.png"), cv2.IMREAD_GRAYSCALE)
        if img is None or m is None:
            continue
        ys, xs = np.nonzero(m)
        cy, cx, r = int(ys.mean()), int(xs.mean()), 85
        sl = (slice(max(0, cy - r), cy + r), slice(max(0, cx - r), cx + r))
        out.append((img[sl], m[sl], f"REAL {name}"))
    return out


def grid_figure(real_dir: Path | None, path: Path, size: int = 192) -> None:
    tiles = []
    if real_dir is not None:
        tiles += [_tile(i, m, size, t) for i, m, t in real_crops(real_dir)]
    for seed in range(6):
        s = generate_crop(seed, True, size)
        tiles.append(_tile(s.image, s.mask, size, f"pos {'+'.join(s.meta['calcification_kinds'])}"))
    for seed in range(6):
        s = generate_crop(seed, False, size)
        conf = ",".join(c.split("_")[0] for c in s.meta["confounders"] if c != "specular_interface")
        tiles.append(_tile(s.image, None, size, f"neg {conf}"[:28]))
    while len(tiles) % 7:
        tiles.append(np.zeros_like(tiles[0]))
    rows = [np.hstack(tiles[i:i + 7]) for i in range(0, len(tiles), 7)]
    cv2.imwrite(str(path), np.vstack(rows))


def frames_figure(real_dir: Path | None, path: Path) -> None:
    ph = []
    for seed in (0, 1):
        f = generate_frame(seed, True)
        img = cv2.cvtColor(f.image, cv2.COLOR_GRAY2BGR)
        x, y, w, h = f.nodule_box
        cv2.rectangle(img, (x, y), (x + w, y + h), (0, 255, 0), 1)
        ph.append(img)
    row = [np.hstack(ph)]
    if real_dir is not None:
        ddti = real_dir.parent / "ddti-nodules" / "images"
        reals = [cv2.imread(str(ddti / n), cv2.IMREAD_COLOR) for n in ("1.png", "100.png")]
        if all(r is not None and r.shape == (360, 560, 3) for r in reals):
            row.append(np.hstack(reals))
    cv2.imwrite(str(path), np.vstack(row))


def rules(data: Path) -> dict:
    rows = list(csv.DictReader((data / "labels.csv").open()))
    y = np.array([int(r["calcification"]) for r in rows])
    fm, fo = [], []
    for r in rows:
        img = cv2.imread(str(data / "images" / f"{r['id']}.png"), cv2.IMREAD_GRAYSCALE)
        nod = cv2.imread(str(data / "nodules" / f"{r['id']}.png"), cv2.IMREAD_GRAYSCALE)
        fm.append(max_intensity_feature(img, nod))
        fo.append(otsu_feature(img, nod))
    out = {}
    for name, f in (("max_intensity", np.array(fm)), ("otsu", np.array(fo))):
        e = evaluate_rule(f, y, k=5, seed=0)
        out[name] = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in e.items() if k != "folds"}
        out[name]["thresholds"] = [f_["threshold"] for f_ in e["folds"]]
    out["n"], out["positive"] = int(len(y)), int(y.sum())
    return out


def _share(flags: list[bool]) -> float | None:
    return round(float(np.mean(flags)), 4) if flags else None


def visibility(data: Path, sizes: tuple[int, ...] = (96,)) -> dict:
    """Share of positives whose calcification outshines the nodule's 99th percentile
    (``visibility.calcification_visibility``), at the data set's size and at ``sizes`` (resized as
    training does), by kind and by low contrast vs normal; boost statistics from ``meta.jsonl``."""
    rows = [r for r in csv.DictReader((data / "labels.csv").open()) if r["calcification"] == "1"]
    meta = {}
    if (data / "meta.jsonl").is_file():
        meta = {m["id"]: m for m in map(json.loads, (data / "meta.jsonl").read_text().splitlines())}
    per: dict[str, list] = {}
    for r in rows:
        rd = lambda sub: cv2.imread(str(data / sub / f"{r['id']}.png"), cv2.IMREAD_GRAYSCALE)  # noqa: E731
        img, m, nod = rd("images"), rd("masks"), rd("nodules")
        own = int(img.shape[0])
        vis = visibility_at_sizes(img, m, nod, [own] + [s for s in sizes if s != own])
        md = meta.get(r["id"], {})
        low = md.get("low_contrast")
        for s, v in vis.items():
            per.setdefault(str(s), []).append((r["kinds"], low, v["margin"], v["visible"]))
    out: dict = {"definition": {"blur": "3x3 box", "percentile": PERCENTILE, "exclude_dilation_px": EXCLUDE_PX,
                                "required_margin_gray": MARGIN_GRAY}, "n_positive": len(rows)}
    for s, lst in per.items():
        kinds = sorted({k for k, *_ in lst})
        single = sorted({k for k in kinds if "|" not in k})
        margins = np.array([mg for *_, mg, _ in lst])
        out[f"at_{s}px"] = {
            "share_visible": _share([v for *_, v in lst]),
            "share_outshines_p99": _share([mg > 0 for *_, mg, _ in lst]),
            "margin_gray": {"min": round(float(margins.min()), 3), "p5": round(float(np.percentile(margins, 5)), 3),
                            "median": round(float(np.median(margins)), 3)},
            "by_kind": {k: _share([v for kk, _, _, v in lst if kk == k or (k in kk.split("|"))]) for k in single}
            | {"two_kinds": _share([v for kk, _, _, v in lst if "|" in kk])},
            "low_contrast": _share([v for _, lo, _, v in lst if lo is True]),
            "normal_contrast": _share([v for _, lo, _, v in lst if lo is False]),
        }
    if meta:
        pos = [meta[r["id"]] for r in rows if r["id"] in meta]
        b = np.array([m["visibility_boost_db"] for m in pos], dtype=np.float64)
        lo = np.array([bool(m["low_contrast"]) for m in pos])

        def stats(x: np.ndarray) -> dict:
            if not len(x):
                return {}
            return {"n": int(len(x)), "share_boosted": round(float(np.mean(x > 0)), 4),
                    "mean_db": round(float(x.mean()), 3), "median_db": round(float(np.median(x)), 3),
                    "p90_db": round(float(np.percentile(x, 90)), 3), "max_db": round(float(x.max()), 3)}

        out["boost"] = {"all": stats(b), "low_contrast": stats(b[lo]), "normal_contrast": stats(b[~lo]),
                        "redrawn": int(sum(1 for m in pos if m.get("visibility_redraws")))}
    return out


def speckle(n: int = 60) -> dict:
    """Envelope SNR in 24×24-px windows of parenchyma ≥ 1.5 mm from the nodule and any specular line."""
    snrs = []
    for seed in range(n):
        r = render_crop(seed, bool(seed % 2))
        sc = r["scene"]
        far = distance_inside(~r["nodule_full"]) > 1.5 / sc.spacing_mm
        clean = distance_inside(sc.coh == 0) > 1.0 / sc.spacing_mm
        snrs += envelope_snr(r["envelope"], far & clean, 24)
    a = np.array(snrs)
    return {"windows": int(len(a)), "mean": round(float(a.mean()), 4), "std": round(float(a.std()), 4),
            "median": round(float(np.median(a)), 4), "rayleigh_theory": round(float(np.sqrt(np.pi / (4 - np.pi))), 4)}


def speed(n_crops: int = 60, n_frames: int = 20) -> dict:
    t = time.perf_counter()
    for i in range(n_crops):
        generate_crop(10_000 + i, bool(i % 2))
    crops = n_crops / (time.perf_counter() - t)
    t = time.perf_counter()
    for i in range(n_frames):
        generate_frame(10_000 + i, bool(i % 2))
    frames = n_frames / (time.perf_counter() - t)
    return {"crops_per_s_one_process": round(crops, 1), "frames_per_s_one_process": round(frames, 1)}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="docs/img", help="folder for the figures and phantom_metrics.json")
    ap.add_argument("--data", default=None, help="an existing default phantom data set (else generated, timed)")
    ap.add_argument("--real", default="../shared/data/real-calcification", help="the two real nodules (optional)")
    a = ap.parse_args(argv)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    real = Path(a.real) if Path(a.real).is_dir() else None
    grid_figure(real, out / "phantom_grid.png")
    frames_figure(real, out / "phantom_frames.png")
    metrics: dict = {"speckle_snr": speckle(), "speed": speed()}
    if a.data:
        metrics["rules"] = rules(Path(a.data))
        metrics["visibility"] = visibility(Path(a.data))
    else:
        with tempfile.TemporaryDirectory() as tmp:
            t = time.perf_counter()
            write_phantom_dataset(tmp, progress=False)
            metrics["speed"]["default_dataset_s"] = round(time.perf_counter() - t, 1)
            metrics["rules"] = rules(Path(tmp))
            metrics["visibility"] = visibility(Path(tmp))
    mi = metrics["rules"]["max_intensity"]["accuracy"]
    metrics["checks"] = {"max_intensity_accuracy_at_most_0.85": bool(mi <= 0.85),
                         "all_positives_visible": all(v["share_visible"] == 1.0 for k, v in metrics["visibility"].items()
                                                      if k.startswith("at_"))}
    (out / "phantom_metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    print(json.dumps(metrics, indent=2))
    for k, v in metrics["visibility"].items():
        if k.startswith("at_"):
            print(f"visible {k}: {v['share_visible']:.1%} of {metrics['visibility']['n_positive']} positives "
                  f"(outshine p99: {v['share_outshines_p99']:.1%}; low contrast {v['low_contrast']}, "
                  f"normal {v['normal_contrast']}; min margin {v['margin_gray']['min']} gray levels)")
    print(f"max-intensity rule accuracy {mi:.3f} (must stay <= 0.85), "
          f"Otsu {metrics['rules']['otsu']['accuracy']:.3f}; checks: {metrics['checks']}")


if __name__ == "__main__":
    main()
