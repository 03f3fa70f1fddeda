"""Write a bundle into a temporary folder beside ``--out`` and rename it into place at the end.

An error or Ctrl-C mid-export leaves no partial bundle: the temporary folder is removed and an
existing bundle at ``--out`` is untouched. An existing bundle is replaced only once the new one is
complete; a folder at ``--out`` that is not a bundle is never overwritten. A process killed outright
(SIGKILL, SIGTERM, power loss) cannot clean up: its hidden staging folder stays beside ``--out``
(never at it) and the next export to the same ``--out`` removes it. A full disk or a read-only
folder is a ``BundleWriteError`` naming the path.
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from edgecalc.runtime.engine.bundle import MANIFEST_NAME

PARTIAL_TAG = ".partial-"
OLD_TAG = ".old-"
#: errno values that mean "this folder cannot take the files" (full, over quota, read-only, no permission).
WRITE_ERRNOS = {errno.ENOSPC, errno.EFBIG, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM}


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


def remove_leftovers(out: Path) -> list[Path]:
    """Remove staging folders a killed export left beside ``out`` (``.NAME.partial-*``, ``.NAME.old-*``)."""
    gone = []
    if out.parent.is_dir():
        for p in out.parent.iterdir():
            if p.is_dir() and not p.is_symlink() and (p.name.startswith(f".{out.name}{PARTIAL_TAG}")
                                                      or p.name.startswith(f".{out.name}{OLD_TAG}")):
                shutil.rmtree(p, ignore_errors=True)
                gone.append(p)
    return gone


def _write_error(out: Path, exc: OSError) -> BundleWriteError:
    where = exc.filename or out.parent.resolve()
    return BundleWriteError(f"cannot write the bundle {out} (in {where}): {exc.strerror or exc}")


@contextmanager
def staged_folder(out: str | Path, ours: Callable[[Path], bool] = is_bundle,
                  what: str = "an edgecalc bundle") -> Iterator[Path]:
    """Yield a fresh temporary folder beside ``out``; on success it becomes ``out`` (replacing ours there)."""
    out = Path(out)
    check_destination(out, ours, what)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        remove_leftovers(out)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}{PARTIAL_TAG}", dir=out.parent))
        os.chmod(tmp, 0o755)  # mkdtemp's 0700 would hide the bundle from the cart's service user
    except OSError as exc:
        raise _write_error(out, exc) from exc
    try:
        yield tmp
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if exc.errno in WRITE_ERRNOS:
            raise _write_error(out, exc) from exc
        raise
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    try:
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}{OLD_TAG}", dir=out.parent))
            os.replace(out, old / "bundle")
            os.replace(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
