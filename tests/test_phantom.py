"""The phantom generator: determinism, masks, class counts, frames, cine, no torch."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import cv2
import numpy as np
import pytest

from edgecalc.data.phantom import (PhantomConfig, generate_cine, generate_crop, generate_frame,
                                   write_cine, write_phantom_dataset)

SIZE = 96


def test_crop_is_deterministic_and_seed_dependent():
    a = generate_crop(7, True, SIZE)
    b = generate_crop(7, True, SIZE)
    assert a.image.tobytes() == b.image.tobytes()
    assert a.mask.tobytes() == b.mask.tobytes()
    assert a.meta == b.meta
    c = generate_crop(8, True, SIZE)
    assert a.image.tobytes() != c.image.tobytes()
    assert generate_crop(7, False, SIZE).image.tobytes() != a.image.tobytes()


def test_crop_types_and_shapes():
    s = generate_crop(1, True, 64)
    for arr in (s.image, s.mask, s.nodule_mask):
        assert arr.dtype == np.uint8 and arr.shape == (64, 64)
    assert set(np.unique(s.mask)) <= {0, 255}
    assert set(np.unique(s.nodule_mask)) <= {0, 255}
    json.dumps(s.meta)  # meta is JSON-serialisable


@pytest.mark.parametrize("seed", range(10))
def test_positive_mask_inside_nodule_and_bright(seed):
    s = generate_crop(seed, True, SIZE)
    assert s.label == 1
    calc, nod = s.mask > 0, s.nodule_mask > 0
    assert calc.any(), s.meta
    assert not (calc & ~nod).any(), "calcification outside the nodule"
    assert s.image[calc].mean() > np.median(s.image[nod]), s.meta


@pytest.mark.parametrize("seed", range(6))
def test_negative_mask_empty(seed):
    s = generate_crop(seed, False, SIZE)
    assert s.label == 0 and not s.mask.any()
    assert s.nodule_mask.any()


def test_confounders_appear_in_negatives():
    seen = set()
    for seed in range(30):
        seen.update(generate_crop(seed, False, 64).meta["confounders"])
    assert {"comet_tail", "fibrous_strands", "cyst_wall", "spongiform", "specular_capsule"} <= seen


def test_pixel_spacing_is_physical():
    """Half the pixel spacing -> the same nodule (in mm) spans twice the native pixels."""
    fine = PhantomConfig(pixel_spacing_mm=0.05)
    a = generate_crop(3, False, 64)
    b = generate_crop(3, False, 64, fine)
    assert b.meta["crop_side_mm"] == pytest.approx(a.meta["crop_side_mm"], rel=0.05)


def test_frame_layout_and_masks():
    f = generate_frame(4, True)
    assert f.image.shape == (360, 560) and f.image.dtype == np.uint8
    x, y, w, h = f.scan_area
    assert 0 <= x and x + w <= 560 and 0 <= y and y + h <= 360
    nod = f.nodule_mask > 0
    ys, xs = np.nonzero(nod)
    assert f.nodule_box == (xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1)
    assert f.label == 1 and (f.mask > 0).any() and not ((f.mask > 0) & ~nod).any()
    assert not generate_frame(4, False).mask.any()
    assert generate_frame(4, True).image.tobytes() == f.image.tobytes()
    # furniture: something is drawn outside the scan area
    outside = f.image.copy()
    outside[y:y + h, x:x + w] = 0
    assert outside.any()


def test_cine_drifts_and_decorrelates(tmp_path):
    frames = list(generate_cine(2, 3, width=320, height=240))
    assert len(frames) == 3
    a, b = frames[0].image.astype(int), frames[1].image.astype(int)
    assert np.abs(a - b).mean() > 0
    assert frames[2].meta["probe_offset_mm"] > frames[0].meta["probe_offset_mm"]
    out = write_cine(tmp_path / "cine.mp4", seed=1, n_frames=4, width=320, height=240)
    cap = cv2.VideoCapture(str(out))
    n = 0
    while True:
        ok, img = cap.read()
        if not ok:
            break
        assert img.shape[:2] == (240, 320)
        n += 1
    cap.release()
    assert n == 4


def test_dataset_counts_and_worker_independence(tmp_path):
    p1 = write_phantom_dataset(tmp_path / "a", n=10, positive=4, size=64, seed=3, progress=False, workers=1)
    p2 = write_phantom_dataset(tmp_path / "b", n=10, positive=4, size=64, seed=3, progress=False, workers=2)
    rows = list(csv.DictReader((p1 / "labels.csv").open()))
    labels = [int(r["calcification"]) for r in rows]
    assert len(labels) == 10 and sum(labels) == 4
    for r in rows:
        a = (p1 / "images" / f"{r['id']}.png").read_bytes()
        assert a == (p2 / "images" / f"{r['id']}.png").read_bytes()
        m = cv2.imread(str(p1 / "masks" / f"{r['id']}.png"), cv2.IMREAD_GRAYSCALE)
        assert bool(m.any()) == (r["calcification"] == "1")
    meta = json.loads((p1 / "phantom.json").read_text())
    assert meta["n"] == 10 and meta["positive"] == 4 and meta["config"]["pixel_spacing_mm"] == 0.08


def test_phantom_never_imports_torch():
    code = ("import sys; sys.modules['torch'] = None\n"
            "import edgecalc.data.phantom as p, edgecalc.data.dataset, edgecalc.data.splits\n"
            "import edgecalc.data.phantom.realism\n"
            "p.generate_crop(0, True, 32)\n")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_nodule_free_frame_for_locator_negatives():
    """``with_nodule=False``: same screen furniture and anatomy, no nodule, empty box, label 0, reproducible."""
    from edgecalc.data.phantom import generate_frame

    a = generate_frame(5, True, with_nodule=False)
    b = generate_frame(5, True, with_nodule=False)
    assert np.array_equal(a.image, b.image)
    assert not a.nodule_mask.any() and not a.mask.any()
    assert a.nodule_box == (0, 0, 0, 0) and a.label == 0
    x, y, w, h = a.scan_area
    assert a.image[y:y + h, x:x + w].std() > 10  # there is an image in the scan area
    assert generate_frame(5, True).nodule_mask.any()
