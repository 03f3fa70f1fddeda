"""Calcification quantification on synthetic masks with known components (edgecalc.runtime.quantify)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from edgecalc.data.measure import longest_diameter
from edgecalc.runtime.quantify import (
    EF_POINTS,
    PUNCTATE_MAX_MM,
    ellipse_in_box,
    quantify,
    quantify_in_frame,
    tirads_points,
)

SP = 0.1  # mm per pixel of the synthetic scene


def _scene(seed: int = 0):
    """A 200 x 200 speckle-like image with a nodule (ellipse) holding a 0.5 mm dot, a 3 mm blob with a
    shadow beneath, and a rim arc along the top of the nodule's margin; returns (gray, calc, nodule)."""
    rng = np.random.default_rng(seed)
    gray = rng.integers(90, 150, size=(200, 200)).astype(np.uint8)
    nodule = np.zeros((200, 200), np.uint8)
    cv2.ellipse(nodule, ((100, 100), (160, 120), 0), 1, -1)
    calc = np.zeros((200, 200), np.uint8)
    cv2.circle(calc, (60, 110), 2, 1, -1)  # 5 px across: 0.5 mm
    cv2.circle(calc, (125, 105), 15, 1, -1)  # 31 px across: 3.1 mm
    gray[121:160, 110:141] = rng.integers(10, 30, size=(39, 31))  # its acoustic shadow
    inside = cv2.distanceTransform(nodule, cv2.DIST_L2, 5)
    yy, xx = np.mgrid[0:200, 0:200]
    ang = np.degrees(np.arctan2(yy - 100, xx - 100))
    arc = (inside > 1) & (inside <= 6) & (np.abs(ang + 90) <= 35)  # 70 degrees across the top
    calc[arc] = 1
    gray[calc > 0] = 250
    return gray, calc.astype(bool), nodule.astype(bool)


def _by_kind(foci):
    return {c.kind: c for c in foci.calcifications}


def test_dot_blob_and_arc_get_their_kinds_sizes_and_points():
    gray, calc, nodule = _scene()
    foci = quantify(gray, calc, nodule, spacing_mm=(SP, SP))
    assert foci.count == 3 and foci.units == "mm"
    kinds = _by_kind(foci)
    assert set(kinds) == {"punctate", "macro", "rim"}
    dot, blob, arc = kinds["punctate"], kinds["macro"], kinds["rim"]
    assert dot.longest_mm <= PUNCTATE_MAX_MM and 0.45 <= dot.longest_mm <= 0.75
    assert dot.shadowing is False
    assert 3.0 <= blob.longest_mm <= 3.4 and blob.shadowing is True and blob.shadow_ratio < 0.4
    assert blob.area_mm2 == pytest.approx(np.pi * 1.55 ** 2, rel=0.1)
    assert abs(blob.centroid[0] - 125) < 1 and abs(blob.centroid[1] - 105) < 1
    assert arc.margin_share >= 0.95 and arc.arc_deg >= 60
    assert foci.kinds == ("punctate", "macro", "rim")
    assert foci.points == EF_POINTS["punctate"] + EF_POINTS["macro"] + EF_POINTS["rim"] == 6
    assert foci.largest == max(c.longest_mm for c in foci.calcifications)


def test_no_spacing_gives_pixels_and_unknown_for_kinds_that_need_millimetres():
    gray, calc, nodule = _scene()
    foci = quantify(gray, calc, nodule, spacing_mm=None)
    assert foci.units == "px" and foci.count == 3
    assert all(c.longest_mm is None and c.area_mm2 is None for c in foci.calcifications)
    kinds = sorted(c.kind for c in foci.calcifications)
    # the dot's and the blob's sizes would decide; the arc's place along the margin needs no millimetres
    assert kinds == ["rim", "unknown", "unknown"]
    assert foci.points is None
    assert foci.largest == max(c.longest_px for c in foci.calcifications)


def test_without_a_nodule_the_arc_is_not_called_rim():
    gray, calc, _ = _scene()
    foci = quantify(gray, calc, None, spacing_mm=(SP, SP))
    assert "rim" not in foci.kinds and foci.count == 3


def test_a_focus_outside_the_nodule_is_not_one_of_its_calcifications(monkeypatch):
    import edgecalc.runtime.quantify as quantify_module

    gray, calc, nodule = _scene()
    inside_count = quantify(gray, calc, nodule, (SP, SP)).count
    calc = calc.copy()
    cv2.circle(calc.view(np.uint8), (100, 185), 3, 1, -1)  # 2.5 mm below the nodule's lower margin (y 160)
    cv2.circle(calc.view(np.uint8), (100, 164), 3, 1, -1)  # centred 0.4 mm below it: most pixels within the reach
    gray[calc] = 250
    foci = quantify(gray, calc, nodule, (SP, SP))
    assert foci.count == inside_count + 1  # the far one dropped, the one on the margin kept
    assert all(c.centroid[1] < 175 for c in foci.calcifications)
    assert quantify(gray, calc, None, (SP, SP)).count == inside_count + 2  # no nodule known: nothing to test against
    assert quantify(gray, calc, nodule, None).count == inside_count + 1  # without spacing: a share of its diameter
    monkeypatch.setattr(quantify_module, "NODULE_REACH_MM", None)
    assert quantify(gray, calc, nodule, (SP, SP)).count == inside_count + 2  # the test off
    monkeypatch.setattr(quantify_module, "NODULE_REACH_MM", 0.0)
    assert quantify(gray, calc, nodule, (SP, SP)).count == inside_count  # no reach: the margin straddler goes too


def test_a_nodule_box_stands_for_its_outline():
    gray, calc, nodule = _scene()
    ys, xs = np.nonzero(nodule)
    box = (int(xs.min()), int(ys.min()), int(np.ptp(xs)) + 1, int(np.ptp(ys)) + 1)
    assert np.mean(ellipse_in_box(nodule.shape, box) == nodule) > 0.99
    assert "rim" in quantify(gray, calc, box, spacing_mm=(SP, SP)).kinds


def test_anisotropic_spacing_scales_each_axis():
    ys, xs = np.zeros(20, int), np.arange(20)  # a horizontal bar 20 px long, 1 px tall
    mm, px = longest_diameter(ys, xs, 0.1, 0.5)
    assert mm == pytest.approx(2.0) and px == pytest.approx(20.0)
    ys, xs = np.arange(20), np.zeros(20, int)  # the same bar standing: rows are 0.5 mm
    assert longest_diameter(ys, xs, 0.1, 0.5) == pytest.approx((10.0, 20.0))
    assert longest_diameter(np.array([3]), np.array([4]), 0.1, 0.4)[0] == pytest.approx(0.2)  # one pixel
    # a 3 x 4 px rectangle at (0.1, 0.5) mm/px: the diagonal between centres (0.2 x 1.5 mm) and a pixel step
    ys, xs = np.nonzero(np.ones((4, 3), bool))
    assert longest_diameter(ys, xs, 0.1, 0.5)[0] == pytest.approx(np.hypot(0.2, 1.5) * (1 + 1 / np.hypot(2, 3)))


def test_points_add_across_kinds_and_none_is_zero():
    assert tirads_points([]) == 0
    assert tirads_points(["macro", "macro"]) == 1
    assert tirads_points(["punctate", "macro"]) == 4
    assert tirads_points(["rim", "unknown"]) is None


def test_empty_mask_and_bad_input():
    gray, calc, nodule = _scene()
    foci = quantify(gray, np.zeros_like(calc), nodule, (SP, SP))
    assert foci.count == 0 and foci.points == 0 and foci.largest is None
    with pytest.raises(ValueError, match="spacing"):
        quantify(gray, calc, nodule, (0.0, SP))
    with pytest.raises(ValueError, match="shape"):
        quantify(gray, calc[:10], nodule, (SP, SP))


def test_quantify_in_frame_matches_the_whole_frame():
    """The live path measures on a window around the crop; positions come back in frame pixels."""
    gray, calc, nodule = _scene()
    frame = np.zeros((300, 400), np.uint8)
    frame[50:250, 100:300] = gray
    big_calc = np.zeros(frame.shape, bool)
    big_calc[50:250, 100:300] = calc
    big_nod = np.zeros(frame.shape, bool)
    big_nod[50:250, 100:300] = nodule
    whole = quantify(frame, big_calc, big_nod, (SP, SP))
    crop = (110, 60, 180, 115)  # x, y, w, h: holds every calcification, not the blob's shadow
    values = big_calc[60:175, 110:290]
    part = quantify_in_frame(frame, values, (110, 60), big_nod, (SP, SP), limit=(100, 50, 200, 200))
    assert [c.kind for c in part.calcifications] == [c.kind for c in whole.calcifications]
    for a, b in zip(part.calcifications, whole.calcifications):
        assert a.box == b.box and a.area_px == b.area_px
        assert a.centroid == pytest.approx(b.centroid)
    assert crop[1] + crop[3] < 50 + 121 + 20  # the shadow band reaches below the crop and was still seen
    assert _by_kind(part)["macro"].shadowing is True


def test_the_margin_share_near_each_component_equals_the_whole_window_figure():
    """``_Margin`` transforms only each component's grown box: its band test must give what the
    distance transform of the whole nodule gives, for nodules that touch the window's edges too."""
    from edgecalc.runtime.quantify import _Margin

    rng = np.random.default_rng(5)
    for trial in range(40):
        h, w = rng.integers(40, 120, size=2)
        nodule = np.zeros((h, w), np.uint8)
        cx, cy = rng.uniform(-10, w + 10), rng.uniform(-10, h + 10)  # may leave the window
        axes = (float(rng.uniform(8, w)), float(rng.uniform(8, h)))
        cv2.ellipse(nodule, ((cx, cy), axes, float(rng.uniform(0, 180))), 1, -1)
        if not nodule.any():
            continue
        spacing = None if trial % 2 else (float(rng.uniform(0.05, 0.2)),) * 2
        margin = _Margin(nodule.astype(bool), spacing)
        inside = cv2.distanceTransform(nodule, cv2.DIST_L2, 5)
        outside = cv2.distanceTransform(1 - nodule, cv2.DIST_L2, 5)
        whole = np.where(nodule > 0, inside, outside)
        ys0, xs0 = np.nonzero(nodule)
        assert (margin.cy, margin.cx) == pytest.approx((ys0.mean() + 0.5, xs0.mean() + 0.5))
        for _ in range(5):
            y, x = int(rng.integers(0, h - 6)), int(rng.integers(0, w - 6))
            blob = np.zeros((h, w), bool)
            blob[y:y + int(rng.integers(1, 6)), x:x + int(rng.integers(1, 30))] = True
            ys, xs = np.nonzero(blob)
            share, _ = margin.measure(ys, xs)
            assert share == float(np.mean(whole[ys, xs] <= margin.band_px))


@pytest.mark.parametrize("longest, shadow, kind", [
    (0.6, False, "punctate"), (0.6, True, "punctate"),  # below a millimetre: punctate
    (1.2, True, "macro"), (1.2, False, "punctate"),  # between 1 and MACRO_MIN_MM the shadow decides
    (2.0, False, "macro"), (2.0, None, "macro"),  # coarse whatever the shadow
    (None, True, "unknown"),  # no spacing: the millimetres would decide
])
def test_kind_rules(longest, shadow, kind):
    from edgecalc.runtime.quantify import classify

    assert classify(longest, shadow, 0.0, 0.0) == kind
    assert classify(longest, shadow, 0.9, 60.0) == "rim"  # along the margin over an arc: rim first


# --- the mask refined at the crop's native resolution (edgecalc.runtime.refine_mask) -----------------

from edgecalc.runtime.refine_mask import DEFAULT_REFINEMENT, Refinement, refine_mask  # noqa: E402


def _spots(centres, sigma_px: float = 2.0, shape=(120, 120), seed: int = 0):
    """Gaussian bright spots (peak ~ +140 gray) on faint noise around 60: blurred foci as a scanner shows them."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]]
    img = 60.0 + rng.normal(0.0, 3.0, shape)
    for cx, cy in centres:
        img += 140.0 * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2.0 * sigma_px ** 2))
    return np.clip(img, 0, 255).astype(np.uint8)


def _blob_prob(shape, centre, radius):
    """A model's probability map upsampled from a coarse grid: a disc wider than the focus, 1 inside."""
    prob = np.zeros(shape, np.float32)
    cv2.circle(prob, (int(centre[0]), int(centre[1])), int(radius), 1.0, -1)
    return prob


def test_the_trim_measures_the_focus_not_the_coarse_mask_and_keeps_the_count():
    """A focus of sigma 2 px under a 2.1 mm model blob: the refined size is the focus's half-maximum
    width after the 0.15 mm smoothing (2.355 x sqrt(2² + 1.5²) = 5.9 px, plus the one pixel step the
    longest diameter adds: ~0.69 mm at 0.1 mm/px), from the native pixels in mm; the count stays one;
    without the refinement the blob's size comes back."""
    gray = _spots([(60, 60)], sigma_px=2.0)
    prob = _blob_prob(gray.shape, (60, 60), 10)
    ref = Refinement(trim_fraction=0.5, smooth_mm=0.15)
    refined = quantify_in_frame(gray, prob > 0.5, (0, 0), None, (SP, SP), prob=prob, refinement=ref)
    plain = quantify_in_frame(gray, prob > 0.5, (0, 0), None, (SP, SP))
    assert refined.count == plain.count == 1
    assert plain.calcifications[0].longest_mm == pytest.approx(2.1, abs=0.15)
    assert refined.calcifications[0].longest_mm == pytest.approx(0.69, abs=0.12)
    assert abs(refined.calcifications[0].centroid[0] - 60) < 1 and abs(refined.calcifications[0].centroid[1] - 60) < 1


def test_refinement_off_or_without_probabilities_gives_exactly_the_old_result():
    gray, calc, nodule = _scene()
    prob = calc.astype(np.float32)
    old = quantify_in_frame(gray, calc, (0, 0), nodule, (SP, SP))
    assert quantify_in_frame(gray, calc, (0, 0), nodule, (SP, SP), prob=prob, refinement=None) == old
    assert quantify_in_frame(gray, calc, (0, 0), nodule, (SP, SP), prob=None, refinement=Refinement()) == old


def test_two_bright_dots_inside_one_merged_blob_count_as_two_when_split():
    """The coarse mask merges two foci 1.2 mm apart into one blob; the native pixels' two maxima split it."""
    gray = _spots([(50, 60), (62, 60)], sigma_px=1.5)
    prob = np.zeros(gray.shape, np.float32)
    cv2.ellipse(prob, ((56, 60), (26, 12), 0), 1.0, -1)
    mask = prob > 0.5
    assert quantify_in_frame(gray, mask, (0, 0), None, (SP, SP)).count == 1
    default = quantify_in_frame(gray, mask, (0, 0), None, (SP, SP), prob=prob, refinement=Refinement())
    assert default.count == 1  # the trim alone never changes the count
    split = quantify_in_frame(gray, mask, (0, 0), None, (SP, SP), prob=prob,
                              refinement=Refinement(split_mm=0.5, trim_fraction=0.5))
    assert split.count == 2
    xs = sorted(c.centroid[0] for c in split.calcifications)
    assert xs[0] == pytest.approx(50, abs=1.5) and xs[1] == pytest.approx(62, abs=1.5)
    assert all(c.longest_mm < 0.8 for c in split.calcifications)


def test_a_bright_dot_outside_the_models_region_is_not_counted():
    """Only where the model looked: a bright dot far from any probability is never added, with the trim
    or with the bright test (unless the nodule is searched)."""
    gray = _spots([(30, 30), (90, 90)], sigma_px=2.0)
    prob = _blob_prob(gray.shape, (30, 30), 8)
    for ref in (Refinement(), Refinement(k=1.5, min_ratio=1.3)):
        foci = quantify_in_frame(gray, prob > 0.5, (0, 0), None, (SP, SP), prob=prob, refinement=ref)
        assert foci.count == 1 and abs(foci.calcifications[0].centroid[0] - 30) < 2
    nodule = np.zeros(gray.shape, bool)
    nodule[5:115, 5:115] = True
    searched = quantify_in_frame(gray, prob > 0.5, (0, 0), nodule, (SP, SP), prob=prob,
                                 refinement=Refinement(k=1.5, min_ratio=1.3, search_nodule=True))
    assert searched.count == 2


def test_refine_mask_checks_its_input_and_returns_the_model_mask_where_there_is_nothing_to_refine():
    gray = _spots([(30, 30)])
    with pytest.raises(ValueError, match="shape"):
        refine_mask(gray, np.zeros((5, 5), np.float32), (SP, SP), Refinement())
    assert not refine_mask(gray, np.zeros(gray.shape, np.float32), (SP, SP), Refinement()).any()
    prob = _blob_prob(gray.shape, (30, 30), 8)
    assert refine_mask(gray, prob, (SP, SP), Refinement()).sum() < (prob > 0.5).sum()
    # without spacing the windows have no physical scale: the model's mask stays as it is
    assert np.array_equal(refine_mask(gray, prob, None, Refinement()), prob > 0.5)


def test_refinement_parse_and_the_default():
    assert Refinement.parse("off") is None
    assert Refinement.parse("default") == Refinement() == DEFAULT_REFINEMENT
    r = Refinement.parse("trim_fraction=0.4, k=1.5, search_nodule=true")
    assert r.trim_fraction == 0.4 and r.k == 1.5 and r.search_nodule is True and r.window_mm == Refinement().window_mm
    assert Refinement.parse("k=none").k is None
    for bad in ("trim=0.5", "k=abc", "search_nodule=maybe", "trim_fraction=1.5", "window_mm=0"):
        with pytest.raises(ValueError):
            Refinement.parse(bad)


def test_the_live_pipeline_counts_on_the_refined_mask_by_default():
    from edgecalc.runtime.live.pipeline import FramePipeline

    assert FramePipeline.__dataclass_fields__["refinement"].default is DEFAULT_REFINEMENT
