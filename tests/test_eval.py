"""edgecalc eval (run folder, other data, shipped weights), the figures, and the sweep's Table-1 analogue."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from edgecalc.cli import app
from edgecalc.studies.sweep import format_table, run_sweep
from edgecalc.train.run import run_training
from train_helpers import one_thread, tiny_config, tiny_data  # noqa: F401 (fixtures)


@pytest.fixture(scope="module")
def tiny_run(tiny_data, tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("runs") / "run"
    run_training(tiny_config(tiny_data, steps_stage1=2, steps_stage2=2), run_dir)
    return run_dir


def test_eval_cli_on_the_runs_test_split(tiny_run, tmp_path):
    out = tmp_path / "ev"
    res = CliRunner().invoke(app, ["eval", str(tiny_run), "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "accuracy" in res.output and "confusion" in res.output
    metrics = json.loads((out / "metrics.json").read_text())
    split = json.loads((tiny_run / "split.json").read_text())
    assert metrics["n"] == len(split["indices"]["test"]) and metrics["split"] == "test"
    assert sum(map(sum, metrics["confusion_matrix"])) == metrics["n"]
    for png in ("roc.png", "attention.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the same numbers as the run's own metrics.json (same weights, same images)
    run_metrics = json.loads((tiny_run / "metrics.json").read_text())["test"]
    assert metrics["auc"] == pytest.approx(run_metrics["auc"]) and metrics["accuracy"] == pytest.approx(run_metrics["accuracy"])


def test_eval_on_another_data_set(tiny_run, tiny_data, tmp_path):
    res = CliRunner().invoke(app, ["eval", str(tiny_run), "--data", str(tiny_data), "--out", str(tmp_path / "all")])
    assert res.exit_code == 0, res.output
    assert json.loads((tmp_path / "all" / "metrics.json").read_text())["n"] == 24


def test_eval_refuses_unfinished_runs_and_one_class_data(tiny_data, tmp_path):
    res = CliRunner().invoke(app, ["eval", str(tmp_path / "nothing")])
    assert res.exit_code == 2 and "not found" in res.stderr, res.output
    from edgecalc.data.phantom import write_phantom_dataset

    only_neg = write_phantom_dataset(tmp_path / "neg", n=4, positive=0, size=32, seed=3, progress=False, workers=1)
    from edgecalc.eval.evaluate import evaluate_weights
    from edgecalc.model import CSAGNet, get_preset
    from edgecalc.model.weights import save_model

    w = save_model(CSAGNet(get_preset("lite", 32)), tmp_path / "w.safetensors")
    with pytest.raises(ValueError, match="needs both classes, but all 4 labels are negative"):
        evaluate_weights(w, only_neg, tmp_path / "ev")


def test_eval_without_run_dir_uses_the_shipped_weights(tiny_data, tmp_path):
    from edgecalc.model.shipped import default_weights_path

    try:
        weights = default_weights_path()
    except FileNotFoundError:
        pytest.skip("no shipped weights in this checkout yet")
    res = CliRunner().invoke(app, ["eval", "--data", str(tiny_data), "--out", str(tmp_path / "shipped")])
    assert res.exit_code == 0, res.output
    metrics = json.loads((tmp_path / "shipped" / "metrics.json").read_text())
    assert metrics["weights"] == str(weights) and metrics["n"] == 24
    assert weights.stat().st_size + weights.with_suffix(".json").stat().st_size <= 10 * 1024 * 1024
    res = CliRunner().invoke(app, ["eval"])
    assert res.exit_code == 2 and "--data" in res.stderr, res.output


def test_sweep_writes_table_and_roc(tiny_data, tmp_path):
    out = tmp_path / "sweep"
    summary = run_sweep(tiny_data, [0.5, 1.0], out, [0], folds=4, size=32, epochs_stage1=1, epochs_stage2=1,
                        batch_size=4, val_fraction=0.25, progress=False)
    table = (out / "table1.md").read_text()
    assert "| 50% | 1 |" in table and "| 100% | 1 |" in table
    assert (out / "roc.png").is_file() and (out / "p0.5" / "fold0" / "final.safetensors").is_file()
    assert set(summary["results"]) == {"0.5", "1"}
    # a second call reuses the finished runs
    again = run_sweep(tiny_data, [0.5, 1.0], out, [0], folds=4, size=32, epochs_stage1=1, epochs_stage2=1,
                      batch_size=4, val_fraction=0.25, progress=False)
    assert again["results"]["0.5"][0]["test"] == summary["results"]["0.5"][0]["test"]


def test_table_shows_mean_and_std_over_folds():
    runs = [{"test": {"accuracy": a, "sensitivity": 0.5, "specificity": 1.0, "auc": 0.9}, "n_masks_stage1": 10,
             "run_dir": f"r{i}", "best_epoch_stage2": 3, "precision": prec} for i, (a, prec) in enumerate([(0.8, "fp32"), (0.9, "bf16")])]
    table = format_table({0.3: runs})
    assert f"| 30% | 2 | 10, 10 | 0.850 ± {np.std([0.8, 0.9], ddof=1):.3f} | 0.500 ± 0.000 |" in table
    # each run says the precision it trained in (auto: bf16 where the CPU has it natively)
    assert "| 30% | r0 | 0.800 | 0.500 | 1.000 | 0.900 | - | 3 | fp32 |" in table
    assert "| 30% | r1 | 0.900 | 0.500 | 1.000 | 0.900 | - | 3 | bf16 |" in table


def test_sweep_refuses_a_run_with_other_settings(tiny_data, tmp_path):
    out = tmp_path / "sweep"
    (out / "p0.5" / "fold0").mkdir(parents=True)
    cfg = tiny_config(tiny_data, mask_fraction=0.5, epochs_stage1=3)
    (out / "p0.5" / "fold0" / "config.json").write_text(json.dumps(cfg.to_dict()))
    with pytest.raises(ValueError, match="epochs_stage1: run 3 vs asked 1"):
        run_sweep(tiny_data, [0.5], out, [0], folds=4, size=32, epochs_stage1=1, epochs_stage2=2, batch_size=4,
                  val_fraction=0.25, progress=False)


def test_subgroup_figures_by_kind_contrast_and_confounder(tmp_path):
    from edgecalc.eval.subgroups import format_subgroups, subgroup_figures

    (tmp_path / "labels.csv").write_text("id,calcification,kinds\na,1,micro\nb,1,macro|rim\nc,0,\nd,0,\ne,1,micro\n")
    (tmp_path / "meta.jsonl").write_text("\n".join(json.dumps(r) for r in [
        {"id": "a", "low_contrast": True, "confounders": []}, {"id": "b", "low_contrast": False, "confounders": []},
        {"id": "c", "low_contrast": False, "confounders": ["comet_tail"]}, {"id": "d", "low_contrast": False, "confounders": []},
        {"id": "e", "low_contrast": False, "confounders": []}]) + "\n")
    ids = ["a", "b", "c", "d", "e"]
    labels = np.array([1, 1, 0, 0, 1])
    scores = np.array([0.4, 0.9, 0.6, 0.1, 0.8])  # the low-contrast micro focus is missed, the comet tail fools it
    fig = subgroup_figures(tmp_path, ids, labels, scores)
    kinds = fig["positives_by_kind"]
    assert set(kinds) == {"micro", "macro", "rim"} and kinds["micro"]["n"] == 2 and kinds["micro"]["sensitivity"] == 0.5
    assert kinds["macro"]["auc_vs_all_negatives"] == 1.0 and kinds["micro"]["auc_vs_all_negatives"] == 0.75
    assert fig["positives_by_contrast"]["low_contrast"] == {"n": 1, "sensitivity": 0.0, "auc_vs_all_negatives": 0.5}
    assert fig["negatives_by_confounder"] == {"comet_tail": {"n": 1, "specificity": 0.0}, "(none)": {"n": 1, "specificity": 1.0}}
    assert any("low_contrast" in label for label, _ in format_subgroups(fig))
    (tmp_path / "meta.jsonl").unlink()
    (tmp_path / "labels.csv").write_text("id,calcification\na,1\nc,0\n")
    assert subgroup_figures(tmp_path, ["a", "c"], np.array([1, 0]), np.array([0.9, 0.1])) == {}


def test_patient_groups_only_when_every_image_names_one(tmp_path):
    from edgecalc.eval.subgroups import patient_groups

    (tmp_path / "labels.csv").write_text("id,calcification,patient\na,1,p1\nb,0,p1\nc,1,p2\n")
    assert patient_groups(tmp_path, ["a", "b", "c"]).tolist() == ["p1", "p1", "p2"]
    (tmp_path / "labels.csv").write_text("id,calcification,patient\na,1,p1\nb,0,\n")
    assert patient_groups(tmp_path, ["a", "b"]) is None
    assert patient_groups(None, ["a"]) is None


# --- sweep: paired differences and --collect-only (training faked: only what sweep reads is written) ---

#: Test AUC and accuracy of the faked runs, per (fraction, fold).
FAKE_FIGURES = {(0.3, 0): (0.90, 0.80), (0.3, 1): (0.80, 0.70), (1.0, 0): (0.95, 0.82), (1.0, 1): (0.78, 0.74),
                (0.1, 0): (0.70, 0.60), (0.1, 1): (0.75, 0.65)}


def _fake_training(cfg, run_dir, console=None):
    import edgecalc.run_folder as rf

    auc, acc = FAKE_FIGURES[(cfg.mask_fraction, cfg.fold)]
    Path(run_dir).mkdir(parents=True, exist_ok=True)
    (Path(run_dir) / rf.CONFIG_FILE).write_text(json.dumps(cfg.to_dict()))
    rf.final_weights_path(run_dir).write_bytes(b"")
    rf.write_metrics(run_dir, {"test": {"accuracy": acc, "sensitivity": 0.5, "specificity": 0.5, "auc": auc},
                               "n_masks_stage1": 1})
    rf.write_scores(rf.eval_dir(run_dir), ["a", "b", "c", "d"], np.array([1, 0, 1, 0]), np.array([0.9, 0.1, 0.4, 0.6]))


def _refuse_training(*args, **kwargs):
    raise AssertionError("--collect-only trained a run")


def test_sweep_pairs_each_fraction_with_the_default_one_per_fold(monkeypatch, tmp_path):
    import edgecalc.train.run as train_run

    monkeypatch.setattr(train_run, "run_training", _fake_training)
    summary = run_sweep(tmp_path / "data", [0.1, 0.3, 1.0], tmp_path / "sweep", [0, 1], folds=5, progress=False)
    assert summary["paired"]["reference"] == "p = 30%"
    d = summary["paired"]["differences"]
    assert d["p = 100%"]["auc"]["per_fold"] == pytest.approx([0.05, -0.02])
    assert d["p = 100%"]["auc"]["reference_higher"] == 1
    assert d["p = 10%"]["accuracy"]["per_fold"] == pytest.approx([-0.20, -0.05])
    assert d["p = 10%"]["accuracy"]["reference_higher"] == 2
    table = (tmp_path / "sweep" / "table1.md").read_text()
    assert "method − p = 30%" in table
    assert "| p = 100% | +0.015 ± 0.049 |" in table, table  # mean of +0.05 and -0.02, sample std
    assert "p = 30%'s AUC is higher on average (+0.125), higher on 2 of 2 folds" in table, table


def test_sweep_with_one_fraction_pairs_nothing(monkeypatch, tmp_path):
    import edgecalc.train.run as train_run

    monkeypatch.setattr(train_run, "run_training", _fake_training)
    summary = run_sweep(tmp_path / "data", [0.3], tmp_path / "sweep", [0, 1], folds=5, progress=False)
    assert summary["paired"] is None and "Paired" not in (tmp_path / "sweep" / "table1.md").read_text()


def test_collect_only_reads_runs_without_their_weights_and_trains_nothing(monkeypatch, tmp_path):
    import edgecalc.run_folder as rf
    import edgecalc.train.run as train_run

    monkeypatch.setattr(train_run, "run_training", _fake_training)
    trained = run_sweep(tmp_path / "data", [0.3, 1.0], tmp_path / "sweep", [0, 1], folds=5, progress=False)
    for run in (tmp_path / "sweep").glob("p*/fold*"):
        rf.final_weights_path(run).unlink()  # copied here without the weights
    monkeypatch.setattr(train_run, "run_training", _refuse_training)
    monkeypatch.setattr(train_run, "resume_training", _refuse_training)
    collected = run_sweep(tmp_path / "data", [0.3, 1.0], tmp_path / "sweep", [0, 1], folds=5, progress=False,
                          collect_only=True)
    assert collected["results"] == trained["results"] and collected["paired"] == trained["paired"]


def test_collect_only_names_the_run_it_cannot_read(monkeypatch, tmp_path):
    import edgecalc.train.run as train_run

    monkeypatch.setattr(train_run, "run_training", _fake_training)
    run_sweep(tmp_path / "data", [0.3], tmp_path / "sweep", [0], folds=5, progress=False)
    with pytest.raises(ValueError, match=r"fold1: no finished run to collect .*metrics\.json"):
        run_sweep(tmp_path / "data", [0.3], tmp_path / "sweep", [0, 1], folds=5, progress=False, collect_only=True)
    res = CliRunner().invoke(app, ["sweep", str(tmp_path / "data"), "--fractions", "0.3", "--fold-ids", "0,1",
                                   "--out", str(tmp_path / "sweep"), "--collect-only", "--no-progress"])
    assert res.exit_code == 2 and "no finished run to collect" in res.output, res.output
