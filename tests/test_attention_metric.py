"""The attention hit rate of ``edgecalc eval`` (Grid-AG 3 peak inside the calcification mask + 1 mm)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edgecalc.eval.attention import (
    FALLBACK_DILATE_PX,
    METRIC_KEY,
    attention_hit_rate,
    dilation_for,
    resize_bilinear,
)


def _blob_mask(size=64, cy=40, cx=20, r=3):
    yy, xx = np.mgrid[:size, :size]
    return ((yy - cy) ** 2 + (xx - cx) ** 2 <= r * r).astype(np.uint8)


def _peaked_map(h, w, cy, cx, sigma=1.5):
    yy, xx = np.mgrid[:h, :w]
    return np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * sigma**2)).astype(np.float32)


def test_every_peak_on_the_calcification_is_a_hit():
    masks = np.stack([_blob_mask(cy=40, cx=20), _blob_mask(cy=10, cx=50)])
    # maps at half resolution (like Grid-AG 3 at level 2), peaking over each blob
    att = np.stack([_peaked_map(32, 32, 20, 10), _peaked_map(32, 32, 5, 25)])
    hr = attention_hit_rate(att, masks, dilate_px=0.0)
    assert hr.rate == 1.0 and hr.hits == 2 and hr.n == 2
    assert 0 < hr.chance < 0.05 and hr.centre == 0.0


def test_every_peak_away_from_the_calcification_is_a_miss():
    masks = np.stack([_blob_mask(cy=40, cx=20), _blob_mask(cy=10, cx=50)])
    att = np.stack([_peaked_map(32, 32, 5, 28), _peaked_map(32, 32, 28, 3)])  # far corners
    hr = attention_hit_rate(att, masks, dilate_px=2.0)
    assert hr.rate == 0.0 and hr.hits == 0 and hr.n == 2


def test_dilation_radius_per_image_and_what_counts():
    m = _blob_mask(cy=32, cx=32, r=0)  # one pixel at (32, 32)
    att = np.zeros((64, 64), np.float32)
    att[32, 35] = 1.0  # 3 px to the right
    masks = np.stack([m, m, m, np.zeros_like(m)])
    atts = np.stack([att] * 4)
    hr = attention_hit_rate(atts, masks, dilate_px=[2.9, 3.0, 3.0, 3.0], labels=[1, 1, 0, 1])
    # image 2 is a negative, image 3 has an empty mask: neither counts
    assert hr.per_image.tolist() == [0, 1, -1, -1] and hr.n == 2 and hr.rate == 0.5
    assert attention_hit_rate(atts[:1], masks[:1], 0.0).rate == 0.0
    assert attention_hit_rate(atts[3:], masks[3:], 0.0).rate is None  # nothing to count
    with pytest.raises(ValueError, match="3 attention maps for 4 masks"):
        attention_hit_rate(atts[:3], masks, 1.0)


def test_resize_matches_torch_bilinear_align_corners_false():
    torch = pytest.importorskip("torch")
    import torch.nn.functional as F

    a = np.random.default_rng(0).random((12, 12)).astype(np.float32)
    for size in ((48, 48), (30, 17), (12, 12), (7, 5)):
        ref = F.interpolate(torch.from_numpy(a)[None, None], size=size, mode="bilinear", align_corners=False)[0, 0]
        np.testing.assert_allclose(resize_bilinear(a, size), ref.numpy(), atol=1e-5)


def test_dilation_from_the_phantoms_mm_per_px_or_a_stated_fallback(tmp_path):
    from edgecalc.data.phantom import write_phantom_dataset

    d = write_phantom_dataset(tmp_path / "ph", n=4, positive=2, size=32, seed=5, progress=False, workers=1)
    import csv

    rows = list(csv.DictReader((d / "labels.csv").open()))
    ids = [r["id"] for r in rows]
    labels = np.array([int(r["calcification"]) for r in rows])
    radii, src = dilation_for(d, ids, 16, labels)
    for r, rad, lab in zip(rows, radii, labels):
        if lab == 1:  # 1 mm / (mm per px of the file * 32 px / 16 px)
            assert rad == pytest.approx(1.0 / (float(r["mm_per_px"]) * 2))
    assert src["dilate_mm"] == 1.0 and src["dilate_source"] == "labels.csv mm_per_px"
    assert src["n_images_with_spacing"] == 2
    # the same folder without the column: the fallback, said so, no millimetres
    (d / "labels.csv").write_text("id,calcification\n" + "".join(f"{r['id']},{r['calcification']}\n" for r in rows))
    radii, src = dilation_for(d, ids, 16, labels)
    assert (radii == FALLBACK_DILATE_PX).all() and src["dilate_mm"] is None
    assert "fallback" in src["dilate_source"] and "not mm" in src["dilate_source"]


def test_eval_writes_the_hit_rate(tmp_path):
    pytest.importorskip("torch")
    from rich.console import Console

    from edgecalc.data.phantom import write_phantom_dataset
    from edgecalc.eval.evaluate import evaluate_weights
    from edgecalc.model import CSAGNet, get_preset
    from edgecalc.model.weights import save_model

    d = write_phantom_dataset(tmp_path / "ph", n=6, positive=3, size=32, seed=11, progress=False, workers=1)
    w = save_model(CSAGNet(get_preset("lite", 32)), tmp_path / "w.safetensors")
    console = Console(record=True, width=140)
    metrics = evaluate_weights(w, d, tmp_path / "ev", console=console)
    att = json.loads((tmp_path / "ev" / "metrics.json").read_text())[METRIC_KEY]
    assert att == metrics[METRIC_KEY]
    assert att["n"] == 3 and att["map"] == "Grid-AG 3" and 0 <= att["rate"] <= 1
    assert att["dilate_mm"] == 1.0 and att["dilate_source"] == "labels.csv mm_per_px" and att["eval_size"] == 32
    assert "Grid-AG 3 peak in calcification" in console.export_text()
