"""The bodies of ``edgecalc data phantom | import-dicom | check`` (the CLI only parses options).

Each takes the console the CLI prints errors on and raises :class:`CommandError` on bad input; the
return value is the exit code.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgecalc.errors import CommandError


def phantom_command(console: Any, out: str, n: int, positive: int, size: int, frames: bool, video: bool, dicom: bool,
                    seed: int, workers: int, config: str | None, sets: list[str] | None) -> None:
    """Generate the phantom data set; the overrides (``--config`` JSON, then ``--set``) checked before any work."""
    import json
    import time

    from edgecalc.data.phantom import write_phantom_dataset
    from edgecalc.data.phantom.config import config_with

    if not 0 <= positive <= n:
        raise CommandError(f"--positive {positive} must lie between 0 and --n {n}")
    overrides = None
    if config:
        try:
            overrides = json.loads(Path(config).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise CommandError(f"--config: cannot read {config}: {exc}") from exc
    try:
        cfg = config_with(overrides, sets)
    except ValueError as exc:
        raise CommandError(f"--config/--set: {exc}") from exc
    t0 = time.perf_counter()
    if dicom:
        from edgecalc.data.dicom import DicomError, require_pydicom

        try:
            require_pydicom("--dicom")
        except DicomError as exc:
            raise CommandError(str(exc)) from exc
    try:
        path = write_phantom_dataset(out, n=n, positive=positive, size=size, seed=seed, frames=frames, video=video,
                                     progress=True, workers=workers or None, config=cfg, dicom=dicom)
    except OSError as exc:  # a full disk or a read-only --out: labels.csv (written last) is absent, data check refuses it
        raise CommandError(f"cannot write the data set to {out}: {exc}; it is incomplete (no labels.csv)") from exc
    print(f"wrote {n} crops ({positive} with calcification) to {path} in {time.perf_counter() - t0:.1f} s")
    if dicom:
        print(f"wrote {Path(path) / 'cine.dcm'}")


def import_dicom_command(console: Any, src: Path, out: Path, every: int) -> int:
    """Import the frames of DICOM files into a new data set; exit 0 when a frame was written, 1 when none was."""
    from rich.markup import escape
    from rich.progress import Progress

    from edgecalc.data.dataset import LABELS_FILE
    from edgecalc.data.dicom import DicomError, require_pydicom
    from edgecalc.data.dicom_import import find_dicom_files, import_dicom

    try:
        require_pydicom("data import-dicom")
        paths = find_dicom_files(src)
        if (out / LABELS_FILE).exists():
            raise ValueError(f"{out / LABELS_FILE} exists: import into a new folder")
    except (DicomError, ValueError, FileNotFoundError) as exc:
        raise CommandError(str(exc)) from exc
    if not paths:
        raise CommandError(f"no DICOM file under {src}", code=1)
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("importing", total=len(paths))
        rep = import_dicom(src, out, every=every, paths=paths, on_file=lambda p: progress.advance(task))
    for reason in rep.skipped:
        console.print(f"[yellow]skipped[/yellow] {escape(reason)}")
    console.print(escape(f"{rep.frames} frame(s) from {rep.files} file(s) ({rep.with_spacing} with a known spacing) "
                         f"-> {out}; {len(rep.skipped)} skipped; labels empty (unlabelled): check with "
                         f"`edgecalc data check {out}`"))
    return 0 if rep.frames else 1


def check_command(console: Any, path: str, as_json: bool) -> int:
    """Validate a data set and print the report (text or JSON) on stdout; exit 1 on errors."""
    from edgecalc.data.dataset import check_dataset, format_report

    rep = check_dataset(path)
    if as_json:
        import json

        print(json.dumps({"path": rep.path, "ok": rep.ok, "summary": rep.summary,
                          "errors": [vars(e) for e in rep.errors],
                          "warnings": [vars(w) for w in rep.warnings]}, indent=2))
    else:
        print(format_report(rep))
    return 0 if rep.ok else 1
