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
#: The same for generate_frame(image_seed(7, 0), True), one digest per CPU family it was computed on: the
#: frame's OpenCV filters at 560x360 take SIMD paths whose rounding differs between CPUs (the crops' do not).
#: The Intel Xeon (AVX-512 VNNI/BF16) digest is of the unchanged generator (no phantom code changed since).
FRAME_BEFORE = {
    "4f34b4fa2e2c06df5d6cf9549929571a07548c5fa49057a3c5a6562e6675bd92",  # AMD EPYC (AVX2 and AVX-512 BF16)
    "239f1de8186c3e859d0c62dbf914b1816b04d706f0392d1788f83e62b9f94140",  # Intel Xeon, AVX-512 VNNI/BF16, no AMX
}


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


def test_frame_bytes_unchanged_and_truth_in_frame_pixels():
    f = generate_frame(image_seed(7, 0), True)
    assert _digest(f.image, f.mask) in FRAME_BEFORE
    recs = f.meta[CALCIFICATIONS_KEY]
    assert [r["kind"] for r in recs] == f.meta["calcification_kinds"] == ["rim"]
    ys, xs = np.nonzero(f.mask)
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
