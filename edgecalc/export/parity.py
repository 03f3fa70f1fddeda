"""Parity report: every artifact against eager float32 on a held-out phantom set.

The phantom crops use seeds disjoint from the phantom calibration set (``PARITY_SEED_BASE``), so an
INT8 model is never judged on the images it was calibrated on. Per artifact: max / mean abs
difference of ``score`` and ``mask`` from eager, AUC of ``score`` against the labels, Dice of the
mask thresholded at 0.5 against the phantom's ground truth (pooled over the set), and the fraction
of images whose decision (score >= threshold) agrees with eager. Every artifact the cart can load is
run through the runtime's own backend (``backend_runner``), so a bug there fails the export; an ONNX
model through every CPU engine that can load it (``onnx_checks``: onnxruntime and OpenVINO), as the
cart's ``--backend auto`` may pick either. A backend that cannot run here gets a row that says why.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from edgecalc.calibration.calibration_set import PARITY_SEED_BASE, phantom_pool
from edgecalc.runtime.engine.backends import BackendUnavailable
from edgecalc.runtime.engine.bundle import Bundle, BundleError
from edgecalc.runtime.engine.formats import EXACT_PARITY, ONNX_CPU_BACKENDS

#: TorchScript and float32 ONNX must match eager this closely (score, mask and attention).
EXACT_TOLERANCE = 1e-4


@dataclass
class ParitySet:
    ids: list[str]
    images: np.ndarray
    masks: np.ndarray
    labels: np.ndarray


def parity_set(size: int, n: int = 64, seed_base: int = PARITY_SEED_BASE) -> ParitySet:
    """``n`` held-out phantom crops, half with calcifications."""
    ids, images, masks, labels = phantom_pool(n, seed_base, size)
    return ParitySet(ids, images, masks, labels)


def auc(labels: np.ndarray, scores: np.ndarray) -> float | None:
    """ROC AUC (``edgecalc.eval.metrics.roc_auc``), None when only one class is present."""
    from edgecalc.eval.metrics import roc_auc

    if len(np.unique(labels)) < 2:
        return None
    return roc_auc(labels, scores)


def dice(pred: np.ndarray, truth: np.ndarray) -> float:
    """Pooled Dice of two binary arrays (1.0 when both are empty)."""
    p, t = pred.astype(bool), truth.astype(bool)
    denom = p.sum() + t.sum()
    return 1.0 if denom == 0 else float(2.0 * (p & t).sum() / denom)


@dataclass
class ParityRow:
    artifact: str
    backend: str
    precision: str
    score_max_abs: float
    score_mean_abs: float
    mask_max_abs: float
    mask_mean_abs: float
    attention_max_abs: float
    auc: float | None
    dice: float
    decision_agreement: float
    status: str = "ran"


def compare(name: str, backend: str, precision: str, ref: list[np.ndarray], got: list[np.ndarray],
            data: ParitySet, threshold: float) -> ParityRow:
    """One row: ``got`` = (mask, score, attention) of an artifact vs ``ref`` from eager."""
    (rm, rs, ra), (gm, gs, ga) = ref, got
    ds, dm = np.abs(gs - rs), np.abs(gm - rm)
    return ParityRow(
        name, backend, precision, float(ds.max()), float(ds.mean()), float(dm.max()), float(dm.mean()),
        float(np.abs(ga - ra).max()), auc(data.labels, gs[:, 0]), dice(gm[:, 0] >= 0.5, data.masks),
        float(np.mean((gs[:, 0] >= threshold) == (rs[:, 0] >= threshold))),
    )


def skipped_row(name: str, backend: str, precision: str, why: str) -> ParityRow:
    nan = float("nan")
    return ParityRow(name, backend, precision, nan, nan, nan, nan, nan, None, nan, nan, status=f"not run: {why}")


#: An artifact as parity runs it: images in, the outputs in the manifest's order out.
Runner = Callable[[np.ndarray], list[np.ndarray]]


def backend_runner(bundle: Bundle, backend: str, precision: str) -> Runner:
    """The bundle's artifact opened by the runtime's own backend (``open_for_bundle``, the code the cart runs).

    Opened now, so a backend that cannot run here raises ``BackendUnavailable`` before parity starts;
    the returned runner infers in batches the engine accepts (a TensorRT profile's maximum), returns
    the outputs in the manifest's order and closes the engine: it runs once.
    """
    from edgecalc.runtime.engine.select import open_for_bundle

    engine = open_for_bundle(bundle, backend, precision)
    names = [o["name"] for o in bundle.manifest.outputs]
    limit = getattr(engine, "max_input_shape", (None,))[0]

    def run(images: np.ndarray) -> list[np.ndarray]:
        step = int(limit or len(images))
        with engine:
            parts = [engine.infer(images[i:i + step]) for i in range(0, len(images), step)]
        return [np.concatenate([p[n] for p in parts]) for n in names]

    return run


def onnx_checks(file: str, precision: str) -> list[tuple[str, str, str]]:
    """(file, backend, precision) for every CPU engine of the cart that loads ONNX models (``ONNX_CPU_BACKENDS``)."""
    return [(file, backend, precision) for backend in ONNX_CPU_BACKENDS]


def open_runners(bundle: Bundle, checked: list[tuple[str, str, str]]) -> tuple[list[tuple[str, str, str, Runner]],
                                                                              list[ParityRow]]:
    """``backend_runner`` for each (file, backend, precision); the ones that cannot run here as skipped rows.

    A backend that is not installed or cannot run here (``BackendUnavailable``) is skipped with its
    reason, unless its row must reproduce eager (``EXACT_PARITY``: ParityError, the export is
    refused). A backend that cannot load a file another backend opened (``BundleError``: e.g. an op
    OpenVINO lacks) is skipped with its message: the file is sound, this engine cannot run it. A file
    no backend opens is broken, and that BundleError propagates.
    """
    from edgecalc.export.verify import ParityError

    runners: list[tuple[str, str, str, Runner]] = []
    skipped: list[tuple[str, str, str, BundleError]] = []
    rows: list[ParityRow] = []
    for name, backend, precision in checked:
        try:
            runners.append((name, backend, precision, backend_runner(bundle, backend, precision)))
        except BackendUnavailable as exc:  # e.g. no OpenVINO, or an engine built here but no cuda-python to run it
            if (backend, precision) in EXACT_PARITY:  # these must be checked, never skipped
                raise ParityError(f"export refused: {name} cannot be checked: {exc}") from exc
            rows.append(skipped_row(name, backend, precision, str(exc)))
        except BundleError as exc:
            skipped.append((name, backend, precision, exc))
    opened = {name for name, *_ in runners}
    for name, backend, precision, exc in skipped:
        if name not in opened or (backend, precision) in EXACT_PARITY:
            raise exc
        rows.append(skipped_row(name, backend, precision, f"{backend} cannot load it: {exc}"))
    return runners, rows


def run_parity(ref: list[np.ndarray], runners: list[tuple[str, str, str, Runner]],
               data: ParitySet, threshold: float) -> list[ParityRow]:
    """Eager row first, then one row per (name, backend, precision, run) runner."""
    rows = [compare("eager", "pytorch", "fp32", ref, ref, data, threshold)]
    for name, backend, precision, run in runners:
        rows.append(compare(name, backend, precision, ref, run(data.images), data, threshold))
    return rows


def exact_failures(rows: list[ParityRow]) -> list[str]:
    """Rows of TorchScript / float32 ONNX beyond ``EXACT_TOLERANCE`` (export must fail on any)."""
    bad = []
    for r in rows:
        if (r.backend, r.precision) in EXACT_PARITY and r.status == "ran":
            worst = max(r.score_max_abs, r.mask_max_abs, r.attention_max_abs)
            if not worst <= EXACT_TOLERANCE:
                bad.append(f"{r.artifact} differs from eager by {worst:.3g} (> {EXACT_TOLERANCE:g})")
    return bad


def write_parity(path: str | Path, rows: list[ParityRow], data: ParitySet, threshold: float) -> None:
    """``parity.json``: the set (ids, class counts), the threshold, the machine it ran on and the rows.

    The machine's int8 class matters: an engine's INT8 row speaks for CPUs of that class only
    (``runtime.engine.select.parity_rejections``).
    """
    from edgecalc.machine import cpu_name, int8_dot_class

    doc = {"set": {"source": "phantom (held out from calibration)", "size": len(data.ids),
                   "positives": int(data.labels.sum()), "ids": data.ids},
           "threshold": threshold, "dice_threshold": 0.5,
           "machine": {"cpu": cpu_name(), "int8_dot": int8_dot_class()},
           "rows": [{k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in asdict(r).items()}
                    for r in rows]}
    Path(path).write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")


def render_table(rows: list[ParityRow], console=None) -> None:
    """Print the rows with rich."""
    from rich.console import Console
    from rich.table import Table

    def f(v, spec=".2e"):
        return "-" if v is None or (isinstance(v, float) and np.isnan(v)) else format(v, spec)

    t = Table(title="parity against eager float32 (held-out phantom set)", title_justify="left")
    for col in ("artifact", "backend", "score max|d|", "score mean|d|", "mask max|d|", "mask mean|d|",
                "AUC", "Dice", "agree"):
        t.add_column(col, no_wrap=True)
    for r in rows:
        t.add_row(r.artifact, r.backend, f(r.score_max_abs), f(r.score_mean_abs), f(r.mask_max_abs),
                  f(r.mask_mean_abs), f(r.auc, ".4f"), f(r.dice, ".4f"), f(r.decision_agreement, ".3f"))
    console = console or Console()
    console.print(t)
    for r in rows:
        if r.status != "ran":
            console.print(f"{r.artifact} ({r.backend}): {r.status}", markup=False)
