"""Calibration sets for INT8: stratified by class, drawn reproducibly, recorded by id.

INT8 ranges are only as good as the images they are measured on, and an audit must be able to say
which images those were, so the set is drawn with a seeded generator, stratified by label (both
classes in their data-set proportions), and every chosen id goes into the bundle's manifest. Images
go through ``edgecalc.data.preprocess.preprocess``, the function the runtime calls on the cart.

Sources: a data-set folder (``images/<id>.png``, ``labels.csv`` with ``id,calcification``; masks are
not needed) or, without one, phantom crops the kit generates (``edgecalc.data.phantom``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgecalc.data.dataset import check_dataset, read_image
from edgecalc.data.preprocess import preprocess

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
#: Phantom calibration seeds start here; the parity set starts at PARITY_SEED_BASE, so they never overlap.
PHANTOM_CALIB_SEED_BASE = 100_000
PARITY_SEED_BASE = 900_000


class CalibrationError(ValueError):
    """A calibration source that cannot give the requested set (the message names the folder or file)."""


@dataclass
class CalibrationSet:
    """Preprocessed images (N, 1, S, S) float32, their ids and labels, and where they came from."""

    ids: list[str]
    images: np.ndarray
    labels: np.ndarray
    source: str
    seed: int
    extra: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.ids)

    def digest(self) -> str:
        """sha256 of the preprocessed pixels and ids: a change in either is a different calibration."""
        h = hashlib.sha256()
        h.update("\n".join(self.ids).encode())
        h.update(np.ascontiguousarray(self.images, dtype=np.float32).tobytes())
        return h.hexdigest()

    def record(self, method: str) -> dict:
        """What the manifest records about this set."""
        return {"method": method, "source": self.source, "seed": self.seed, "size": len(self),
                "positives": int(self.labels.sum()), "ids": list(self.ids), **self.extra}


def stratified_choice(labels: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Indices of ``n`` items, each class in proportion (largest remainder), seeded; sorted.

    Raises CalibrationError when ``n`` exceeds the number of items.
    """
    labels = np.asarray(labels).astype(int)
    total = len(labels)
    if n < 1:
        raise CalibrationError(f"calibration size must be >= 1, got {n}")
    if n > total:
        raise CalibrationError(f"--calib-size {n} is larger than the data set ({total} labelled images)")
    rng = np.random.default_rng(seed)
    classes = np.unique(labels)
    counts = np.array([(labels == c).sum() for c in classes])
    exact = counts * n / total
    take = np.floor(exact).astype(int)
    for i in np.argsort(-(exact - take), kind="stable")[: n - take.sum()]:
        take[i] += 1
    chosen = [rng.choice(np.flatnonzero(labels == c), size=k, replace=False) for c, k in zip(classes, take)]
    return np.sort(np.concatenate(chosen))


def from_folder(folder: str | Path, size: int, n: int, seed: int = 0) -> CalibrationSet:
    """``n`` images of a data-set folder, stratified by class and seeded, preprocessed for the runtime.

    The folder is validated by ``edgecalc.data.dataset.check_dataset``, the same check training uses;
    any error it finds refuses the calibration with its messages.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise CalibrationError(f"calibration folder {folder} does not exist")
    images_dir = folder / "images"
    if not images_dir.is_dir() or not any(p.suffix.lower() in IMAGE_SUFFIXES for p in images_dir.iterdir()):
        raise CalibrationError(f"calibration folder {folder} has no images (expected {images_dir}/<id>.png)")
    rep = check_dataset(folder)
    if rep.errors:
        raise CalibrationError(f"calibration data {folder} has {len(rep.errors)} error(s):\n"
                               + "\n".join(str(e) for e in rep.errors))
    ids = [row["id"] for row in rep.rows]
    labels = np.array([int(row["calcification"]) for row in rep.rows], dtype=np.int64)
    idx = stratified_choice(labels, n, seed)
    images = np.empty((len(idx), 1, size, size), dtype=np.float32)
    for j, i in enumerate(idx):
        img, why = read_image(Path(rep.rows[i]["_image"]))
        if img is None:
            raise CalibrationError(f"{rep.rows[i]['_image']}: {why}")
        images[j] = preprocess(img, size)
    return CalibrationSet([ids[i] for i in idx], images, labels[idx], f"folder {folder.resolve()}", seed)


def phantom_pool(n: int, seed_base: int, size: int) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    """``n`` phantom crops, half positive: (ids, images N x 1 x S x S, masks N x S x S in {0,1}, labels)."""
    from edgecalc.data.phantom import generate_crop

    ids, images, masks, labels = [], np.empty((n, 1, size, size), np.float32), np.empty((n, size, size), np.uint8), []
    for i in range(n):
        positive = i % 2 == 0
        s = generate_crop(seed_base + i, positive=positive, size=size)
        ids.append(f"phantom-{seed_base + i}-{'pos' if positive else 'neg'}")
        images[i] = preprocess(s.image, size)
        masks[i] = (s.mask > 127).astype(np.uint8)
        labels.append(int(s.label))
    return ids, images, masks, np.array(labels, dtype=np.int64)


def from_phantom(size: int, n: int, seed: int = 0) -> CalibrationSet:
    """``n`` phantom crops (half with calcification), seeds disjoint from the parity set."""
    base = PHANTOM_CALIB_SEED_BASE + 10_000 * seed
    ids, images, _, labels = phantom_pool(n, base, size)
    return CalibrationSet(ids, images, labels, f"phantom (generated by edgecalc, seeds {base}..{base + n - 1})", seed)
