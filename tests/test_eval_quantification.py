"""Scoring quantification against the phantom's truth (edgecalc.eval.quantification), on a tiny phantom."""

from __future__ import annotations

import json

import pytest

from edgecalc.data.phantom.dataset_writer import write_phantom_dataset
from edgecalc.eval.quantification import evaluate, load_truth, main


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return write_phantom_dataset(tmp_path_factory.mktemp("q") / "p", n=5, positive=3, size=96, seed=11, frames=True,
                                 progress=False, workers=1)


@pytest.mark.parametrize("frames", [False, True])
def test_truth_masks_score_perfectly_on_counts_and_sizes(tiny, frames):
    """The oracle measures the truth masks as predictions: counts and sizes agree exactly, by construction."""
    rep = evaluate(tiny, frames=frames, oracle=True)
    assert rep["images"] == 5 and rep["positives"] == (3 if not frames else sum(t.label for t in load_truth(tiny, True)))
    assert rep["count_exact"] == 1.0 and rep["median_size_error"] == 0.0
    assert rep["points_exact_negatives"] in (None, 1.0)
    assert 0.0 <= rep["kind_accuracy"] <= 1.0


def test_a_data_set_without_per_calcification_truth_is_refused_by_name(tiny, tmp_path, capsys):
    old = tmp_path / "old"
    old.mkdir()
    lines = [json.loads(x) for x in (tiny / "meta.jsonl").read_text().splitlines()]
    for rec in lines:
        rec.pop("calcifications")
    (old / "meta.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    (old / "labels.csv").write_text((tiny / "labels.csv").read_text())
    with pytest.raises(ValueError, match="regenerate"):
        load_truth(old)
    assert main([str(old), "--oracle"]) == 2
    assert "meta.jsonl" in capsys.readouterr().err


def test_the_shipped_model_is_scored_on_crops_and_frames(tiny):
    from edgecalc.runtime.shipped import default_bundle_dir

    if default_bundle_dir() is None:
        pytest.skip("this build carries no shipped bundle")
    from edgecalc.runtime.analyze import StillAnalyzer
    from edgecalc.runtime.locate.learned import LearnedLocator
    from edgecalc.runtime.live.build import build_pipeline

    setup = build_pipeline(None, backend="onnxruntime", crop="manual")
    analyzer = StillAnalyzer(setup.pipeline, LearnedLocator(threads=1).locate)
    for frames in (False, True):
        rep = evaluate(tiny, frames=frames, analyzer=analyzer)
        assert rep["images"] == 5 and len(rep["per_image"]) == 5
        for key in ("count_within_1", "points_exact_positives", "points_exact_negatives"):
            assert rep[key] is None or 0.0 <= rep[key] <= 1.0
        assert all(r["count"] >= 0 and r["matched"] <= min(r["count"], r["true_count"]) for r in rep["per_image"])


def test_a_bad_refinement_is_refused_by_name(tiny, capsys):
    assert main([str(tiny), "--oracle", "--refine", "bogus=1"]) == 2
    err = capsys.readouterr().err
    assert "--refine" in err and "bogus" in err
