"""What one frame of the live pipeline spends where, on the demo cine (docs/live.md, "The HUD and the calcifications").

Times ``FramePipeline.process`` and, inside it, ``quantify_in_frame``, ``draw_overlay`` and ``crop_map``
over the 200 frames of the demo cine (a first pass warms up; the second is timed), the shipped bundle
on onnxruntime float32. ``process`` measures before it draws, as ``analyze`` does; the live loop
measures after the frame is shown, so there the measuring is off the capture-to-display path.

    python docs/experiments/live_quantify_cost.py
"""

from __future__ import annotations

import time

import numpy as np

import edgecalc.runtime.live.pipeline as lp
from edgecalc.runtime.live.build import build_pipeline
from edgecalc.runtime.source.phantom import PhantomCineReader

STAGES = ("quantify_in_frame", "draw_overlay", "crop_map")


def main() -> None:
    spent: dict[str, float] = {}

    def timed(name: str):
        fn = getattr(lp, name)

        def run(*a, **k):
            t = time.perf_counter()
            out = fn(*a, **k)
            spent[name] = spent.get(name, 0.0) + (time.perf_counter() - t) * 1e3
            return out

        setattr(lp, name, run)

    for name in STAGES:
        timed(name)
    pipe = build_pipeline(None, backend="onnxruntime", precision="fp32", crop="auto").pipeline
    cine = PhantomCineReader(n_frames=200).frames
    rows = []
    for rep in range(2):
        for i, f in enumerate(cine):
            spent.clear()
            t = time.perf_counter()
            r = pipe.process(f, i)
            if rep:
                rows.append(((time.perf_counter() - t) * 1e3, r.infer_ms, *(spent.get(n, 0.0) for n in STAGES), bool(r.decision)))
    a = np.array(rows, dtype=float)
    print(f"{len(a)} frames, {a[:, -1].mean():.2f} called positive")
    for j, name in enumerate(("process", "model call", *STAGES)):
        print(f"{name}: median {np.median(a[:, j]):.2f} ms, 90th percentile {np.percentile(a[:, j], 90):.2f} ms")
    neg = a[a[:, -1] == 0]
    if len(neg):
        print(f"quantify_in_frame on the frames called negative: median {np.median(neg[:, 2]):.2f} ms")


if __name__ == "__main__":
    main()
