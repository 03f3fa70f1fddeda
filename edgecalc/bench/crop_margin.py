"""What a looser crop costs the calcification model: AUC and accuracy against the crop margin.

    python -m edgecalc.bench.crop_margin [--frames 300] [--margin 0 0.1 0.2 0.3] [--bundle B] [--json OUT]
    python -m edgecalc.bench.crop_margin --locator [--frames 300]     # the shipped locator's crops instead

The paper crops the smallest square holding the nodule; the live loop crops the locator's box
grown by ``--margin`` (x its long side, each side), because a box that falls short of the nodule
would otherwise cut it. A wider margin holds more nodules whole but shows the model a smaller
nodule than the crops it was trained on. On phantom full frames (seeds no training or export
uses, half with calcifications) this crops the *true* nodule box at each margin and scores the
shipped bundle's float32 ONNX model, so the figure isolates the margin from locator errors.

``--locator`` asks the other question: what the automatic crop costs. The same frames are cropped
around the true box, the shipped locator's box and the locator's extent (what the live loop
crops), all at margin 0.1, and scored on the frames where the locator found something.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from edgecalc.data.preprocess import preprocess
from edgecalc.eval.metrics import accuracy, predict, roc_auc
from edgecalc.runtime.locate.crop_geometry import square_crop

#: Full-frame phantom seeds of this measurement (the data sets use 0.., the locator 700000..).
SEED0 = 900_000


def margin_rows(frames: int, margins: list[float], bundle_dir: str | None = None) -> list[dict]:
    from edgecalc.data.phantom import generate_frame
    from edgecalc.runtime.engine.backends import open_backend
    from edgecalc.runtime.engine.bundle import load_bundle
    from edgecalc.runtime.shipped import resolve_bundle

    bundle = load_bundle(resolve_bundle(bundle_dir))
    size, threshold = bundle.input_size, bundle.threshold
    backend = open_backend("onnxruntime", bundle.path("onnx", "fp32"), threads=0)
    shots = [generate_frame(SEED0 + i, positive=bool(i % 2)) for i in range(frames)]
    labels = np.array([s.label for s in shots])
    rows = []
    for m in margins:
        scores = []
        for s in shots:
            x, y, w, h = square_crop(s.nodule_box, s.scan_area, m, s.image.shape)
            out = backend.infer(preprocess(s.image[y:y + h, x:x + w], size)[None])
            scores.append(float(np.asarray(out["score"]).reshape(-1)[0]))
        sc = np.array(scores)
        rows.append({"margin": m, "frames": frames, "positives": int(labels.sum()),
                     "auc": round(roc_auc(labels, sc), 4),
                     "accuracy": round(accuracy(labels, predict(sc, threshold)), 4)})
    backend.close()
    return rows


def locator_rows(frames: int, bundle_dir: str | None = None, margin: float = 0.1,
                 locator_dir: str | None = None) -> list[dict]:
    """AUC / accuracy of crops around the true box, the locator's box and its extent (same frames)."""
    from edgecalc.data.phantom import generate_frame
    from edgecalc.runtime.engine.backends import open_backend
    from edgecalc.runtime.engine.bundle import load_bundle
    from edgecalc.runtime.locate.learned import LearnedLocator, shipped_locator
    from edgecalc.runtime.locate.scan_area import largest_scan_area
    from edgecalc.runtime.shipped import resolve_bundle

    bundle = load_bundle(resolve_bundle(bundle_dir))
    size, threshold = bundle.input_size, bundle.threshold
    backend = open_backend("onnxruntime", bundle.path("onnx", "fp32"), threads=0)
    locator = shipped_locator() if locator_dir is None else LearnedLocator(locator_dir)
    shots = [generate_frame(SEED0 + i, positive=bool(i % 2)) for i in range(frames)]
    kept, scores = [], {"true box": [], "locator box": [], "locator extent": []}
    for s in shots:
        area = largest_scan_area(s.image)
        found = locator.locate(s.image, area) if area is not None else None
        if found is None:
            continue
        kept.append(s.label)
        for name, box in (("true box", s.nodule_box), ("locator box", found.box), ("locator extent", found.crop_box)):
            x, y, w, h = square_crop(box, area, margin, s.image.shape)
            out = backend.infer(preprocess(s.image[y:y + h, x:x + w], size)[None])
            scores[name].append(float(np.asarray(out["score"]).reshape(-1)[0]))
    backend.close()
    labels = np.array(kept)
    return [{"crop": name, "margin": margin, "frames": frames, "found": len(kept), "positives": int(labels.sum()),
             "auc": round(roc_auc(labels, np.array(sc)), 4),
             "accuracy": round(accuracy(labels, predict(np.array(sc), threshold)), 4)} for name, sc in scores.items()]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--margin", type=float, nargs="+", default=[0.0, 0.1, 0.2, 0.3])
    ap.add_argument("--bundle", default=None, help="bundle folder (default: the shipped one)")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--locator", action="store_true",
                    help="crop around the true box, the shipped locator's box and its extent (margin 0.1) instead")
    ap.add_argument("--locator-bundle", default=None, help="with --locator: this locator bundle (default: the shipped one)")
    a = ap.parse_args(argv)
    if a.locator:
        rows = locator_rows(a.frames, a.bundle, locator_dir=a.locator_bundle)
        header, cells = "crop (margin 0.1) | frames found (positives)", lambda r: f"{r['crop']} | {r['found']} of {r['frames']} ({r['positives']})"
    else:
        rows = margin_rows(a.frames, a.margin, a.bundle)
        header, cells = "margin | frames (positives)", lambda r: f"{r['margin']} | {r['frames']} ({r['positives']})"
    print(f"| {header} | AUC | accuracy |")
    print("|---|---|---|---|")
    for r in rows:
        print(f"| {cells(r)} | {r['auc']:.4f} | {r['accuracy']:.4f} |")
    if a.json:
        a.json.write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
