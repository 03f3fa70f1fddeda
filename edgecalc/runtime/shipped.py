"""Where the package keeps what it ships: the default bundle (made by `edgecalc export` from the shipped
weights), so `edgecalc live` / `demo` / `bench` work in the base install, without torch, and the
nodule locator (``ASSETS_DIR / "locator"``, read by ``runtime/locate/learned.py``)."""

from __future__ import annotations

from pathlib import Path

ASSETS_DIR = Path(__file__).resolve().parents[1] / "assets"
SHIPPED_BUNDLE = ASSETS_DIR / "bundle"


def default_bundle_dir() -> Path | None:
    """The shipped bundle folder, or None when this build of the package carries none."""
    return SHIPPED_BUNDLE if (SHIPPED_BUNDLE / "manifest.json").is_file() else None


def resolve_bundle(bundle: str | Path | None) -> Path:
    """`--bundle` or the shipped one; FileNotFoundError says how to make one when neither exists."""
    if bundle is not None:
        return Path(bundle)
    found = default_bundle_dir()
    if found is None:
        raise FileNotFoundError("this edgecalc carries no default bundle yet; make one with "
                                "`edgecalc export WEIGHTS --out BUNDLE` and pass --bundle BUNDLE")
    return found
