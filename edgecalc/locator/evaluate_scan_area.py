"""Measure scan-area detection and the classical nodule locator on the DDTI nodule frames.

    python -m edgecalc.locator.evaluate_scan_area ../shared/data/ddti-nodules [--sheet docs/img/scan_area_ddti.png]

There is no labelled scan-rectangle set, so the scan area is checked against what is known: every
nodule mask must lie inside it, and the contact sheet lets a person look. The locator is scored
against the nodule masks (box IoU, mask Dice, whether the square crop holds the whole nodule).
Timing is the median per frame on one OpenCV thread. numpy + OpenCV only.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import cv2
import numpy as np

from edgecalc.runtime.locate.classical import locate_nodule
from edgecalc.runtime.locate.crop_geometry import square_crop
from edgecalc.runtime.locate.scan_area import find_scan_areas, largest_scan_area

SHEET_IDS = (1, 10, 43, 66, 81, 115, 296, 357, 373, 399, 460, 10004,
             10012, 10089, 10142, 10176, 10237, 20004, 20008, 20012, 20089, 20142, 20170, 20475)


def box_iou(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    """Intersection over union of two (x, y, w, h) boxes."""
    iw = max(0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    ih = max(0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = iw * ih
    return inter / float(a[2] * a[3] + b[2] * b[3] - inter)


def mask_box(mask: np.ndarray) -> tuple[int, int, int, int]:
    ys, xs = np.nonzero(mask)
    return int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1)


def frame_ids(root: Path) -> list[int]:
    ids = sorted(int(p.stem) for p in (root / "images").glob("*.png") if p.stem.isdigit())
    if not ids:
        raise SystemExit(f"no images/N.png under {root}")
    return ids


def load(root: Path, i: int) -> tuple[np.ndarray, np.ndarray]:
    img = cv2.imread(str(root / "images" / f"{i}.png"), cv2.IMREAD_GRAYSCALE)
    msk = cv2.imread(str(root / "masks" / f"{i}.png"), cv2.IMREAD_GRAYSCALE)
    if img is None or msk is None:
        raise SystemExit(f"cannot read frame {i} (images/{i}.png, masks/{i}.png) under {root}")
    return img, msk > 127


def evaluate(root: Path) -> dict[str, float]:
    cv2.setNumThreads(1)
    ids = frame_ids(root)
    inside, inside99, n_areas, t_area, t_both = [], [], [], [], []
    ious, dices, holds = [], [], []
    for i in ids:
        img, true = load(root, i)
        t0 = time.perf_counter()
        areas = find_scan_areas(img)
        t1 = time.perf_counter()
        area = max(areas, key=lambda a: a.area) if areas else None
        found = locate_nodule(img, area) if area is not None else None
        t2 = time.perf_counter()
        t_area.append(t1 - t0)
        t_both.append(t2 - t0)
        n_areas.append(len(areas))
        cover = np.zeros_like(true)
        for a in areas:
            cover[a.slice()] = True
        outside = int(np.count_nonzero(true & ~cover))
        inside.append(outside == 0)
        inside99.append(outside <= 0.01 * np.count_nonzero(true))
        if found is None:
            ious.append(0.0), dices.append(0.0), holds.append(False)
            continue
        ious.append(box_iou(found.box, mask_box(true)))
        dices.append(2.0 * np.count_nonzero(found.mask & true) / (np.count_nonzero(found.mask) + np.count_nonzero(true)))
        x, y, w, h = square_crop(found.box, area, 0.1, img.shape)
        holds.append(np.count_nonzero(true[y:y + h, x:x + w]) == np.count_nonzero(true))
    iou = np.asarray(ious)
    return {
        "frames": len(ids),
        "scan_area_one_rect_share": float(np.mean(np.asarray(n_areas) == 1)),
        "nodule_whole_inside_share": float(np.mean(inside)),
        "nodule_99pct_inside_share": float(np.mean(inside99)),
        "locator_mean_box_iou": float(iou.mean()),
        "locator_iou_ge_0.5_share": float(np.mean(iou >= 0.5)),
        "locator_crop_holds_nodule_share": float(np.mean(holds)),
        "locator_mean_dice": float(np.mean(dices)),
        "scan_area_median_ms": 1e3 * float(np.median(t_area)),
        "scan_area_plus_locator_median_ms": 1e3 * float(np.median(t_both)),
    }


def contact_sheet(root: Path, out: Path, ids: tuple[int, ...] = SHEET_IDS, cols: int = 4) -> None:
    """Frames with the detected scan areas (green), the true nodule (red) and the classical guess (yellow)."""
    tiles = []
    available = set(frame_ids(root))
    for i in (j for j in ids if j in available):
        img, true = load(root, i)
        bgr = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
        contours, _ = cv2.findContours(true.view(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        cv2.drawContours(bgr, contours, -1, (0, 0, 255), 1)
        area = largest_scan_area(img)
        found = locate_nodule(img, area) if area is not None else None
        if found is not None:
            contours, _ = cv2.findContours(found.mask.view(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
            cv2.drawContours(bgr, contours, -1, (0, 255, 255), 1)
        for a in find_scan_areas(img):
            cv2.rectangle(bgr, (a.x, a.y), (a.x + a.w - 1, a.y + a.h - 1), (0, 255, 0), 2)
        tile = np.zeros((360, 560, 3), np.uint8)
        tile[: bgr.shape[0], : bgr.shape[1]] = bgr[:360, :560]
        cv2.putText(tile, str(i), (6, 352), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 0), 1, cv2.LINE_AA)
        tiles.append(tile)
    while len(tiles) % cols:
        tiles.append(np.zeros_like(tiles[0]))
    sheet = np.vstack([np.hstack(tiles[k:k + cols]) for k in range(0, len(tiles), cols)])
    sheet = cv2.resize(sheet, (sheet.shape[1] // 2, sheet.shape[0] // 2), interpolation=cv2.INTER_AREA)
    out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(out), sheet)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("root", type=Path, help="the ddti-nodules folder (images/, masks/)")
    ap.add_argument("--sheet", type=Path, help="also write the contact-sheet PNG here")
    args = ap.parse_args(argv)
    for key, value in evaluate(args.root).items():
        print(f"{key:36s} {value:.4f}" if isinstance(value, float) else f"{key:36s} {value}")
    if args.sheet:
        contact_sheet(args.root, args.sheet)
        print(f"contact sheet -> {args.sheet}")


if __name__ == "__main__":
    main()
