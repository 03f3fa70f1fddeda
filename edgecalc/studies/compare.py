"""``edgecalc compare``: training schemes and rules scored under one k-fold split of one data set.

Every method sees the same folds (``stratified_kfold`` with the run's seed, grouped by ``patient``
when labels.csv has the column), so their figures compare and differences can be paired per fold.
Methods (``METHODS``):

* ``two-stage`` — the kit's default: stage one on ``mask_fraction`` of DATA's own pixel masks, stage two.
* ``labels-only`` — CS-AGnet from scratch on DATA's image labels only (p = 0, no segmentation term).
* ``zero-shot`` — the pretrained weights (``--pretrained``, e.g. the phantom run), not trained on DATA.
* ``fine-tune`` — the pretrained CS-AGnet, stage two on DATA's image labels only.
* ``fine-tune+mix`` — the same, with ``--mix-ratio`` of every batch from ``--phantom`` (so what the
  model knew of the phantom is rehearsed, not forgotten).
* ``linear-probe`` — the pretrained CS-AGnet frozen; only a linear score head on its encoder's pooled
  features is fitted to DATA's image labels (``train/linear_probe.py``).
* ``linear-probe+mix`` — the same head fitted on DATA's crops and ``--phantom``'s together, the phantom
  holding ``--mix-ratio`` of the sample weight (one head for both domains; what it trades, docs/real-data.md).
* ``sim-to-real`` — the paper's two stages with the pixel masks from elsewhere: stage one = the
  pretrained run's stage one (or trained on ``--phantom``), pseudo masks on DATA, stage two on DATA's
  labels + pseudo masks.
* ``sim-to-real+mix`` — the same, with ``--mix-ratio`` of every stage-two batch from ``--phantom``
  (its true masks and labels), so the segmentation branch keeps seeing real masks.
* ``brightness`` — the max-intensity rule (``eval/rules.py``), region share and threshold tuned on
  the training folds.

The paper's Table 2 (``docs/comparison.md``), every network through the kit's training at the same
size and step budget (the recipe options), each with the paper's supervision (``model/registry.py``):

* ``csagnet`` — the two-stage CS-AGnet at ``--mask-fraction`` (the paper: 0.3; = ``two-stage``);
* ``vgg-unet`` — CS-AGnet without Grid-AGs, the same two stages at ``--mask-fraction``;
* ``alexnet-seg`` — one stage on every mask (deep supervision) and label;
* ``sononet-ag``, ``vgg16``, ``resnet50`` — one stage on image labels only;
* ``ci``, ``otsu`` — the calcification-index and Otsu rules, tuned on the training folds like ``brightness``.

With ``csagnet`` (or ``two-stage``) among the methods, ``comparison.md`` adds the paired per-fold
differences of every other method against it, and ``attention.png`` shows the same test images of
the first fold under every network's shown map (Grid-AG 3 for CS-AGnet, the gates' map for
AG-Sononet, CAM for the networks without gates, the mask for Alexnet-Seg).

Layout: ``OUT/<method>/fold<k>/`` (a run folder for trained methods: finished ones are reused,
interrupted ones resumed), ``OUT/comparison.md`` (pooled and per-fold table, with and without the
crops that show burned-in text, and per ``kind``), ``OUT/comparison.json``, ``OUT/roc.png``,
``OUT/scores.csv`` (every test score), ``OUT/attention.png`` (the attention grid, when a network is among
the methods).

``collect_only`` (``--collect-only``) trains and scores nothing: it writes the table from the figures the
method folders already hold (``FIGURES``), so a table trained over several sessions or machines can be
gathered from folders copied without their weights. ``attention.png`` is redrawn only when the first
fold's weights of every network are there; otherwise the one already there is kept (and said so).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from edgecalc.eval.paired import format_paired, paired_differences
from edgecalc.run_folder import (END_TO_END_FILE, EVAL_DIR, METRICS_FILE, RUN_FIGURES, SCORES_FILE, eval_dir,
                                 final_weights, final_weights_path, holds_run, is_finished, read_metrics, read_scores,
                                 require_figures, write_scores)

#: Columns that mark crops whose frame shows burned-in text (DDTI: sonographers' notes); see docs/real-data.md.
TEXT_COLUMNS = ("text_in_crop", "note_text_in_frame")


@dataclass(frozen=True)
class Method:
    summary: str
    kind: str  #: train | weights | rule
    needs_pretrained: bool = False
    network: str | None = None  #: the registry network a train method trains (None: CS-AGnet)


METHODS: dict[str, Method] = {
    "two-stage": Method("stage one on DATA's own masks (--mask-fraction), pseudo masks, stage two", "train"),
    "labels-only": Method("CS-AGnet from scratch on DATA's image labels only (p = 0)", "train"),
    "zero-shot": Method("the pretrained weights as they are (no training on DATA)", "weights", True),
    "fine-tune": Method("the pretrained CS-AGnet, stage two on DATA's image labels only", "train", True),
    "fine-tune+mix": Method("fine-tune with --mix-ratio of every batch from --phantom (true masks and labels)", "train", True),
    "linear-probe": Method("the pretrained CS-AGnet frozen, a linear score head on its pooled encoder features fitted "
                           "to DATA's image labels (L2 logistic regression, strength by grouped inner CV)", "train", True),
    "linear-probe+mix": Method("the linear probe with --phantom's crops in every fit at --mix-ratio of the sample "
                               "weight (one head for both domains)", "train", True),
    "sim-to-real": Method("stage one from the pretrained run (or --phantom), stage two on DATA with its pseudo "
                          "masks", "train"),
    "sim-to-real+mix": Method("sim-to-real with --mix-ratio of every stage-two batch from --phantom (true masks)", "train"),
    "brightness": Method("max gray level (3x3 median) in the crop's centre; share and threshold tuned on the "
                         "training folds", "rule"),
    "csagnet": Method("Table 2: CS-AGnet, the two stages at --mask-fraction (the paper: 0.3)", "train", network="csagnet"),
    "vgg-unet": Method("Table 2: VGG_U-net (CS-AGnet without Grid-AGs), the two stages at --mask-fraction", "train",
                       network="vgg-unet"),
    "alexnet-seg": Method("Table 2: Alexnet-Seg, one stage on every mask (deep supervision) + labels", "train",
                          network="alexnet-seg"),
    "sononet-ag": Method("Table 2: AG-Sononet-FT-8, image labels only", "train", network="sononet-ag"),
    "vgg16": Method("Table 2: VGG-16 (CAM), image labels only", "train", network="vgg16"),
    "resnet50": Method("Table 2: ResNet-50 (CAM), image labels only", "train", network="resnet50"),
    "ci": Method("Table 2: calcification index (gray level / the nodule's mean, eval/rules.py) in the crop's centre; "
                 "share and threshold tuned on the training folds", "rule"),
    "otsu": Method("Table 2: largest area of the brightest recursive-Otsu class in the crop's centre; share and "
                   "threshold tuned on the training folds", "rule"),
}
#: The paper's Table 2, in its order.
TABLE2_METHODS = ("csagnet", "vgg-unet", "alexnet-seg", "sononet-ag", "vgg16", "resnet50", "ci", "otsu")
#: The methods the paired differences are taken against, first present wins.
REFERENCE_METHODS = ("csagnet", "two-stage")
DEFAULT_METHODS = ("labels-only", "zero-shot", "fine-tune", "sim-to-real", "sim-to-real+mix", "brightness")
#: sim-to-real+mix's share of every stage-two batch from the phantom when --mix-ratio is not given.
DEFAULT_MIX_RATIO = 0.25


#: What a method's fold folder must hold to be collected, per method kind (paths inside the fold folder).
FIGURES = {"train": RUN_FIGURES, "weights": (f"{EVAL_DIR}/{SCORES_FILE}",),
           "rule": (SCORES_FILE,)}


def fold_dir(out: Path, method: str, fold: int) -> Path:
    return Path(out) / method / f"fold{fold}"


def _table(data: Path) -> list[dict[str, str]]:
    with (Path(data) / "labels.csv").open(newline="", encoding="utf-8-sig") as fh:
        return list(csv.DictReader(fh))


def _train_config(method: str, data: Path, fold: int, pretrained: Path | None, phantom: Path | None, mix_ratio: float,
                  train_options: dict[str, Any]):
    from edgecalc.train.config import TrainConfig

    opts = dict(train_options)
    recipe = opts.pop("recipe", None) or "cpu"
    extra: dict[str, Any] = {}
    if METHODS[method].network is not None:
        extra["network"] = METHODS[method].network
    if METHODS[method].needs_pretrained:  # the trained methods that start from it: image labels only
        extra["init_weights"] = str(pretrained)
    if method == "labels-only" or METHODS[method].needs_pretrained:
        extra["mask_fraction"] = 0.0
    if method.startswith("linear-probe"):
        extra["linear_probe"] = True
    if method in ("sim-to-real", "sim-to-real+mix"):
        if pretrained is not None:
            extra["stage1_weights"] = str(pretrained)
        elif phantom is not None:
            extra["stage1_data"] = str(phantom)
            extra["mask_fraction"] = opts.pop("mask_fraction", None) or 1.0
        else:
            raise ValueError("sim-to-real needs --pretrained RUN (its stage one) or --phantom DIR (to train stage one on)")
    if method.endswith("+mix"):
        if phantom is None:
            raise ValueError(f"{method} needs --phantom DIR (the images mixed into stage two)")
        extra.update(mix_data=str(phantom), mix_ratio=mix_ratio or DEFAULT_MIX_RATIO)
    opts = {k: v for k, v in opts.items() if k not in extra}
    return TrainConfig.for_recipe(recipe, data=str(data), fold=fold, **opts, **extra)


def _needs_own_masks(cfg) -> bool:
    """Whether a training config reads pixel masks of its own data set (its stage one or its all-masks stage)."""
    from edgecalc.model.registry import get_spec

    spec = get_spec(cfg.network)
    own_stage1 = cfg.has_stage1 and cfg.stage1_data is None and cfg.stage1_weights is None
    return own_stage1 or spec.supervision == "all-masks"


def _run_trained(cfg, run_dir: Path, console: Any) -> None:
    from edgecalc.studies.sweep import check_same_recipe
    from edgecalc.train.run import resume_training, run_training

    check_same_recipe(run_dir, cfg)
    if is_finished(run_dir):
        _say(console, f"{run_dir}: finished, reused")
    elif holds_run(run_dir):
        _say(console, f"{run_dir}: resuming")
        resume_training(run_dir, console=console)
    else:
        _say(console, f"{run_dir}: training")
        run_training(cfg, run_dir, console=console)


def _say(console: Any, text: str) -> None:
    """Print ``text`` as it is: it holds folder names (``[...]`` would be taken for rich markup) and no markup."""
    if console is not None:
        from rich.markup import escape

        console.print(escape(text))


def _zero_shot(weights: Path, data: Path, test: np.ndarray, out: Path, fold: int, folds: int, device: str) -> None:
    from edgecalc.eval.attention import dilation_for
    from edgecalc.eval.evaluate import evaluate_arrays, load_eval_data
    from edgecalc.export.weights_source import resolve_weights
    from edgecalc.model.weights import load_model

    if (eval_dir(out) / SCORES_FILE).is_file():
        return
    path = resolve_weights(weights)
    model = load_model(path).to(device)
    ids, images, masks, has_mask, labels = load_eval_data(data, model.cfg.input_size)
    test_ids = [ids[i] for i in test]
    evaluate_arrays(model, images[test], masks[test], has_mask[test], labels[test], test_ids, eval_dir(out),
                    title=f"zero-shot, test fold {fold} of {folds}", device=device, data_dir=data,
                    extra={"weights": str(path), "data": str(data)},
                    dilation=dilation_for(data, test_ids, model.cfg.input_size, labels[test]))


def gray_crops(data: Path) -> list[np.ndarray]:
    """Every crop of ``data`` as a 2-D uint8 gray image (one per labels.csv row), what the rules read."""
    from edgecalc.data.dataset import check_dataset, read_image
    from edgecalc.data.preprocess import to_gray_u8

    return [to_gray_u8(read_image(Path(r["_image"]))[0]) for r in check_dataset(data).rows]


def brightness_features(data: Path, rule: str = "brightness", crops: list[np.ndarray] | None = None) -> np.ndarray:
    """A rule's features of every crop of ``data`` (one row per labels.csv row, one column per centre share)."""
    from edgecalc.eval.rules import RULE_FEATURES, centre_features

    return centre_features(gray_crops(data) if crops is None else crops, feature=RULE_FEATURES[rule])


def _brightness(feats: np.ndarray, ids: list[str], labels: np.ndarray, train: np.ndarray, test: np.ndarray, out: Path) -> None:
    """Tune the rule (its features ``feats``) on ``train``, score ``test``; write ``rule.json`` and the scores."""
    from edgecalc.atomic import atomic_write_json
    from edgecalc.eval.rules import tune_brightness

    rule = tune_brightness(feats[train], labels[train])
    score = feats[test, rule["column"]]
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "rule.json", rule)
    write_scores(out, [ids[i] for i in test], labels[test], score, predictions=(score >= rule["threshold"]).astype(np.int64))


def _scores_of(method: str, out: Path, fold: int) -> dict[str, np.ndarray]:
    d = fold_dir(out, method, fold)
    res = read_scores(d if METHODS[method].kind == "rule" else eval_dir(d))
    if "predictions" not in res:
        from edgecalc.eval.metrics import predict

        res["predictions"] = predict(res["scores"])
    res["fold"] = np.full(res["ids"].shape, fold)
    return res


def _figures(y: np.ndarray, s: np.ndarray, p: np.ndarray, groups: np.ndarray | None) -> dict[str, Any]:
    from edgecalc.eval.metrics import bootstrap_ci, roc_auc

    out: dict[str, Any] = {"n": int(y.size), "n_positive": int(y.sum())}
    if 0 < y.sum() < y.size:
        out["auc"] = roc_auc(y, s)
        out["auc_ci95"] = list(bootstrap_ci(y, s, "auc", groups=groups))
    out["accuracy"] = float((p == y).mean()) if y.size else None
    out["sensitivity"] = float(p[y == 1].mean()) if (y == 1).any() else None
    out["specificity"] = float(1 - p[y == 0].mean()) if (y == 0).any() else None
    return out


def summarise(methods: Sequence[str], out: Path, folds: Sequence[int], data: Path) -> dict[str, Any]:
    """Pooled (all test folds) and per-fold figures per method; subsets without text crops and per kind."""
    rows = {r["id"]: r for r in _table(data)}
    has_patient = all((r.get("patient") or "").strip() for r in rows.values())
    text_cols = [c for c in TEXT_COLUMNS if any(c in r for r in rows.values())]
    result: dict[str, Any] = {"methods": {}, "text_columns": text_cols, "folds": list(folds)}
    for m in methods:
        parts = [_scores_of(m, out, k) for k in folds]
        z = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
        ids = [str(i) for i in z["ids"]]
        groups = np.asarray([rows[i]["patient"] for i in ids]) if has_patient else None
        y, s, p = z["labels"].astype(np.int64), z["scores"].astype(np.float64), z["predictions"].astype(np.int64)
        entry: dict[str, Any] = {"pooled": _figures(y, s, p, groups), "per_fold": []}
        for k in folds:
            sel = z["fold"] == k
            entry["per_fold"].append({"fold": int(k), **_figures(y[sel], s[sel], p[sel], None)})
        if text_cols:
            clean = np.asarray([all(rows[i].get(c, "0") in ("0", "") for c in text_cols) for i in ids])
            entry["without_text"] = _figures(y[clean], s[clean], p[clean], groups[clean] if groups is not None else None)
        kinds = sorted({rows[i].get("kind", "") for i in ids} - {"", "none"})
        if kinds:
            neg = y == 0
            entry["by_kind"] = {}
            for kind in kinds:
                sel = neg | np.asarray([rows[i].get("kind") == kind for i in ids])
                entry["by_kind"][kind] = _figures(y[sel], s[sel], p[sel], groups[sel] if groups is not None else None)
        entry["roc"] = (y, s)
        result["methods"][m] = entry
    return result


def _cell(v: Any) -> str:
    return "-" if v is None else f"{v:.3f}"


def _auc_cell(f: dict[str, Any]) -> str:
    if "auc" not in f:
        return "-"
    lo, hi = f["auc_ci95"]
    return f"{f['auc']:.3f} ({lo:.3f}–{hi:.3f})"


def format_comparison(summary: dict[str, Any]) -> str:
    """Markdown: pooled table, the same without text-bearing crops, per kind, and mean ± std over folds."""
    ms = summary["methods"]
    buf = io.StringIO()
    head = "| method | n | AUC (95 % CI) | accuracy | sensitivity | specificity |\n|---|---|---|---|---|---|\n"
    buf.write("Pooled over the test folds (CI: bootstrap over patients where labels.csv names them):\n\n" + head)
    for m, e in ms.items():
        f = e["pooled"]
        buf.write(f"| {m} | {f['n']} | {_auc_cell(f)} | {_cell(f['accuracy'])} | {_cell(f['sensitivity'])} | "
                  f"{_cell(f['specificity'])} |\n")
    if summary["text_columns"]:
        buf.write(f"\nWithout the crops marked in {', '.join(summary['text_columns'])} (burned-in text):\n\n" + head)
        for m, e in ms.items():
            f = e["without_text"]
            buf.write(f"| {m} | {f['n']} | {_auc_cell(f)} | {_cell(f['accuracy'])} | {_cell(f['sensitivity'])} | "
                      f"{_cell(f['specificity'])} |\n")
    kinds = sorted({k for e in ms.values() for k in e.get("by_kind", {})})
    if kinds:
        buf.write("\nAUC per kind (that kind's positives against all negatives):\n\n| method | "
                  + " | ".join(kinds) + " |\n|---|" + "---|" * len(kinds) + "\n")
        for m, e in ms.items():
            buf.write(f"| {m} | " + " | ".join(_auc_cell(e["by_kind"].get(k, {})) for k in kinds) + " |\n")
    e2e = {m: e["end_to_end"] for m, e in ms.items() if "end_to_end" in e}
    if e2e:
        buf.write("\nWhole frames (full/): shipped locator -> the runtime's crop -> the same fold's model, against the "
                  "annotated crops (a frame with no nodule found scores 0):\n\n| method | n | nodule located | median box "
                  "IoU | IoU ≥ 0.5 | AUC, locator crops | AUC, annotated crops |\n|---|---|---|---|---|---|---|\n")
        for m, full in e2e.items():
            for label, f in ((m, full), (f"{m}, patients the locator never trained on", full.get("unseen_by_locator"))):
                if f is None:
                    continue
                auc = "- | -" if "auc_locator_crops" not in f else (
                    f"{_auc_cell({'auc': f['auc_locator_crops'], 'auc_ci95': f['auc_locator_crops_ci95']})} | "
                    f"{_auc_cell({'auc': f['auc_annotated_crops'], 'auc_ci95': f['auc_annotated_crops_ci95']})}")
                buf.write(f"| {label} | {f['n']} | {f['located']:.3f} | {f['median_iou']:.3f} | {f['iou_at_least_0.5']:.3f} | "
                          f"{auc} |\n")
    buf.write("\nPer fold (mean ± std over folds; AUC of each fold):\n\n| method | AUC mean ± std | accuracy | "
              "sensitivity | specificity | AUC per fold |\n|---|---|---|---|---|---|\n")
    for m, e in ms.items():
        cells = []
        for key in ("auc", "accuracy", "sensitivity", "specificity"):
            v = np.asarray([f[key] for f in e["per_fold"] if f.get(key) is not None], np.float64)
            cells.append("-" if v.size == 0 else (f"{v.mean():.3f}" if v.size < 2 else f"{v.mean():.3f} ± {v.std(ddof=1):.3f}"))
        per = ", ".join(_cell(f.get("auc")) for f in e["per_fold"])
        buf.write(f"| {m} | " + " | ".join(cells) + f" | {per} |\n")
    return buf.getvalue()


def reference_method(methods: Sequence[str]) -> str | None:
    """The method the paired differences are taken against (``REFERENCE_METHODS``), or None."""
    return next((m for m in REFERENCE_METHODS if m in methods), None)


def _network_of(method: str) -> str:
    return METHODS[method].network or "csagnet"


def attention_hit_rates(methods: Sequence[str], out: Path, folds: Sequence[int]) -> dict[str, Any]:
    """Per trained method: the share of positives (with a mask) whose shown map peaks on the calcification,
    pooled over the folds' ``metrics.json`` (``eval/attention.py``; the map is each network's channel 2)."""
    from edgecalc.eval.attention import METRIC_KEY
    from edgecalc.model.registry import get_spec

    res: dict[str, Any] = {}
    for m in methods:
        if METHODS[m].kind == "rule":
            continue
        hits = n = 0
        for k in folds:
            d = fold_dir(out, m, k)
            folder = d if METHODS[m].kind == "train" else eval_dir(d)  # a run folder's, or a zero-shot evaluation's
            if not (folder / METRICS_FILE).is_file():
                continue
            metrics = read_metrics(folder)
            att = (metrics.get("test", metrics)).get(METRIC_KEY) or {}
            hits, n = hits + int(att.get("hits") or 0), n + int(att.get("n") or 0)
        res[m] = {"map": get_spec(_network_of(m)).attention, "hits": hits, "n": n, "rate": hits / n if n else None}
    return res


def format_hit_rates(rates: dict[str, Any]) -> str:
    buf = io.StringIO()
    buf.write("\nAttention on the calcification (the shown map's peak inside the mask + 1 mm; positives with a mask, "
              "test folds pooled):\n\n| method | map | hit rate | hits / positives |\n|---|---|---|---|\n")
    for m, r in rates.items():
        buf.write(f"| {m} | {r['map']} | {_cell(r['rate'])} | {r['hits']} / {r['n']} |\n")
    return buf.getvalue()


#: Images per class in the attention grid.
GRID_EXAMPLES = 3


#: What the grid shows for a network scored by a linear head (``model/blocks/linear_head.py``).
EVIDENCE_MAP = "score head's evidence for calcification"


def positive_evidence(model: Any, images: np.ndarray) -> np.ndarray:
    """(N, H, W) in [0, 1]: the linear score head's per-pixel evidence for calcification (its positive
    part), on one scale for all ``images`` so a negative crop with little evidence looks dim."""
    import torch

    from edgecalc.model.csagnet import score_evidence

    x = torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32))
    ev = np.clip(score_evidence(model.eval(), x).numpy(), 0.0, None)
    return ev / max(float(ev.max()), 1e-12)


def _attention_grid(methods: Sequence[str], out: Path, fold: int, data: Path, pretrained: Path | None,
                    test: np.ndarray) -> Path | None:
    """Fig. 10: the same few test images of ``fold`` under every trained method's shown map (``attention.png``);
    None (nothing drawn) when a trained method's weights of ``fold`` are not there (figures collected without them)."""
    from edgecalc.eval.evaluate import load_eval_data
    from edgecalc.eval.figures import attention_grid
    from edgecalc.eval.predict import predict
    from edgecalc.export.weights_source import resolve_weights
    from edgecalc.model.registry import get_spec
    from edgecalc.model.weights import load_model

    nets = [m for m in methods if METHODS[m].kind != "rule"]
    if not nets:
        return None
    if any(METHODS[m].kind == "train" and not final_weights_path(fold_dir(out, m, fold)).is_file() for m in nets):
        return None
    loaded: dict[int, tuple] = {}
    maps: dict[str, tuple[str, np.ndarray, np.ndarray]] = {}
    pick = None
    for m in nets:
        weights = final_weights(fold_dir(out, m, fold)) if METHODS[m].kind == "train" else resolve_weights(pretrained)
        model = load_model(weights)
        size = model.cfg.input_size
        if size not in loaded:
            loaded[size] = load_eval_data(data, size)
        ids, images, masks, has_mask, labels = loaded[size]
        if pick is None:
            pos = [i for i in test if labels[i] == 1 and has_mask[i]] or [i for i in test if labels[i] == 1]
            pick = np.asarray(pos[:GRID_EXAMPLES] + [i for i in test if labels[i] == 0][:GRID_EXAMPLES], np.int64)
            shown = (images[pick], masks[pick], labels[pick], [ids[i] for i in pick])
        pred = predict(model, images[pick], attention=True)
        if getattr(model, "linear_head", None) is not None:  # the score reads the head, not Grid-AG 3: show its evidence
            maps[m] = (EVIDENCE_MAP, positive_evidence(model, images[pick]), pred.scores)
        else:
            maps[m] = (get_spec(_network_of(m)).attention, pred.attention[:, 2], pred.scores)
    return attention_grid(shown[0], shown[1], maps, shown[2], shown[3], out / "attention.png")


def _end_to_end(methods: Sequence[str], out: Path, fold_ids: Sequence[int], data: Path, pretrained: Path | None,
                split: list, labels: np.ndarray, ids: list[str], summary: dict[str, Any], console: Any,
                locator_data: Path | None = None, collect_only: bool = False) -> None:
    """Whole frames through the shipped locator and each fold's model (``eval/end_to_end.py``), into ``summary``."""
    from edgecalc.eval.end_to_end import LocatedFrames, locator_training_patients, run_end_to_end, summarise_end_to_end
    from edgecalc.export.weights_source import resolve_weights
    from edgecalc.runtime.locate.learned import LearnedLocator

    frames = LocatedFrames(data, LearnedLocator(threads=1).locate)  # each frame located once for every method
    rows = {r["id"]: r for r in _table(data)}
    groups = {i: r["patient"] for i, r in rows.items()} if all((r.get("patient") or "").strip() for r in rows.values()) else None
    seen = locator_training_patients(locator_data) if locator_data is not None else None
    for m in methods:
        kind = METHODS[m].kind
        if kind == "rule":
            continue
        for k in fold_ids:
            if (fold_dir(out, m, k) / END_TO_END_FILE).is_file():
                continue  # scored before (or collected): reused
            if collect_only:
                raise ValueError(f"{fold_dir(out, m, k) / END_TO_END_FILE} missing: --collect-only scores no whole "
                                 "frames (run without it, or pass --no-end-to-end)")
            weights = final_weights(fold_dir(out, m, k)) if kind == "train" else resolve_weights(pretrained)
            test = split[k][1]
            _say(console, f"{m}, fold {k}: whole frames through the locator")
            run_end_to_end(fold_dir(out, m, k), weights, [ids[i] for i in test], labels[test], frames)
        parts = [_scores_of(m, out, k) for k in fold_ids]
        annotated = {str(i): float(v) for p in parts for i, v in zip(p["ids"], p["scores"])}
        summary["methods"][m]["end_to_end"] = summarise_end_to_end([fold_dir(out, m, k) for k in fold_ids], annotated,
                                                                   groups, seen)


def run_compare(data: str | Path, methods: Sequence[str], out: str | Path, folds: int = 5, fold_ids: Sequence[int] | None = None,
                pretrained: str | Path | None = None, phantom: str | Path | None = None, mix_ratio: float = 0.0,
                console: Any = None, device: str = "cpu", end_to_end: bool | None = None,
                locator_data: str | Path | None = None, collect_only: bool = False, **train_options: Any) -> dict[str, Any]:
    """Run (or reuse/resume) every method on every fold, then write the table, ROC figure and scores;
    with ``collect_only`` only read the folders' figures (see the module docstring).

    ``end_to_end`` (default: when DATA has ``full/boxes.csv``): also score the whole frames through the
    shipped locator and each fold's model; ``locator_data`` (the frames the locator trained on, with
    ``patients.csv``) adds the figures on crops of patients the locator never trained on.
    """
    from edgecalc.eval.end_to_end import has_full_frames
    from edgecalc.atomic import atomic_write_json, atomic_write_text
    from edgecalc.data.dataset import DatasetError, check_dataset
    from edgecalc.data.splits import stratified_kfold
    from edgecalc.eval.figures import roc_figure
    from edgecalc.eval.metrics import roc_auc, roc_curve

    unknown = [m for m in methods if m not in METHODS]
    if unknown:  # the CLI's parser refuses these first; this is for callers of the Python API
        raise ValueError(f"unknown method(s) {', '.join(map(repr, unknown))}: choose from {', '.join(METHODS)}")
    data, out = Path(data), Path(out)
    pretrained = Path(pretrained) if pretrained is not None else None
    phantom = Path(phantom) if phantom is not None else None
    fold_ids = list(range(folds)) if fold_ids is None else list(fold_ids)
    rep = check_dataset(data)
    if rep.errors:
        raise DatasetError(f"data set {data} has {len(rep.errors)} error(s):\n" + "\n".join(str(e) for e in rep.errors))
    for m in methods:
        if METHODS[m].needs_pretrained and pretrained is None:
            raise ValueError(f"method {m} needs --pretrained (a run folder or weights file, e.g. the phantom run)")
        if METHODS[m].kind == "train":  # settings checked before hours of training
            cfg = _train_config(m, data, fold_ids[0], pretrained, phantom, mix_ratio,
                                {**train_options, "folds": folds, "device": device})
            if _needs_own_masks(cfg) and not any(r.get("_mask") for r in rep.rows):
                raise ValueError(f"method {m} trains on {data}'s pixel masks ({cfg.network}, mask fraction "
                                 f"{cfg.mask_fraction:g}) and {data} has none "
                                 "(masks/<id>.png); leave it out, or compare mask-free methods (sim-to-real, image-label "
                                 "networks, rules)")
    labels = np.asarray([int(r["calcification"]) for r in rep.rows], np.int64)
    pats = [(r.get("patient") or "").strip() for r in rep.rows]
    groups = np.asarray(pats) if all(pats) else None
    seed = int(train_options.get("seed") or 0)
    split = stratified_kfold(labels, k=folds, seed=seed, groups=groups)
    ids = [r["id"] for r in rep.rows]
    feats: dict[str, np.ndarray] = {}  # each rule's features, computed once when a fold needs them
    crops: list[np.ndarray] | None = None  # the gray crops, read once for every rule
    for m in methods:
        for k in fold_ids:
            d = fold_dir(out, m, k)
            kind = METHODS[m].kind
            if collect_only:
                if kind == "train":
                    from edgecalc.studies.sweep import check_same_recipe

                    check_same_recipe(d, _train_config(m, data, k, pretrained, phantom, mix_ratio,
                                                       {**train_options, "folds": folds, "device": device}))
                require_figures(d, FIGURES[kind])
            elif kind == "train":
                cfg = _train_config(m, data, k, pretrained, phantom, mix_ratio, {**train_options, "folds": folds, "device": device})
                _run_trained(cfg, d, console)
            elif kind == "weights":
                _say(console, f"{d}: scoring {pretrained} on test fold {k}")
                _zero_shot(pretrained, data, split[k][1], d, k, folds, device)
            elif not (d / SCORES_FILE).is_file():
                if m not in feats:
                    crops = gray_crops(data) if crops is None else crops
                    feats[m] = brightness_features(data, m, crops)
                _brightness(feats[m], ids, labels, split[k][0], split[k][1], d)
    summary = summarise(methods, out, fold_ids, data)
    if end_to_end is None:
        end_to_end = has_full_frames(data)
    if end_to_end:
        _end_to_end(methods, out, fold_ids, data, pretrained, split, labels, ids, summary, console,
                    Path(locator_data) if locator_data is not None else None, collect_only=collect_only)
    curves = {}
    lines = ["method,fold,id,label,score,prediction"]
    for m, e in summary["methods"].items():
        y, s = e.pop("roc")
        fpr, tpr, _ = roc_curve(y, s)
        curves[m] = (fpr, tpr, roc_auc(y, s))
        for k in fold_ids:
            z = _scores_of(m, out, k)
            lines += [f"{m},{k},{i},{int(a)},{float(b):.6g},{int(c)}" for i, a, b, c in
                      zip(z["ids"], z["labels"], z["scores"], z["predictions"])]
    table = format_comparison(summary)
    reference = reference_method(methods)
    if reference is not None:
        summary["paired"] = paired_differences(summary, reference)
        table += format_paired(summary["paired"], reference)
    summary["attention_hit_rates"] = attention_hit_rates(methods, out, fold_ids)
    grid = None
    if summary["attention_hit_rates"]:
        table += format_hit_rates(summary["attention_hit_rates"])
        grid = _attention_grid(methods, out, fold_ids[0], data, pretrained, split[fold_ids[0]][1])
        if grid is None:
            _say(console, f"attention grid not drawn: fold {fold_ids[0]}'s weights of a network are not in {out} "
                 f"(figures only){'; the attention.png there is kept' if (out / 'attention.png').is_file() else ''}")
    header = (f"# Comparison on {data} ({folds} folds{', grouped by patient' if groups is not None else ''}, seed {seed})\n\n"
              + "".join(f"- **{m}**: {METHODS[m].summary}\n" for m in methods) + "\n")
    atomic_write_text(out / "comparison.md", header + table)
    atomic_write_text(out / "scores.csv", "\n".join(lines) + "\n")
    roc_figure(curves, out / "roc.png", title=f"ROC per method, {data.name} (test folds pooled)")
    atomic_write_json(out / "comparison.json", {"data": str(data), "methods": list(methods), "pretrained": str(pretrained) if pretrained else None,
                                                "phantom": str(phantom) if phantom else None, "mix_ratio": mix_ratio,
                                                "train_options": {k: v for k, v in train_options.items()}, **summary})
    _say(console, table)
    _say(console, f"wrote {out / 'comparison.md'}, {out / 'roc.png'}, {out / 'scores.csv'}, {out / 'comparison.json'}"
         + (f", {out / 'attention.png'}" if summary["attention_hit_rates"] and grid is not None else ""))
    return summary
