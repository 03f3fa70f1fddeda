"""From `edgecalc live` options to a ready FramePipeline: bundle, engine, cropper, overlay."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from edgecalc.runtime.engine.bundle import Bundle, load_bundle
from edgecalc.runtime.focus_verifier import load_verifier
from edgecalc.runtime.locate.cropper import LOCATOR_EVERY, AutoCropper, FixedCropper, parse_roi
from edgecalc.runtime.engine.select import Selection, select_backend
from edgecalc.runtime.live.overlay import OverlayOptions
from edgecalc.runtime.live.pipeline import FramePipeline
from edgecalc.runtime.live.modes import CROP_MODES
from edgecalc.runtime.shipped import resolve_bundle


def _without_extent(locator):
    """The same locator answering with its box as the extent (the crop then holds the box alone)."""

    def box_only(frame):
        found = locator(frame)
        return None if found is None else tuple(found[:3])

    return box_only


@dataclass
class LiveSetup:
    bundle: Bundle
    selection: Selection
    pipeline: FramePipeline


def build_pipeline(bundle_dir: str | Path | None, *, backend: str = "auto", precision: str = "fp32",
                   crop: str = "auto", roi: str | None = None, margin: float = 0.1, locator_every: int = LOCATOR_EVERY,
                   threads: int = 0, show_attention: bool = False, extent: bool = True) -> LiveSetup:
    """Verify the bundle, open the engine and the cropper; ValueError / BundleError say what is wrong.

    ``extent=False``: the learned locator's crop holds its box alone (no extent), as the paper's crop.
    """
    if crop not in CROP_MODES:
        raise ValueError(f"--crop must be one of {', '.join(CROP_MODES)}; got {crop!r}")
    if crop == "fixed" and not roi:
        raise ValueError("--crop fixed needs --roi x,y,w,h")
    cropper = (FixedCropper(parse_roi(roi), margin=0.0) if crop == "fixed"
               else AutoCropper(every=locator_every, margin=margin))
    if crop == "auto" and not extent:
        cropper.locator = _without_extent(cropper.locator)
    if crop == "manual":
        cropper.locator = lambda frame: None  # no locator: only the hand-drawn box
    bundle = load_bundle(resolve_bundle(bundle_dir))
    selection = select_backend(bundle, backend, precision, threads)
    pipeline = FramePipeline(backend=selection.backend, input_size=bundle.input_size, cropper=cropper,
                             threshold=bundle.threshold, overlay=OverlayOptions(show_attention=show_attention),
                             verifier=load_verifier(bundle.root, bundle.manifest.focus_verifier))
    return LiveSetup(bundle, selection, pipeline)
