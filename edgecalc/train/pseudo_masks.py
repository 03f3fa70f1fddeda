"""Stage one's predictions as stage two's pixel targets: one PNG per training image in the run folder.

``pseudo_masks/<id>.png`` (``run_folder.PSEUDO_DIR``; ``PSEUDO_MARKER`` once all are written) is
the DS-AGnet's full-resolution sigmoid output binarised at the threshold (0/255, the kit's mask
format, at the model's input size). Stage two always reads the files back, so an uninterrupted run and a resumed one train on the very same targets.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import cv2
import numpy as np
import torch

from edgecalc.atomic import atomic_write_png
from edgecalc.eval.predict import predict


def write_pseudo_masks(
    model: torch.nn.Module,
    images: np.ndarray,
    ids: Sequence[str],
    out_dir: Path,
    threshold: float = 0.5,
    device: torch.device | str = "cpu",
    batch_size: int = 32,
) -> Path:
    """Predict and store a binary pseudo mask for every image; return the folder."""
    if len(ids) != images.shape[0]:
        raise ValueError(f"{len(ids)} ids for {images.shape[0]} images")
    out_dir.mkdir(parents=True, exist_ok=True)
    pred = predict(model, images, batch_size=batch_size, device=device)
    for sid, m in zip(ids, pred.masks):
        atomic_write_png(out_dir / f"{sid}.png", ((m[0] > threshold).astype(np.uint8) * 255))
    return out_dir


def read_pseudo_masks(out_dir: Path, ids: Sequence[str], size: int) -> np.ndarray:
    """(N, 1, size, size) float32 {0, 1} masks for ``ids``; FileNotFoundError names the first missing one."""
    masks = np.zeros((len(ids), 1, size, size), np.float32)
    for i, sid in enumerate(ids):
        path = out_dir / f"{sid}.png"
        m = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        if m is None:
            raise FileNotFoundError(f"pseudo mask {path} is missing or unreadable; resume the run to predict it again")
        if m.shape != (size, size):
            raise ValueError(f"pseudo mask {path} is {m.shape[1]}x{m.shape[0]}, expected {size}x{size}")
        masks[i, 0] = m > 127
    return masks
