"""The cart's path on real whole frames: scan area -> nodule locator -> the runtime's crop -> model.

``ddti-calc/full/<id>.png`` holds the whole screen frame of every annotated crop and
``full/boxes.csv`` the annotated nodule box. Here each frame goes through the shipped locator and
``runtime.locate.images.model_crop`` (the crop ``AutoCropper`` cuts), and the crop through the very model
that ``edgecalc compare`` trained for that crop's test fold, so the figure is out-of-fold like the
annotated-crop one beside it. A frame where the locator finds nothing scores 0 (the cart shows no
verdict there, which a reader must count as "no calcification called").

Written per method and fold into the fold's folder (``OUT/<method>/fold<k>/``, ``run_folder.END_TO_END_FILE``);
``summarise_end_to_end`` puts the locator-crop AUC next to the annotated-crop AUC on the same crops.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any, Sequence

import numpy as np

FULL_DIR = "full"
BOXES_FILE = "boxes.csv"


def has_full_frames(data: str | Path) -> bool:
    return (Path(data) / FULL_DIR / BOXES_FILE).is_file()


def read_boxes(data: str | Path) -> dict[str, tuple[int, int, int, int]]:
    path = Path(data) / FULL_DIR / BOXES_FILE
    with path.open(newline="", encoding="utf-8-sig") as fh:
        try:
            return {r["id"]: (int(r["x"]), int(r["y"]), int(r["w"]), int(r["h"])) for r in csv.DictReader(fh)}
        except (KeyError, ValueError) as exc:
            raise ValueError(f"{path}: need columns id,x,y,w,h with integers ({exc})") from None


def locator_crops(data: str | Path, ids: Sequence[str], locate: Any, margin: float = 0.1) -> tuple[list[np.ndarray | None], list[float]]:
    """Per id: the runtime's crop of the located nodule in ``full/<id>.png`` (None: nothing found) and
    the IoU of the located box with the annotated one (0 when nothing was found)."""
    from edgecalc.locator.evaluate_scan_area import box_iou
    from edgecalc.runtime.locate.images import locate_one, read_image

    boxes = read_boxes(data)
    crops: list[np.ndarray | None] = []
    ious: list[float] = []
    for sid in ids:
        gray = read_image(Path(data) / FULL_DIR / f"{sid}.png")
        result, _ = locate_one(sid, gray, locate, margin)
        if result.crop is None or result.box is None:
            crops.append(None)
            ious.append(0.0)
            continue
        x, y, w, h = result.crop
        crops.append(gray[y:y + h, x:x + w])
        ious.append(box_iou(result.box, boxes[sid]) if sid in boxes else 0.0)
    return crops, ious


def score_crops(weights: str | Path, crops: Sequence[np.ndarray | None]) -> np.ndarray:
    """P(calcification) of each crop under ``weights`` (the shared preprocessing); 0 where there is no crop."""
    from edgecalc.data.preprocess import preprocess_batch
    from edgecalc.eval.predict import predict
    from edgecalc.model.weights import load_model

    model = load_model(weights)
    have = [i for i, c in enumerate(crops) if c is not None]
    scores = np.zeros(len(crops), np.float32)
    if have:
        x = preprocess_batch([crops[i] for i in have], model.cfg.input_size)
        scores[have] = predict(model, x).scores
    return scores


class LocatedFrames:
    """The runtime's crop of each whole frame, located once and reused by every model scored on it."""

    def __init__(self, data: str | Path, locate: Any, margin: float = 0.1) -> None:
        self.data, self.locate, self.margin = data, locate, margin
        self._seen: dict[str, tuple[np.ndarray | None, float]] = {}

    def __call__(self, ids: Sequence[str]) -> tuple[list[np.ndarray | None], list[float]]:
        todo = [i for i in ids if i not in self._seen]
        if todo:
            crops, ious = locator_crops(self.data, todo, self.locate, self.margin)
            self._seen.update(zip(todo, zip(crops, ious)))
        return [self._seen[i][0] for i in ids], [self._seen[i][1] for i in ids]


def run_end_to_end(fold_dir: Path, weights: Path, test_ids: Sequence[str], labels: np.ndarray,
                   frames: LocatedFrames) -> Path:
    """Score a fold's test frames through locator + ``weights``; write and return the fold's .npz (reused when present)."""
    from edgecalc.run_folder import END_TO_END_FILE, write_end_to_end

    path = Path(fold_dir) / END_TO_END_FILE
    if path.is_file():
        return path
    crops, ious = frames(test_ids)
    scores = score_crops(weights, crops)
    found = np.asarray([c is not None for c in crops])
    return write_end_to_end(fold_dir, test_ids, labels, scores, found, np.asarray(ious))


def locator_training_patients(locator_data: str | Path, bundle_dir: str | Path | None = None) -> set[str]:
    """The DDTI cases whose frames trained the locator: its bundle's ``split.json`` training ids mapped
    through ``locator_data/patients.csv`` (``id,patient,ddti_case,...``)."""
    from edgecalc.locator.evaluate import DEFAULT_SPLIT
    from edgecalc.locator.split import read_split

    split = read_split(DEFAULT_SPLIT if bundle_dir is None else Path(bundle_dir) / DEFAULT_SPLIT.name)
    path = Path(locator_data) / "patients.csv"
    with path.open(newline="", encoding="utf-8-sig") as fh:
        case = {int(r["id"]): (r.get("ddti_case") or r["patient"]).strip() for r in csv.DictReader(fh)}
    missing = [i for i in split["train"] if i not in case]
    if missing:
        raise ValueError(f"{path} names no patient for locator training frame(s) {missing[:5]}")
    return {case[i] for i in split["train"]}


def summarise_end_to_end(fold_dirs: Sequence[Path], annotated: dict[str, float],
                         groups: dict[str, str] | None, locator_seen: set[str] | None = None) -> dict[str, Any]:
    """Pooled locator-crop AUC (patient CI), the annotated-crop AUC on the same ids, locator found share and IoU.

    ``locator_seen``: patients whose frames trained the locator; the same figures are then also given
    for the crops of the other patients (``unseen_by_locator``), where the locator is not flattered.
    """
    from edgecalc.eval.metrics import bootstrap_ci, roc_auc
    from edgecalc.run_folder import read_end_to_end

    parts = [read_end_to_end(d) for d in fold_dirs]
    ids = [str(i) for p in parts for i in p["ids"]]
    y = np.concatenate([p["labels"] for p in parts]).astype(np.int64)
    s = np.concatenate([p["scores"] for p in parts]).astype(np.float64)
    found = np.concatenate([p["found"] for p in parts])
    iou = np.concatenate([p["iou"] for p in parts])
    a = np.asarray([annotated[i] for i in ids], np.float64)
    g = np.asarray([groups[i] for i in ids]) if groups else None

    def figures(sel: np.ndarray) -> dict[str, Any]:
        gs = g[sel] if g is not None else None
        out = {"n": int(sel.sum()), "located": float(found[sel].mean()), "median_iou": float(np.median(iou[sel])),
               "iou_at_least_0.5": float((iou[sel] >= 0.5).mean())}
        if 0 < y[sel].sum() < sel.sum():
            out.update(auc_locator_crops=roc_auc(y[sel], s[sel]),
                       auc_locator_crops_ci95=list(bootstrap_ci(y[sel], s[sel], "auc", groups=gs)),
                       auc_annotated_crops=roc_auc(y[sel], a[sel]),
                       auc_annotated_crops_ci95=list(bootstrap_ci(y[sel], a[sel], "auc", groups=gs)))
        return out

    res = figures(np.ones(len(ids), bool))
    if locator_seen is not None and g is not None:
        res["unseen_by_locator"] = figures(np.asarray([p not in locator_seen for p in g]))
    return res
