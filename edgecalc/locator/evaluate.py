"""Score the learned locator against the classical baseline on the held-out DDTI validation split.

    python -m edgecalc.locator.evaluate ../shared/data/ddti-nodules [--bundle DIR] [--split FILE]
        [--on val|train] [--threshold T] [--margin M] [--figure docs/img/locator_cases.png] [--json figures.json]
    python -m edgecalc.locator.evaluate ../shared/data/ddti-nodules --boxes boxes.csv   # score `edgecalc locate` output
    python -m edgecalc.locator.evaluate ../shared/data/ddti-nodules --halvings 5        # crop-threshold choice, less biased

Per frame, both locators get the same largest scan area; scored against the true mask: box IoU,
IoU >= 0.5, whether the square crop (``square_crop`` of the locator's extent, margin 0.1) holds
every nodule pixel, how large that crop is against the nodule, and mask Dice (a frame where a
locator finds nothing scores 0 / False). Timing is the median per frame of
scan area + locator, one thread (OpenCV and onnxruntime). numpy + OpenCV + onnxruntime; no torch.
DDTI: Pedraza et al., "An open access thyroid ultrasound image database", Proc. SPIE 9287, 2015.
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from pathlib import Path
from typing import Any, Callable

import cv2
import numpy as np

from edgecalc.locator.split import read_split
from edgecalc.runtime.locate.classical import Located, locate_nodule
from edgecalc.runtime.locate.crop_geometry import square_crop
from edgecalc.locator.evaluate_scan_area import box_iou, load, mask_box
from edgecalc.runtime.locate.learned import ASSET_DIR, LearnedLocator
from edgecalc.runtime.locate.scan_area import largest_scan_area

DEFAULT_SPLIT = ASSET_DIR / "split.json"
MARGIN = 0.1
#: Extent thresholds the halving estimate chooses among.
CROP_GRID = (0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4)


def frame_scores(found: Located | None, true: np.ndarray, area, shape: tuple[int, ...], margin: float = MARGIN) -> dict[str, float]:
    """IoU, Dice and crop-holds-nodule of one guess against the true mask."""
    if found is None:
        return {"iou": 0.0, "dice": 0.0, "holds": 0.0, "found": 0.0}
    x, y, w, h = square_crop(found.crop_box, area, margin, shape)
    n_true = np.count_nonzero(true)
    tb = mask_box(true)
    return {
        "iou": box_iou(found.box, tb),
        "dice": 2.0 * np.count_nonzero(found.mask & true) / (np.count_nonzero(found.mask) + n_true),
        "holds": float(np.count_nonzero(true[y:y + h, x:x + w]) == n_true),
        "found": 1.0,
        "crop_over_nodule": w / float(max(tb[2], tb[3])),  # crop side / the true nodule's long side
    }


def summarize(rows: list[dict[str, float]], times: list[float]) -> dict[str, float]:
    iou = np.array([r["iou"] for r in rows])
    return {
        "frames": len(rows),
        "mean_box_iou": round(float(iou.mean()), 4),
        "iou_ge_0.5_share": round(float(np.mean(iou >= 0.5)), 4),
        "crop_holds_nodule_share": round(float(np.mean([r["holds"] for r in rows])), 4),
        "mean_dice": round(float(np.mean([r["dice"] for r in rows])), 4),
        "found_share": round(float(np.mean([r["found"] for r in rows])), 4),
        # how loose the crops are where one was cut: the paper's tight square is 1.0
        "crop_side_over_nodule_side_median": round(float(np.median([r["crop_over_nodule"] for r in rows
                                                                     if "crop_over_nodule" in r] or [0.0])), 4),
        "scan_area_plus_locator_median_ms": round(1e3 * float(np.median(times)), 3),
    }


def evaluate(root: Path, ids: list[int], learned: LearnedLocator, margin: float = MARGIN) -> dict[str, Any]:
    """Figures of the learned and the classical locator on ``ids``, plus per-frame learned IoUs."""
    cv2.setNumThreads(1)
    per: dict[str, list[dict[str, float]]] = {"learned": [], "classical": []}
    times: dict[str, list[float]] = {"learned": [], "classical": []}
    locators: dict[str, Callable] = {"learned": learned.locate, "classical": locate_nodule}
    for i in ids:
        img, true = load(root, i)
        for name, fn in locators.items():
            t0 = time.perf_counter()
            area = largest_scan_area(img)
            found = fn(img, area) if area is not None else None
            times[name].append(time.perf_counter() - t0)
            per[name].append(frame_scores(found, true, area, img.shape, margin))
    out: dict[str, Any] = {name: summarize(per[name], times[name]) for name in per}
    out["per_frame_learned_iou"] = {str(i): round(r["iou"], 4) for i, r in zip(ids, per["learned"])}
    return out


def halving_estimate(root: Path, ids: list[int], learned: LearnedLocator, grid: tuple[float, ...] = CROP_GRID,
                     goal: float = 0.90, repeats: int = 5, margin: float = MARGIN) -> dict[str, Any]:
    """A less biased crop-holds figure for an extent threshold chosen on the same frames.

    Split ``ids`` into two halves by group (dual-window halves together), pick on one half the
    highest crop threshold in ``grid`` whose crop-holds share reaches ``goal`` there (the lowest when
    none does), score it on the other half, swap, pool; ``repeats`` random halvings (seeds 0..).
    """
    from edgecalc.locator.split import group_of
    from edgecalc.runtime.locate.learned import as_area_box, mask_from_probability

    cv2.setNumThreads(1)
    holds: dict[float, dict[int, float]] = {t: {} for t in grid}
    for i in ids:
        img, true = load(root, i)
        area = largest_scan_area(img)
        if area is None:
            for t in grid:
                holds[t][i] = 0.0
            continue
        prob = learned.probability(img, as_area_box(area))
        for t in grid:
            found = mask_from_probability(prob, as_area_box(area), img.shape, learned.threshold, learned.min_share,
                                          t, learned.min_peak)
            holds[t][i] = frame_scores(found, true, area, img.shape, margin)["holds"]
    groups = sorted({group_of(i) for i in ids})
    runs = []
    for seed in range(repeats):
        order = [groups[k] for k in np.random.default_rng(seed).permutation(len(groups))]
        first = set(order[: len(order) // 2])
        halves = ([i for i in ids if group_of(i) in first], [i for i in ids if group_of(i) not in first])
        held, picks = 0.0, []
        for pick_on, score_on in (halves, halves[::-1]):
            ok = [t for t in grid if np.mean([holds[t][i] for i in pick_on]) >= goal]
            t = max(ok) if ok else min(grid)
            picks.append(t)
            held += sum(holds[t][i] for i in score_on)
        runs.append({"seed": seed, "picked": picks, "pooled_crop_holds": round(held / len(ids), 4)})
    pooled = [r["pooled_crop_holds"] for r in runs]
    return {"frames": len(ids), "goal": goal, "grid": list(grid), "halvings": runs,
            "pooled_mean": round(float(np.mean(pooled)), 4), "pooled_min": min(pooled), "pooled_max": max(pooled),
            "all_frames_per_threshold": {str(t): round(float(np.mean(list(holds[t].values()))), 4) for t in grid}}


def score_boxes_csv(root: Path, ids: list[int], csv_path: Path, margin: float = MARGIN) -> dict[str, float]:
    """Box figures of an ``edgecalc locate`` CSV (id,x,y,w,h,score[,crop_x,crop_y,crop_side]) on ``ids``;
    a missing row or an empty box scores 0. Crop-holds uses the CSV's own crop (what the runtime cuts)
    where it has one, else the square around the box with ``margin``. (No Dice: the CSV holds no mask.)"""
    boxes: dict[str, tuple[int, int, int, int] | None] = {}
    crops: dict[str, tuple[int, int, int, int] | None] = {}
    with open(csv_path, newline="") as f:
        rows = list(csv.reader(f))
    if not rows or rows[0][:6] != ["id", "x", "y", "w", "h", "score"]:
        raise ValueError(f"{csv_path} is not an edgecalc locate CSV (header starting id,x,y,w,h,score)")
    has_crop = rows[0][6:9] == ["crop_x", "crop_y", "crop_side"]
    for r in rows[1:]:
        try:
            boxes[r[0]] = tuple(int(v) for v in r[1:5]) if r[1] else None  # type: ignore[assignment]
            if has_crop and len(r) > 8 and r[6]:
                cx, cy, side = (int(v) for v in r[6:9])
                crops[r[0]] = (cx, cy, side, side)
        except (ValueError, IndexError):
            raise ValueError(f"{csv_path}: malformed row {r!r}") from None
    ious, holds = [], []
    for i in ids:
        img, true = load(root, i)
        box = boxes.get(str(i))
        if box is None:
            ious.append(0.0), holds.append(False)
            continue
        ious.append(box_iou(box, mask_box(true)))
        x, y, w, h = crops.get(str(i)) or square_crop(box, largest_scan_area(img), margin, img.shape)
        holds.append(np.count_nonzero(true[y:y + h, x:x + w]) == np.count_nonzero(true))
    iou = np.array(ious)
    return {"frames": len(ids), "rows_found": sum(str(i) in boxes for i in ids),
            "mean_box_iou": round(float(iou.mean()), 4), "iou_ge_0.5_share": round(float(np.mean(iou >= 0.5)), 4),
            "crop_holds_nodule_share": round(float(np.mean(holds)), 4), "crop_from": "csv" if has_crop else "box + margin"}


def _tile(root: Path, i: int, learned: LearnedLocator, iou: float, margin: float) -> np.ndarray:
    img, true = load(root, i)
    bgr = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
    area = largest_scan_area(img)
    if area is not None:
        cv2.rectangle(bgr, (area.x, area.y), (area.x + area.w - 1, area.y + area.h - 1), (0, 160, 0), 1)
    contours, _ = cv2.findContours(true.view(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    cv2.drawContours(bgr, contours, -1, (0, 0, 255), 2)
    found = learned.locate(img, area) if area is not None else None
    if found is not None:
        contours, _ = cv2.findContours(found.mask.view(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        cv2.drawContours(bgr, contours, -1, (0, 255, 255), 1)
        x, y, w, h = found.box
        cv2.rectangle(bgr, (x, y), (x + w - 1, y + h - 1), (0, 255, 255), 1)
        cx, cy, cw, ch = square_crop(found.crop_box, area, margin, img.shape)
        cv2.rectangle(bgr, (cx, cy), (cx + cw - 1, cy + ch - 1), (255, 200, 0), 1)
    tile = np.zeros((360, 560, 3), np.uint8)
    tile[: bgr.shape[0], : bgr.shape[1]] = bgr[:360, :560]
    label = f"{i}  IoU {iou:.2f}" + ("" if found is None else f"  conf {found.confidence:.2f}")
    cv2.putText(tile, label, (6, 352), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 0), 1, cv2.LINE_AA)
    return tile


def cases_figure(root: Path, per_frame_iou: dict[str, float], learned: LearnedLocator, out: Path,
                 per_row: int = 4, margin: float = MARGIN) -> None:
    """Best, middle and worst validation frames by box IoU, one row each: true nodule red, learned
    mask and box yellow, square crop light blue, scan area green."""
    ranked = sorted(per_frame_iou.items(), key=lambda kv: (-kv[1], int(kv[0])))
    n = len(ranked)
    mid = max(0, n // 2 - per_row // 2)
    rows = [ranked[:per_row], ranked[mid:mid + per_row], ranked[-per_row:]]
    sheet = np.vstack([np.hstack([_tile(root, int(i), learned, v, margin) for i, v in row]) for row in rows])
    sheet = cv2.resize(sheet, (sheet.shape[1] // 2, sheet.shape[0] // 2), interpolation=cv2.INTER_AREA)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.stem}.tmp.png")
    if not cv2.imwrite(str(tmp), sheet):
        raise OSError(f"cannot write {out}")
    tmp.replace(out)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("root", type=Path, help="the ddti-nodules folder (images/, masks/)")
    ap.add_argument("--bundle", type=Path, default=ASSET_DIR, help="locator bundle folder (default: the shipped one)")
    ap.add_argument("--split", type=Path, default=DEFAULT_SPLIT, help="split JSON (default: the shipped one)")
    ap.add_argument("--on", choices=("val", "train"), default="val",
                    help="which side of the split to score (train: for choosing post-processing without the val frames)")
    ap.add_argument("--threshold", type=float, default=None, help="override the bundle's mask threshold")
    ap.add_argument("--crop-threshold", type=float, default=None,
                    help="override the bundle's extent threshold (the crop holds the nodule's extent at it)")
    ap.add_argument("--min-peak", type=float, default=None, help="override the bundle's smallest peak probability")
    ap.add_argument("--margin", type=float, default=MARGIN, help="crop margin for the crop-holds-nodule figure")
    ap.add_argument("--figure", type=Path, help="write the good/middle/bad cases figure here")
    ap.add_argument("--json", type=Path, help="also write the figures as JSON here")
    ap.add_argument("--boxes", type=Path, help="score this `edgecalc locate` CSV instead of running the locators")
    ap.add_argument("--halvings", type=int, default=0, metavar="N",
                    help="instead: estimate crop-holds for an extent threshold chosen on the same frames, by N "
                         "random halvings (choose on one half, score the other; see halving_estimate)")
    args = ap.parse_args(argv)
    from edgecalc.locator.split import read_patients

    ids = read_split(args.split, read_patients(args.root))[args.on]
    if args.halvings:
        learned = LearnedLocator(args.bundle, threads=1, threshold=args.threshold, min_peak=args.min_peak)
        res = halving_estimate(args.root, ids, learned, repeats=args.halvings, margin=args.margin)
        for r in res["halvings"]:
            print(f"halving {r['seed']}: picked {r['picked']} -> crop holds {r['pooled_crop_holds']}")
        print(f"pooled crop holds over {args.halvings} halvings: mean {res['pooled_mean']} "
              f"(min {res['pooled_min']}, max {res['pooled_max']}); on all {res['frames']} frames per threshold: "
              f"{res['all_frames_per_threshold']}")
        if args.json:
            args.json.write_text(json.dumps(res, indent=1) + "\n")
        return
    if args.boxes:
        for key, value in score_boxes_csv(args.root, ids, args.boxes, args.margin).items():
            print(f"{'boxes':10s} {key:34s} {value}")
        return
    learned = LearnedLocator(args.bundle, threads=1, threshold=args.threshold, crop_threshold=args.crop_threshold,
                             min_peak=args.min_peak)
    res = evaluate(args.root, ids, learned, args.margin)
    for name in ("learned", "classical"):
        for key, value in res[name].items():
            print(f"{name:10s} {key:34s} {value}")
    if args.json:
        args.json.write_text(json.dumps(res, indent=1) + "\n")
    if args.figure:
        cases_figure(args.root, res["per_frame_learned_iou"], learned, args.figure, margin=args.margin)
        print(f"figure -> {args.figure}")


if __name__ == "__main__":
    main()
