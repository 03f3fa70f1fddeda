"""Calcification quantification scored against the phantom's truth: count, size, kind, echogenic-foci points.

    python -m edgecalc.eval.quantification DATA             # DATA's crops (images/, masks/, nodules/, meta.jsonl)
    python -m edgecalc.eval.quantification DATA --frames    # its screen frames (frames/..., frames/meta.jsonl)
    python -m edgecalc.eval.quantification DATA --oracle    # the truth masks measured: the rules alone

The phantom records every calcification it drew (``edgecalc.data.phantom.truth``). The truth of an
image: the components of its truth mask measured by ``edgecalc.runtime.quantify`` exactly as a
prediction is (same resolution, same noise floor), each with the kind of the drawn calcification
it holds (the largest one whose centroid lies in it, else the nearest); its points are those of the
kinds drawn. The prediction is the cart's: crops through the model with their own nodule mask
(``StillAnalyzer.analyze_crop``), frames through scan area, locator, crop, model
(``StillAnalyzer.analyze``); calcifications are reported where the model calls calcification.
``--refine`` sets the mask's native-resolution refinement (``edgecalc.runtime.refine_mask``; default:
the one ``analyze`` and ``live`` use; ``off``: the model's mask as it is).

Figures: on positives, the share whose count is within 1 of the truth (and exact); predicted and
true components matched one to one, nearest centroids first, within ``MATCH_MM`` or half the true
longest diameter; on matches, the median relative error of the longest diameter and the share of
kinds right (and the kind confusion; also without the rims the phantom drew along a cyst wall
inside the nodule, which no margin rule calls peripheral); the share of images whose points are exact (positives,
negatives). Torch-free: the shipped bundle runs on onnxruntime (or ``--backend``).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edgecalc.data.dataset import LABELS_FILE, MM_PER_PX_COLUMN
from edgecalc.data.phantom.dataset_writer import FRAMES_META
from edgecalc.data.phantom.truth import CALCIFICATIONS_KEY, QUANTIFY_KIND
from edgecalc.runtime.quantify import KINDS, NoduleFoci, quantify, tirads_points

#: Centroids closer than this (mm), or than half the true longest diameter, can match.
MATCH_MM = 1.0
CROP_META = "meta.jsonl"


@dataclass
class Truth:
    """One image of a phantom data set and what it holds."""

    id: str
    image: Path
    mask: Path
    nodule: Path
    label: int
    mm_per_px: float
    records: list[dict]


def load_truth(data: str | Path, frames: bool = False) -> list[Truth]:
    """Every image with its recorded calcifications; ValueError naming the file when the truth is missing."""
    data = Path(data)
    base = data / "frames" if frames else data
    meta_path = data / FRAMES_META if frames else data / CROP_META
    if not meta_path.is_file():
        raise ValueError(f"{meta_path} is missing" + (" (write the frames with `edgecalc data phantom --frames`)"
                                                     if frames else ""))
    spacing: dict[str, float] = {}
    if not frames:
        with (data / LABELS_FILE).open(newline="", encoding="utf-8-sig") as fh:
            for row in csv.DictReader(fh):
                if row.get(MM_PER_PX_COLUMN):
                    spacing[row["id"]] = float(row[MM_PER_PX_COLUMN])
    out = []
    for n, line in enumerate(meta_path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        rec = json.loads(line)
        if CALCIFICATIONS_KEY not in rec:
            raise ValueError(f"{meta_path} line {n}: no {CALCIFICATIONS_KEY!r} (a data set written before the "
                             f"phantom recorded each calcification): regenerate it with `edgecalc data phantom`")
        sid = str(rec["id"])
        mm = float(rec["mm_per_px"]) if frames else spacing.get(sid)
        if mm is None:
            raise ValueError(f"{data / LABELS_FILE}: no {MM_PER_PX_COLUMN} for {sid}")
        out.append(Truth(sid, base / "images" / f"{sid}.png", base / "masks" / f"{sid}.png",
                         base / "nodules" / f"{sid}.png", int(rec["label"]), mm, list(rec[CALCIFICATIONS_KEY])))
    return out


def read_gray(path: Path) -> np.ndarray:
    """A data set's image, mask or nodule file as 8-bit gray; ValueError naming a file that does not decode."""
    img = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if img is None:
        raise ValueError(f"{path}: not a readable image")
    return img


def true_foci(t: Truth, gray: np.ndarray, nodule: np.ndarray) -> tuple[NoduleFoci, list[str]]:
    """The truth mask's components, measured like a prediction, and each one's drawn kind."""
    spacing = (t.mm_per_px, t.mm_per_px)
    foci = quantify(gray, read_gray(t.mask) > 127, nodule, spacing)
    kinds = []
    for c in foci.calcifications:
        x, y, w, h = c.box
        inside = [r for r in t.records if x - 1 <= r["x"] <= x + w and y - 1 <= r["y"] <= y + h]
        if inside:
            r = max(inside, key=lambda r: r["area_mm2"])
        else:
            r = min(t.records, key=lambda r: np.hypot(r["x"] - c.centroid[0], r["y"] - c.centroid[1]))
        kinds.append(QUANTIFY_KIND[r["kind"]])
    return foci, kinds


def match(pred: NoduleFoci, truth: NoduleFoci, mm_per_px: float) -> list[tuple[int, int]]:
    """(pred index, truth index) pairs, nearest centroids first, each within reach of the true one."""
    pairs = []
    for i, p in enumerate(pred.calcifications):
        for j, t in enumerate(truth.calcifications):
            d = np.hypot(p.centroid[0] - t.centroid[0], p.centroid[1] - t.centroid[1]) * mm_per_px
            if d <= max(MATCH_MM, 0.5 * t.longest_mm):
                pairs.append((d, i, j))
    used_p, used_t, out = set(), set(), []
    for _, i, j in sorted(pairs):
        if i not in used_p and j not in used_t:
            used_p.add(i)
            used_t.add(j)
            out.append((i, j))
    return out


def evaluate(data: str | Path, frames: bool = False, oracle: bool = False, analyzer=None, limit: int | None = None,
             on_progress=None) -> dict:
    """Score every image of ``data``; ``analyzer``: a ``StillAnalyzer`` (needed unless ``oracle``)."""
    from edgecalc.runtime.analyze import SPACING_PHANTOM, Still

    truths = load_truth(data, frames)[:limit]
    per_image, size_err, kind_pairs = [], [], []
    for t in truths:
        gray, nodule = read_gray(t.image), read_gray(t.nodule) > 127
        truth, truth_kinds = true_foci(t, gray, nodule)
        spacing = (t.mm_per_px, t.mm_per_px)
        if oracle:
            pred = truth if t.label else quantify(gray, np.zeros_like(nodule), nodule, spacing)
        else:
            still = Still(t.id, 0, gray, spacing, SPACING_PHANTOM)
            a = analyzer.analyze(still) if frames else analyzer.analyze_crop(still, nodule)
            pred = a.foci
        true_points = tirads_points({QUANTIFY_KIND[r["kind"]] for r in t.records})
        pairs = match(pred, truth, t.mm_per_px)
        for i, j in pairs:
            p, q = pred.calcifications[i], truth.calcifications[j]
            size_err.append(abs(p.longest_mm - q.longest_mm) / q.longest_mm)
            # the phantom draws a rim along the margin of the nodule's solid part, which can be a cyst wall inside it
            off_margin = truth_kinds[j] == "rim" and (q.margin_share or 0.0) < 0.5
            kind_pairs.append((truth_kinds[j], p.kind, off_margin))
        per_image.append({"id": t.id, "label": t.label, "true_count": truth.count, "count": pred.count,
                          "true_points": true_points, "points": pred.points, "matched": len(pairs),
                          "true_kinds": sorted(set(truth_kinds)), "kinds": list(pred.kinds)})
        if on_progress is not None:
            on_progress(t)
    return summarise(per_image, size_err, kind_pairs, frames=frames, oracle=oracle)


def summarise(per_image: list[dict], size_err: list[float], kind_pairs: list[tuple[str, str, bool]], **how) -> dict:
    pos = [r for r in per_image if r["label"] == 1]
    neg = [r for r in per_image if r["label"] == 0]

    def share(rows, ok) -> float | None:
        return round(sum(bool(ok(r)) for r in rows) / len(rows), 4) if rows else None

    confusion = {t: {p: 0 for p in KINDS} for t in KINDS}
    for t, p, _ in kind_pairs:
        confusion[t][p] += 1
    on_margin = [(t, p) for t, p, off in kind_pairs if not off]
    true_n = sum(r["true_count"] for r in pos)
    pred_n = sum(r["count"] for r in pos)
    matched = sum(r["matched"] for r in pos)
    return {
        **how, "images": len(per_image), "positives": len(pos), "negatives": len(neg),
        "count_within_1": share(pos, lambda r: abs(r["count"] - r["true_count"]) <= 1),
        "count_exact": share(pos, lambda r: r["count"] == r["true_count"]),
        "median_size_error": round(float(np.median(size_err)), 4) if size_err else None,
        "kind_accuracy": round(sum(t == p for t, p, _ in kind_pairs) / len(kind_pairs), 4) if kind_pairs else None,
        "kind_accuracy_without_cyst_wall_rims": round(sum(t == p for t, p in on_margin) / len(on_margin), 4)
        if on_margin else None,
        "cyst_wall_rims": len(kind_pairs) - len(on_margin),
        "points_exact_positives": share(pos, lambda r: r["points"] == r["true_points"]),
        "points_exact_negatives": share(neg, lambda r: r["points"] == r["true_points"]),
        "truth_components_found": round(matched / true_n, 4) if true_n else None,
        "predicted_components_true": round(matched / pred_n, 4) if pred_n else None,
        "matched": len(kind_pairs), "kind_confusion": confusion, "per_image": per_image,
    }


def markdown(report: dict) -> str:
    """The figures as a small Markdown table (no per-image rows)."""
    keys = ("count_within_1", "count_exact", "median_size_error", "kind_accuracy",
            "kind_accuracy_without_cyst_wall_rims", "cyst_wall_rims", "points_exact_positives",
            "points_exact_negatives", "truth_components_found", "predicted_components_true")
    lines = ["| figure | value |", "|---|---|"]
    lines += [f"| images (positives / negatives) | {report['images']} ({report['positives']} / {report['negatives']}) |",
              f"| matched calcifications | {report['matched']} |"]
    lines += [f"| {k.replace('_', ' ')} | {'-' if report[k] is None else report[k]} |" for k in keys]
    conf = report["kind_confusion"]
    lines += ["", "| true \\ predicted | " + " | ".join(KINDS) + " |", "|---" * (len(KINDS) + 1) + "|"]
    lines += [f"| {t} | " + " | ".join(str(conf[t][p]) for p in KINDS) + " |" for t in KINDS if any(conf[t].values())]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m edgecalc.eval.quantification",
                                 description="Score calcification quantification against a phantom data set's truth.")
    ap.add_argument("data", type=Path, help="phantom data-set folder (edgecalc data phantom; --frames for frames)")
    ap.add_argument("--frames", action="store_true", help="score its screen frames (whole cart path) instead of its crops")
    ap.add_argument("--oracle", action="store_true", help="measure the truth masks: the quantification rules alone")
    ap.add_argument("--bundle", type=Path, default=None, help="export bundle (default: the shipped one)")
    ap.add_argument("--backend", default="onnxruntime", help="inference engine (default onnxruntime)")
    ap.add_argument("--precision", default="fp32")
    ap.add_argument("--refine", default="default", metavar="SPEC",
                    help="the mask's native-resolution refinement (edgecalc.runtime.refine_mask): 'default' "
                         "(what analyze and live use), 'off' (the model's mask as it is), or name=value,... "
                         "(the default with those fields changed, e.g. trim_fraction=0.6,window_mm=4)")
    ap.add_argument("--limit", type=int, default=None, help="only the first N images")
    ap.add_argument("--out", type=Path, default=None, help="write the report (with per-image rows) as JSON here")
    args = ap.parse_args(argv)
    from rich.progress import Progress

    from edgecalc.runtime.refine_mask import Refinement

    try:
        refinement = Refinement.parse(args.refine)
    except ValueError as exc:
        print(f"error: --refine: {exc}", file=sys.stderr)
        return 2

    analyzer = None
    if not args.oracle:
        from edgecalc.runtime.analyze import StillAnalyzer
        from edgecalc.runtime.locate.learned import LearnedLocator
        from edgecalc.runtime.live.build import build_pipeline

        setup = build_pipeline(args.bundle, backend=args.backend, precision=args.precision, crop="manual")
        setup.pipeline.refinement = refinement
        analyzer = StillAnalyzer(setup.pipeline, LearnedLocator(threads=1).locate)
    try:
        n = len(load_truth(args.data, args.frames)[:args.limit])
        with Progress(transient=True) as bar:
            task = bar.add_task("quantification", total=n)
            report = evaluate(args.data, args.frames, args.oracle, analyzer, args.limit, lambda t: bar.advance(task))
    except (ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.out is not None:
        from edgecalc.atomic import atomic_write_json

        atomic_write_json(args.out, report)
    print(markdown(report), end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
