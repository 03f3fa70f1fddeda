"""What the focus verifier costs per frame: seed 4242's frames through `analyze`'s path, each run twice without and
twice with the shipped bundle's verifier, interleaved (the machine's drift hits both alike), the faster of each pair
kept; `quantify_in_frame`'s time, apart for the frames the decision calls calcification (the verifier runs
there only) and the others (docs/quantification.md, "A second look at the crop's pixels").

    python docs/experiments/verifier_cost.py /tmp/q-phantom
"""

import sys
import time

import cv2
import numpy as np

import edgecalc.runtime.live.pipeline as lp
from edgecalc.eval.quantification import load_truth
from edgecalc.runtime.analyze import SPACING_PHANTOM, Still, StillAnalyzer
from edgecalc.runtime.focus_verifier import TreeEnsemble
from edgecalc.runtime.live.build import build_pipeline
from edgecalc.runtime.locate.learned import LearnedLocator

last = {}
orig = lp.quantify_in_frame


def timed(*a, **k):
    t = time.perf_counter()
    out = orig(*a, **k)
    last["q"] = (time.perf_counter() - t) * 1e3
    return out


lp.quantify_in_frame = timed
tree_calls = []  # (candidates, ms) of each call of the trees
predict = TreeEnsemble.predict


def timed_trees(self, X):
    t = time.perf_counter()
    out = predict(self, X)
    tree_calls.append((len(X), (time.perf_counter() - t) * 1e3))
    return out


TreeEnsemble.predict = timed_trees
setup = build_pipeline(None, backend="onnxruntime", crop="manual")
an = StillAnalyzer(setup.pipeline, LearnedLocator(threads=1).locate)
verifier, rows = setup.pipeline.verifier, []
for t in load_truth(sys.argv[1], frames=True):
    still = Still(t.id, 0, cv2.imread(str(t.image), cv2.IMREAD_GRAYSCALE), (t.mm_per_px,) * 2, SPACING_PHANTOM)
    row, decision = [], None
    for v in (None, verifier, None, verifier):  # interleaved
        setup.pipeline.verifier = v
        last.clear()
        a = an.analyze(still)
        row.append(last.get("q"))
        decision = a.result.decision if a.result is not None else None
    if row[0] is not None:
        rows.append((row, bool(decision)))
for name, want in (("called calcification (the verifier runs)", True), ("called negative (it does not)", False)):
    sel = [r for r, d in rows if d == want]
    if not sel:
        continue
    off = np.array([min(r[0], r[2]) for r in sel])
    on = np.array([min(r[1], r[3]) for r in sel])
    print(f"{len(sel)} frames {name}; quantify_in_frame median ms: without the verifier {np.median(off):.2f}, "
          f"with {np.median(on):.2f}; difference median {np.median(on - off):.2f}, 90th pct {np.percentile(on - off, 90):.2f}")
n, ms = np.array(tree_calls).T
print(f"the trees ({len(verifier.trees.roots)}): {len(n)} calls, median {np.median(n):.0f} candidates and "
      f"{np.median(ms):.2f} ms a call (90th pct {np.percentile(ms, 90):.2f} ms)")
