"""``edgecalc eval``: a run's final weights (or the shipped default) on a data set or the run's test split.

Writes ``metrics.json`` (accuracy, sensitivity, specificity, AUC with calcification positive,
Dice and IoU of the masks on the positives that have a true mask, the confusion matrix, the share
of positives whose Grid-AG 3 map peaks inside the calcification mask dilated by 1 mm:
``attention_hit_rate_grid_ag3``, see ``edgecalc.eval.attention``),
``roc.png`` and ``attention.png`` (input, true mask, the three Grid-AG maps, predicted mask and
score for a few positives and negatives), and prints a table.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from edgecalc.eval.attention import METRIC_KEY as ATTENTION_KEY
from edgecalc.eval.attention import dilation_for, hit_rate_metrics
from edgecalc.eval.figures import attention_figure, roc_figure
from edgecalc.eval.metrics import bootstrap_ci, classification_report, dice_per_image, iou_per_image, roc_auc, roc_curve
from edgecalc.eval.predict import predict
from edgecalc.eval.subgroups import format_subgroups, patient_groups, subgroup_figures
from edgecalc.model.provenance import Fitted, fitted_from_run, read_fitted
from edgecalc.run_folder import METRICS_FILE, SPLIT_FILE, eval_dir, final_weights, read_config, read_split, write_metrics, write_scores

N_EXAMPLES = 3  #: positives and negatives each in the attention figure


def load_eval_data(path: str | Path, size: int) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(ids, images, masks (N,1,S,S) {0,1} float32, has_mask, labels) of a data-set folder at ``size``."""
    from edgecalc.data.dataset import load_dataset

    ids, images, masks, labels, _ = load_dataset(path, size)
    has_mask = np.array([m is not None for m in masks])
    arr = np.zeros((len(ids), 1, size, size), np.float32)
    for i, m in enumerate(masks):
        if m is not None:
            arr[i, 0] = np.asarray(m) > 0
    return list(ids), np.asarray(images, np.float32), arr, has_mask, np.asarray(labels, np.int64)


def evaluate_arrays(
    model: torch.nn.Module,
    images: np.ndarray,
    masks: np.ndarray,
    has_mask: np.ndarray,
    labels: np.ndarray,
    ids: Sequence[str],
    out_dir: str | Path,
    console: Any = None,
    title: str = "",
    threshold: float = 0.5,
    device: torch.device | str = "cpu",
    extra: dict[str, Any] | None = None,
    dilation: tuple[np.ndarray, dict[str, Any]] | None = None,
    data_dir: str | Path | None = None,
) -> dict[str, Any]:
    """Evaluate a CS-AGnet on in-memory arrays; write metrics.json, roc.png, attention.png to ``out_dir``.

    ``dilation``: per-image radii (pixels at the input size) and their source for the attention hit
    rate (``edgecalc.eval.attention.dilation_for``); None = the stated fallback pixel radius.
    ``data_dir``: the folder the arrays came from, for the figures per subgroup (``eval/subgroups.py``).
    """
    from edgecalc.model.registry import NETWORKS, network_of_architecture
    from edgecalc.model.weights import architecture_of

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    network = network_of_architecture(architecture_of(model)) or "csagnet"
    shown_map = NETWORKS[network].attention  # what channel 2 of `attention` is for this network
    map_names = ("Grid-AG 1", "Grid-AG 2", "Grid-AG 3") if network == "csagnet" else ("map 1", "map 2", shown_map)
    pred = predict(model, images, batch_size=32, device=device, attention=True)
    if pred.scores is None:
        raise ValueError("evaluation needs a CS-AGnet (classification branch); got a stage-one DS-AGnet")
    report = classification_report(labels, pred.scores)
    seg = np.flatnonzero((labels == 1) & has_mask)
    dice = dice_per_image(pred.masks[seg], masks[seg], threshold) if seg.size else np.zeros(0)
    iou = iou_per_image(pred.masks[seg], masks[seg], threshold) if seg.size else np.zeros(0)
    mask_peak = pred.masks.reshape(len(pred.masks), -1).max(1)  # the mask's own verdict: its brightest pixel
    groups = patient_groups(data_dir, ids)  # resample patients, not images, where the data set names them
    metrics: dict[str, Any] = {
        **report.to_dict(),
        "auc_ci95": list(bootstrap_ci(labels, pred.scores, "auc", groups=groups)),
        "accuracy_ci95": list(bootstrap_ci(labels, pred.scores, "accuracy", groups=groups)),
        "ci95_resampled": "patients" if groups is not None else "images",
        "auc_mask_max": roc_auc(labels, mask_peak),
        "dice_positives": float(dice.mean()) if seg.size else None,
        "iou_positives": float(iou.mean()) if seg.size else None,
        "n_positives_with_mask": int(seg.size),
        "mask_threshold": threshold,
        ATTENTION_KEY: hit_rate_metrics(pred.attention, masks, has_mask, labels, *(dilation or (None, None))),
        "title": title,
        "network": network,
        "attention_map": shown_map,
        **(extra or {}),
    }
    if data_dir is not None:
        metrics["subgroups"] = subgroup_figures(data_dir, ids, labels, pred.scores)
    fpr, tpr, _ = roc_curve(labels, pred.scores)
    roc_figure({title or "CS-AGnet": (fpr, tpr, report.auc)}, out_dir / "roc.png", title=f"ROC {title}".strip())
    pick = np.r_[np.flatnonzero(labels == 1)[:N_EXAMPLES], np.flatnonzero(labels == 0)[:N_EXAMPLES]]
    attention_figure(images[pick], masks[pick], pred.attention[pick], pred.masks[pick], pred.scores[pick], labels[pick],
                     [ids[i] for i in pick], out_dir / "attention.png", map_names=map_names)
    write_metrics(out_dir, metrics)
    write_scores(out_dir, ids, labels, pred.scores)
    if console is not None:
        print_metrics(metrics, console, out_dir)
    return metrics


def print_metrics(metrics: dict[str, Any], console: Any, out_dir: Path | None = None) -> None:
    from rich.markup import escape
    from rich.table import Table

    from edgecalc.model.registry import NETWORKS

    network = NETWORKS.get(metrics.get("network") or "csagnet")
    name = network.summary.split(":")[0].split(" (")[0] if network else "CS-AGnet"
    table = Table(title=escape(f"{name} evaluation {metrics.get('title', '')}".strip()))  # the title names the data folder
    table.add_column("metric")
    table.add_column("value", justify="right")
    over = metrics.get("ci95_resampled", "images")
    for key in ("accuracy", "sensitivity", "specificity", "auc", "auc_mask_max", "dice_positives", "iou_positives"):
        v = metrics.get(key)
        ci = metrics.get(f"{key}_ci95")
        table.add_row(key, ("-" if v is None else f"{v:.4f}") + (f" (95 % CI {ci[0]:.3f}-{ci[1]:.3f}, over {over})" if ci else ""))
    (tn, fp), (fn, tp) = metrics["confusion_matrix"]
    table.add_row("confusion [[TN, FP], [FN, TP]]", f"[[{tn}, {fp}], [{fn}, {tp}]]")
    table.add_row("images (positive)", f"{metrics['n']} ({metrics['n_positive']})")
    att = metrics.get(ATTENTION_KEY)
    if att:
        if att.get("dilate_mm"):
            how = f"mask + {att['dilate_mm']:g} mm = {att['dilate_px_median']:.2f} px median"
        else:
            how = f"mask + {att['fallback_dilate_px']:g} px, no spacing known"
        shown = "-" if att["rate"] is None else f"{att['rate']:.4f} ({att['hits']}/{att['n']})"
        table.add_row(f"{metrics.get('attention_map') or 'Grid-AG 3'} peak in calcification ({how})", shown)
        if att.get("chance_uniform_peak") is not None:
            table.add_row("  reference: random peak / centre peak",
                          f"{att['chance_uniform_peak']:.4f} / {att['centre_peak_rate']:.4f}")
        if not att.get("dilate_mm") or att.get("dilate_source") != "labels.csv mm_per_px":
            table.add_row("  dilation", att["dilate_source"])
    for label, value in format_subgroups(metrics.get("subgroups") or {}):
        table.add_row(escape(label), value)  # the kinds come from the data set's labels.csv
    console.print(table)
    if out_dir is not None:
        console.print(escape(f"wrote {out_dir / METRICS_FILE}, {out_dir / 'roc.png'}, {out_dir / 'attention.png'}"))


def seen_in_fit(weights: str | Path, ids: list[str], fitted: Fitted | None = None) -> dict[str, Any] | None:
    """How many of ``ids`` a fitted-on record (``model/provenance.py``; by default the one beside the
    weights) names; None if none do."""
    fitted = fitted or read_fitted(weights)
    n = 0 if fitted is None else sum(i in fitted.ids for i in ids)
    return None if n == 0 else {"images": n, "what": fitted.what, "data": fitted.data}


def evaluate_weights(weights: str | Path, data: str | Path, out_dir: str | Path, console: Any = None, device: str = "cpu",
                     fitted: Fitted | None = None) -> dict[str, Any]:
    """Evaluate a CS-AGnet weights file (+ its JSON) on a data-set folder; ``fitted`` (default: the record
    beside the weights) names the images they were fitted on, which the figures then flag as optimistic."""
    from edgecalc.model.weights import load_model

    model = load_model(weights).to(device)
    ids, images, masks, has_mask, labels = load_eval_data(data, model.cfg.input_size)
    extra: dict[str, Any] = {"weights": str(weights), "data": str(data)}
    seen = seen_in_fit(weights, ids, fitted)
    if seen is not None:
        extra["seen_in_fit"] = seen
        if console is not None:
            from rich.markup import escape

            console.print("[yellow]warning:[/] " + escape(
                f"{seen['images']} of these {len(ids)} images were used to fit these weights ({seen['what']} of "
                f"{seen['data']}): the figures below include them and are optimistic; the {len(ids) - seen['images']} "
                "others are unseen (docs/model-card.md)"))
    return evaluate_arrays(model, images, masks, has_mask, labels, ids, out_dir, console, title=Path(str(data)).name,
                           device=device, extra=extra,
                           dilation=dilation_for(data, ids, model.cfg.input_size, labels), data_dir=data)


def evaluate_run(run_dir: str | Path, data: str | Path | None = None, out_dir: str | Path | None = None,
                 console: Any = None, device: str = "cpu") -> dict[str, Any]:
    """A run's ``final.safetensors`` on ``data``, or on the run's own test split when ``data`` is None."""
    from edgecalc.model.weights import load_model

    run_dir = Path(run_dir)
    weights = final_weights(run_dir)
    cfg = read_config(run_dir)
    if data is not None:
        # the run's own data folder holds its training images (phantom ids repeat across sets: compare the folder)
        own = Path(str(data)).resolve() == Path(str(cfg["data"])).resolve()
        return evaluate_weights(weights, data, out_dir or eval_dir(run_dir) / Path(str(data)).name, console, device,
                                fitted=fitted_from_run(run_dir) if own else None)
    split = read_split(run_dir)
    model = load_model(weights).to(device)
    ids, images, masks, has_mask, labels = load_eval_data(cfg["data"], model.cfg.input_size)
    test = np.asarray(split["indices"]["test"], dtype=np.int64)
    if [ids[i] for i in test] != split["ids"]["test"]:
        raise ValueError(f"{run_dir / SPLIT_FILE}: the test ids no longer match the data set {cfg['data']}")
    test_ids = [ids[i] for i in test]
    return evaluate_arrays(model, images[test], masks[test], has_mask[test], labels[test], test_ids,
                           out_dir or eval_dir(run_dir), console, title=f"test fold {cfg['fold']} of {cfg['folds']}", device=device,
                           extra={"weights": str(weights), "data": cfg["data"], "split": "test"},
                           dilation=dilation_for(cfg["data"], test_ids, model.cfg.input_size, labels[test]), data_dir=cfg["data"])
