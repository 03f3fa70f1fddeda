"""The one preprocessing path, shared by training, calibration, export manifests and the runtime.

A frame reaching the model on the cart must be prepared exactly as the training images were, so every
caller goes through these functions (numpy + OpenCV only). The model sees one channel, float32 in
[0, 1], at ``size`` x ``size`` (the paper feeds 192 x 192 nodule crops, the smallest square holding
the nodule). Non-square inputs are resized without padding: the crop step makes squares.
"""

from __future__ import annotations

import numpy as np
import cv2

#: Recorded in export manifests so a runtime can check it applies the same recipe.
PREPROCESSING_SPEC = {
    "name": "edgecalc-gray01",
    "version": 1,
    "channels": 1,
    "color": "BGR/BGRA/gray -> gray (ITU-R BT.601 luma, OpenCV COLOR_BGR2GRAY)",
    "bit_depth": "uint8 as is; uint16 scaled by 1/257; float taken as [0, 1] and clipped",
    "resize": "cv2.INTER_AREA when shrinking, cv2.INTER_LINEAR when enlarging",
    "scale": "x / 255 -> float32 in [0, 1]",
    "layout": "NCHW",
}


def to_gray_u8(image: np.ndarray) -> np.ndarray:
    """Any gray/BGR/BGRA image of uint8, uint16 or float in [0, 1] -> 2-D uint8 gray.

    Raises ValueError naming the shape or dtype it cannot handle.
    """
    img = np.asarray(image)
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[:, :, 0]
    if img.ndim == 3:
        if img.shape[2] == 3:
            img = cv2.cvtColor(to_uint8(img), cv2.COLOR_BGR2GRAY)
        elif img.shape[2] == 4:
            img = cv2.cvtColor(to_uint8(img), cv2.COLOR_BGRA2GRAY)
        else:
            raise ValueError(f"image has {img.shape[2]} channels; expected 1, 3 (BGR) or 4 (BGRA)")
    elif img.ndim != 2:
        raise ValueError(f"image has shape {img.shape}; expected HxW or HxWxC")
    if img.shape[0] < 2 or img.shape[1] < 2:
        raise ValueError(f"image of shape {img.shape} is too small to preprocess")
    return to_uint8(img)


def to_uint8(img: np.ndarray) -> np.ndarray:
    """Any frame as uint8, for OpenCV calls that need 8 bit: uint16 scaled by 1/257, floats read as 0-1,
    other integers and bool clipped to 0-255."""
    if img.dtype == np.uint8:
        return img
    if img.dtype == np.uint16:
        return (img.astype(np.float32) / 257.0 + 0.5).astype(np.uint8)
    if np.issubdtype(img.dtype, np.floating):
        return (np.clip(np.nan_to_num(img), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    if np.issubdtype(img.dtype, np.integer) or img.dtype == np.bool_:
        return np.clip(img, 0, 255).astype(np.uint8)
    raise ValueError(f"image dtype {img.dtype} is not supported")


def resize_gray(gray: np.ndarray, size: int) -> np.ndarray:
    """Resize a 2-D image to size x size: area averaging when shrinking, bilinear when enlarging."""
    h, w = gray.shape[:2]
    if (h, w) == (size, size):
        return gray
    interp = cv2.INTER_AREA if (h >= size and w >= size) else cv2.INTER_LINEAR
    return cv2.resize(gray, (size, size), interpolation=interp)


def preprocess(image: np.ndarray, size: int = 192) -> np.ndarray:
    """One image (any layout `to_gray_u8` takes) -> float32 array (1, size, size) in [0, 1]."""
    gray = resize_gray(to_gray_u8(image), size)
    return (gray.astype(np.float32) * (1.0 / 255.0))[None]


def preprocess_batch(images: list[np.ndarray] | np.ndarray, size: int = 192) -> np.ndarray:
    """A list of images -> contiguous float32 NCHW batch (N, 1, size, size)."""
    out = np.empty((len(images), 1, size, size), dtype=np.float32)
    for i, img in enumerate(images):
        out[i] = preprocess(img, size)
    return out


def resize_mask(mask: np.ndarray, size: int) -> np.ndarray:
    """Binary mask -> uint8 {0, 1} at size x size, keeping every foreground pixel's footprint.

    Shrinking by area averaging and then taking any coverage as foreground means a one-pixel
    calcification survives the resize (nearest-neighbour sampling would drop it).
    """
    m = (to_gray_u8(mask) > 127).astype(np.float32)
    h, w = m.shape
    if (h, w) == (size, size):
        return m.astype(np.uint8)
    if h >= size and w >= size:
        return (cv2.resize(m, (size, size), interpolation=cv2.INTER_AREA) > 0).astype(np.uint8)
    return (cv2.resize(m, (size, size), interpolation=cv2.INTER_LINEAR) >= 0.5).astype(np.uint8)
