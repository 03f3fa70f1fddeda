"""Metrics against hand-computed values and scikit-learn; the one-class message."""

from __future__ import annotations

import numpy as np
import pytest

from edgecalc.eval.metrics import (
    accuracy,
    classification_report,
    confusion_matrix,
    dice_per_image,
    iou_per_image,
    predict,
    roc_auc,
    roc_curve,
    sensitivity,
    specificity,
)

Y = np.array([1, 1, 1, 0, 0, 0, 0, 1])
S = np.array([0.9, 0.6, 0.4, 0.3, 0.55, 0.1, 0.5, 0.8])


def test_hand_computed_counts():
    pred = predict(S)  # > 0.5: 0.9, 0.6, 0.55, 0.8 -> positives; 0.5 is a tie -> class 0 (argmax)
    assert pred.tolist() == [1, 1, 0, 0, 1, 0, 0, 1]
    cm = confusion_matrix(Y, pred)
    assert cm.tolist() == [[3, 1], [1, 3]]  # TN 3, FP 1 (0.55), FN 1 (0.4), TP 3
    assert accuracy(Y, pred) == pytest.approx(6 / 8)
    assert sensitivity(Y, pred) == pytest.approx(3 / 4)
    assert specificity(Y, pred) == pytest.approx(3 / 4)
    # AUC by hand: pairs (pos, neg) with pos > neg: 0.9 > all 4, 0.8 > all 4, 0.6 > 4, 0.4 > 0.3, 0.1 -> 2
    assert roc_auc(Y, S) == pytest.approx(14 / 16)


def test_auc_and_roc_match_sklearn_with_ties():
    sk = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 300)
    s = np.round(rng.random(300) * 0.5 + 0.3 * y, 2)  # rounded: many ties
    assert roc_auc(y, s) == pytest.approx(sk.roc_auc_score(y, s), abs=1e-12)
    fpr, tpr, thr = roc_curve(y, s)
    fpr_sk, tpr_sk, _ = sk.roc_curve(y, s, drop_intermediate=False)
    np.testing.assert_allclose(fpr, fpr_sk)
    np.testing.assert_allclose(tpr, tpr_sk)
    assert np.trapezoid(tpr, fpr) == pytest.approx(roc_auc(y, s))


def test_all_one_class_gives_a_clear_message():
    with pytest.raises(ValueError, match="needs both classes, but all 4 labels are positive"):
        roc_auc([1, 1, 1, 1], [0.1, 0.2, 0.3, 0.4])
    with pytest.raises(ValueError, match="all 3 labels are negative"):
        classification_report([0, 0, 0], [0.1, 0.7, 0.2])
    with pytest.raises(ValueError, match="sensitivity needs at least one positive"):
        sensitivity([0, 0], [0, 1])
    with pytest.raises(ValueError, match="specificity needs at least one negative"):
        specificity([1, 1], [0, 1])


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="must be 0 .* or 1"):
        confusion_matrix([0, 2], [0, 1])
    with pytest.raises(ValueError, match="3 scores for 2 labels"):
        roc_auc([0, 1], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="NaN/inf"):
        roc_auc([0, 1], [0.1, np.nan])
    with pytest.raises(ValueError, match="empty"):
        accuracy([], [])


def test_report_fields():
    rep = classification_report(Y, S)
    assert rep.confusion_matrix == [[3, 1], [1, 3]] and rep.n == 8 and rep.n_positive == 4
    assert rep.auc == pytest.approx(14 / 16)


def test_dice_and_iou_by_hand():
    pred = np.zeros((3, 1, 4, 4))
    true = np.zeros((3, 1, 4, 4))
    pred[0, 0, :2, :2] = 1  # 4 px
    true[0, 0, :2, :3] = 1  # 6 px, overlap 4
    true[1, 0, 0, 0] = 1  # prediction empty -> 0
    # image 2: both empty -> 1
    np.testing.assert_allclose(dice_per_image(pred, true), [2 * 4 / 10, 0.0, 1.0])
    np.testing.assert_allclose(iou_per_image(pred, true), [4 / 6, 0.0, 1.0])
    with pytest.raises(ValueError, match="differ in shape"):
        dice_per_image(pred, true[:2])


def test_bootstrap_interval_holds_the_estimate_and_groups_widen_it():
    from edgecalc.eval.metrics import bootstrap_ci, roc_auc

    rng = np.random.default_rng(0)
    y = np.r_[np.ones(60), np.zeros(60)].astype(int)
    s = np.r_[rng.normal(1.0, 1.0, 60), rng.normal(0.0, 1.0, 60)]
    lo, hi = bootstrap_ci(y, s, "auc", n_boot=500)
    assert lo < roc_auc(y, s) < hi and 0.05 < hi - lo < 0.4
    assert bootstrap_ci(y, s, "auc", n_boot=500) == (lo, hi)  # seeded
    # 12 "patients" of 10 identical images each: far less evidence than 120 independent images
    groups = np.repeat(np.arange(12), 10)
    s_grouped = np.repeat(s[::10], 10)
    y_grouped = np.repeat(y[::10], 10)
    glo, ghi = bootstrap_ci(y_grouped, s_grouped, "auc", n_boot=500, groups=groups)
    ilo, ihi = bootstrap_ci(y_grouped, s_grouped, "auc", n_boot=500)
    assert ghi - glo > 1.5 * (ihi - ilo)
    alo, ahi = bootstrap_ci(y, s, "accuracy", n_boot=500)
    assert 0.5 < alo < ahi < 1.0
    with pytest.raises(ValueError, match="metric must be"):
        bootstrap_ci(y, s, "f1")
