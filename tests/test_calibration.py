"""Calibration sets: stratified, reproducible, recorded; clear errors for empty folders and oversize requests."""

from __future__ import annotations

import csv

import cv2
import numpy as np
import pytest

from edgecalc.calibration import CalibrationError, from_folder, from_phantom, stratified_choice
from edgecalc.calibration import cache
from edgecalc.data.preprocess import preprocess


def write_dataset(root, n_pos=6, n_neg=14, size=40):
    (root / "images").mkdir(parents=True)
    rng = np.random.default_rng(0)
    with open(root / "labels.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "calcification"])
        for i in range(n_pos + n_neg):
            rid = f"img{i:03d}"
            cv2.imwrite(str(root / "images" / f"{rid}.png"), rng.integers(0, 256, (size, size), dtype=np.uint8))
            w.writerow([rid, int(i < n_pos)])
    return root


def test_stratified_choice_keeps_class_proportions_and_is_seeded():
    labels = np.array([1] * 30 + [0] * 70)
    a = stratified_choice(labels, 20, seed=3)
    assert len(a) == 20 and len(set(a)) == 20
    assert labels[a].sum() == 6  # 30 % of 20
    assert np.array_equal(a, stratified_choice(labels, 20, seed=3))
    assert not np.array_equal(a, stratified_choice(labels, 20, seed=4))


def test_folder_set_is_stratified_reproducible_recorded_and_preprocessed(tmp_path):
    root = write_dataset(tmp_path / "data")
    s1 = from_folder(root, 32, 10, seed=1)
    s2 = from_folder(root, 32, 10, seed=1)
    assert s1.ids == s2.ids and np.array_equal(s1.images, s2.images)
    assert int(s1.labels.sum()) == 3  # 6 of 20 positive -> 3 of 10
    rec = s1.record("entropy")
    assert rec["ids"] == s1.ids and rec["method"] == "entropy" and rec["positives"] == 3
    img = cv2.imread(str(root / "images" / f"{s1.ids[0]}.png"), cv2.IMREAD_UNCHANGED)
    assert np.array_equal(s1.images[0], preprocess(img, 32))  # the runtime's preprocessing
    assert s1.images.shape == (10, 1, 32, 32) and s1.images.dtype == np.float32


def test_folder_without_images_is_a_clear_error(tmp_path):
    (tmp_path / "empty" / "images").mkdir(parents=True)
    with pytest.raises(CalibrationError, match=r"empty has no images"):
        from_folder(tmp_path / "empty", 32, 4)


def test_calib_size_larger_than_data_is_a_clear_error(tmp_path):
    root = write_dataset(tmp_path / "data")
    with pytest.raises(CalibrationError, match=r"--calib-size 50 is larger than the data set \(20"):
        from_folder(root, 32, 50)


def test_missing_labels_named(tmp_path):
    root = write_dataset(tmp_path / "data")
    (root / "labels.csv").unlink()
    with pytest.raises(CalibrationError, match=r"labels.csv: missing \(need columns id,calcification\)"):
        from_folder(root, 32, 4)


def test_phantom_set_balanced_and_reproducible():
    a = from_phantom(32, 6, seed=0)
    b = from_phantom(32, 6, seed=0)
    assert a.ids == b.ids and np.array_equal(a.images, b.images)
    assert int(a.labels.sum()) == 3 and "phantom" in a.source


def test_cache_key_depends_on_model_data_and_method(tmp_path, monkeypatch):
    monkeypatch.setenv(cache.ENV_VAR, str(tmp_path))
    k = cache.cache_key("m" * 64, "d" * 64, "entropy")
    assert k == cache.cache_key("m" * 64, "d" * 64, "entropy")
    assert len({k, cache.cache_key("n" * 64, "d" * 64, "entropy"), cache.cache_key("m" * 64, "e" * 64, "entropy"),
                cache.cache_key("m" * 64, "d" * 64, "minmax")}) == 4
    path, hit = cache.lookup(k)
    assert not hit and path.parent == tmp_path / "calibration"
