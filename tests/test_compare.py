"""``edgecalc compare`` on a tiny mask-less set: every method on the same folds, the table's subsets, resume."""

from __future__ import annotations

import csv
import json
import shutil

import numpy as np
import pytest

from edgecalc.studies.compare import METHODS, run_compare
from edgecalc.train.run import run_training
from train_helpers import one_thread, tiny_config, tiny_data  # noqa: F401 (fixtures)

TINY = dict(size=32, steps_stage1=4, steps_stage2=4, eval_every=2, warmup_steps=1, batch_size=4, val_fraction=0.25,
            progress=False)


@pytest.fixture(scope="module")
def real_like(tiny_data, tmp_path_factory):
    """The tiny phantom without masks, with patient, kind and text columns like ddti-calc's."""
    out = tmp_path_factory.mktemp("real") / "crops"
    shutil.copytree(tiny_data, out)
    shutil.rmtree(out / "masks")
    rows = list(csv.DictReader((out / "labels.csv").open()))
    with (out / "labels.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "calcification", "patient", "kind", "note_text_in_frame"])
        for i, r in enumerate(rows):
            w.writerow([r["id"], r["calcification"], f"P{i // 2}", "micro" if r["calcification"] == "1" else "none", i % 5 == 0])
    # booleans written as True/False by csv: the text column must hold 0/1
    text = (out / "labels.csv").read_text().replace(",True\n", ",1\n").replace(",False\n", ",0\n")
    (out / "labels.csv").write_text(text)
    # whole frames with the annotated box, as ddti-calc/full/ holds them (the first few only: speed)
    import cv2

    from edgecalc.data.phantom import generate_frame

    (out / "full").mkdir()
    boxes = ["id,x,y,w,h"]
    for i, r in enumerate(rows):
        f = generate_frame(100 + i, positive=r["calcification"] == "1")
        cv2.imwrite(str(out / "full" / f"{r['id']}.png"), f.image)
        boxes.append(",".join([r["id"], *(str(v) for v in f.nodule_box)]))
    (out / "full" / "boxes.csv").write_text("\n".join(boxes) + "\n")
    return out


@pytest.fixture(scope="module")
def pretrained(tiny_data, tmp_path_factory):
    run = tmp_path_factory.mktemp("pre") / "phantom-run"
    run_training(tiny_config(tiny_data), run)
    return run


@pytest.fixture(scope="module")
def compared(real_like, pretrained, tiny_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("cmp") / "out"
    methods = ["labels-only", "zero-shot", "fine-tune", "linear-probe", "sim-to-real+mix", "brightness"]
    summary = run_compare(real_like, methods, out, folds=3, pretrained=pretrained, phantom=tiny_data, mix_ratio=0.25, **TINY)
    return out, summary, methods


def test_every_method_scores_the_same_test_ids_per_fold(compared):
    out, _, methods = compared
    rows = list(csv.DictReader((out / "scores.csv").open()))
    for fold in ("0", "1", "2"):
        ids = {m: sorted(r["id"] for r in rows if r["method"] == m and r["fold"] == fold) for m in methods}
        assert len({tuple(v) for v in ids.values()}) == 1, ids
    every = sorted(r["id"] for r in rows if r["method"] == "brightness")
    assert len(every) == len(set(every)) == 24  # each crop tested once


def test_patients_never_straddle_train_and_test(compared, real_like):
    out, _, _ = compared
    patient = {r["id"]: r["patient"] for r in csv.DictReader((real_like / "labels.csv").open())}
    for fold in range(3):
        split = json.loads((out / "labels-only" / f"fold{fold}" / "split.json").read_text())["ids"]
        test = {patient[i] for i in split["test"]}
        assert not test & {patient[i] for i in split["train"] + split["val"]}


def test_table_has_pooled_text_free_and_kind_sections(compared):
    out, summary, methods = compared
    text = (out / "comparison.md").read_text()
    assert "Without the crops marked in note_text_in_frame" in text and "AUC per kind" in text
    for m in methods:
        assert f"| {m} |" in text
        e = summary["methods"][m]
        assert e["pooled"]["n"] == 24 and e["without_text"]["n"] == 24 - 5
        assert e["by_kind"]["micro"]["n"] == 24
    assert (out / "roc.png").stat().st_size > 0
    assert "Whole frames (full/)" in text
    e2e = summary["methods"]["fine-tune"]["end_to_end"]
    assert e2e["n"] == 24 and e2e["located"] > 0.5 and 0 <= e2e["auc_locator_crops"] <= 1
    assert "end_to_end" not in summary["methods"]["brightness"]
    assert (out / "zero-shot" / "fold2" / "end_to_end.npz").is_file()
    mix = json.loads((out / "sim-to-real+mix" / "fold0" / "metrics.json").read_text())
    assert mix["mix_ratio"] == 0.25 and mix["n_masks_stage1"] == 0  # stage one given by the pretrained run
    assert json.loads((out / "fine-tune" / "fold0" / "metrics.json").read_text())["init_weights"]


def test_rerun_reuses_every_fold(compared, real_like, pretrained, tiny_data):
    out, summary, methods = compared
    before = {p: p.stat().st_mtime_ns for p in out.rglob("final.safetensors")}
    again = run_compare(real_like, methods, out, folds=3, pretrained=pretrained, phantom=tiny_data, mix_ratio=0.25, **TINY)
    assert {p: p.stat().st_mtime_ns for p in out.rglob("final.safetensors")} == before
    assert again["methods"]["brightness"]["pooled"] == summary["methods"]["brightness"]["pooled"]


def test_methods_are_checked_before_training(real_like, tmp_path):
    with pytest.raises(ValueError, match="needs --pretrained"):
        run_compare(real_like, ["fine-tune"], tmp_path / "x", folds=3, **TINY)
    with pytest.raises(ValueError, match="sim-to-real needs"):
        run_compare(real_like, ["sim-to-real"], tmp_path / "y", folds=3, **TINY)
    assert not (tmp_path / "x").exists() and set(METHODS) >= {"labels-only", "brightness"}
    for m in ("csagnet", "alexnet-seg"):  # the mask-less set cannot give them the paper's supervision
        with pytest.raises(ValueError, match=f"method {m} trains on .* pixel masks"):
            run_compare(real_like, ["vgg16", m], tmp_path / "z", folds=3, **TINY)
    assert not (tmp_path / "z").exists()


def test_brightness_rule_finds_a_bright_centre(tmp_path):
    from edgecalc.eval.rules import centre_features, tune_brightness

    rng = np.random.default_rng(0)
    images, labels = [], []
    for i in range(40):
        im = rng.integers(40, 90, (60, 60)).astype(np.uint8)
        if i % 2:
            im[28:32, 28:32] = 230
        images.append(im)
        labels.append(i % 2)
    feats = centre_features(images)
    rule = tune_brightness(feats, np.asarray(labels))
    assert rule["train_auc"] == 1.0 and 90 < rule["threshold"] <= 230


def test_locator_training_patients_come_from_the_bundle_split(tmp_path):
    from edgecalc.eval.end_to_end import locator_training_patients
    from edgecalc.locator.split import write_split

    bundle, frames = tmp_path / "bundle", tmp_path / "frames"
    frames.mkdir()
    write_split(bundle / "split.json", {"train": [1, 2, 10003, 20003], "val": [4]}, 0, 0.2)
    (frames / "patients.csv").write_text("id,patient,ddti_case,ddti_frame\n1,1,7,1\n2,1,7,2\n10003,2,9,1\n"
                                         "20003,2,9,1\n4,3,11,1\n")
    assert locator_training_patients(frames, bundle) == {"7", "9"}
    (frames / "patients.csv").write_text("id,patient\n1,7\n")
    with pytest.raises(ValueError, match="no patient for locator training frame"):
        locator_training_patients(frames, bundle)


@pytest.fixture(scope="module")
def table2(tiny_data, tmp_path_factory):
    """The paper's Table 2 on the tiny phantom (masks for every positive), 2 folds, tiny budgets."""
    from edgecalc.studies.compare import TABLE2_METHODS

    out = tmp_path_factory.mktemp("table2") / "out"
    budget = {**TINY, "steps_stage1": 2, "steps_stage2": 2}  # one round per stage: 12 trainings in all
    summary = run_compare(tiny_data, list(TABLE2_METHODS), out, folds=2, mask_fraction=0.5, end_to_end=False, **budget)
    return out, summary


def test_table2_trains_each_network_with_its_supervision(table2):
    from edgecalc.studies.compare import TABLE2_METHODS

    out, summary = table2
    nets = {"csagnet": 0.5, "vgg-unet": 0.5, "alexnet-seg": 1.0, "sononet-ag": 0.0, "vgg16": 0.0, "resnet50": 0.0}
    for m, p in nets.items():
        for k in (0, 1):
            metrics = json.loads((out / m / f"fold{k}" / "metrics.json").read_text())
            assert metrics["network"] == m and metrics["mask_fraction"] == p
            assert (out / m / f"fold{k}" / "stage1").is_dir() == (m in ("csagnet", "vgg-unet"))
    for rule in ("ci", "otsu"):
        r = json.loads((out / rule / "fold0" / "rule.json").read_text())
        assert r["share"] in (0.4, 0.5, 0.6, 0.7, 0.8, 1.0) and np.isfinite(r["threshold"])
    rows = list(csv.DictReader((out / "scores.csv").open()))
    for fold in ("0", "1"):  # every method scores the same test images
        ids = {m: sorted(r["id"] for r in rows if r["method"] == m and r["fold"] == fold) for m in TABLE2_METHODS}
        assert len({tuple(v) for v in ids.values()}) == 1


def test_table2_reports_paired_differences_hit_rates_and_the_grid(table2):
    out, summary = table2
    text = (out / "comparison.md").read_text()
    assert "Paired per-fold differences, method − csagnet" in text and "| vgg16 |" in text
    paired = summary["paired"]
    assert "csagnet" not in paired and set(paired) == {"vgg-unet", "alexnet-seg", "sononet-ag", "vgg16", "resnet50", "ci",
                                                       "otsu"}
    per_fold = {f["fold"]: f["auc"] for f in summary["methods"]["vgg16"]["per_fold"]}
    ref = {f["fold"]: f["auc"] for f in summary["methods"]["csagnet"]["per_fold"]}
    assert paired["vgg16"]["auc"]["per_fold"] == pytest.approx([per_fold[k] - ref[k] for k in (0, 1)])
    assert paired["vgg16"]["auc"]["n_folds"] == 2
    rates = summary["attention_hit_rates"]
    assert set(rates) == {"csagnet", "vgg-unet", "alexnet-seg", "sononet-ag", "vgg16", "resnet50"}
    assert rates["vgg16"]["map"] == "CAM" and rates["csagnet"]["map"] == "Grid-AG 3"
    assert all(r["n"] > 0 and 0 <= r["rate"] <= 1 for r in rates.values())
    assert (out / "attention.png").stat().st_size > 0 and (out / "roc.png").stat().st_size > 0


def _figures_only(out, dest):
    """Copy each method folder's figures (``FIGURES``: no weights, no checkpoints) as docs/table2 keeps them."""
    from edgecalc.run_folder import CONFIG_FILE
    from edgecalc.studies.compare import FIGURES

    for fold in out.glob("*/fold*"):
        kind = METHODS[fold.parent.name].kind
        for f in (*FIGURES[kind], *((CONFIG_FILE,) if kind == "train" else ())):
            (dest / fold.relative_to(out) / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(fold / f, dest / fold.relative_to(out) / f)


def test_collect_only_gathers_table2_from_figures_without_weights(table2, tiny_data, tmp_path, monkeypatch):
    import edgecalc.train.run as train_run
    from edgecalc.studies.compare import TABLE2_METHODS

    out, summary = table2
    kept = tmp_path / "kept"
    _figures_only(out, kept)
    assert not list(kept.rglob("*.safetensors"))
    (kept / "attention.png").write_bytes(b"earlier grid")  # drawn when the weights were there: must be kept

    def refuse(*args, **kwargs):
        raise AssertionError("--collect-only trained")

    monkeypatch.setattr(train_run, "run_training", refuse)
    monkeypatch.setattr(train_run, "resume_training", refuse)
    budget = {**TINY, "steps_stage1": 2, "steps_stage2": 2}
    again = run_compare(tiny_data, list(TABLE2_METHODS), kept, folds=2, mask_fraction=0.5, end_to_end=False,
                        collect_only=True, **budget)
    assert again["paired"] == summary["paired"]
    assert again["methods"]["resnet50"]["pooled"] == summary["methods"]["resnet50"]["pooled"]
    assert again["attention_hit_rates"] == summary["attention_hit_rates"]
    assert (kept / "attention.png").read_bytes() == b"earlier grid"
    assert (kept / "comparison.md").read_text() == (out / "comparison.md").read_text()

    shutil.rmtree(kept / "otsu" / "fold1")
    with pytest.raises(ValueError, match=r"otsu/fold1: no finished run to collect .*scores\.npz"):
        run_compare(tiny_data, ["csagnet", "otsu"], kept, folds=2, mask_fraction=0.5, end_to_end=False,
                    collect_only=True, **budget)
    with pytest.raises(ValueError, match=r"vgg16/fold0 was trained with other settings .*steps_stage2"):
        run_compare(tiny_data, ["vgg16"], kept, folds=2, mask_fraction=0.5, end_to_end=False, collect_only=True,
                    **{**budget, "steps_stage2": 3})


def test_ci_rule_is_gain_free_and_otsu_finds_a_bright_spot():
    from edgecalc.eval.rules import calcification_index_feature, central_ellipse, otsu_feature

    rng = np.random.default_rng(1)
    im = rng.integers(40, 90, (60, 60)).astype(np.uint8)
    spot = im.copy()
    spot[28:32, 28:32] = 220
    region = central_ellipse(im.shape, 0.8)
    assert calcification_index_feature(spot, region) > 2 * calcification_index_feature(im, region)
    brighter = np.clip(spot.astype(np.float64) * 1.1, 0, 255).astype(np.uint8)  # more gain, same CI
    assert calcification_index_feature(brighter, region) == pytest.approx(calcification_index_feature(spot, region), rel=0.02)
    # the 4x4 spot after the 3x3 median keeps 12 pixels (its corners go); a flat crop has no bright class
    assert otsu_feature(spot, region) == 12 and otsu_feature(np.full((60, 60), 70, np.uint8), region) == 0


def test_run_compare_names_an_unknown_method_before_any_work(tmp_path):
    from edgecalc.studies.compare import run_compare

    with pytest.raises(ValueError, match=r"unknown method\(s\) 'nope': choose from two-stage, "):
        run_compare(tmp_path / "no-such-data", ["brightness", "nope"], tmp_path / "out")
    assert not (tmp_path / "out").exists()
