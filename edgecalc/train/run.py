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

Run folder: ``config.json``, ``split.json``, ``log.csv``, ``log.jsonl``, ``checkpoints/``,
``stage1/{best,last}.safetensors``, ``pseudo_masks/``, ``stage2/{best,last}.safetensors``,
``final.safetensors`` (+ ``.json``), ``metrics.json``, ``eval/``. Every file is written atomically.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from edgecalc.atomic import atomic_write_json
from edgecalc.model.weights import csagnet_from_dsagnet, load_model, save_model
from edgecalc.train.config import TrainConfig
from edgecalc.train.distributed import DistInfo, all_true, barrier, cleanup, device_for, init_distributed
from edgecalc.train.precision import resolve_precision
from edgecalc.train.pseudo_masks import PSEUDO_DIR, read_pseudo_masks, write_pseudo_masks
from edgecalc.train.stage import Hooks, StageData, StageSpec, stage_dir, train_stage

CONFIG_FILE = "config.json"
SPLIT_FILE = "split.json"
FINAL_WEIGHTS = "final.safetensors"
METRICS_FILE = "metrics.json"


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
    candidates = train[has_mask[train]]
    if candidates.size == 0:
        raise ValueError("no training image has a pixel mask; stage one needs some (masks/<id>.png)")
    fraction = cfg.mask_fraction if candidates.size == train.size else min(1.0, cfg.mask_fraction * train.size / candidates.size)
    draw = draw_mask_subset(candidates, labels, fraction, seed=cfg.seed, groups=groups)
    if draw.size == 0:
        raise ValueError(f"mask fraction {cfg.mask_fraction} of {train.size} training images draws no image; raise --mask-fraction")
    return {"train": sorted(train.tolist()), "val": sorted(val.tolist()), "test": sorted(test.tolist()), "mask_draw": draw.tolist()}


def _load_data(cfg: TrainConfig) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[dict]]:
    from edgecalc.data.dataset import load_dataset

    ids, images, masks, labels, table = load_dataset(cfg.data, cfg.input_size)
    size = cfg.input_size
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
            write_json(path, {"n": len(ids), "fold": cfg.fold, "folds": cfg.folds, "seed": cfg.seed,
                              "mask_fraction": cfg.mask_fraction, "indices": split, "ids": named})
        barrier(info)
    data = json.loads(path.read_text())
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
        precision=precision,
    )


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
    if info.is_main and not resume:
        run_dir.mkdir(parents=True, exist_ok=True)
        write_json(cfg_path, cfg.to_dict())
    barrier(info)
    ids, images, masks, labels, has_mask, table = _load_data(cfg)
    split = _split(run_dir, cfg, ids, labels, has_mask, table, info)
    idx = {k: np.asarray(v, dtype=np.int64) for k, v in split["indices"].items()}
    mcfg = cfg.model_config()
    size = mcfg.input_size
    val = (_t(images[idx["val"]]), _t(masks[idx["val"]]), _t(labels[idx["val"]]), _t(has_mask[idx["val"]]))
    precision = resolve_precision(cfg.precision, device)
    if console is not None and info.is_main:
        console.print(f"recipe {cfg.recipe}: {cfg.optimizer}, {cfg.schedule} schedule, {cfg.seg_loss} loss, {cfg.augment} "
                      f"augmentation, precision {precision} (asked: {cfg.precision}), {size} px {cfg.preset}")
    started = time.time()

    # Stage one: DS-AGnet on the mask draw.
    from edgecalc.model import DSAGNet

    torch.manual_seed(cfg.seed)
    ds = DSAGNet(mcfg)
    draw = idx["mask_draw"]
    data1 = StageData(_t(images[draw]), _t(masks[draw]), _t(labels[draw]), *val)
    state1 = train_stage(ds, data1, stage_spec(cfg, 1, precision), run_dir, device, info, hooks, console)
    t1 = time.time()

    # Pseudo masks for every training image from stage one's best epoch.
    pdir = run_dir / PSEUDO_DIR
    train_ids = [ids[i] for i in idx["train"]]
    marker = run_dir / "pseudo_masks.json"
    if not all_true(marker.is_file(), info):
        if info.is_main:
            best1 = load_model(stage_dir(run_dir, 1) / "best.safetensors", map_location="cpu").to(device)
            write_pseudo_masks(best1, _float(images[idx["train"]]), train_ids, pdir, cfg.mask_threshold, device)
            write_json(marker, {"count": len(train_ids), "threshold": cfg.mask_threshold, "from": "stage1/best.safetensors"})
        barrier(info)
    targets = read_pseudo_masks(pdir, train_ids, size)
    if cfg.keep_true_masks:
        pos = {int(i): k for k, i in enumerate(idx["train"])}
        for i in draw:
            targets[pos[int(i)]] = masks[i]

    # Stage two: CS-AGnet from stage one's best, all training images, labels + pseudo masks.
    torch.manual_seed(cfg.seed + 1)
    cs = csagnet_from_dsagnet(load_model(stage_dir(run_dir, 1) / "best.safetensors"))
    data2 = StageData(_t(images[idx["train"]]), _t(targets), _t(labels[idx["train"]]), *val)
    state2 = train_stage(cs, data2, stage_spec(cfg, 2, precision), run_dir, device, info, hooks, console)
    t2 = time.time()

    final = run_dir / FINAL_WEIGHTS
    if info.is_main:
        best2 = load_model(stage_dir(run_dir, 2) / "best.safetensors")
        save_model(best2, final)
        from edgecalc.eval.attention import dilation_for
        from edgecalc.eval.evaluate import evaluate_arrays

        test = idx["test"]
        metrics = evaluate_arrays(
            best2, _float(images[test]), masks[test].astype(np.float32), has_mask[test], labels[test], [ids[i] for i in test],
            run_dir / "eval", console=console, title=f"test fold {cfg.fold} of {cfg.folds}", threshold=cfg.mask_threshold, device=device,
            data_dir=cfg.data, dilation=dilation_for(cfg.data, [ids[i] for i in test], size, labels[test]),
        )
        write_json(run_dir / METRICS_FILE, {
            "test": metrics,
            "best_epoch_stage2": state2.best_epoch,
            "best_val_auc_stage2": state2.best_value,
            "mask_fraction": cfg.mask_fraction,
            "n_train": int(idx["train"].size), "n_val": int(idx["val"].size), "n_test": int(test.size),
            "n_masks_stage1": int(draw.size),
            "weights": FINAL_WEIGHTS,
            "recipe": cfg.recipe, "precision": precision,
            "seconds_this_session": {"stage1": round(t1 - started, 1), "stage2": round(t2 - t1, 1)},
            # over every session of the run (interrupted and resumed ones too): the rounds' own timings
            "train_seconds": {f"stage{k}": round(sum(float(r.get("seconds") or 0) for r in st.history), 1)
                              for k, st in ((1, state1), (2, state2))},
        })
    barrier(info)
    return final
