"""Which true calcifications does the shipped model's mask find, by how far each outshines its nodule?

Why: the count of issue 17 is bounded by the foci the mask misses (docs/quantification.md). This
measures each true focus (a component of the truth mask of a positive crop) with the phantom's own
visibility test (``edgecalc.data.phantom.visibility``: peak of the 3x3-blurred image over the focus
minus the nodule's 99th percentile outside every calcification; visible at >= 4 gray levels) and
counts how often a reported calcification matches it, as ``edgecalc.eval.quantification`` matches.
It then asks what the count could reach at best: a mask that found exactly the foci standing at
least a given margin above their nodule (and nothing else), scored by issue 17's "count within +-1",
once on every positive and once where today's classifier reports any calcification (a crop it calls
negative reports none, so it counts as 0 there).

The p99 test compares a focus with the brightest speckle anywhere in its nodule; a reader judges it
against what lies around it. So each focus is also measured *locally*: the peak (same 3x3 blur)
against a ring 0.5-1.5 mm around the focus (other calcifications left out), as a z-score
``(peak - ring mean) / ring std``; and the bound is measured again for a mask finding every focus
that passes either test.

    python docs/experiments/focus_visibility.py /tmp/q-val [BUNDLE]   # a phantom written with edgecalc data phantom
"""

from __future__ import annotations

import sys

import numpy as np
from scipy import ndimage

from edgecalc.data.phantom.visibility import EXCLUDE_PX, MARGIN_GRAY, box3, calcification_visibility
from edgecalc.eval.quantification import read_gray, load_truth, match, true_foci
from edgecalc.runtime.analyze import SPACING_PHANTOM, Still, StillAnalyzer
from edgecalc.runtime.live.build import build_pipeline
from edgecalc.runtime.locate.learned import LearnedLocator

BINS = ((-np.inf, 0), (0, MARGIN_GRAY), (MARGIN_GRAY, 10), (10, 20), (20, 40), (40, np.inf))
Z_BINS = ((-np.inf, 2), (2, 3), (3, 4), (4, 6), (6, np.inf))
RING_MM = (0.5, 1.5)  #: the local reference: a ring this far (mm) around the focus


def local_z(blurred: np.ndarray, focus: np.ndarray, calc: np.ndarray, mm_per_px: float) -> float:
    """(peak over the focus - mean of the ring around it) / the ring's std; NaN under 6 ring pixels."""
    inner, outer = (max(1, int(round(r / mm_per_px))) for r in RING_MM)
    ring = (ndimage.binary_dilation(focus, iterations=max(outer, inner + 1))
            & ~ndimage.binary_dilation(focus, iterations=inner)
            & ~ndimage.binary_dilation(calc, iterations=EXCLUDE_PX))
    if ring.sum() < 6:
        return float("nan")
    return float((blurred[focus].max() - blurred[ring].mean()) / (blurred[ring].std() + 1e-6))


def main(data: str, bundle: str | None = None) -> None:
    setup = build_pipeline(bundle, backend="onnxruntime", crop="manual")
    analyzer = StillAnalyzer(setup.pipeline, LearnedLocator(threads=1).locate)
    margins, zs, found, reported = [], [], [], []
    per_crop = []  # (true count, each focus's margin, reports any, each focus's local z)
    for t in load_truth(data):
        if not t.label:
            continue
        gray, nodule = read_gray(t.image), read_gray(t.nodule) > 127
        truth, _ = true_foci(t, gray, nodule)
        calc = read_gray(t.mask) > 127
        # the reference: the nodule outside every calcification (the other foci must not raise it)
        reference = nodule & ~ndimage.binary_dilation(calc, np.ones((3, 3), bool), iterations=EXCLUDE_PX)
        labels, _ = ndimage.label(calc, np.ones((3, 3)))
        a = analyzer.analyze_crop(Still(t.id, 0, gray, (t.mm_per_px,) * 2, SPACING_PHANTOM), nodule)
        hit = {j for _, j in match(a.foci, truth, t.mm_per_px)}
        crop_margins, crop_z, blurred = [], [], box3(gray)
        for j, c in enumerate(truth.calcifications):
            x, y, w, h = c.box
            inside = labels[y:y + h, x:x + w]
            focus = labels == np.bincount(inside[inside > 0]).argmax()  # the truth component this focus measures
            crop_margins.append(calcification_visibility(gray, focus, reference)["margin"])
            crop_z.append(local_z(blurred, focus, calc, t.mm_per_px))
            found.append(j in hit)
            reported.append(a.foci.count > 0)
        margins += crop_margins
        zs += crop_z
        per_crop.append((truth.count, np.array(crop_margins), a.foci.count > 0, np.array(crop_z)))
    m, z, f, r = np.array(margins), np.array(zs), np.array(found), np.array(reported)
    print(f"{len(m)} true foci in positive crops; found {f.mean():.3f}; "
          f"in crops reporting any calcification ({r.sum()}): {f[r].mean():.3f}")
    print("| peak - nodule p99 (gray) | foci | found | in reporting crops | found there |\n|---|---|---|---|---|")
    for lo, hi in BINS:
        s = (m >= lo) & (m < hi)
        print(f"| {lo:g} to {hi:g} | {s.sum()} | {f[s].mean():.2f} | {(s & r).sum()} | {f[s & r].mean():.2f} |")
    print("\n| local z (peak vs the ring 0.5-1.5 mm around) | foci | found | of them failing the p99 test |\n|---|---|---|---|")
    for lo, hi in Z_BINS:
        s = (z >= lo) & (z < hi)
        print(f"| {lo:g} to {hi:g} | {s.sum()} | {f[s].mean():.2f} | {(s & (m < MARGIN_GRAY)).sum()} |")
    true_n = np.array([n for n, *_ in per_crop])
    reports = np.array([rep for _, _, rep, _ in per_crop])
    print(f"\n{len(per_crop)} positive crops, {reports.sum()} reporting any calcification today")
    print("| a mask finding exactly the foci at or above (gray) | count within +-1, every positive | "
          "where today's classifier reports |\n|---|---|---|")
    rows = [(f"{lo:g}", [(m >= lo).sum() for _, m, _, _ in per_crop]) for lo in (MARGIN_GRAY, 10, 20, 40)]
    rows += [(f"{MARGIN_GRAY:g}, or local z >= {k}", [((m >= MARGIN_GRAY) | (z >= k)).sum() for _, m, _, z in per_crop])
             for k in (3, 4)]
    for name, found_n in rows:
        ok = np.abs(np.array(found_n) - true_n) <= 1
        gated = np.where(reports, ok, true_n <= 1)
        print(f"| {name} | {ok.mean():.2f} | {gated.mean():.2f} |")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else None)
