"""Focus candidates, the verifier's trees in numpy, the new foci they add, and `edgecalc fit-verifier`."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from edgecalc.runtime.focus_candidates import FEATURES, candidates
from edgecalc.runtime.focus_verifier import (VERIFIER_FEATURES, FocusVerifier, TreeEnsemble, VerifierError,
                                             load_verifier)
from edgecalc.runtime.refine_mask import Refinement, refine_mask

MM = 0.08


def speckle_with_dots(dots, size=160, seed=0):
    """A speckle-like gray crop (smoothed noise around 80) with bright round dots (y, x, radius px)."""
    import cv2

    rng = np.random.default_rng(seed)
    g = cv2.GaussianBlur(rng.normal(80, 12, (size, size)).astype(np.float32), (0, 0), 1.0)
    yy, xx = np.mgrid[:size, :size]
    for y, x, r in dots:
        g[(yy - y) ** 2 + (xx - x) ** 2 <= r * r] = 230
    nodule = (yy - size / 2) ** 2 + (xx - size / 2) ** 2 <= (size * 0.45) ** 2
    return np.clip(g, 0, 255).astype(np.uint8), nodule


def always(p: float) -> FocusVerifier:
    """Trees that answer ``p`` for every candidate: one leaf, its value the logit."""
    one = np.zeros(1)
    trees = TreeEnsemble(np.zeros(1, np.int32), one, np.zeros(1, np.int32), np.zeros(1, np.int32), one,
                         np.ones(1, bool), np.zeros(1, bool), np.zeros(1, np.int64), float(np.log(p / (1 - p))))
    return FocusVerifier(trees, 0.5)


def test_a_bright_dot_is_the_strongest_candidate_and_an_empty_nodule_has_none():
    gray, nodule = speckle_with_dots([(60, 70, 3)])
    peaks, f = candidates(gray, np.zeros(gray.shape, np.float32), nodule, MM)
    assert f.shape == (len(peaks), len(FEATURES))
    d = np.hypot(peaks[:, 0] - 60, peaks[:, 1] - 70)
    best = int(np.argmin(d))
    assert d[best] <= 2
    z = f[:, FEATURES.index("z_near")]
    assert z[best] == z.max()  # the dot stands out more than any speckle maximum
    none, nf = candidates(gray, np.zeros(gray.shape, np.float32), np.zeros_like(nodule), MM)
    assert none.shape == (0, 2) and nf.shape == (0, len(FEATURES))


def test_the_numpy_trees_answer_as_scikit_learn_does_missing_values_included():
    sk = pytest.importorskip("sklearn.ensemble", reason="fitting trees needs scikit-learn (the [train] extra)")
    from edgecalc.train.focus_verifier import trees_from_sklearn

    rng = np.random.default_rng(0)
    X = rng.normal(size=(3000, 5))
    y = (X[:, 0] + 0.5 * X[:, 1] ** 2 - X[:, 2] * X[:, 3] + rng.normal(0, 0.3, 3000)) > 0.4
    X[rng.random(X.shape) < 0.05] = np.nan  # the trees learn where a missing value goes
    clf = sk.HistGradientBoostingClassifier(max_iter=40, random_state=0).fit(X, y)
    trees = trees_from_sklearn(clf)
    test = rng.normal(size=(500, 5))
    test[rng.random(test.shape) < 0.05] = np.nan
    np.testing.assert_allclose(trees.predict(test), clf.predict_proba(test)[:, 1], rtol=0, atol=1e-12)
    again = TreeEnsemble.from_arrays(trees.arrays())
    np.testing.assert_array_equal(again.predict(test), trees.predict(test))


def test_a_verified_focus_touching_none_is_added_and_one_touching_a_counted_focus_is_not():
    gray, nodule = speckle_with_dots([(50, 50, 3), (110, 100, 3)])
    counted = np.zeros(gray.shape, bool)
    counted[47:54, 47:54] = True  # the model's focus on the first dot, as the trim left it
    out = always(0.99).add_new_foci(counted, gray, np.zeros(gray.shape, np.float32), nodule, MM)
    assert out[110, 100] and not counted[110, 100]  # the second dot: a new focus
    np.testing.assert_array_equal(out[40:61, 40:61], counted[40:61, 40:61])  # the first keeps its own size
    assert not always(0.01).add_new_foci(counted, gray, np.zeros(gray.shape, np.float32), nodule, MM)[110, 100]


def test_refine_mask_adds_new_foci_only_with_a_verifier_a_nodule_a_spacing_and_verify_on():
    gray, nodule = speckle_with_dots([(110, 100, 3)])
    prob = np.zeros(gray.shape, np.float32)
    v = always(0.99)
    assert refine_mask(gray, prob, (MM, MM), Refinement(), nodule, v)[110, 100]
    assert not refine_mask(gray, prob, (MM, MM), Refinement(), nodule, None).any()
    assert not refine_mask(gray, prob, None, Refinement(), nodule, v).any()
    assert not refine_mask(gray, prob, (MM, MM), Refinement(), None, v).any()
    off = Refinement.parse("verify=false")
    assert off.verify is False and not refine_mask(gray, prob, (MM, MM), off, nodule, v).any()
    with pytest.raises(ValueError, match="verify must be true or false"):
        Refinement.parse("verify=maybe")


def test_a_verifier_for_other_features_or_with_a_bad_threshold_is_refused_by_file(tmp_path):
    safetensors = pytest.importorskip("safetensors.numpy")
    safetensors.save_file(always(0.9).trees.arrays(), str(tmp_path / "focus_verifier.safetensors"))
    entry = {"file": "focus_verifier.safetensors", "threshold": 0.9, "features": list(VERIFIER_FEATURES)}
    assert load_verifier(tmp_path, entry).threshold == 0.9
    assert load_verifier(tmp_path, None) is None
    with pytest.raises(VerifierError, match="focus_verifier.safetensors: fitted on features"):
        load_verifier(tmp_path, {**entry, "features": ["z_near"]})
    with pytest.raises(VerifierError, match="threshold must lie in"):
        load_verifier(tmp_path, {**entry, "threshold": 1.5})
    with pytest.raises(VerifierError, match="missing.safetensors"):
        load_verifier(tmp_path, {**entry, "file": "missing.safetensors"})


def test_fit_verifier_writes_the_trees_into_the_bundle_and_the_pipeline_loads_them(tmp_path):
    pytest.importorskip("sklearn", reason="fitting the verifier needs scikit-learn (the [train] extra)")
    from typer.testing import CliRunner

    from edgecalc.cli import app
    from edgecalc.data.phantom.dataset_writer import write_phantom_dataset
    from edgecalc.runtime.engine.bundle import load_bundle
    from edgecalc.runtime.live.build import build_pipeline
    from edgecalc.runtime.shipped import default_bundle_dir

    shipped = default_bundle_dir()
    if shipped is None:
        pytest.skip("this build carries no shipped bundle")
    bundle = tmp_path / "bundle"
    shutil.copytree(shipped, bundle)
    for f in ("focus_verifier.safetensors",):
        (bundle / f).unlink(missing_ok=True)
    doc = json.loads((bundle / "manifest.json").read_text())
    doc["focus_verifier"] = None
    doc["artifacts"] = [a for a in doc["artifacts"] if a["kind"] != "verifier"]
    (bundle / "manifest.json").write_text(json.dumps(doc))
    data = write_phantom_dataset(tmp_path / "p", n=12, positive=8, size=96, seed=5)
    res = CliRunner().invoke(app, ["fit-verifier", str(data), "--bundle", str(bundle), "--threshold", "0.8",
                                   "--no-progress"])
    assert res.exit_code == 0, res.output
    loaded = load_bundle(bundle)  # every checksum, the verifier's included
    entry = loaded.manifest.focus_verifier
    assert entry["threshold"] == 0.8 and entry["features"] == list(VERIFIER_FEATURES)
    assert entry["command"].startswith(f"edgecalc fit-verifier {data} --bundle {bundle} --threshold 0.8")
    assert loaded.manifest.artifact("verifier") is not None
    v = build_pipeline(bundle, backend="onnxruntime", crop="manual").pipeline.verifier
    assert v is not None and v.threshold == 0.8 and len(v.trees.roots) == entry["trees"]
    bad = CliRunner().invoke(app, ["fit-verifier", str(tmp_path / "nowhere"), "--bundle", str(bundle), "--no-progress"])
    assert bad.exit_code == 2 and "nowhere" in bad.output


def test_candidates_filtered_on_the_nodule_box_are_those_of_the_whole_image():
    """``candidates`` (and ``blobs_mask``) filter the nodule's (the peaks') box and a margin only; the figures
    equal the whole image's."""
    from edgecalc.runtime.focus_candidates import _candidates

    gray, _ = speckle_with_dots([(150, 170, 3), (190, 200, 2)], size=360)
    yy, xx = np.mgrid[:360, :360]
    nodule = (yy - 170) ** 2 / 50 ** 2 + (xx - 185) ** 2 / 60 ** 2 <= 1  # well inside: the margin fits
    prob = np.zeros(gray.shape, np.float32)
    prob[145:156, 165:176] = 0.7
    p1, f1 = candidates(gray, prob, nodule, MM)
    p2, f2 = _candidates(gray, prob, nodule, MM)
    assert len(p1) > 5
    np.testing.assert_array_equal(p1, p2)
    assert (np.diff(p1[:, 0] * 360 + p1[:, 1]) > 0).all()  # raster order, whatever the window (fit-verifier's draw)
    np.testing.assert_allclose(f1, f2, rtol=1e-5, atol=1e-4)
    from edgecalc.runtime.focus_candidates import _blobs_mask, blobs_mask

    np.testing.assert_array_equal(blobs_mask(gray, p1[:4], MM), _blobs_mask(gray, p1[:4], MM))


def test_the_pipeline_consults_its_verifier_on_frames_called_calcification_only():
    """The verifier's foci are reported only where the decision calls calcification: elsewhere it is not run."""
    from dataclasses import dataclass, field

    from edgecalc.runtime.live.pipeline import FramePipeline
    from edgecalc.runtime.locate.cropper import FixedCropper

    @dataclass(frozen=True)
    class Counting(FocusVerifier):
        calls: list = field(default_factory=list)

        def verified(self, gray, prob, nodule, mm_per_px):
            self.calls.append(gray.shape)
            return super().verified(gray, prob, nodule, mm_per_px)

    class Backend:
        def __init__(self, score: float) -> None:
            self.score = score

        def infer(self, batch):
            mask = np.zeros((1, 1, 32, 32), np.float32)
            mask[:, :, 14:18, 14:18] = 1.0
            return {"mask": mask, "score": np.full((1, 1), self.score, np.float32)}

    gray, _ = speckle_with_dots([(60, 60, 3), (100, 110, 3)], size=240)
    frame = np.dstack([gray] * 3)
    for score, runs in ((0.9, True), (0.1, False)):
        v = Counting(always(0.99).trees, 0.5)
        p = FramePipeline(backend=Backend(score), input_size=32, cropper=FixedCropper((40, 40, 160, 160)),
                          spacing_mm=(MM, MM), verifier=v, place_hud=False)
        res = p.process(frame, 0)
        assert res.foci is not None and bool(v.calls) == runs, (score, v.calls)
