"""Atomic file writes, the one implementation every stage uses.

A file that matters (weights, manifests, data sets, reports) is written to a temporary file in the
same folder and renamed over the target, so a crash or Ctrl-C leaves the old file or the new one,
never half of either. The temporary file is fsynced before the rename and the folder after it, so a
power loss, which drops what is only in the page cache, leaves that too (as far as the disk honours
fsync; docs/reliability.md says what the test of it proves). Files come out 0644 (mkstemp's 0600
would hide them from a cart's service user). Standard library only: the torch-free runtime uses it too.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any, Callable


def atomic_write(path: str | os.PathLike, write: Callable[[Path], None], mode: int = 0o644) -> Path:
    """Call ``write(tmp_path)`` on a temporary file beside ``path``, then rename it into place.

    The temporary file keeps ``path``'s suffix, so writers that pick a format by extension
    (cv2.imwrite, torch.onnx.export) work. On any error the temporary file is removed.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".tmp{path.suffix}", dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, mode)
        sync_file(Path(tmp))  # the data on disk before the name points at it
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    sync_file(path.parent)  # the rename itself
    return path


def sync_file(path: str | os.PathLike) -> None:
    """fsync a file or a folder by its path: data written through any handle (OpenCV's writers, a
    ``write`` callback) sits in the page cache, which survives a SIGKILL but not a power loss."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _temp_name(name: str = ".+", suffix: str = r"(\.[^./]*)?") -> re.Pattern[str]:
    """The temporary names ``atomic_write`` makes, ``.<target name>.<mkstemp random>.tmp<target suffix>``,
    for targets matching the regexes ``name`` and ``suffix`` (default: any target)."""
    return re.compile(rf"^\.{name}\.[A-Za-z0-9_]+\.tmp{suffix}$")


def _remove_temps(candidates: list[Path], pattern: re.Pattern[str]) -> list[Path]:
    removed = []
    for p in candidates:
        if p.is_file() and pattern.match(p.name):
            p.unlink(missing_ok=True)
            removed.append(p)
    return removed


def remove_stale_temps(folder: str | os.PathLike) -> list[Path]:
    """Delete the temporary files that killed ``atomic_write`` calls left anywhere under ``folder``.

    A SIGKILL between the temporary file's creation and its rename leaves it behind (nothing else can
    remove it). Call this only where no write to ``folder`` is in flight: e.g. when a run resumes.
    Returns what was removed.
    """
    return _remove_temps(sorted(Path(folder).rglob(".*.tmp*")), _temp_name())


def remove_stale_temps_of(path: str | os.PathLike) -> list[Path]:
    """Delete the temporary files that killed ``atomic_write(path, ...)`` calls left beside ``path``, and no
    other file's (a folder a user shares with other writers: a recording joined into it). Same caveat as
    `remove_stale_temps`: only where no write to ``path`` is in flight. Returns what was removed."""
    path = Path(path)
    candidates = sorted(path.parent.glob(".*.tmp*")) if path.parent.is_dir() else []
    return _remove_temps(candidates, _temp_name(re.escape(path.name), re.escape(path.suffix)))


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    return atomic_write(path, lambda p: p.write_bytes(data))


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write(path, lambda p: p.write_text(text, encoding="utf-8"))


def atomic_write_json(path: str | os.PathLike, doc: Any, indent: int = 2) -> Path:
    return atomic_write_text(path, json.dumps(doc, indent=indent, default=str) + "\n")


def atomic_write_png(path: str | os.PathLike, image) -> Path:
    """Encode an image as PNG with OpenCV and write it atomically; OSError if it cannot be encoded."""
    import cv2

    ok, buf = cv2.imencode(".png", image)
    if not ok:
        raise OSError(f"could not encode {path} as PNG")
    return atomic_write_bytes(path, buf.tobytes())
