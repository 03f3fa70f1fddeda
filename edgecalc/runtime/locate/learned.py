"""The learned nodule locator on the cart: small U-Nets (ONNX, run by onnxruntime) on the scan area.

The classical dark-blob search finds DDTI nodules in fewer than one frame in ten (docs/locator.md),
so the crop step uses segmentation networks trained on real frames instead. This module runs the
shipped bundle with no torch: find the largest scan area (classical, ~1 ms), cut it out and resize
it with the shared preprocessing to each member network's square input, average the members'
nodule probability maps, keep the largest connected component above ``threshold`` and report its
mask, box and a confidence. The crop needs recall more than the box needs it, so the locator also
reports an *extent*: the box of the same component grown to where the probability is at least
``crop_threshold`` (lower), and the crop holds the extent. ``LearnedLocator`` is also a locator
callable for ``AutoCropper`` (``frame -> (box, confidence, scan_area_box, extent) | None``).

The bundle is ``edgecalc/assets/locator/`` (``manifest.json`` + one ONNX file per member); retrain
it with the command recorded in the manifest (docs/locator.md). Its manifest is the envelope every
bundle shares (``runtime/engine/manifest.py``: kind "locator", format, checksummed ``artifacts``),
read and verified by the same code as the model's, plus the locator's ``members`` and
post-processing. Manifests of formats 1 (one model, no extent) and 2 (``"format": "edgecalc-locator"``,
checksums in the members) are read through ``upgrade_legacy`` and still load.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any, NamedTuple

import cv2
import numpy as np

from edgecalc.data.preprocess import PREPROCESSING_SPEC, preprocess, to_gray_u8
from edgecalc.runtime.engine.manifest import (
    FORMATS,
    LEGACY_LOCATOR_FORMAT,
    MANIFEST_NAME,
    BundleError,
    artifacts_from,
    read_manifest_doc,
    verify_files,
)
from edgecalc.runtime.locate.classical import Located
from edgecalc.runtime.locate.crop_geometry import Box
from edgecalc.runtime.locate.scan_area import ScanArea, largest_scan_area
from edgecalc.runtime.shipped import ASSETS_DIR

#: Where the shipped locator lives (package data).
ASSET_DIR = ASSETS_DIR / "locator"
KIND = "locator"
FORMAT_VERSION = FORMATS[KIND]


class LocatorBundleError(BundleError):
    """The locator bundle is missing, incomplete or does not match its manifest (the message says which file)."""


def as_area_box(area: ScanArea | tuple[int, int, int, int]) -> Box:
    """A scan area or an (x, y, w, h) tuple as the (x, y, w, h) box of ints the locator works in."""
    return tuple(area.box) if isinstance(area, ScanArea) else tuple(int(v) for v in area)  # type: ignore[return-value]


def locator_input(gray: np.ndarray, area: ScanArea | tuple[int, int, int, int], size: int) -> np.ndarray:
    """The network's input for one frame: the scan area cut out, through ``preprocess`` -> (1, 1, size, size).

    Training calls this same function (with jittered areas), so the cart and the training see the
    same pixels. Parts of ``area`` outside the frame read as black.
    """
    x, y, w, h = as_area_box(area)
    H, W = gray.shape[:2]
    if w <= 0 or h <= 0:
        raise ValueError(f"scan area {(x, y, w, h)} is empty")
    if x >= 0 and y >= 0 and x + w <= W and y + h <= H:
        roi = gray[y:y + h, x:x + w]
    else:  # jittered training areas may stick out of the frame
        roi = np.zeros((h, w), dtype=gray.dtype)
        x0, y0, x1, y1 = max(0, x), max(0, y), min(W, x + w), min(H, y + h)
        if x1 > x0 and y1 > y0:
            roi[y0 - y:y1 - y, x0 - x:x1 - x] = gray[y0:y1, x0:x1]
    return preprocess(roi, size)[None]


def target_mask(mask: np.ndarray, area: tuple[int, int, int, int], size: int) -> np.ndarray:
    """A frame-sized nodule mask -> the training target at ``size`` x ``size`` (float32 {0, 1}).

    Area-averaged and thresholded at one half, so the target's box is not biased larger (the
    calcification path's ``resize_mask`` keeps any covered pixel, which would grow a nodule's box).
    """
    m = (to_gray_u8(mask) > 127).astype(np.float32)
    x, y, w, h = area
    roi = np.zeros((h, w), np.float32)
    H, W = m.shape
    x0, y0, x1, y1 = max(0, x), max(0, y), min(W, x + w), min(H, y + h)
    if x1 > x0 and y1 > y0:
        roi[y0 - y:y1 - y, x0 - x:x1 - x] = m[y0:y1, x0:x1]
    interp = cv2.INTER_AREA if (h >= size and w >= size) else cv2.INTER_LINEAR
    return (cv2.resize(roi, (size, size), interpolation=interp) >= 0.5).astype(np.float32)


class Component(NamedTuple):
    """The chosen component over the scan area, its box and extent in frame pixels, and a confidence."""

    mask: np.ndarray  #: bool (h, w) over the scan area
    box: Box
    confidence: float
    extent: Box  #: the box of the same nodule at ``crop_threshold`` (holds ``box``)


def _visible_box(comp: np.ndarray, area: Box, H: int, W: int) -> Box | None:
    """The box of the part of ``comp`` (over ``area``) that lies inside an H x W frame."""
    x, y, _, _ = area
    vis = comp[max(0, -y):H - y, max(0, -x):W - x]
    if not vis.any():
        return None
    ys, xs = np.nonzero(vis)
    left, top = max(0, x) + int(xs.min()), max(0, y) + int(ys.min())
    return left, top, int(xs.max() - xs.min()) + 1, int(ys.max() - ys.min()) + 1


def _largest_component(prob: np.ndarray, area: tuple[int, int, int, int], frame_shape: tuple[int, ...],
                       threshold: float, min_share: float, crop_threshold: float | None = None,
                       min_peak: float = 0.0) -> Component | None:
    """The largest component above ``threshold`` (None: none, smaller than ``min_share`` of the area,
    or peaking below ``min_peak``) and its extent at ``crop_threshold``; no frame-sized array."""
    x, y, w, h = area
    H, W = int(frame_shape[0]), int(frame_shape[1])
    up = cv2.resize(prob.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
    fg = (up >= threshold).astype(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(fg, connectivity=8)
    if n <= 1:
        return None
    sizes = stats[1:, cv2.CC_STAT_AREA]
    k = int(np.argmax(sizes)) + 1
    area_px = int(stats[k, cv2.CC_STAT_AREA])
    if area_px < min_share * w * h:
        return None
    comp = labels == k
    values = up[comp]
    if min_peak > 0.0 and float(values.max()) < min_peak:
        return None
    conf = float(values.mean()) * area_px / float(sizes.sum())

    def stat_box(st: np.ndarray) -> Box:
        return (x + int(st[cv2.CC_STAT_LEFT]), y + int(st[cv2.CC_STAT_TOP]),
                int(st[cv2.CC_STAT_WIDTH]), int(st[cv2.CC_STAT_HEIGHT]))

    inside = x >= 0 and y >= 0 and x + w <= W and y + h <= H
    box = stat_box(stats[k]) if inside else _visible_box(comp, area, H, W)
    if box is None:  # an area past the frame edge whose component lies outside the frame
        return None
    extent = box
    if crop_threshold is not None and crop_threshold < threshold:
        _, labels2, stats2, _ = cv2.connectedComponentsWithStats((up >= crop_threshold).astype(np.uint8),
                                                                  connectivity=8)
        k2 = int(labels2[comp][0])  # the low-threshold component holding the chosen one (a superset)
        extent = stat_box(stats2[k2]) if inside else (_visible_box(labels2 == k2, area, H, W) or box)
    return Component(comp, box, round(conf, 4), extent)


def mask_from_probability(prob: np.ndarray, area: tuple[int, int, int, int], frame_shape: tuple[int, ...],
                          threshold: float, min_share: float, crop_threshold: float | None = None,
                          min_peak: float = 0.0) -> Located | None:
    """A (size, size) probability map of the scan area -> the largest component in frame pixels, or None.

    Confidence = mean probability inside the component x the component's share of all pixels above
    the threshold (a clean single blob scores near its mean probability; scattered guesses score low).
    Components smaller than ``min_share`` of the scan area, or whose peak probability is below
    ``min_peak``, count as nothing found. ``extent``: the component's box at ``crop_threshold``.
    """
    found = _largest_component(prob, area, frame_shape, threshold, min_share, crop_threshold, min_peak)
    if found is None:
        return None
    x, y, w, h = area
    H, W = int(frame_shape[0]), int(frame_shape[1])
    mask = np.zeros((H, W), dtype=bool)
    x0, y0, x1, y1 = max(0, x), max(0, y), min(W, x + w), min(H, y + h)
    mask[y0:y1, x0:x1] = found.mask[y0 - y:y1 - y, x0 - x:x1 - x]
    return Located(mask, found.box, found.confidence, found.extent)


#: What a member entry of a format-2 manifest names (a format-1 manifest has these at its top level).
LEGACY_MEMBER_KEYS = ("model", "sha256", "input_size")
#: The locator's own fields on top of the shared envelope (``kind``, ``format``, ``artifacts``).
REQUIRED_KEYS = ("members", "input", "outputs", "preprocessing", "threshold", "crop_threshold", "min_share", "min_peak")


def upgrade_legacy(doc: dict[str, Any]) -> dict[str, Any]:
    """A format-1 or -2 manifest in format-3 form: the same files and checksums, listed as ``artifacts``.

    Format 1 (one model, ``model``/``sha256`` at the top level) becomes one member whose
    ``crop_threshold`` equals ``threshold`` (no extent) and ``min_peak`` is 0. ValueError names
    what a legacy manifest lacks.
    """
    doc = dict(doc)
    version = doc.pop("format_version")
    if version not in (1, 2):
        raise ValueError(f"format_version {version!r} is not 1 or 2, the versions of the {LEGACY_LOCATOR_FORMAT!r} form")
    if version == 1:
        missing = [k for k in LEGACY_MEMBER_KEYS if k not in doc]
        if missing:
            raise ValueError(f"lacks {', '.join(missing)}")
        doc["members"] = [{k: doc.pop(k) for k in (*LEGACY_MEMBER_KEYS, "model_config", "training") if k in doc}]
        doc.setdefault("crop_threshold", doc.get("threshold"))
        doc.setdefault("min_peak", 0.0)
    members = doc.get("members")
    if not isinstance(members, list) or not members:
        raise ValueError("lacks members" if not members else f"members is a {type(members).__name__}, not a list")
    missing = [f"members[{n}].{k}" for n, m in enumerate(members) for k in LEGACY_MEMBER_KEYS
               if not isinstance(m, dict) or k not in m]
    missing += [k for k in ("input_name", "output_name") if k not in doc]
    if missing:
        raise ValueError(f"lacks {', '.join(missing)}")
    doc["artifacts"] = [{"file": m["model"], "kind": "onnx", "precision": "fp32", "sha256": m["sha256"],
                         "size": m.get("model_bytes"), "engine": None, "notes": ""} for m in members]
    doc["members"] = [{"file": m["model"], **{k: v for k, v in m.items() if k not in ("model", "sha256", "model_bytes")}}
                      for m in members]
    doc.pop("model_bytes", None)
    doc["input"] = {"name": doc.pop("input_name"), "meaning": doc.get("input")}
    doc["outputs"] = [{"name": doc.pop("output_name"), "meaning": doc.pop("output", None)}]
    doc.pop("format")
    head = {"kind": KIND, "format": FORMAT_VERSION, **{k: doc.pop(k) for k in ("artifacts", "members", "input", "outputs")}}
    return {**head, **doc}


def read_manifest(bundle_dir: str | Path = ASSET_DIR) -> dict[str, Any]:
    """The bundle's manifest in format-3 form, checked for the fields the runtime needs.

    LocatorBundleError naming the manifest otherwise: the shared envelope's errors (no manifest, not
    JSON, a model bundle given here, a newer format) and the locator's own (a field missing or of
    the wrong type, a member whose file the manifest does not list). Files are checked on load.
    """
    path = Path(bundle_dir) / MANIFEST_NAME
    try:
        manifest = read_manifest_doc(bundle_dir, KIND)
    except BundleError as exc:
        raise LocatorBundleError(str(exc)) from None
    try:
        if manifest.get("format") == LEGACY_LOCATOR_FORMAT:
            manifest = upgrade_legacy(manifest)
        return _checked(path, manifest)
    except (TypeError, ValueError, AttributeError, KeyError, IndexError, OverflowError) as exc:  # wrong types
        raise LocatorBundleError(f"locator manifest {path}: {exc}") from None


def _checked(path: Path, manifest: dict[str, Any]) -> dict[str, Any]:
    """``read_manifest``'s checks on a format-3 manifest; a field of the wrong type raises (caught there)."""
    missing = [k for k in ("artifacts", *REQUIRED_KEYS) if k not in manifest]
    if missing:
        raise ValueError(f"lacks {', '.join(missing)}")
    listed = {a.file for a in artifacts_from(manifest["artifacts"])}
    members = manifest["members"]
    if not isinstance(members, list) or not members:
        raise ValueError(f"members is {members!r}, not a list of one or more members")
    for n, m in enumerate(members):
        if not isinstance(m, dict) or "file" not in m or "input_size" not in m:
            raise ValueError(f"lacks members[{n}].file or members[{n}].input_size")
        if m["file"] not in listed:
            raise ValueError(f"members[{n}] names {m['file']!r}, which its artifacts do not list (so nothing checks it)")
        if int(m["input_size"]) <= 0:
            raise ValueError(f"members[{n}].input_size {m['input_size']!r} is not a positive whole number")
    pre = manifest["preprocessing"]
    pre_name = pre.get("name") if isinstance(pre, dict) else pre
    if pre_name != PREPROCESSING_SPEC["name"]:
        raise ValueError(f"preprocessing {pre_name!r} is not this runtime's {PREPROCESSING_SPEC['name']!r}")
    for key, value in (("input.name", manifest["input"]["name"]), ("outputs[0].name", manifest["outputs"][0]["name"])):
        if not isinstance(value, str):
            raise ValueError(f"{key} is {value!r}, not a tensor name")
    for key in ("threshold", "crop_threshold", "min_share", "min_peak"):
        float(manifest[key])
    return manifest


def bundle_available(bundle_dir: str | Path = ASSET_DIR) -> bool:
    """True when a manifest and its model files are there (they may still fail their checks on load)."""
    d = Path(bundle_dir)
    try:
        return all((d / m["file"]).is_file() for m in read_manifest(d)["members"])
    except LocatorBundleError:
        return False


class LearnedLocator:
    """The shipped (or any) locator bundle, loaded once; call it on frames.

    Every member network sees the scan area at its own input size; their probability maps are
    averaged at the largest member's size (``self.size``). ``threads``: onnxruntime intra-op threads
    per member (1 leaves the other cores to the calcification model). ``threshold``,
    ``crop_threshold``, ``min_share`` and ``min_peak`` default to the manifest's.
    """

    def __init__(self, bundle_dir: str | Path = ASSET_DIR, threads: int = 1,
                 threshold: float | None = None, min_share: float | None = None,
                 crop_threshold: float | None = None, min_peak: float | None = None) -> None:
        from edgecalc.runtime.engine.backends import open_backend

        self.bundle_dir = Path(bundle_dir)
        self.manifest = read_manifest(self.bundle_dir)
        try:  # the model bundle's checks: missing, changed or escaping files, ONNX data outside the folder
            verify_files(self.bundle_dir, artifacts_from(self.manifest["artifacts"]), KIND)
        except BundleError as exc:
            raise LocatorBundleError(str(exc)) from None
        self.members: list[tuple[int, Any]] = []  # (input size, backend)
        for m in self.manifest["members"]:
            model = self.bundle_dir / m["file"]
            self.members.append((int(m["input_size"]), open_backend("onnxruntime", model, threads=threads)))
        self.size = max(size for size, _ in self.members)

        def pick(given: float | None, key: str) -> float:
            return float(self.manifest[key] if given is None else given)

        self.threshold = pick(threshold, "threshold")
        self.min_share = pick(min_share, "min_share")
        self.min_peak = pick(min_peak, "min_peak")
        # an overridden threshold without its own crop threshold keeps the manifest's gap below it
        gap = float(self.manifest["threshold"]) - float(self.manifest["crop_threshold"])
        self.crop_threshold = float(crop_threshold) if crop_threshold is not None else max(0.0, self.threshold - gap)
        self.output_name = str(self.manifest["outputs"][0]["name"])

    def probability(self, gray: np.ndarray, area: ScanArea | tuple[int, int, int, int]) -> np.ndarray:
        """The members' mean (size, size) nodule probability map of the scan area."""
        maps = []
        for size, backend in self.members:
            p = backend.infer(locator_input(gray, area, size))[self.output_name][0, 0]
            maps.append(p if size == self.size else
                        cv2.resize(p, (self.size, self.size), interpolation=cv2.INTER_LINEAR))
        return maps[0] if len(maps) == 1 else np.mean(maps, axis=0)

    def _post(self) -> dict[str, float]:
        return {"threshold": self.threshold, "min_share": self.min_share, "crop_threshold": self.crop_threshold,
                "min_peak": self.min_peak}

    def locate(self, frame: np.ndarray, scan_area: ScanArea | tuple[int, int, int, int] | None = None) -> Located | None:
        """The nodule in ``frame`` (mask, box, confidence, extent) or None: no scan area, or nothing found in it.

        ``scan_area`` defaults to ``largest_scan_area(frame)``.
        """
        gray = to_gray_u8(frame)
        if scan_area is None:
            scan_area = largest_scan_area(gray)
            if scan_area is None:
                return None
        area = as_area_box(scan_area)
        return mask_from_probability(self.probability(gray, area), area, gray.shape, **self._post())

    def __call__(self, frame: np.ndarray) -> tuple[Box, float, Box | None, Box] | None:
        """The ``AutoCropper`` locator interface: (box, confidence, scan_area_box, extent) or None."""
        gray = to_gray_u8(frame)
        area = largest_scan_area(gray)
        if area is None:
            return None
        # the box only: no frame-sized mask on the live path
        found = _largest_component(self.probability(gray, area), as_area_box(area), gray.shape, **self._post())
        if found is None:
            return None
        return found.box, float(found.confidence), tuple(area.box), found.extent

    def close(self) -> None:
        for _, backend in self.members:
            backend.close()


@lru_cache(maxsize=1)
def shipped_locator() -> LearnedLocator:
    """The package's locator, loaded once per process (LocatorBundleError when it is missing or broken)."""
    return LearnedLocator(ASSET_DIR)
