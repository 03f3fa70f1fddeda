"""One training stage: rounds of optimiser steps with augmentation, validation, best round and checkpoints.

Stage one trains a DS-AGnet on the images with masks (segmentation loss only); stage two a CS-AGnet
on every training image (segmentation loss against pseudo masks + cross-entropy of the image label).
A round ("epoch" in the logs) is one pass over the data, or, with a step budget, ``eval_every``
steps drawn from reshuffled passes. After every round the stage's checkpoint is written
(atomically), so an interruption loses at most the round in progress; resuming restores model,
optimiser, schedule and generators and gives bit-identical weights on the CPU. A NaN/inf loss
raises ``TrainingDiverged`` before anything of the bad round is saved.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from edgecalc.eval.metrics import dice_per_image, roc_auc
from edgecalc.eval.predict import predict
from edgecalc import run_folder
from edgecalc.model.weights import save_model
from edgecalc.run_folder import best_weights, checkpoint_dir, last_weights
from edgecalc.train.augment import as_float_images, batch_augment, random_flips
from edgecalc.train.checkpoint import StageState, checkpoint_json, load_checkpoint, save_checkpoint
from edgecalc.train.distributed import DistInfo, all_true, barrier, broadcast_buffers
from edgecalc.train.losses import combined_loss, segmentation_term
from edgecalc.train.precision import autocast
from edgecalc.train.schedule import make_optimizer

LOG_FIELDS = ("stage", "epoch", "step", "lr", "train_loss", "train_ce", "val_loss", "val_dice", "val_auc", "val_accuracy", "best", "seconds")


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the message names stage, epoch and step."""


@dataclass
class StageData:
    """Tensors of one stage (all on the CPU; batches move to the device).

    Images are held as uint8 gray levels (a quarter of float32's memory; converted per batch) or float32 in [0, 1].
    """

    images: torch.Tensor  #: (N, 1, S, S) uint8 gray levels or float32 in [0, 1]
    masks: torch.Tensor  #: (N, 1, S, S) {0, 1} (uint8 or float32): true masks (stage one) or pseudo masks
    labels: torch.Tensor  #: (N,) int64 image labels
    val_images: torch.Tensor
    val_masks: torch.Tensor
    val_labels: torch.Tensor
    #: (N_val,) bool: which validation images have a true mask (Dice only over those); None = all.
    val_has_mask: torch.Tensor | None = None
    #: (N,) bool: which training images have a pixel target (the segmentation loss sees only those); None = all.
    has_target: torch.Tensor | None = None
    #: Images from this index on are the mix set (``StageSpec.mix_ratio`` of every batch); None = no mix.
    mix_from: int | None = None


@dataclass
class Hooks:
    """Callbacks for tests and tools. ``on_epoch_end`` runs after the epoch's checkpoint is on disk."""

    on_stage_start: Callable[[int, torch.nn.Module], None] | None = None
    on_epoch_end: Callable[[int, int, torch.nn.Module], None] | None = None


@dataclass
class StageSpec:
    stage: int
    epochs: int
    lr: float
    decay: float
    batch_size: int
    seed: int
    progress: bool = True
    head_lr_factor: float = 1.0
    extra: dict[str, Any] = field(default_factory=dict)
    steps: int | None = None  #: step budget; None = ``epochs`` passes over the data
    eval_every: int = 250  #: steps per round with a step budget
    optimizer: str = "adam"
    weight_decay: float = 0.0
    schedule: str = "time-decay"
    warmup_steps: int = 0
    min_lr_factor: float = 0.0
    seg_loss: str = "tversky"
    augment: str = "flips"
    precision: str = "fp32"  #: resolved: fp32 or bf16 (train/precision.py)
    mix_ratio: float = 0.0  #: share of every batch drawn from the data's mix set (``StageData.mix_from``)

    def rounds(self) -> int:
        """How many validated rounds the stage has."""
        return self.epochs if self.steps is None else -(-self.steps // self.eval_every)

    def round_steps(self, round_index: int) -> int:
        """Steps in round ``round_index`` (0-based) of a step budget; the last one may be shorter."""
        assert self.steps is not None
        return min(self.eval_every, self.steps - round_index * self.eval_every)

    def total_steps(self, n: int, world_size: int = 1) -> int:
        """Optimiser steps of the whole stage (what the cosine schedule spans)."""
        if self.steps is not None:
            return self.steps
        return self.epochs * -(-n // (self.batch_size * world_size))


def _validate(model: torch.nn.Module, data: StageData, stage: int, device: torch.device,
              seg_loss: str = "tversky") -> dict[str, float | None]:
    """Validation loss, Dice on positives (true masks) and, for stage two, AUC and accuracy."""
    if data.val_images.shape[0] == 0:
        return {"val_loss": None, "val_dice": None, "val_auc": None, "val_accuracy": None}
    pred = predict(model, as_float_images(data.val_images), batch_size=32, device=device)
    # The segmentation part of the validation loss: the stage's loss on the full-resolution mask.
    val_loss = float(segmentation_term(torch.from_numpy(pred.masks), data.val_masks.float(), seg_loss, final=True).item())
    pos = data.val_labels.numpy() == 1
    if data.val_has_mask is not None:
        pos &= data.val_has_mask.numpy().astype(bool)
    dice = float(dice_per_image(pred.masks[pos], data.val_masks.numpy()[pos]).mean()) if pos.any() else None
    out: dict[str, float | None] = {"val_loss": val_loss, "val_dice": dice, "val_auc": None, "val_accuracy": None}
    if pred.scores is not None:
        y = data.val_labels.numpy()
        out["val_accuracy"] = float(((pred.scores > 0.5).astype(np.int64) == y).mean())
        if 0 < y.sum() < y.size:
            out["val_auc"] = roc_auc(y, pred.scores)
        p_true = np.where(y == 1, pred.scores, 1.0 - pred.scores).astype(np.float64)
        out["val_loss"] = val_loss + float(-np.log(np.clip(p_true, 1e-12, None)).mean())  # + cross-entropy
    return out


def _selection_value(stage: int, metrics: dict[str, float | None]) -> float | None:
    """Higher is better: stage two by validation AUC, stage one by validation Dice on the positives.

    Not stage one by loss: the per-image Tversky loss has a trivial minimum (predict nothing: loss 0
    on every negative), and a run that collapses into it has its lowest validation loss there, with
    Dice 0 (seen with p = 100 % at lr 1e-3). Where Dice (or AUC) is undefined, -loss decides.
    """
    key = "val_auc" if stage == 2 else "val_dice"
    if metrics[key] is not None:
        return float(metrics[key])
    return None if metrics["val_loss"] is None else -float(metrics["val_loss"])


def write_logs(run_dir: Path) -> None:
    """Rewrite ``log.csv`` and ``log.jsonl`` from the checkpoints' histories (so logs never disagree with them)."""
    rows: list[dict[str, Any]] = []
    for stage in (1, 2):
        jpath = checkpoint_json(checkpoint_dir(run_dir), stage)
        if jpath.is_file():
            rows.extend(json.loads(jpath.read_text())["history"])
    run_folder.write_logs(run_dir, rows, LOG_FIELDS)


def _batches(n: int, spec: StageSpec, epoch: int, gen: torch.Generator, info: DistInfo) -> list[torch.Tensor]:
    if info.enabled:
        from torch.utils.data import DistributedSampler

        sampler = DistributedSampler(range(n), num_replicas=info.world_size, rank=info.rank, shuffle=True, seed=spec.seed + spec.stage)
        sampler.set_epoch(epoch)
        order = torch.tensor(list(sampler), dtype=torch.int64)
    else:
        order = torch.randperm(n, generator=gen)
    return list(order.split(spec.batch_size))


def _step_batches(n: int, spec: StageSpec, round_index: int, info: DistInfo) -> list[torch.Tensor]:
    """A step budget's round: ``round_steps`` batches from reshuffled passes over the ``n`` images.

    Drawn from a generator seeded by (seed, stage, round), the same on every rank: each rank takes
    its share of one global batch, and a resumed round draws exactly what an uninterrupted one does.
    """
    g = torch.Generator().manual_seed(spec.seed * 1_000_003 + spec.stage * 10_007 + round_index)
    steps = spec.round_steps(round_index)
    global_batch = spec.batch_size * info.world_size
    need = steps * global_batch
    passes = [torch.randperm(n, generator=g) for _ in range(-(-need // n))]
    order = torch.cat(passes)[:need]
    return [order[i * global_batch:(i + 1) * global_batch][info.rank::info.world_size] for i in range(steps)]


def _with_mix(batches: list[torch.Tensor], n_main: int, n_mix: int, spec: StageSpec, round_index: int) -> list[torch.Tensor]:
    """Replace ``mix_ratio`` of every batch by images of the mix set (indices ``n_main ..``), seeded per round.

    The batches keep their size; the main set's images that make room are the batch's last ones, so
    the main set is still walked in its shuffled order.
    """
    k = int(round(spec.mix_ratio * spec.batch_size))
    if k == 0 or n_mix == 0:
        return batches
    g = torch.Generator().manual_seed(spec.seed * 1_000_003 + spec.stage * 10_007 + round_index + 7_919)
    out = []
    for b in batches:
        keep = b[: max(1, b.numel() - k)]
        out.append(torch.cat([keep, n_main + torch.randint(0, n_mix, (k,), generator=g)]))
    return out


def _augment(spec: StageSpec, images: torch.Tensor, masks: torch.Tensor, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    if spec.augment == "batch":
        return batch_augment(images, masks, gen)
    if spec.augment == "flips":
        return random_flips(images, masks, gen)
    raise ValueError(f"unknown augmentation {spec.augment!r}; choose batch or flips")


def train_stage(
    model: torch.nn.Module,
    data: StageData,
    spec: StageSpec,
    run_dir: Path,
    device: torch.device,
    info: DistInfo = DistInfo(),
    hooks: Hooks | None = None,
    console: Any = None,
) -> StageState:
    """Train ``model`` (in place) for the stage's remaining epochs; return its final state.

    Writes ``stage{n}/best.safetensors`` (best validation), ``stage{n}/last.safetensors`` (last
    epoch) and ``checkpoints/stage{n}.*`` (rank 0 only). Loads the checkpoint first when one exists.
    """
    hooks = hooks or Hooks()
    ckpt_dir = checkpoint_dir(run_dir)
    model.to(device)
    n_all = data.images.shape[0]
    n = n_all if data.mix_from is None else data.mix_from  # the main set; the mix set rides along in every batch
    if n == 0:
        raise ValueError(f"stage {spec.stage} has no training images")
    opt, sched = make_optimizer(model, spec.lr, spec.decay, spec.head_lr_factor, optimizer=spec.optimizer,
                                weight_decay=spec.weight_decay, schedule=spec.schedule,
                                total_steps=spec.total_steps(n, info.world_size), warmup_steps=spec.warmup_steps,
                                min_lr_factor=spec.min_lr_factor)
    gen = torch.Generator().manual_seed(spec.seed * 1000 + spec.stage)
    state = load_checkpoint(ckpt_dir, spec.stage, model, opt, gen, device) or StageState()
    if state.step:  # resumed: put the schedule where it was (the optimiser's groups already hold that lr)
        sched.last_epoch = state.step
        sched._last_lr = [g["lr"] for g in opt.param_groups]  # noqa: SLF001 - keep get_last_lr() right after a resume
    if state.done:
        return state
    if hooks.on_stage_start is not None:
        hooks.on_stage_start(spec.stage, model)
    net: torch.nn.Module = model
    if info.enabled:
        from torch.nn.parallel import DistributedDataParallel

        net = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    rounds = spec.rounds()
    for epoch in range(state.epoch, rounds):
        t0 = time.time()
        model.train()
        if info.enabled:  # each rank flips its own share; seeded per epoch so a resume draws the same
            flip_gen = torch.Generator().manual_seed(spec.seed * 1_000_003 + spec.stage * 10_007 + epoch * 101 + info.rank)
        else:
            flip_gen = gen
        batches = _batches(n, spec, epoch, gen, info) if spec.steps is None else _step_batches(n, spec, epoch, info)
        if data.mix_from is not None:
            batches = _with_mix(batches, n, n_all - n, spec, epoch)
        total, ce_total, count = 0.0, 0.0, 0
        bar = _progress(spec, epoch, len(batches), info, console)
        try:
            for bi, idx in enumerate(batches):
                x, m = _augment(spec, data.images[idx], data.masks[idx], flip_gen)
                y = data.labels[idx]
                x, m, y = x.to(device), m.to(device), y.to(device)
                with autocast(spec.precision, device):
                    out = net(x)
                has = None if data.has_target is None else data.has_target[idx].to(device)
                loss, parts = combined_loss(out, m, y if spec.stage == 2 else None, seg_loss=spec.seg_loss, has_target=has)
                finite = bool(torch.isfinite(loss).item())
                if not all_true(finite, info):
                    last = checkpoint_json(ckpt_dir, spec.stage)
                    kept = f"the last good checkpoint {last} (after epoch {state.epoch}) is kept" if last.is_file() else "no checkpoint of this stage was written yet"
                    raise TrainingDiverged(
                        f"stage {spec.stage}, epoch {epoch + 1}, step {state.step + 1}: the loss is "
                        f"{float(loss.detach().cpu().item())} on this rank (not finite on at least one rank); "
                        f"training stopped, {kept}. Try a lower learning rate or check the data."
                    )
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                state.step += 1
                total += float(loss.item()) * len(idx)
                ce_total += parts.get("cross_entropy", 0.0) * len(idx)
                count += len(idx)
                if bar is not None:
                    bar[0].update(bar[1], advance=1, description=f"stage {spec.stage} {_unit(spec)} {epoch + 1}/{rounds} loss {total / count:.4f}")
        finally:
            if bar is not None:
                bar[0].stop()
        broadcast_buffers(model, info)
        metrics = _validate(model, data, spec.stage, device, spec.seg_loss)
        state.epoch = epoch + 1
        value = _selection_value(spec.stage, metrics)
        improved = value is not None and (state.best_value is None or value > state.best_value)
        if improved or state.best_epoch is None:
            state.best_value, state.best_epoch = value, state.epoch
        row = {
            "stage": spec.stage,
            "epoch": state.epoch,
            "step": state.step,
            "lr": float(opt.param_groups[0]["lr"]),
            "train_loss": total / max(count, 1),
            "train_ce": ce_total / max(count, 1) if spec.stage == 2 else None,
            **metrics,
            "best": state.best_epoch == state.epoch,
            "seconds": round(time.time() - t0, 2),
        }
        state.history.append(row)
        if state.epoch == rounds:
            state.done = True
        if info.is_main:
            if state.best_epoch == state.epoch:
                save_model(model, best_weights(run_dir, spec.stage))
            if state.done:
                save_model(model, last_weights(run_dir, spec.stage))
            save_checkpoint(ckpt_dir, spec.stage, model, opt, gen, state)
            write_logs(run_dir)
            _report(row, console)
        barrier(info)
        if hooks.on_epoch_end is not None:
            hooks.on_epoch_end(spec.stage, state.epoch, model)
    return state


def _unit(spec: StageSpec) -> str:
    return "epoch" if spec.steps is None else "round"


def _fmt(v: Any) -> str:
    return "-" if v is None else (f"{v:.4f}" if isinstance(v, float) else str(v))


def _report(row: dict[str, Any], console: Any) -> None:
    if console is None:
        return
    console.print(
        f"stage {row['stage']} epoch {row['epoch']} (step {row['step']}, lr {row['lr']:.2e}, {row['seconds']:.0f} s): train loss {_fmt(row['train_loss'])}, val loss {_fmt(row['val_loss'])}, "
        f"val Dice {_fmt(row['val_dice'])}, val AUC {_fmt(row['val_auc'])}, val acc {_fmt(row['val_accuracy'])}"
        + (" (best)" if row["best"] else "")
    )


def _progress(spec: StageSpec, epoch: int, total: int, info: DistInfo, console: Any):
    if not spec.progress or not info.is_main or console is None:
        return None
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn, TimeRemainingColumn

    prog = Progress(
        "[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn(),
        console=console, transient=True,
    )
    task = prog.add_task(f"stage {spec.stage} {_unit(spec)} {epoch + 1}/{spec.rounds()}", total=total)
    prog.start()
    return prog, task

