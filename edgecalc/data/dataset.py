"""The kit's data-set folder format, its validator and its loader.

A folder holds ``images/<id>.png`` (gray or colour, any size), optional ``masks/<id>.png`` (0/255,
same size as the image) and ``labels.csv`` with columns ``id,calcification`` (0/1) plus optional
extra columns (``split``, ``patient``, ``path``/``mask_path`` relative to the folder). An empty
``calcification`` means *unlabelled* (frames imported from DICOM, ``edgecalc data import-dicom``): the
check reads their images and counts them but warns, and training and evaluation leave them out. The
loader refuses a folder with errors, with the same messages ``edgecalc data check`` prints.
"""

from __future__ import annotations

import csv
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from edgecalc.data.png_chunks import png_chunk_problem
from edgecalc.data.preprocess import preprocess_batch, resize_mask

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
#: the folder layout and the required columns of labels.csv
LABELS_FILE = "labels.csv"
IMAGES_DIR = "images"
MASKS_DIR = "masks"
REQUIRED_COLUMNS = ("id", "calcification")
#: the ``calcification`` value of an unlabelled image (see the module docstring)
UNLABELLED = ""
#: optional column: mm per pixel of the image file (isotropic), used for sizes in mm
MM_PER_PX_COLUMN = "mm_per_px"


class DatasetError(ValueError):
    """A data set with errors; the message lists every one (file: reason)."""


@dataclass
class Problem:
    file: str
    reason: str

    def __str__(self) -> str:
        return f"{self.file}: {self.reason}"


@dataclass
class CheckReport:
    """Everything wrong with a data set (errors refuse training, warnings do not) and its summary."""

    path: str
    errors: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    summary: dict = field(default_factory=dict)
    rows: list[dict] = field(default_factory=list)  #: valid rows with resolved ``_image``/``_mask`` paths

    @property
    def ok(self) -> bool:
        return not self.errors

    def error(self, file, reason: str) -> None:
        self.errors.append(Problem(str(file), reason))

    def warn(self, file, reason: str) -> None:
        self.warnings.append(Problem(str(file), reason))


def _truncated(path: Path) -> bool:
    """PNG without its IEND chunk or JPEG without its end marker: cut off while copying."""
    data = path.read_bytes()
    suffix = path.suffix.lower()
    if suffix == ".png":
        return not data.rstrip(b"\x00")[-12:].startswith(b"\x00\x00\x00\x00IEND")
    if suffix in (".jpg", ".jpeg"):
        return not data.rstrip(b"\x00").endswith(b"\xff\xd9")
    return False


def read_image(path: Path) -> tuple[np.ndarray | None, str | None]:
    """(pixels, None) or (None, reason) — never raises for a bad file."""
    try:
        if path.stat().st_size == 0:
            return None, "empty file"
        head = path.open("rb").read(8)
        if path.suffix.lower() == ".png" and head != b"\x89PNG\r\n\x1a\n":
            return None, "unreadable: not a PNG file (bad signature)"
        if _truncated(path):
            return None, "truncated image (no end marker)"
        data = path.read_bytes()
        problem = png_chunk_problem(data)
        if problem is not None:
            return None, f"not decodable: {problem}"
        img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    except OSError as e:
        return None, f"unreadable: {e.strerror or e}"
    except cv2.error as e:  # e.g. a header claiming more pixels than CV_IO_MAX_IMAGE_PIXELS
        return None, f"not decodable: {str(e).strip().splitlines()[-1] if str(e).strip() else 'OpenCV refused it'}"
    if img is None:
        return None, "unreadable or not an image OpenCV can decode"
    return img, None


def _inside(root: Path, rel: str) -> Path | None:
    """``root / rel`` resolved, or None when it leaves ``root`` or is no possible path (NUL byte, too long)."""
    try:
        p = (root / rel).resolve()
        p.relative_to(root.resolve())
    except (ValueError, OSError):
        return None
    return p


def _is_file(p: Path) -> bool:
    try:
        return p.is_file()
    except (OSError, ValueError):  # a name too long for the file system, a NUL byte
        return False


def _find(root: Path, sub: str, sid: str) -> Path | None:
    for ext in IMAGE_EXTS:
        p = root / sub / f"{sid}{ext}"
        if _is_file(p):
            return p
    return None


def check_dataset(path) -> CheckReport:
    """Validate a data-set folder; reports every problem with its file and reason, not just the first."""
    root = Path(path)
    rep = CheckReport(str(root))
    if not root.is_dir():
        rep.error(root, "not a folder")
        return rep
    labels_csv = root / LABELS_FILE
    if not labels_csv.is_file():
        rep.error(labels_csv, "missing (need columns id,calcification)")
        return rep
    try:
        with labels_csv.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            columns = list(reader.fieldnames or [])
            table = list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        rep.error(labels_csv, f"cannot be read as CSV: {e}")
        return rep
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        rep.error(labels_csv, f"missing column(s) {', '.join(missing)}; found {', '.join(columns) or 'none'}")
        return rep
    seen: Counter = Counter((r.get("id") or "").strip() for r in table)
    for sid, c in seen.items():
        if c > 1:
            rep.error(labels_csv, f"duplicate id {sid!r} ({c} rows)")
    listed_images: set[Path] = set()
    sizes: Counter = Counter()
    channels: Counter = Counter()
    n_pos = n_neg = n_masks = n_unlabelled = 0
    done: set[str] = set()
    for line, row in enumerate(table, start=2):
        sid = (row.get("id") or "").strip()
        where = f"{labels_csv}:{line}"
        if not sid:
            rep.error(where, "empty id")
            continue
        if sid in done:
            continue
        done.add(sid)
        lab = (row.get("calcification") or "").strip()
        if lab == UNLABELLED:
            n_unlabelled += 1
            label = None
        elif lab not in ("0", "1"):
            rep.error(where, f"id {sid!r}: label {lab!r} is not 0 or 1")
            label = None
        else:
            label = int(lab)
        # image path: explicit column or images/<id>.<ext>; never outside the folder
        rel = (row.get("path") or "").strip()
        if rel:
            img_path = _inside(root, rel)
            if img_path is None:
                rep.error(where, f"id {sid!r}: path {rel!r} escapes the data-set folder")
                continue
        else:
            if _inside(root, f"images/{sid}") is None or "/" in sid or "\\" in sid:
                rep.error(where, f"id {sid!r} escapes the data-set folder (ids are file names)")
                continue
            img_path = _find(root, IMAGES_DIR, sid)
        if img_path is None or not _is_file(img_path):
            rep.error(where, f"id {sid!r} has no image ({rel or f'images/{sid}.png'} not found)")
            continue
        listed_images.add(img_path.resolve())
        img, why = read_image(img_path)
        if img is None:
            rep.error(img_path, why)
            continue
        sizes[f"{img.shape[1]}x{img.shape[0]}"] += 1
        channels[1 if img.ndim == 2 else img.shape[2]] += 1
        mrel = (row.get("mask_path") or "").strip()
        if mrel:
            mask_path = _inside(root, mrel)
            if mask_path is None:
                rep.error(where, f"id {sid!r}: mask_path {mrel!r} escapes the data-set folder")
                continue
            if not _is_file(mask_path):
                rep.error(where, f"id {sid!r}: mask {mrel!r} not found")
                mask_path = None
        else:
            mask_path = _find(root, MASKS_DIR, sid)
        mask_ok = None
        if mask_path is not None:
            m, why = read_image(mask_path)
            if m is None:
                rep.error(mask_path, why)
            else:
                if m.ndim == 3:
                    m = cv2.cvtColor(m, cv2.COLOR_BGR2GRAY if m.shape[2] == 3 else cv2.COLOR_BGRA2GRAY)
                bad = False
                if m.shape[:2] != img.shape[:2]:
                    rep.error(mask_path, f"mask size {m.shape[1]}x{m.shape[0]} differs from the image's "
                                         f"{img.shape[1]}x{img.shape[0]}")
                    bad = True
                vals = np.unique(m)
                if not set(vals.tolist()) <= {0, 255}:
                    shown = ", ".join(str(v) for v in vals[:6]) + (" ..." if len(vals) > 6 else "")
                    rep.error(mask_path, f"mask is not binary 0/255 (values {shown})")
                    bad = True
                if not bad:
                    n_masks += 1
                    mask_ok = mask_path
                    if label == 1 and not m.any():
                        rep.warn(mask_path, "positive (calcification=1) with an empty mask")
                    if label == 0 and m.any():
                        rep.warn(mask_path, f"negative (calcification=0) with a non-empty mask ({int((m > 0).sum())} px)")
        if label is None:
            continue
        n_pos += label == 1
        n_neg += label == 0
        rep.rows.append(dict(row, id=sid, _image=str(img_path), _mask=str(mask_ok) if mask_ok else None))
    # the reverse: images (and masks) no row of labels.csv names
    img_dir = root / IMAGES_DIR
    if img_dir.is_dir():
        for p in sorted(img_dir.iterdir()):
            if p.is_file() and p.suffix.lower() in IMAGE_EXTS and p.resolve() not in listed_images:
                rep.error(p, "image has no row in labels.csv")
    mask_dir = root / MASKS_DIR
    if mask_dir.is_dir():
        for p in sorted(mask_dir.iterdir()):
            if p.is_file() and p.suffix.lower() in IMAGE_EXTS and p.stem not in seen:
                rep.warn(p, "mask has no row in labels.csv")
    if n_unlabelled:
        rep.warn(labels_csv, f"{n_unlabelled} row(s) without a label (empty calcification: unlabelled); "
                             "training and evaluation leave them out")
    n = n_pos + n_neg
    rep.summary = {
        "rows": len(table), "images": n, "positive": int(n_pos), "negative": int(n_neg),
        "positive_share": round(n_pos / n, 4) if n else None, "unlabelled": n_unlabelled, "masks": n_masks,
        "image_sizes": dict(sizes.most_common()), "channels": {str(k): v for k, v in channels.items()},
        "extra_columns": [c for c in columns if c not in REQUIRED_COLUMNS],
        "patients": len({(r.get("patient") or "").strip() for r in rep.rows} - {""}) if "patient" in columns else 0,
        "errors": len(rep.errors), "warnings": len(rep.warnings),
    }
    return rep


def load_dataset(path, size: int = 192):
    """Load for training: ``(ids, images float32 N×1×S×S, masks, labels int64 N, table)``.

    ``masks`` is a list of uint8 S×S {0, 1} arrays (``preprocess.resize_mask``) or None where an
    image has no mask; ``table`` the labels.csv rows. Raises DatasetError listing every error.
    """
    rep = check_dataset(path)
    if rep.errors:
        msg = "\n".join(str(e) for e in rep.errors)
        raise DatasetError(f"data set {path} has {len(rep.errors)} error(s):\n{msg}")
    if not rep.rows:
        raise DatasetError(f"data set {path} has no labelled image (calcification 0 or 1)")
    ids, imgs, masks, labels, table = [], [], [], [], []
    for row in rep.rows:
        img, _ = read_image(Path(row["_image"]))
        imgs.append(img)
        m = None
        if row["_mask"]:
            mm, _ = read_image(Path(row["_mask"]))
            m = resize_mask(mm, size)
        masks.append(m)
        ids.append(row["id"])
        labels.append(int(row["calcification"]))
        table.append({k: v for k, v in row.items() if not k.startswith("_")})
    return ids, preprocess_batch(imgs, size), masks, np.asarray(labels, dtype=np.int64), table


def _sizes_text(sizes: dict[str, int]) -> str:
    """The size histogram when short; for many distinct sizes (real crops) the range and median side."""
    if len(sizes) <= 6:
        return str(sizes)
    sides = sorted(int(k.split("x")[0]) * int(k.split("x")[1]) for k, n in sizes.items() for _ in range(n))
    side = [round(v ** 0.5) for v in sides]
    return f"{len(sizes)} distinct, {side[0]}..{side[-1]} px (median {side[len(side) // 2]} px, as sqrt of the area)"


def format_report(rep: CheckReport) -> str:
    """Plain-text report: summary, then every error and warning with file and reason."""
    s = rep.summary
    lines = [f"data set: {rep.path}"]
    if s:
        lines.append(f"images: {s['images']} (positive {s['positive']}, negative {s['negative']}, "
                     f"positive share {s['positive_share']})"
                     + (f"; unlabelled: {s['unlabelled']}" if s.get("unlabelled") else ""))
        lines.append(f"masks: {s['masks']}   sizes: {_sizes_text(s['image_sizes'])}   channels: {s['channels']}")
        if s["extra_columns"]:
            lines.append(f"extra columns: {', '.join(s['extra_columns'])}")
        if s.get("patients"):
            lines.append(f"patients: {s['patients']} (cross-validation folds and bootstrap intervals are grouped by patient)")
        if s["images"] and not s["masks"]:
            lines.append("no pixel masks: train with image labels only (--mask-fraction 0), fine-tune (--init-weights) "
                         "or sim-to-real (--stage1-data PHANTOM_DIR / --stage1-weights); see docs/real-data.md")
    lines += [f"ERROR   {e}" for e in rep.errors] + [f"WARNING {w}" for w in rep.warnings]
    lines.append(f"{len(rep.errors)} error(s), {len(rep.warnings)} warning(s): "
                 + ("OK" if rep.ok else "NOT usable for training"))
    return "\n".join(lines)
