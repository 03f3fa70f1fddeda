"""Variants of the quantification scored on a phantom, for docs/quantification.md ("Two more candidates").

Each variant patches one piece of the cart path and runs the same ``edgecalc.eval.quantification``
scoring (the default weights, onnxruntime float32), printing the report's table:

    python docs/experiments/quantification_variants.py /tmp/q-val flip [--frames]      # mask averaged with its mirror's
    python docs/experiments/quantification_variants.py /tmp/q-val no-gate [--frames]   # foci listed whatever the call
    python docs/experiments/quantification_variants.py /tmp/q-val band=2.0 [--frames]  # RIM_BAND_MM changed
    python docs/experiments/quantification_variants.py /tmp/q-val rims                 # frames' true rims: locator vs true nodule mask
    python docs/experiments/quantification_variants.py /tmp/q-val reach=off [--frames]  # NODULE_REACH_MM (mm, or off)
    python docs/experiments/quantification_variants.py /tmp/q-val share=0.3 [--frames]  # NODULE_MIN_SHARE
    python docs/experiments/quantification_variants.py /tmp/q-val box-nodule --frames [reach=off]  # the nodule as live knows it: its box's ellipse
"""

from __future__ import annotations

import sys

import numpy as np


def flip_averaged(setup) -> None:
    """The model run on the crop and on its left-right mirror; the two masks averaged."""
    be = setup.pipeline.backend
    inner = be.infer

    def infer(batch: np.ndarray) -> dict:
        a, b = inner(batch), inner(np.ascontiguousarray(batch[..., ::-1]))
        return {**a, "mask": (a["mask"] + b["mask"][..., ::-1]) / 2}

    be.infer = infer


def rims(data: str) -> None:
    """Of the frames' true rims a reported focus matches: how many are called rim with the locator's
    nodule mask, and how many with the true one (same crop, same model output)."""
    from edgecalc.data.preprocess import to_gray_u8
    from edgecalc.eval.quantification import read_gray, load_truth, match, true_foci
    from edgecalc.runtime.analyze import SPACING_PHANTOM, Still, StillAnalyzer
    from edgecalc.runtime.live.build import build_pipeline
    from edgecalc.runtime.locate.images import locate_one
    from edgecalc.runtime.locate.learned import LearnedLocator

    an = StillAnalyzer(build_pipeline(None, backend="onnxruntime", crop="manual").pipeline, LearnedLocator(threads=1).locate)
    n = with_locator = with_truth = 0
    for t in load_truth(data, frames=True):
        if not t.label:
            continue
        gray, nodule = read_gray(t.image), read_gray(t.nodule) > 127
        truth, kinds = true_foci(t, gray, nodule)
        if "rim" not in kinds:
            continue
        still = Still(t.id, 0, gray, (t.mm_per_px,) * 2, SPACING_PHANTOM)
        a = an.analyze(still)  # the locator's crop and nodule mask
        located, _ = locate_one(t.id, to_gray_u8(gray), an.locate, an.margin)
        b = an._run(still, located, nodule)  # the same crop, the true nodule mask
        for i, j in match(a.foci, truth, t.mm_per_px):
            if kinds[j] != "rim":
                continue
            n += 1
            with_locator += a.foci.calcifications[i].kind == "rim"
            with_truth += any(jj == j and b.foci.calcifications[k].kind == "rim" for k, jj in match(b.foci, truth, t.mm_per_px))
    print(f"{n} true rims matched on the frames: {with_locator} called rim with the locator's nodule mask, "
          f"{with_truth} with the true nodule mask")


def main(argv: list[str]) -> None:
    data, variant, rest = argv[0], argv[1], argv[2:]
    if variant == "box-nodule":  # combined with one more variant, given after --frames
        from edgecalc.runtime.analyze import StillAnalyzer

        run = StillAnalyzer._run
        StillAnalyzer._run = lambda self, still, located, nodule: run(self, still, located, None)
        more = [a for a in rest if "=" in a]
        rest = [a for a in rest if "=" not in a]
        if more:
            variant = more[0]
        else:
            from edgecalc.eval import quantification

            quantification.main([data, *rest])
            return
    if variant == "rims":
        rims(data)
        return
    import edgecalc.runtime.live.build as build
    import edgecalc.runtime.live.pipeline as pipeline
    import edgecalc.runtime.quantify as quantify

    if variant == "flip":
        original = build.build_pipeline

        def patched(*a, **k):
            setup = original(*a, **k)
            flip_averaged(setup)
            return setup

        build.build_pipeline = patched
    elif variant == "no-gate":
        pipeline.FrameResult.called_foci = lambda self: self.foci
    elif variant.startswith("band="):
        quantify.RIM_BAND_MM = float(variant.split("=", 1)[1])
    elif variant.startswith("reach="):
        value = variant.split("=", 1)[1]
        quantify.NODULE_REACH_MM = None if value == "off" else float(value)
    elif variant.startswith("share="):
        quantify.NODULE_MIN_SHARE = float(variant.split("=", 1)[1])
    else:
        raise SystemExit(f"unknown variant {variant!r}: flip, no-gate, band=MM, reach=MM|off, share=S or rims")
    from edgecalc.eval import quantification

    quantification.main([data, *rest])


if __name__ == "__main__":
    main(sys.argv[1:])
