"""Per-calcification truth of a phantom image: kind, size and position of every calcification drawn.

The phantom knows what it drew, so quantification can be scored against it (``edgecalc.eval.
quantification``). Each part the calcification functions hand back (one punctate focus, one macro,
one rim arc: its *visible* pixels on the drawing grid) becomes one record, measured on that fine
grid with the runtime's own measure (``edgecalc.data.measure.longest_diameter``), positions in
the pixels of the written image. Records go to ``meta.jsonl`` (crops) and ``frames/meta.jsonl``
(frames) under ``CALCIFICATIONS_KEY``; data sets written before it lack the key.
"""

from __future__ import annotations

import numpy as np

from edgecalc.data.measure import longest_diameter

#: The meta.jsonl key holding the records.
CALCIFICATIONS_KEY = "calcifications"
#: The phantom's kind names (labels.csv ``kinds``) -> the quantification's (ACR TI-RADS) names.
QUANTIFY_KIND = {"micro": "punctate", "macro": "macro", "rim": "rim"}


def calcification_records(parts: list[tuple[str, np.ndarray]], window: tuple[slice, slice], spacing_mm: float,
                          scale: float = 1.0, offset: tuple[int, int] = (0, 0)) -> list[dict]:
    """One record per part visible inside ``window`` of the drawing grid (isotropic ``spacing_mm``).

    The written image shows the window scaled by ``scale`` (output pixels per grid pixel) and placed
    at ``offset`` (x, y); a record is ``{"kind", "x", "y", "diameter_mm", "area_mm2"}`` with (x, y) the
    centroid in written-image pixels (pixel i centred on i) and the sizes measured on the grid.
    """
    out = []
    for kind, part in parts:
        vis = part[window]
        ys, xs = np.nonzero(vis)
        if ys.size == 0:
            continue
        diameter, _ = longest_diameter(ys, xs, spacing_mm, spacing_mm)
        out.append({"kind": kind,
                    "x": round(float((xs.mean() + 0.5) * scale - 0.5) + offset[0], 2),
                    "y": round(float((ys.mean() + 0.5) * scale - 0.5) + offset[1], 2),
                    "diameter_mm": round(diameter, 3),
                    "area_mm2": round(float(ys.size) * spacing_mm * spacing_mm, 4)})
    return out
