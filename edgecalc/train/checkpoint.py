"""Resumable training state: safetensors for every tensor, JSON for every scalar; never pickle.

``checkpoints/stage{n}-epoch{E}.safetensors`` holds the model (``model.*``), Adam's moments and step
counts (``optim.<param index>.<name>``) and the shuffling generator's state (``rng.shuffle``);
``checkpoints/stage{n}.json`` holds the epoch, step, the optimiser's param groups (learning rates,
betas ...), the best validation figure so far, the history and the name of its tensor file. Tensors
first, JSON last, each atomically, then older tensor files are removed: whenever the process dies
(Ctrl-C, SIGTERM, kill -9), the JSON on disk names a complete tensor file of the same epoch.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from edgecalc.atomic import atomic_write
from edgecalc.model.weights import check_state_dict
from edgecalc.run_folder import checkpoint_json_name, checkpoint_tensors_glob, checkpoint_tensors_name

FORMAT_VERSION = 1


@dataclass
class StageState:
    """Where a stage stands after ``epoch`` completed epochs (``epoch`` = 0: nothing trained yet)."""

    epoch: int = 0
    step: int = 0
    best_value: float | None = None
    best_epoch: int | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    done: bool = False


def checkpoint_json(ckpt_dir: Path, stage: int) -> Path:
    """The stage's checkpoint JSON (it names its tensor file)."""
    return ckpt_dir / checkpoint_json_name(stage)


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, torch.Tensor):
        return value.item()
    return value


def save_checkpoint(
    ckpt_dir: Path,
    stage: int,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    generator: torch.Generator,
    state: StageState,
) -> Path:
    """Write the stage's tensors and scalars atomically; return the JSON path."""
    tensors: dict[str, torch.Tensor] = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    opt_state = optimizer.state_dict()
    tensor_keys: dict[str, list[str]] = {}
    for idx, slots in opt_state["state"].items():
        tensor_keys[str(idx)] = []
        for name, value in slots.items():
            if not isinstance(value, torch.Tensor):
                value = torch.tensor(value)
            tensors[f"optim.{idx}.{name}"] = value.detach().cpu().contiguous()
            tensor_keys[str(idx)].append(name)
    tensors["rng.shuffle"] = generator.get_state().clone()
    tname = checkpoint_tensors_name(stage, state.epoch)
    meta = {
        "format_version": FORMAT_VERSION,
        "stage": stage,
        "tensors": tname,
        "epoch": state.epoch,
        "step": state.step,
        "best_value": state.best_value,
        "best_epoch": state.best_epoch,
        "done": state.done,
        "history": state.history,
        "optimizer": {"param_groups": _jsonable(opt_state["param_groups"]), "state_keys": tensor_keys},
    }
    tpath, jpath = ckpt_dir / tname, checkpoint_json(ckpt_dir, stage)
    try:
        atomic_write(tpath, lambda p: save_file(tensors, str(p)))
    except SafetensorError as exc:  # a full disk or a read-only folder, reported by safetensors
        raise OSError(f"cannot write checkpoint {tpath}: {exc}") from None
    atomic_write(jpath, lambda p: p.write_text(json.dumps(meta, indent=1) + "\n"))
    for old in ckpt_dir.glob(checkpoint_tensors_glob(stage)):
        if old.name != tname:
            old.unlink(missing_ok=True)
    return jpath


def load_checkpoint(
    ckpt_dir: Path,
    stage: int,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    generator: torch.Generator,
    device: torch.device | str = "cpu",
) -> StageState | None:
    """Restore model, optimiser and generator in place; None when the stage has no checkpoint yet."""
    jpath = checkpoint_json(ckpt_dir, stage)
    if not jpath.is_file():
        return None
    try:
        meta = json.loads(jpath.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"checkpoint {jpath} is not valid JSON: {exc}") from exc
    if not isinstance(meta, dict):
        raise ValueError(f"checkpoint {jpath} holds a JSON {type(meta).__name__}, not an object")
    tname = str(meta.get("tensors") or checkpoint_tensors_name(stage))  # the name before per-epoch files
    if Path(tname).name != tname or tname in (".", ".."):  # a plain file name: nothing read outside ckpt_dir
        raise ValueError(f"checkpoint {jpath} names tensors {tname!r}, outside its folder")
    tpath = ckpt_dir / tname
    if not tpath.is_file():
        raise FileNotFoundError(f"checkpoint {jpath} names tensors {tpath.name}, which are missing")
    if meta.get("format_version") != FORMAT_VERSION or meta.get("stage") != stage:
        raise ValueError(f"checkpoint {jpath}: expected format {FORMAT_VERSION} for stage {stage}, got {meta.get('format_version')}/{meta.get('stage')}")
    try:
        tensors = load_file(str(tpath))
    except SafetensorError as exc:
        raise ValueError(f"checkpoint {tpath} is not a readable safetensors file: {exc}") from None
    model_state = {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}
    check_state_dict(model.state_dict(), model_state, source=str(tpath))
    model.load_state_dict(model_state)
    groups = meta["optimizer"]["param_groups"]
    for g in groups:
        if "betas" in g and isinstance(g["betas"], list):
            g["betas"] = tuple(g["betas"])
    opt_state: dict[str, Any] = {"state": {}, "param_groups": groups}
    for idx, names in meta["optimizer"]["state_keys"].items():
        slots = {}
        for name in names:
            key = f"optim.{idx}.{name}"
            if key not in tensors:
                raise ValueError(f"checkpoint {tpath} lacks optimiser tensor {key!r}")
            slots[name] = tensors[key].to(device) if name != "step" else tensors[key]
        opt_state["state"][int(idx)] = slots
    optimizer.load_state_dict(opt_state)
    if "rng.shuffle" not in tensors:
        raise ValueError(f"checkpoint {tpath} lacks the shuffling generator state 'rng.shuffle'")
    generator.set_state(tensors["rng.shuffle"])
    return StageState(
        epoch=int(meta["epoch"]),
        step=int(meta["step"]),
        best_value=meta["best_value"],
        best_epoch=meta["best_epoch"],
        history=list(meta["history"]),
        done=bool(meta.get("done", False)),
    )
