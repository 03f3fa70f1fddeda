"""The learned nodule locator on the cart: a small U-Net (ONNX, run by onnxruntime) on the scan area.

The classical dark-blob search finds DDTI nodules in fewer than one frame in ten (docs/locator.md),
so the crop step uses a segmentation network trained on real frames instead. This module runs the
shipped network with no torch: find the largest scan area (classical, ~1 ms), cut it out and resize
it with the shared preprocessing to the network's square input, predict the nodule's probability
map, map it back to frame pixels, keep the largest connected component above the threshold and
report its mask, box and a confidence. ``LearnedLocator`` is also a locator callable for
``AutoCropper`` (``frame -> (box, confidence, scan_area_box) | None``).

The bundle is ``edgecalc/assets/locator/`` (``locator.onnx`` + ``manifest.json``); retrain it with
the command recorded in the manifest (docs/locator.md).
"""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edgecalc.data.preprocess import PREPROCESSING_SPEC, preprocess, to_gray_u8
from edgecalc.runtime.classical_locator import Located
from edgecalc.runtime.crop import Box
from edgecalc.runtime.scan_area import ScanArea, largest_scan_area

#: Where the shipped locator lives (package data).
ASSET_DIR = Path(__file__).resolve().parent.parent / "assets" / "locator"
MANIFEST_NAME = "manifest.json"
FORMAT = "edgecalc-locator"
FORMAT_VERSION = 1


class LocatorBundleError(RuntimeError):
    """The locator bundle is missing, incomplete or does not match its manifest (the message says which file)."""


def _as_area(area: ScanArea | tuple[int, int, int, int]) -> Box:
    return tuple(area.box) if isinstance(area, ScanArea) else tuple(int(v) for v in area)  # type: ignore[return-value]


def locator_input(gray: np.ndarray, area: ScanArea | tuple[int, int, int, int], size: int) -> np.ndarray:
    """The network's input for one frame: the scan area cut out, through ``preprocess`` -> (1, 1, size, size).

    Training calls this same function (with jittered areas), so the cart and the training see the
    same pixels. Parts of ``area`` outside the frame read as black.
    """
    x, y, w, h = _as_area(area)
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


def _largest_component(prob: np.ndarray, area: tuple[int, int, int, int], frame_shape: tuple[int, ...],
                       threshold: float, min_share: float
                       ) -> tuple[np.ndarray, tuple[int, int, int, int], float] | None:
    """(component mask over the scan area, box in frame pixels, confidence) or None; no frame-sized array."""
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
    conf = float(up[comp].mean()) * area_px / float(sizes.sum())
    left, top = x + int(stats[k, cv2.CC_STAT_LEFT]), y + int(stats[k, cv2.CC_STAT_TOP])
    right, bottom = left + int(stats[k, cv2.CC_STAT_WIDTH]), top + int(stats[k, cv2.CC_STAT_HEIGHT])
    if x < 0 or y < 0 or x + w > W or y + h > H:  # an area past the frame edge: the box of the visible part
        vis = comp[max(0, -y):H - y, max(0, -x):W - x]
        if not vis.any():
            return None
        ys, xs = np.nonzero(vis)
        left, top = max(0, x) + int(xs.min()), max(0, y) + int(ys.min())
        right, bottom = max(0, x) + int(xs.max()) + 1, max(0, y) + int(ys.max()) + 1
    return comp, (left, top, right - left, bottom - top), round(conf, 4)


def mask_from_probability(prob: np.ndarray, area: tuple[int, int, int, int], frame_shape: tuple[int, ...],
                          threshold: float, min_share: float) -> Located | None:
    """A (size, size) probability map of the scan area -> the largest component in frame pixels, or None.

    Confidence = mean probability inside the component x the component's share of all pixels above
    the threshold (a clean single blob scores near its mean probability; scattered guesses score low).
    Components smaller than ``min_share`` of the scan area count as nothing found.
    """
    found = _largest_component(prob, area, frame_shape, threshold, min_share)
    if found is None:
        return None
    comp, box, conf = found
    x, y, w, h = area
    H, W = int(frame_shape[0]), int(frame_shape[1])
    mask = np.zeros((H, W), dtype=bool)
    x0, y0, x1, y1 = max(0, x), max(0, y), min(W, x + w), min(H, y + h)
    mask[y0:y1, x0:x1] = comp[y0 - y:y1 - y, x0 - x:x1 - x]
    return Located(mask, box, conf)


def read_manifest(bundle_dir: str | Path = ASSET_DIR) -> dict[str, Any]:
    """The bundle's manifest, checked for the fields the runtime needs (LocatorBundleError otherwise)."""
    path = Path(bundle_dir) / MANIFEST_NAME
    if not path.is_file():
        raise LocatorBundleError(f"locator manifest {path} not found (retrain: see docs/locator.md)")
    try:
        manifest = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise LocatorBundleError(f"locator manifest {path} is not valid JSON: {exc}") from exc
    if manifest.get("format") != FORMAT or manifest.get("format_version") != FORMAT_VERSION:
        raise LocatorBundleError(f"{path} is not an {FORMAT} v{FORMAT_VERSION} manifest "
                                 f"(format={manifest.get('format')!r}, version={manifest.get('format_version')!r})")
    missing = [k for k in ("model", "sha256", "input_size", "input_name", "output_name", "threshold", "min_share")
               if k not in manifest]
    if missing:
        raise LocatorBundleError(f"locator manifest {path} lacks {', '.join(missing)}")
    if manifest.get("preprocessing", {}).get("name") != PREPROCESSING_SPEC["name"]:
        raise LocatorBundleError(f"{path}: preprocessing {manifest.get('preprocessing', {}).get('name')!r} is not "
                                 f"this runtime's {PREPROCESSING_SPEC['name']!r}")
    return manifest


def sha256_of(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def bundle_available(bundle_dir: str | Path = ASSET_DIR) -> bool:
    """True when a manifest and its model file are there (it may still fail its checks on load)."""
    d = Path(bundle_dir)
    try:
        return (d / read_manifest(d)["model"]).is_file()
    except LocatorBundleError:
        return False


class LearnedLocator:
    """The shipped (or any) locator bundle, loaded once; call it on frames.

    ``threads``: onnxruntime intra-op threads (1 leaves the other cores to the calcification model).
    ``threshold`` / ``min_share`` default to the manifest's.
    """

    def __init__(self, bundle_dir: str | Path = ASSET_DIR, threads: int = 1,
                 threshold: float | None = None, min_share: float | None = None) -> None:
        from edgecalc.runtime.backends import open_backend

        self.bundle_dir = Path(bundle_dir)
        self.manifest = read_manifest(self.bundle_dir)
        model = self.bundle_dir / self.manifest["model"]
        if not model.is_file():
            raise LocatorBundleError(f"locator model {model} named by {self.bundle_dir / MANIFEST_NAME} not found")
        digest = sha256_of(model)
        if digest != self.manifest["sha256"]:
            raise LocatorBundleError(f"{model} does not match its manifest (sha256 {digest[:12]}… != "
                                     f"{str(self.manifest['sha256'])[:12]}…): a partial copy or a stale manifest")
        self.size = int(self.manifest["input_size"])
        self.threshold = float(self.manifest["threshold"] if threshold is None else threshold)
        self.min_share = float(self.manifest["min_share"] if min_share is None else min_share)
        self.output_name = str(self.manifest["output_name"])
        self.backend = open_backend("onnxruntime", model, threads=threads)

    def probability(self, gray: np.ndarray, area: ScanArea | tuple[int, int, int, int]) -> np.ndarray:
        """The network's (size, size) nodule probability map of the scan area."""
        out = self.backend.infer(locator_input(gray, area, self.size))
        return out[self.output_name][0, 0]

    def locate(self, frame: np.ndarray, scan_area: ScanArea | tuple[int, int, int, int] | None = None) -> Located | None:
        """The nodule in ``frame`` (mask, box, confidence) or None: no scan area, or nothing found in it.

        ``scan_area`` defaults to ``largest_scan_area(frame)``.
        """
        gray = to_gray_u8(frame)
        if scan_area is None:
            scan_area = largest_scan_area(gray)
            if scan_area is None:
                return None
        area = _as_area(scan_area)
        return mask_from_probability(self.probability(gray, area), area, gray.shape, self.threshold, self.min_share)

    def __call__(self, frame: np.ndarray) -> tuple[Box, float, Box | None] | None:
        """The ``AutoCropper`` locator interface: (box, confidence, scan_area_box) or None."""
        gray = to_gray_u8(frame)
        area = largest_scan_area(gray)
        if area is None:
            return None
        found = _largest_component(self.probability(gray, area), _as_area(area), gray.shape, self.threshold,
                                   self.min_share)  # the box only: no frame-sized mask on the live path
        if found is None:
            return None
        return found[1], float(found[2]), tuple(area.box)


@lru_cache(maxsize=1)
def shipped_locator() -> LearnedLocator:
    """The package's locator, loaded once per process (LocatorBundleError when it is missing or broken)."""
    return LearnedLocator(ASSET_DIR)
