"""Overlay geometry: crop maps land where they belong, and paint only there."""

from __future__ import annotations

import numpy as np

from edgecalc.runtime.live.overlay import MASK_COLOR, OverlayOptions, draw_overlay, paste_crop


def test_paste_crop_places_map_in_frame_coordinates():
    crop_map = np.zeros((96, 96), np.float32)
    crop_map[40:56, 40:56] = 1.0  # centre of the crop
    full = paste_crop(crop_map, (100, 50, 192, 192), (360, 560))
    ys, xs = np.nonzero(full > 0.5)
    # centre of the crop (100 + 96, 50 + 96) in frame pixels
    assert abs(xs.mean() - 196) < 2 and abs(ys.mean() - 146) < 2
    assert full[:50].max() == 0 and full[:, :100].max() == 0


def test_paste_crop_cut_at_frame_edge():
    full = paste_crop(np.ones((32, 32), np.float32), (540, -10, 40, 40), (360, 560))
    assert full.shape == (360, 560)
    assert full[:30, 540:].min() == 1.0 and full[30:].max() == 0


def test_mask_painted_only_on_mask_pixels_plus_contour():
    frame = np.full((360, 560), 100, np.uint8)
    mask = np.zeros((360, 560), bool)
    mask[150:170, 250:280] = True
    out = draw_overlay(frame, mask=mask, options=OverlayOptions(show_mask=True))
    changed = np.any(out != 100, axis=2)
    assert changed[155:165, 255:275].all()
    # red dominates inside the mask
    inside = out[160, 265]
    assert inside[2] > inside[0] + 50 and inside[2] > inside[1] + 50
    # nothing changes far from the mask (no score, no box, no HUD given)
    ring = np.ones_like(mask)
    ring[145:175, 245:285] = False
    assert not changed[ring].any()
    assert tuple(MASK_COLOR) == (0, 0, 255)


def test_mask_toggle_off_leaves_frame_clean():
    frame = np.full((120, 160, 3), 90, np.uint8)
    mask = np.zeros((120, 160), bool)
    mask[50:60, 50:60] = True
    out = draw_overlay(frame, mask=mask, options=OverlayOptions(show_mask=False))
    assert np.array_equal(out, frame)
    assert out is not frame


def test_score_bar_box_and_hud_drawn():
    frame = np.full((360, 560), 100, np.uint8)
    out = draw_overlay(frame, box=(200, 100, 120, 120), score=0.8, decision=True,
                       options=OverlayOptions(hud=["12.0 FPS"]))
    changed = np.any(out != 100, axis=2)
    assert changed[100, 200:320].any()  # box top edge
    assert changed[:40, 460:].any()  # score bar top-right
    assert changed[:30, :120].any()  # HUD top-left


def test_attention_only_inside_crop():
    frame = np.full((200, 200), 100, np.uint8)
    att = np.zeros((200, 200), np.float32)
    att[50:150, 50:150] = 0.7
    out = draw_overlay(frame, attention=att, options=OverlayOptions(show_attention=True, show_mask=False))
    changed = np.any(out != 100, axis=2)
    assert changed[60:140, 60:140].all() and not changed[:45].any()


def test_crop_map_overlay_equals_full_frame_overlay():
    """The live loop paints from a CropMap (crop pixels only); the picture is the one a full-frame mask gives."""
    from edgecalc.runtime.live.overlay import crop_map

    rng = np.random.default_rng(0)
    frame = rng.integers(0, 255, (360, 560), dtype=np.uint8)
    prob = np.zeros((96, 96), np.float32)
    prob[30:60, 20:50] = 0.9
    prob[70:75, 80:96] = 0.8
    for crop in ((150, 60, 200, 200), (480, -20, 120, 120)):  # inside, and past the frame's corner
        cm = crop_map(prob, crop, frame.shape)
        local = type(cm)(cm.values > 0.5, cm.origin)
        full = paste_crop(prob, crop, frame.shape) > 0.5
        assert np.array_equal(local.full(frame.shape), full)
        a = draw_overlay(frame, mask=local, box=crop, options=OverlayOptions())
        b = draw_overlay(frame, mask=full, box=crop, options=OverlayOptions())
        assert np.array_equal(a, b)
        assert (a != draw_overlay(frame, box=crop, options=OverlayOptions())).any()
