"""The data-set format: `check_dataset` finds every problem (file + reason), the loader refuses
errors, and the splits are stratified, grouped and deterministic."""

from __future__ import annotations

import numpy as np
import pytest
import cv2
from typer.testing import CliRunner

from edgecalc.cli import app
from edgecalc.data.dataset import DatasetError, check_dataset, load_dataset
from edgecalc.data.phantom import generate_crop, write_phantom_dataset
from edgecalc.data.splits import draw_mask_subset, stratified_kfold


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    return write_phantom_dataset(tmp_path_factory.mktemp("clean"), n=8, positive=3, size=64, seed=1,
                                 progress=False, workers=1)


def _png(path, img):
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), img)


def test_clean_dataset_passes_and_loads(clean):
    rep = check_dataset(clean)
    assert rep.ok and not rep.warnings, rep.errors + rep.warnings
    assert rep.summary["images"] == 8 and rep.summary["positive"] == 3 and rep.summary["masks"] == 8
    ids, x, masks, y, table = load_dataset(clean, size=32)
    assert x.shape == (8, 1, 32, 32) and x.dtype == np.float32 and 0 <= x.min() and x.max() <= 1
    assert y.tolist().count(1) == 3 and len(ids) == len(table) == 8
    assert all(m.shape == (32, 32) and m.dtype == np.uint8 for m in masks)
    assert [bool(m.any()) for m in masks] == [bool(v) for v in y]


def test_colour_images_of_any_size_and_missing_masks(tmp_path):
    s = generate_crop(0, True, 80)
    _png(tmp_path / "images" / "a.png", cv2.cvtColor(s.image, cv2.COLOR_GRAY2BGR))
    _png(tmp_path / "images" / "b.jpg", cv2.resize(s.image, (50, 70)))
    _png(tmp_path / "masks" / "a.png", s.mask)
    (tmp_path / "labels.csv").write_text("id,calcification,patient\na,1,p1\nb,0,p2\n")
    rep = check_dataset(tmp_path)
    assert rep.ok, rep.errors
    ids, x, masks, y, _ = load_dataset(tmp_path, size=48)
    assert x.shape == (2, 1, 48, 48) and masks[1] is None and masks[0].any()


def build_broken(root):
    good = generate_crop(0, True, 48)
    neg = generate_crop(0, False, 48)
    _png(root / "images" / "ok.png", good.image)
    _png(root / "masks" / "ok.png", good.mask)
    (root / "images" / "garbage.png").write_bytes(b"this is not a png")
    _png(root / "images" / "trunc.png", good.image)
    data = (root / "images" / "trunc.png").read_bytes()
    (root / "images" / "trunc.png").write_bytes(data[: len(data) // 2])
    _png(root / "images" / "badsize.png", good.image)
    _png(root / "masks" / "badsize.png", np.zeros((40, 48), np.uint8))
    _png(root / "images" / "nonbin.png", good.image)
    _png(root / "masks" / "nonbin.png", (good.mask > 0).astype(np.uint8) * 128)
    _png(root / "images" / "orphan.png", good.image)  # no row in labels.csv
    _png(root / "images" / "dup.png", good.image)
    _png(root / "images" / "badlabel.png", good.image)
    _png(root / "images" / "posempty.png", good.image)
    _png(root / "masks" / "posempty.png", np.zeros((48, 48), np.uint8))
    _png(root / "images" / "negfull.png", neg.image)
    _png(root / "masks" / "negfull.png", good.mask)
    _png(root.parent / "outside.png", good.image)
    (root / "labels.csv").write_text(
        "id,calcification,path\n"
        "ok,1,\ngarbage,0,\ntrunc,1,\nbadsize,1,\nnonbin,1,\n"
        "missing,0,\ndup,0,\ndup,1,\nbadlabel,2,\nposempty,1,\nnegfull,0,\n"
        "escape,0,../outside.png\n"
    )


def test_broken_dataset_reports_every_problem(tmp_path):
    root = tmp_path / "ds"
    build_broken(root)
    rep = check_dataset(root)
    errs = [(e.file, e.reason) for e in rep.errors]
    warns = [(w.file, w.reason) for w in rep.warnings]

    def has(items, file_part, reason_part):
        return any(file_part in f and reason_part in r for f, r in items)

    assert has(errs, "garbage.png", "unreadable"), errs
    assert has(errs, "trunc.png", "truncated"), errs
    assert has(errs, "masks/badsize.png", "differs from the image"), errs
    assert has(errs, "masks/nonbin.png", "not binary"), errs
    assert has(errs, "labels.csv", "'missing' has no image"), errs
    assert has(errs, "images/orphan.png", "no row in labels.csv"), errs
    assert has(errs, "labels.csv", "duplicate id 'dup'"), errs
    assert has(errs, "labels.csv", "label '2' is not 0 or 1"), errs
    assert has(errs, "labels.csv", "escapes the data-set folder"), errs
    assert has(warns, "masks/posempty.png", "positive (calcification=1) with an empty mask"), warns
    assert has(warns, "masks/negfull.png", "negative (calcification=0) with a non-empty mask"), warns
    assert not has(errs + warns, "ok.png", ""), "the good image was flagged"
    assert len(rep.errors) == 9
    with pytest.raises(DatasetError) as exc:
        load_dataset(root)
    for e in rep.errors:
        assert str(e) in str(exc.value)


def test_cli_check_and_phantom(tmp_path):
    runner = CliRunner()
    out = tmp_path / "ph"
    r = runner.invoke(app, ["data", "phantom", "--out", str(out), "--n", "6", "--positive", "2", "--size", "48",
                            "--workers", "1"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["data", "check", str(out)])
    assert r.exit_code == 0 and "images: 6 (positive 2, negative 4" in r.output, r.output
    build_broken(tmp_path / "bad")
    r = runner.invoke(app, ["data", "check", str(tmp_path / "bad")])
    assert r.exit_code == 1 and "9 error(s), 2 warning(s)" in r.output, r.output


def test_stratified_kfold_is_stratified_disjoint_and_deterministic():
    y = np.array([1] * 23 + [0] * 37)
    folds = stratified_kfold(y, k=5, seed=4)
    tests = np.concatenate([te for _, te in folds])
    assert sorted(tests.tolist()) == list(range(60))
    for tr, te in folds:
        assert not set(tr) & set(te)
        assert abs(y[te].sum() - 23 / 5) <= 1
    again = stratified_kfold(y, k=5, seed=4)
    assert all((a[1] == b[1]).all() for a, b in zip(folds, again))
    other = stratified_kfold(y, k=5, seed=5)
    assert any((a[1] != b[1]).any() for a, b in zip(folds, other))


def test_grouped_kfold_keeps_patients_together():
    rng = np.random.default_rng(0)
    groups = np.repeat([f"p{i}" for i in range(30)], 3)
    y = np.repeat(rng.integers(0, 2, 30), 3)
    for tr, te in stratified_kfold(y, k=5, seed=0, groups=groups):
        assert not set(groups[tr]) & set(groups[te])


def test_draw_mask_subset():
    y = np.array([1] * 40 + [0] * 60)
    train = np.arange(100)
    sub = draw_mask_subset(train, y, 0.3, seed=1)
    assert len(sub) == 30 and y[sub].sum() == 12
    assert (sub == draw_mask_subset(train, y, 0.3, seed=1)).all()
    assert len(draw_mask_subset(train, y, 1.0, seed=1)) == 100
    groups = np.repeat(np.arange(50), 2).astype(str)
    gsub = draw_mask_subset(train, y, 0.3, seed=1, groups=groups)
    chosen = set(groups[gsub])
    assert all(set(np.flatnonzero(np.isin(groups, [g]))) <= set(gsub) for g in chosen)
    assert 26 <= len(gsub) <= 34


def test_maskless_folder_of_real_like_crops_with_patients(tmp_path):
    """ddti-calc's shape: no masks/ at all, crops of many sizes, a patient column; check and loader accept it."""
    root = tmp_path / "real"
    (root / "images").mkdir(parents=True)
    rng = np.random.default_rng(0)
    rows = ["id,calcification,patient,kind"]
    for i in range(14):
        side = 40 + 9 * i
        cv2.imwrite(str(root / "images" / f"c{i}.png"), rng.integers(0, 255, (side, side), dtype=np.uint8))
        rows.append(f"c{i},{i % 2},P{i // 2},{'micro' if i % 2 else 'none'}")
    (root / "labels.csv").write_text("\n".join(rows) + "\n")
    rep = check_dataset(root)
    assert rep.ok and rep.summary["masks"] == 0 and rep.summary["patients"] == 7
    res = CliRunner().invoke(app, ["data", "check", str(root)])
    assert res.exit_code == 0
    assert "14 distinct, 40..157 px" in res.output and "patients: 7" in res.output and "no pixel masks" in res.output
    ids, images, masks, labels, table = load_dataset(root, 32)
    assert images.shape == (14, 1, 32, 32) and all(m is None for m in masks)
    folds = stratified_kfold(labels, k=3, seed=0, groups=[r["patient"] for r in table])
    for _, test in folds:
        test_patients = {table[i]["patient"] for i in test}
        assert not test_patients & {table[i]["patient"] for i in set(range(14)) - set(test.tolist())}


def test_an_image_whose_header_claims_huge_sizes_is_an_error_not_a_crash(tmp_path):
    root = tmp_path / "d"
    (root / "images").mkdir(parents=True)
    (root / "images" / "big.pgm").write_bytes(b"P5\n99999 99999\n255\n" + bytes(100))
    (root / "labels.csv").write_text("id,calcification,path\nbig,1,images/big.pgm\n")
    rep = check_dataset(root)
    assert not rep.ok and "big.pgm" in str(rep.errors[0]) and "not decodable" in str(rep.errors[0])
