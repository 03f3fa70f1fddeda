"""``edgecalc sweep``: the paper's Table 1 and Fig. 7 on your data — train + eval per mask fraction and fold.

Each (fraction, fold) is an ordinary run folder ``OUT/p<fraction>/fold<k>``: a finished one is
reused, an interrupted one resumed, so re-running the same command completes a sweep. The table
(``OUT/table1.md``) gives accuracy, sensitivity, specificity and AUC per fraction as mean ± std over
the folds run (std needs two folds), and the paired per-fold differences of every fraction against the
kit's default p (the paper's claim is about p = 30 % against 10 % and 100 %: paired on the same test
images, a fold-to-fold spread does not hide a consistent gap); ``OUT/roc.png`` one ROC curve per
fraction (test scores of all folds pooled); ``OUT/sweep.json`` every number behind them.

``collect_only`` (``--collect-only``) trains nothing: it writes the table from what the run folders
already hold (``metrics.json``, ``eval/scores.npz``, ``config.json``), so folds trained on other
machines or in other sessions can be gathered without their weights.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
from rich.markup import escape

from edgecalc.run_folder import (CONFIG_FILE, RUN_FIGURES, eval_dir, holds_run, is_finished, read_metrics, read_scores,
                                 require_figures)

METRICS = ("accuracy", "sensitivity", "specificity", "auc")


def run_dir_for(out: Path, fraction: float, fold: int) -> Path:
    return out / f"p{fraction:g}" / f"fold{fold}"


def fraction_label(fraction: float) -> str:
    """How a fraction is named in the table, the ROC legend and the paired differences."""
    return f"p = {fraction:.0%}"


def reference_fraction(fractions: Sequence[float]) -> float:
    """The fraction the paired differences are taken against: the kit's default p when swept, else the largest."""
    from edgecalc.train.config import TRAIN_DEFAULTS

    default = float(TRAIN_DEFAULTS["mask_fraction"])
    return next((f for f in fractions if abs(f - default) < 1e-9), max(fractions))


def paired_by_fraction(results: dict[float, list[dict[str, Any]]]) -> tuple[str, dict[str, Any]] | None:
    """Per fraction: fold-by-fold differences against :func:`reference_fraction` (compare's paired
    differences, the folds matched by number), or None with fewer than two fractions."""
    from edgecalc.eval.paired import paired_differences

    if len(results) < 2:
        return None
    ref = fraction_label(reference_fraction(list(results)))
    summary = {"methods": {fraction_label(f): {"per_fold": [{"fold": r["fold"], **r["test"]} for r in runs]}
                           for f, runs in sorted(results.items())}}
    return ref, paired_differences(summary, ref)


def _mean_std(values: Sequence[float]) -> tuple[float, float | None]:
    v = np.asarray(values, dtype=np.float64)
    return float(v.mean()), (float(v.std(ddof=1)) if v.size > 1 else None)


def format_table(results: dict[float, list[dict[str, Any]]], n_train: dict[float, list[int]] | None = None) -> str:
    """Markdown: one row per fraction, ``mean ± std`` (or the single value) per metric."""
    lines = ["| pixel masks p | folds | masks in stage one | accuracy | sensitivity | specificity | AUC |",
             "|---|---|---|---|---|---|---|"]
    for frac in sorted(results):
        runs = results[frac]
        cells = []
        for m in METRICS:
            mean, std = _mean_std([r["test"][m] for r in runs])
            cells.append(f"{mean:.3f}" if std is None else f"{mean:.3f} ± {std:.3f}")
        masks = ", ".join(str(r["n_masks_stage1"]) for r in runs)
        lines.append(f"| {frac:.0%} | {len(runs)} | {masks} | " + " | ".join(cells) + " |")
    # the precision it trained in: `--precision auto` is bf16 on a CPU with native bf16, float32 elsewhere,
    # so runs of one sweep spread over machines may differ; the paired differences stay within a fold
    lines += ["", "Per run (test fold of each):", "",
              "| pixel masks p | run | accuracy | sensitivity | specificity | AUC | Dice (positives) | best stage-two epoch | trained in |",
              "|---|---|---|---|---|---|---|---|---|"]
    for frac in sorted(results):
        for r in results[frac]:
            t = r["test"]
            dice = "-" if t.get("dice_positives") is None else f"{t['dice_positives']:.3f}"
            lines.append(f"| {frac:.0%} | {r.get('run_dir', '')} | {t['accuracy']:.3f} | {t['sensitivity']:.3f} | "
                         f"{t['specificity']:.3f} | {t['auc']:.3f} | {dice} | {r.get('best_epoch_stage2', '-')} | "
                         f"{r.get('precision') or '-'} |")
    return "\n".join(lines) + "\n"


def check_same_recipe(run_dir: Path, wanted: Any) -> None:
    """Refuse to reuse or resume a run folder trained with other settings (device and progress aside)."""
    from edgecalc.train.config import TrainConfig

    if not holds_run(run_dir):
        return
    have = TrainConfig.read(run_dir / CONFIG_FILE).to_dict()
    want = wanted.to_dict()
    diff = [k for k in want if k not in ("device", "progress") and have.get(k) != want[k]]
    if diff:
        shown = ", ".join(f"{k}: run {have.get(k)!r} vs asked {want[k]!r}" for k in diff)
        raise ValueError(f"{run_dir} was trained with other settings ({shown}); use another --out or the same options")


def run_sweep(data: str | Path, fractions: Sequence[float], out: str | Path, fold_ids: Sequence[int],
              console: Any = None, collect_only: bool = False, **train_options: Any) -> dict[str, Any]:
    """Train (or reuse/resume) every (fraction, fold) run, then write table1.md, roc.png and sweep.json;
    with ``collect_only`` only read the runs' figures (see the module docstring)."""
    from edgecalc.eval.paired import format_paired
    from edgecalc.eval.figures import roc_figure
    from edgecalc.eval.metrics import roc_auc, roc_curve
    from edgecalc.atomic import atomic_write_json, atomic_write_text
    from edgecalc.train.config import TrainConfig
    from edgecalc.train.run import resume_training, run_training

    out = Path(out)
    recipe = train_options.pop("recipe", None) or "cpu"

    def config(frac: float, fold: int) -> TrainConfig:
        return TrainConfig.for_recipe(recipe, data=str(data), mask_fraction=frac, fold=fold, **train_options)

    for frac in fractions:  # settings checked up front, before hours of training
        config(frac, fold_ids[0])
    results: dict[float, list[dict[str, Any]]] = {}
    curves = {}
    for frac in fractions:
        results[frac] = []
        ys, ss = [], []
        for fold in fold_ids:
            run_dir = run_dir_for(out, frac, fold)
            wanted = config(frac, fold)
            check_same_recipe(run_dir, wanted)
            if collect_only:
                require_figures(run_dir, RUN_FIGURES)
            elif is_finished(run_dir):
                if console is not None:
                    console.print(f"p = {frac:g}, fold {fold}: finished run {escape(str(run_dir))} reused")
            elif holds_run(run_dir):
                if console is not None:
                    console.print(f"p = {frac:g}, fold {fold}: resuming {escape(str(run_dir))}")
                resume_training(run_dir, console=console)
            else:
                if console is not None:
                    console.print(f"p = {frac:g}, fold {fold}: training into {escape(str(run_dir))}")
                run_training(wanted, run_dir, console=console)
            metrics = read_metrics(run_dir)
            metrics["run_dir"] = str(run_dir)
            metrics["fold"] = fold
            results[frac].append(metrics)
            scores = read_scores(eval_dir(run_dir))
            ys.append(scores["labels"])
            ss.append(scores["scores"])
        y, s = np.concatenate(ys), np.concatenate(ss)
        fpr, tpr, _ = roc_curve(y, s)
        curves[fraction_label(frac)] = (fpr, tpr, roc_auc(y, s))
    table = format_table(results)
    paired = paired_by_fraction(results)
    if paired is not None:
        table += format_paired(paired[1], paired[0])
    atomic_write_text(out / "table1.md", table)
    roc_figure(curves, out / "roc.png", title="CS-AGnet ROC per pixel-mask fraction (test folds pooled)")
    summary = {
        "data": str(data), "fractions": list(fractions), "folds": list(fold_ids), "recipe": recipe, "train_options": train_options,
        "results": {f"{k:g}": v for k, v in results.items()},
        "pooled_auc": {name: c[2] for name, c in curves.items()},
        "paired": None if paired is None else {"reference": paired[0], "differences": paired[1]},
    }
    atomic_write_json(out / "sweep.json", summary)
    if console is not None:
        console.print(escape(table))  # it names every run folder
        console.print(escape(f"wrote {out / 'table1.md'}, {out / 'roc.png'}, {out / 'sweep.json'}"))
    return summary
