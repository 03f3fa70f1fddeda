"""The phantom records every calcification's kind, size and position, and its images did not change for it."""

from __future__ import annotations

import csv
import hashlib
import json

import numpy as np
import pytest

from edgecalc.data.phantom.crops import generate_crop
from edgecalc.data.phantom.dataset_writer import FRAMES_META, image_seed, write_phantom_dataset
from edgecalc.data.phantom.frames import generate_frame
from edgecalc.data.phantom.truth import CALCIFICATIONS_KEY

#: sha256 of image + mask bytes, computed with the generator BEFORE it recorded per-calcification truth
#: (seed 7, 64 px crops; index -> kinds drawn), so recording the truth changed no random draw.
CROPS_BEFORE = {
    0: ("micro", "bf6bd1bee53f7da75dbe30e44d52bd1ff752abbd092a5a0e2395be807cc658cf"),
    1: ("macro", "32d15b3cd05be2b68b2ddf54401c02a6fe575636514934e3ebec8962eaa4e253"),
    6: ("rim", "534a0546813b1588a474deae7928673d429732dc64e19d3611510e07470b7870"),
    29: ("rim|macro", "d7df06bc9f6af2e794e9ec05b1c48762ca4142e722893d10ca010613640baa62"),
}
#: generate_frame(image_seed(7, 0), True) from the generator BEFORE it recorded truth, as its image's 40x40-pixel
#: block means (9 x 14) and its mask's pixel count and centroid. Not a digest: the frame's OpenCV filters at
#: 560x360 take SIMD paths whose rounding differs between CPU families (AMD EPYC and Intel Xeon gave two digests).
#: A one-grey-level rounding difference moves a block mean by at most 1; a changed random draw moves some block
#: by tens of levels (another seed's frame differs by up to 106).
FRAME_BLOCK_MEANS = np.array([
    (0.0, 0.0, 0.6, 0.6, 0.0, 0.6, 0.0, 0.6, 0.0, 0.6, 0.0, 0.6, 2.1, 29.3),
    (5.5, 0.0, 99.5, 107.0, 113.6, 109.7, 110.5, 114.2, 107.6, 111.2, 109.1, 2.8, 2.4, 36.2),
    (0.0, 0.0, 94.2, 102.6, 110.5, 118.2, 109.2, 101.1, 107.0, 110.4, 115.5, 3.1, 0.0, 2.8),
    (3.9, 0.0, 89.3, 123.3, 120.9, 118.1, 122.8, 120.1, 133.5, 134.8, 110.5, 2.1, 0.0, 0.0),
    (51.7, 1.8, 65.8, 100.2, 29.7, 66.2, 111.7, 121.7, 124.7, 118.4, 3.1, 0.0, 0.0, 0.0),
    (24.9, 0.0, 93.7, 99.2, 88.9, 74.7, 104.5, 119.7, 119.3, 88.2, 0.0, 0.0, 0.0, 0.0),
    (3.2, 0.0, 97.8, 91.2, 100.1, 101.5, 90.3, 99.6, 96.2, 67.1, 0.0, 0.0, 0.0, 0.0),
    (0.0, 0.0, 96.1, 80.1, 96.3, 98.5, 87.0, 93.0, 94.9, 71.1, 0.0, 0.0, 0.0, 0.0),
    (0.0, 0.0, 58.4, 61.1, 46.7, 50.9, 43.6, 46.9, 42.0, 29.2, 0.0, 1.3, 7.9, 11.2),
])
FRAME_MASK = (444, 122.84, 192.46)  # pixels, centroid row, centroid column
BLOCK = 40


def _digest(*arrays: np.ndarray) -> str:
    return hashlib.sha256(b"".join(a.tobytes() for a in arrays)).hexdigest()


@pytest.mark.parametrize("index", sorted(CROPS_BEFORE))
def test_crop_bytes_unchanged_and_truth_recorded(index):
    kinds, digest = CROPS_BEFORE[index]
    s = generate_crop(image_seed(7, index), True, 64)
    assert _digest(s.image, s.mask) == digest
    assert "|".join(s.meta["calcification_kinds"]) == kinds
    recs = s.meta[CALCIFICATIONS_KEY]
    assert recs and {r["kind"] for r in recs} == set(kinds.split("|"))
    mask = s.mask > 0
    for r in recs:  # every recorded centroid lies on or next to the calcification mask
        x, y = int(round(r["x"])), int(round(r["y"]))
        assert mask[max(0, y - 2):y + 3, max(0, x - 2):x + 3].any()
        assert r["diameter_mm"] > 0 and r["area_mm2"] > 0
    for r in recs:
        if r["kind"] == "micro":
            assert r["diameter_mm"] <= 1.0 + 0.08 + 1e-9  # drawn <= 1 mm; measured to one grid pixel
        if r["kind"] == "macro":
            assert r["diameter_mm"] > 1.0


def test_frame_unchanged_up_to_rounding_and_truth_in_frame_pixels():
    f = generate_frame(image_seed(7, 0), True)
    h, w = FRAME_BLOCK_MEANS.shape
    blocks = f.image[:h * BLOCK, :w * BLOCK].astype(float).reshape(h, BLOCK, w, BLOCK).mean(axis=(1, 3))
    ys, xs = np.nonzero(f.mask)
    assert np.abs(blocks - FRAME_BLOCK_MEANS).max() <= 1.0 + 0.05  # + the table's rounding to 0.1
    assert abs(len(ys) - FRAME_MASK[0]) <= 0.02 * FRAME_MASK[0]
    assert ys.mean() == pytest.approx(FRAME_MASK[1], abs=1.0) and xs.mean() == pytest.approx(FRAME_MASK[2], abs=1.0)
    recs = f.meta[CALCIFICATIONS_KEY]
    assert [r["kind"] for r in recs] == f.meta["calcification_kinds"] == ["rim"]
    assert xs.min() <= recs[0]["x"] <= xs.max() and ys.min() <= recs[0]["y"] <= ys.max()
    assert f.meta["mm_per_px"] == pytest.approx(0.13)
    assert generate_frame(image_seed(7, 1), False).meta[CALCIFICATIONS_KEY] == []


def test_dataset_writes_truth_for_crops_and_frames(tmp_path):
    out = write_phantom_dataset(tmp_path / "p", n=3, positive=2, size=64, seed=7, frames=True, progress=False,
                                workers=1)
    labels = {r["id"]: r for r in csv.DictReader((out / "labels.csv").open())}
    crops = [json.loads(line) for line in (out / "meta.jsonl").read_text().splitlines()]
    frames = [json.loads(line) for line in (out / FRAMES_META).read_text().splitlines()]
    assert [c["id"] for c in crops] == [f["id"] for f in frames] == sorted(labels)
    for c, f in zip(crops, frames):
        positive = labels[c["id"]]["calcification"] == "1"
        assert bool(c[CALCIFICATIONS_KEY]) == positive and bool(f[CALCIFICATIONS_KEY]) == (f["label"] == 1)
        assert f["mm_per_px"] > 0
