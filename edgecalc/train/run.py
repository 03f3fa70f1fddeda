"""The paper's two-stage collaborative training, as one resumable run folder.

1. Split: fold ``fold`` of a stratified ``folds``-fold split is the test set; ``val_fraction`` of the
   rest (stratified) picks the best epoch; of the remaining training images a stratified fraction p
   (``mask_fraction``) keeps its pixel mask. Written to ``split.json``.
2. Stage one: DS-AGnet on the p-fraction with masks; best round by validation Dice.
3. Pseudo masks: stage one's best model predicts a mask for every training image (``pseudo_masks/``).
4. Stage two: CS-AGnet, modules A + B from stage one's best, C fresh; every training image with its
   image label and its pseudo mask (``keep_true_masks``: the true mask where the image is in the
   draw); best round by validation AUC.

Optimiser, schedule, loss, augmentation, precision and budgets come from the config's recipe
(train/config.py: ``cpu`` by default, ``paper`` = Adam 1e-4 / 5e-5 with decay 1e-6, flips, epochs).
5. ``final.safetensors`` (= stage two's best) evaluated on the test fold: ``metrics.json`` + ``eval/``.

The network is the config's ``network`` (``edgecalc/model/registry.py``): the scheme above is that
of the two-stage networks (CS-AGnet; VGG_U-net with its ungated stage one). The one-stage networks
skip steps 2-3 and train in "stage two" only: Alexnet-Seg on every training image's true mask
(deep supervision) and image label, the image-label networks (AG-Sononet, VGG-16, ResNet-50) on
the labels alone (no pixel target, as ``mask_fraction`` 0 does for CS-AGnet).

Run folder: ``config.json``, ``split.json``, ``log.csv``, ``log.jsonl``, ``checkpoints/``,
``stage1/{best,last}.safetensors``, ``pseudo_masks/``, ``stage2/{best,last}.safetensors``,
``final.safetensors`` (+ ``.json``), ``metrics.json``, ``eval/``. Every file is written atomically.
"""

from __future__ import annotations

import dataclasses

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.markup import escape

from edgecalc.atomic import atomic_write_json, remove_stale_temps
from edgecalc.model.registry import get_spec, network_class, stage_one_class
from edgecalc.model.weights import load_model, network_from_stage_one, save_model
from edgecalc.run_folder import (CONFIG_FILE, FINAL_WEIGHTS, PSEUDO_DIR, SPLIT_FILE, best_weights, eval_dir, final_weights_path,
                                 pseudo_masks_done, read_split, write_metrics, write_pseudo_marker, write_split)
from edgecalc.train.config import TrainConfig
from edgecalc.train.distributed import DistInfo, all_true, barrier, cleanup, device_for, init_distributed
from edgecalc.train.linear_probe import MASK_GRID, fit_linear_probe
from edgecalc.train.precision import resolve_precision
from edgecalc.train.pseudo_masks import read_pseudo_masks, write_pseudo_masks
from edgecalc.train.stage import Hooks, StageData, StageSpec, train_stage


def write_json(path: Path, data: Any) -> None:
    atomic_write_json(path, data)


def _groups(table: list[dict]) -> np.ndarray | None:
    vals = [(r.get("patient") or "").strip() for r in table]
    return np.asarray(vals) if vals and all(vals) else None


def make_split(labels: np.ndarray, has_mask: np.ndarray, cfg: TrainConfig, groups: np.ndarray | None) -> dict[str, list[int]]:
    """Test fold, validation share, training rest and the mask draw (indices into the data set)."""
    from edgecalc.data.splits import draw_mask_subset, stratified_kfold

    train_full, test = stratified_kfold(labels, k=cfg.folds, seed=cfg.seed, groups=groups)[cfg.fold]
    inner_k = max(2, int(round(1.0 / cfg.val_fraction)))
    sub_groups = groups[train_full] if groups is not None else None
    inner_train, inner_val = stratified_kfold(labels[train_full], k=inner_k, seed=cfg.seed + 1, groups=sub_groups)[0]
    train, val = train_full[inner_train], train_full[inner_val]
    if not cfg.has_stage1 or cfg.stage1_data is not None or cfg.stage1_weights is not None:
        # stage one does not use this data set's masks (image labels only, or stage one elsewhere)
        return {"train": sorted(train.tolist()), "val": sorted(val.tolist()), "test": sorted(test.tolist()), "mask_draw": []}
    candidates = train[has_mask[train]]
    if candidates.size == 0:
        raise ValueError("no training image has a pixel mask; stage one needs some (masks/<id>.png), or train "
                         "stage one on another folder (--stage1-data PHANTOM_DIR), or use image labels only (--mask-fraction 0)")
    fraction = cfg.mask_fraction if candidates.size == train.size else min(1.0, cfg.mask_fraction * train.size / candidates.size)
    draw = draw_mask_subset(candidates, labels, fraction, seed=cfg.seed, groups=groups)
    if draw.size == 0:
        raise ValueError(f"mask fraction {cfg.mask_fraction} of {train.size} training images draws no image; raise --mask-fraction")
    return {"train": sorted(train.tolist()), "val": sorted(val.tolist()), "test": sorted(test.tolist()), "mask_draw": draw.tolist()}


def _load_data(folder: str, size: int) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[dict]]:
    """(ids, uint8 images N×1×S×S, uint8 masks, labels, has_mask, table) of one data-set folder."""
    from edgecalc.data.dataset import load_dataset

    ids, images, masks, labels, table = load_dataset(folder, size)
    has_mask = np.array([m is not None for m in masks])
    mask_arr = np.zeros((len(ids), 1, size, size), np.uint8)
    for i, m in enumerate(masks):
        if m is not None:
            mask_arr[i, 0] = np.asarray(m) > 0
    # Held as uint8 gray levels: exact (the shared preprocessing gives k / 255) at a quarter of the memory.
    gray = np.rint(np.asarray(images, dtype=np.float32) * 255.0).astype(np.uint8)
    return list(ids), gray, mask_arr, np.asarray(labels, np.int64), has_mask, table


def _split(run_dir: Path, cfg: TrainConfig, ids: list[str], labels: np.ndarray, has_mask: np.ndarray, table: list[dict], info: DistInfo) -> dict[str, Any]:
    path = run_dir / SPLIT_FILE
    # Every rank decides from the same answer (a collective), so none can skip the barrier below
    # because rank 0 already wrote the file.
    if not all_true(path.is_file(), info):
        if info.is_main:
            split = make_split(labels, has_mask, cfg, _groups(table))
            named = {k: [ids[i] for i in v] for k, v in split.items()}
            write_split(run_dir, {"n": len(ids), "fold": cfg.fold, "folds": cfg.folds, "seed": cfg.seed,
                                  "mask_fraction": cfg.mask_fraction, "indices": split, "ids": named})
        barrier(info)
    data = read_split(run_dir)
    if data["n"] != len(ids) or any(ids[i] != sid for i, sid in zip(data["indices"]["train"], data["ids"]["train"])):
        raise ValueError(f"{path} does not match the data set {cfg.data} (its ids or size changed since the run started)")
    return data


def _t(x: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(x))


def stage_spec(cfg: TrainConfig, stage: int, precision: str) -> StageSpec:
    """The config's settings for one stage (``precision`` already resolved for this machine)."""
    return StageSpec(
        stage=stage, epochs=cfg.epochs_stage1 if stage == 1 else cfg.epochs_stage2,
        lr=cfg.lr_stage1 if stage == 1 else cfg.lr_stage2, decay=cfg.decay, batch_size=cfg.batch_size, seed=cfg.seed,
        progress=cfg.progress, head_lr_factor=cfg.head_lr_factor if stage == 2 else 1.0, steps=cfg.steps(stage),
        eval_every=cfg.eval_every, optimizer=cfg.optimizer, weight_decay=cfg.weight_decay, schedule=cfg.schedule,
        warmup_steps=cfg.warmup_steps, min_lr_factor=cfg.min_lr_factor, seg_loss=cfg.seg_loss, augment=cfg.augment,
        precision=precision, mix_ratio=cfg.mix_ratio if stage == 2 else 0.0,
    )


def stage1_weights_file(path: str | Path) -> Path:
    """``--stage1-weights``: a run folder (its ``stage1/best``) or a .safetensors file (DS-AGnet or CS-AGnet)."""
    from edgecalc.export.weights_source import resolve_weights

    p = Path(path)
    if p.is_dir() and best_weights(p, 1).is_file():
        return best_weights(p, 1)
    return resolve_weights(p)


#: ModelConfig fields that belong to the weights, not to the run: a fitted score head (``--linear-probe``)
#: keeps its kind and pooling when training continues from it (linear probe, then fine-tuning: LP-FT).
HEAD_FIELDS = ("score_head", "linear_head_share", "linear_head_flip", "linear_head_mask")


def _fit_config(model: torch.nn.Module, cfg: TrainConfig, source: Path) -> torch.nn.Module:
    """``model`` as this run's network: same preset and widths required; another input size is fine
    (the networks are fully convolutional), the weights move into a network built at the run's size.
    The score head's kind and pooling (``HEAD_FIELDS``) are the weights' own."""
    mc = cfg.model_config().with_(**{f: getattr(model.cfg, f) for f in HEAD_FIELDS})
    theirs = model.cfg.with_(input_size=mc.input_size)
    if theirs != mc:
        differ = ", ".join(f"{f.name} {getattr(theirs, f.name)!r} (this run: {getattr(mc, f.name)!r})"
                           for f in dataclasses.fields(theirs) if f.compare and getattr(theirs, f.name) != getattr(mc, f.name))
        raise ValueError(f"{source} is a {model.cfg.name} model; this run trains {cfg.preset}: {differ} "
                         f"(give --preset to match the weights)")
    if model.cfg != mc:
        state = model.state_dict()
        model = type(model)(mc)
        model.load_state_dict(state)
    return model


def _stage_one(cfg: TrainConfig, run_dir: Path, images: np.ndarray, masks: np.ndarray, labels: np.ndarray,
               draw: np.ndarray, val: tuple, precision: str, device: torch.device, info: DistInfo,
               hooks: Hooks | None, console: Any) -> tuple[Path | None, Any, int]:
    """Stage one's best DS-AGnet weights, its state and how many masks it saw; (None, None, 0) without one.

    Trained on the run's mask draw, or on ``stage1_data``'s masks (validated by Dice on a share of
    that folder); or given (``stage1_weights``: copied into ``stage1/best``, a CS-AGnet's A + B taken).
    """
    from edgecalc.model.weights import CSAGNet, dsagnet_from_csagnet

    best = best_weights(run_dir, 1)
    stage_one_cls = stage_one_class(cfg.network) if get_spec(cfg.network).two_stage else None
    if cfg.stage1_weights is not None:
        if info.is_main and not best.is_file():
            source = stage1_weights_file(cfg.stage1_weights)
            model = load_model(source)
            model = dsagnet_from_csagnet(model) if isinstance(model, CSAGNet) and cfg.network == "csagnet" else model
            if type(model) is not stage_one_cls:
                raise ValueError(f"--stage1-weights {source} holds a {type(model).__name__}; stage one of {cfg.network} "
                                 f"is a {stage_one_cls.__name__}")
            save_model(_fit_config(model, cfg, source), best)
        barrier(info)
        return best, None, 0
    if not cfg.has_stage1:
        return None, None, 0
    if cfg.stage1_data is not None:
        data1 = _external_stage_one_data(cfg)
    else:
        data1 = StageData(_t(images[draw]), _t(masks[draw]), _t(labels[draw]), *val)
    torch.manual_seed(cfg.seed)
    ds = stage_one_cls(cfg.model_config())
    state = train_stage(ds, data1, stage_spec(cfg, 1, precision), run_dir, device, info, hooks, console)
    return best, state, int(data1.images.shape[0])


def _external_stage_one_data(cfg: TrainConfig) -> StageData:
    """``stage1_data``'s images with masks: a stratified (patient-grouped) validation share, then the p-draw of the rest."""
    from edgecalc.data.splits import draw_mask_subset, stratified_kfold

    assert cfg.stage1_data is not None
    _, images, masks, labels, has_mask, table = _load_data(cfg.stage1_data, cfg.input_size)
    cand = np.flatnonzero(has_mask)
    if cand.size == 0:
        raise ValueError(f"--stage1-data {cfg.stage1_data} holds no pixel masks (masks/<id>.png); stage one needs them")
    groups = _groups(table)
    sub = groups[cand] if groups is not None else None
    tr, va = stratified_kfold(labels[cand], k=max(2, int(round(1.0 / cfg.val_fraction))), seed=cfg.seed + 2, groups=sub)[0]
    draw = draw_mask_subset(cand[tr], labels, cfg.mask_fraction, seed=cfg.seed, groups=groups)
    if draw.size == 0:
        raise ValueError(f"mask fraction {cfg.mask_fraction} of {cfg.stage1_data}'s {tr.size} masked images draws none")
    v = cand[va]
    return StageData(_t(images[draw]), _t(masks[draw]), _t(labels[draw]), _t(images[v]), _t(masks[v]), _t(labels[v]),
                     _t(has_mask[v]))


def _stage_two_model(cfg: TrainConfig, best1: Path | None) -> torch.nn.Module:
    """``init_weights`` (fine-tuning), else A + B of stage one's best with a fresh C, else a fresh network."""
    from edgecalc.export.weights_source import resolve_weights

    cls = network_class(cfg.network)
    if cfg.init_weights is not None:
        source = resolve_weights(cfg.init_weights)
        model = load_model(source)
        if not isinstance(model, cls):
            raise ValueError(f"--init-weights {source} holds a {type(model).__name__}; fine-tuning {cfg.network} starts "
                             f"from a {cls.__name__}" + (" (use --stage1-weights for a stage-one network)"
                                                         if get_spec(cfg.network).two_stage else ""))
        return _fit_config(model, cfg, source).train()
    if best1 is not None:
        return network_from_stage_one(load_model(best1), cfg.network)
    return cls(cfg.model_config()).train()


def _float(x: np.ndarray) -> np.ndarray:
    return x.astype(np.float32) * np.float32(1.0 / 255.0)


def run_training(cfg: TrainConfig, run_dir: str | Path, hooks: Hooks | None = None, console: Any = None, resume: bool = False) -> Path:
    """Run (or, with ``resume``, continue) the two-stage training in ``run_dir``; return the final weights path.

    A new run refuses a folder that already holds a run (use ``resume``).
    """
    run_dir = Path(run_dir)
    info = init_distributed(cfg.device)
    try:
        return _run(cfg, run_dir, hooks, console, resume, info)
    finally:
        cleanup(info)


def resume_training(run_dir: str | Path, hooks: Hooks | None = None, console: Any = None, device: str | None = None) -> Path:
    """Continue the run in ``run_dir`` from its last checkpoint with its own ``config.json``."""
    run_dir = Path(run_dir)
    cfg = TrainConfig.read(run_dir / CONFIG_FILE)
    remove_stale_temps(run_dir)  # a kill mid-write (a checkpoint, a figure) left its temporary file
    if device is not None:
        cfg = cfg.with_(device=device)
    return run_training(cfg, run_dir, hooks, console, resume=True)


def _run(cfg: TrainConfig, run_dir: Path, hooks: Hooks | None, console: Any, resume: bool, info: DistInfo) -> Path:
    device = device_for(info, cfg.device)
    if device.type == "cpu":
        torch.use_deterministic_algorithms(True)
    cfg_path = run_dir / CONFIG_FILE
    existed = cfg_path.exists()
    barrier(info)  # every rank looks before rank 0 writes
    if not resume and existed:
        raise FileExistsError(f"{run_dir} already holds a run ({CONFIG_FILE}); continue it with --resume {run_dir} or choose another --out")
    # The data and the split are checked before the run folder exists: a bad data set leaves no
    # half-started run behind (every rank checks the same deterministic split, so none waits alone).
    ids, images, masks, labels, has_mask, table = _load_data(cfg.data, cfg.input_size)
    if not resume:
        make_split(labels, has_mask, cfg, _groups(table))
    if info.is_main and not resume:
        run_dir.mkdir(parents=True, exist_ok=True)
        write_json(cfg_path, cfg.to_dict())
    barrier(info)
    split = _split(run_dir, cfg, ids, labels, has_mask, table, info)
    idx = {k: np.asarray(v, dtype=np.int64) for k, v in split["indices"].items()}
    mcfg = cfg.model_config()
    size = mcfg.input_size
    val = (_t(images[idx["val"]]), _t(masks[idx["val"]]), _t(labels[idx["val"]]), _t(has_mask[idx["val"]]))
    precision = resolve_precision(cfg.precision, device)
    if console is not None and info.is_main and cfg.linear_probe:
        console.print(f"linear probe: a score head on the frozen encoder of {escape(str(cfg.init_weights))}, {size} px {cfg.preset} "
                      "(no gradient steps)")
    elif console is not None and info.is_main:
        console.print(f"network {cfg.network} ({get_spec(cfg.network).supervision}), recipe {cfg.recipe}: {cfg.optimizer}, {cfg.schedule} schedule, {cfg.seg_loss} loss, {cfg.augment} "
                      f"augmentation, precision {precision} (asked: {cfg.precision}), {size} px {cfg.preset}")
    started = time.time()

    best1, state1, n_masks1 = _stage_one(cfg, run_dir, images, masks, labels, idx["mask_draw"], val, precision,
                                         device, info, hooks, console)
    t1 = time.time()

    # Pseudo masks for every training image from stage one's best round (none without a stage one).
    train_ids = [ids[i] for i in idx["train"]]
    targets = np.zeros((len(train_ids), 1, size, size), np.float32)
    has_target = np.zeros(len(train_ids), bool)
    if best1 is not None:
        pdir = run_dir / PSEUDO_DIR
        if not all_true(pseudo_masks_done(run_dir), info):
            if info.is_main:
                model1 = load_model(best1, map_location="cpu").to(device)
                write_pseudo_masks(model1, _float(images[idx["train"]]), train_ids, pdir, cfg.mask_threshold, device)
                write_pseudo_marker(run_dir, {"count": len(train_ids), "threshold": cfg.mask_threshold,
                                              "from": str(best1.relative_to(run_dir))})
            barrier(info)
        targets = read_pseudo_masks(pdir, train_ids, size)
        has_target[:] = True
        if cfg.keep_true_masks:
            pos = {int(i): k for k, i in enumerate(idx["train"])}
            for i in idx["mask_draw"]:
                targets[pos[int(i)]] = masks[i]
    elif get_spec(cfg.network).supervision == "all-masks":  # deep supervision on every true mask (Alexnet-Seg)
        targets = masks[idx["train"]].astype(np.float32)
        has_target = has_mask[idx["train"]].copy()
        if not has_target.any():
            raise ValueError(f"network {cfg.network} trains on every training image's pixel mask; none of {cfg.data}'s "
                             "training images has one (masks/<id>.png)")

    # Stage two: CS-AGnet (from stage one's A + B, from --init-weights, or fresh), labels + pseudo masks.
    torch.manual_seed(cfg.seed + 1)
    cs = _stage_two_model(cfg, best1)
    x2, m2, y2, t2_has = images[idx["train"]], targets, labels[idx["train"]], has_target
    mix_from = None
    if cfg.mix_data is not None:
        _, mx, mm, my, mhas, _ = _load_data(cfg.mix_data, size)
    if cfg.mix_data is not None and not cfg.linear_probe:
        mix_from = len(y2)
        x2, m2 = np.concatenate([x2, mx]), np.concatenate([m2, mm.astype(np.float32)])
        y2, t2_has = np.concatenate([y2, my]), np.concatenate([t2_has, mhas])
    state2, probe = None, None
    if cfg.linear_probe:  # no gradient steps: a linear score head on the frozen encoder, fitted on train + val
        fit_idx = np.concatenate([idx["train"], idx["val"]])
        groups = _groups(table)
        best2, probe = fit_linear_probe(cs, images[fit_idx], labels[fit_idx], None if groups is None else groups[fit_idx],
                                        seed=cfg.seed, device=device, console=console if info.is_main else None,
                                        mask_grid=MASK_GRID if cfg.linear_probe_mask else (False,),
                                        mix=None if cfg.mix_data is None else (mx, my, cfg.mix_ratio))
    else:
        data2 = StageData(_t(x2), _t(m2), _t(y2), *val, has_target=_t(t2_has), mix_from=mix_from)
        state2 = train_stage(cs, data2, stage_spec(cfg, 2, precision), run_dir, device, info, hooks, console)
    t2 = time.time()

    final = final_weights_path(run_dir)
    if info.is_main:
        if state2 is not None:
            best2 = load_model(best_weights(run_dir, 2))
        save_model(best2, final)
        from edgecalc.eval.attention import dilation_for
        from edgecalc.eval.evaluate import evaluate_arrays

        test = idx["test"]
        metrics = evaluate_arrays(
            best2, _float(images[test]), masks[test].astype(np.float32), has_mask[test], labels[test], [ids[i] for i in test],
            eval_dir(run_dir), console=console, title=f"test fold {cfg.fold} of {cfg.folds}", threshold=cfg.mask_threshold, device=device,
            data_dir=cfg.data, dilation=dilation_for(cfg.data, [ids[i] for i in test], size, labels[test]),
        )
        write_metrics(run_dir, {
            "test": metrics,
            "best_epoch_stage2": None if state2 is None else state2.best_epoch,
            "best_val_auc_stage2": None if state2 is None else state2.best_value,
            "linear_probe": probe,
            "network": cfg.network,
            "mask_fraction": cfg.mask_fraction,
            "n_train": int(idx["train"].size), "n_val": int(idx["val"].size), "n_test": int(test.size),
            "n_masks_stage1": n_masks1,
            "stage1_data": cfg.stage1_data, "stage1_weights": cfg.stage1_weights, "init_weights": cfg.init_weights,
            "mix_data": cfg.mix_data, "mix_ratio": cfg.mix_ratio,
            "weights": FINAL_WEIGHTS,
            "recipe": cfg.recipe, "precision": precision,
            "seconds_this_session": {"stage1": round(t1 - started, 1), "stage2": round(t2 - t1, 1)},
            # over every session of the run (interrupted and resumed ones too): the rounds' own timings
            "train_seconds": {f"stage{k}": round(sum(float(r.get("seconds") or 0) for r in st.history), 1)
                              for k, st in ((1, state1), (2, state2)) if st is not None},
        })
    barrier(info)
    return final
