"""The fitted-on record beside weights: written, read, and `evaluate_weights` warns on the images it names."""

from __future__ import annotations

import json

import pytest

from edgecalc.model.provenance import FITTED_SUFFIX, fitted_path, read_fitted, write_fitted, write_from_run


def test_the_record_round_trips_and_a_bad_one_is_named(tmp_path):
    w = tmp_path / "net.safetensors"
    assert read_fitted(w) is None
    path = write_fitted(w, "ddti-calc", "score head", ["b", "a"])
    assert path == tmp_path / f"net{FITTED_SUFFIX}" == fitted_path(w)
    rec = read_fitted(w)
    assert (rec.data, rec.what, rec.ids) == ("ddti-calc", "score head", frozenset({"a", "b"}))
    path.write_text(json.dumps({"data": "x"}))
    with pytest.raises(ValueError, match=f"net{FITTED_SUFFIX}.*not a fitted-on record"):
        read_fitted(w)


def test_a_runs_record_lists_its_training_and_validation_ids(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    from edgecalc.run_folder import write_split

    (run / "config.json").write_text(json.dumps({"data": "/somewhere/ddti-calc", "fold": 0, "folds": 5}))
    write_split(run, {"n": 4, "fold": 0, "folds": 5, "seed": 0,
                      "indices": {"train": [0, 1], "val": [2], "test": [3], "mask_draw": []},
                      "ids": {"train": ["t1", "t2"], "val": ["v1"], "test": ["x"], "mask_draw": []}})
    write_from_run(tmp_path / "w.safetensors", run)
    rec = read_fitted(tmp_path / "w.safetensors")
    assert rec.ids == {"t1", "t2", "v1"} and rec.data == "ddti-calc" and "fold 0 of 5" in rec.what


def test_eval_warns_when_the_data_holds_images_the_weights_were_fitted_on(tmp_path):
    from rich.console import Console

    from edgecalc.data.phantom import write_phantom_dataset
    from edgecalc.eval.evaluate import evaluate_weights
    from edgecalc.model import CSAGNet, get_preset
    from edgecalc.model.weights import save_model

    data = write_phantom_dataset(tmp_path / "d", n=6, positive=3, size=32, seed=3, progress=False, workers=1)
    w = save_model(CSAGNet(get_preset("lite", 32)), tmp_path / "w.safetensors")
    console = Console(record=True, width=200)
    assert "seen_in_fit" not in evaluate_weights(w, data, tmp_path / "ev0", console=console)
    ids = [line.split(",")[0] for line in (data / "labels.csv").read_text().splitlines()[1:]]
    write_fitted(w, "d", "score head", ids[:4] + ["not-here"])
    evaluate_weights(w, data, tmp_path / "ev1", console=console)
    metrics = json.loads((tmp_path / "ev1" / "metrics.json").read_text())
    assert metrics["seen_in_fit"] == {"images": 4, "what": "score head", "data": "d"}
    assert "4 of these 6 images were used to fit these weights" in console.export_text()


def test_the_shipped_real_data_weights_record_fold_0s_fitting_crops():
    from edgecalc.model.shipped import default_weights_path, shipped_weights_path

    for path in (default_weights_path(), shipped_weights_path("ddti")):
        rec = read_fitted(path)
        assert rec is not None and rec.data == "ddti-calc" and len(rec.ids) == 238, path
    assert read_fitted(shipped_weights_path("phantom")) is None  # phantom-only: nothing real to record
