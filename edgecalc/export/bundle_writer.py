"""Write a bundle into a temporary folder beside ``--out`` and rename it into place at the end.

An error or Ctrl-C mid-export leaves no partial bundle: the temporary folder is removed and an
existing bundle at ``--out`` is untouched. An existing bundle is replaced only once the new one is
complete; a folder at ``--out`` that is not a bundle is never overwritten.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from edgecalc.runtime.bundle import MANIFEST_NAME

PARTIAL_TAG = ".partial-"


class BundleWriteError(RuntimeError):
    """``--out`` cannot take a bundle (the message names the path)."""


def is_bundle(folder: Path) -> bool:
    return (folder / MANIFEST_NAME).is_file()


def check_destination(out: Path, ours: Callable[[Path], bool] = is_bundle, what: str = "an edgecalc bundle") -> None:
    """Refuse a file, or a non-empty folder that is not ours (``ours``), at ``out``."""
    if out.exists() and not out.is_dir():
        raise BundleWriteError(f"{out} is a file, not a folder")
    if out.is_dir() and any(out.iterdir()) and not ours(out):
        raise BundleWriteError(f"{out} is a non-empty folder that is not {what}: not overwriting it; "
                               "choose another folder or remove it")


@contextmanager
def staged_folder(out: str | Path, ours: Callable[[Path], bool] = is_bundle,
                  what: str = "an edgecalc bundle") -> Iterator[Path]:
    """Yield a fresh temporary folder beside ``out``; on success it becomes ``out`` (replacing ours there)."""
    out = Path(out)
    check_destination(out, ours, what)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}{PARTIAL_TAG}", dir=out.parent))
    os.chmod(tmp, 0o755)  # mkdtemp's 0700 would hide the bundle from the cart's service user
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    try:
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
            os.replace(out, old / "bundle")
            os.replace(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
