"""Shared bits of the training tests: the tiny phantom set and its fast configuration."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from edgecalc.train.config import TrainConfig


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One torch thread: on a shared 2-core machine two threads per process thrash (10x slower)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory) -> Path:
    """A tiny phantom data set (see make_tiny_phantom), one per test module."""
    return make_tiny_phantom(tmp_path_factory.mktemp("phantom") / "tiny")


def make_tiny_phantom(out: Path) -> Path:
    from edgecalc.data.phantom import write_phantom_dataset

    return write_phantom_dataset(out, n=24, positive=11, size=64, seed=7, progress=False, workers=1)


def tiny_config(data: Path, **changes) -> TrainConfig:
    """The default (cpu) recipe shrunk: two validated rounds of 2 steps per stage."""
    base = dict(data=str(data), size=32, steps_stage1=4, steps_stage2=4, eval_every=2, warmup_steps=1, batch_size=4,
                folds=4, val_fraction=0.25, mask_fraction=0.5, progress=False)
    base.update(changes)
    return TrainConfig(**base)


def tensors(path: Path) -> dict[str, torch.Tensor]:
    return load_file(str(path))


def assert_identical(a: Path, b: Path) -> None:
    ta, tb = tensors(a), tensors(b)
    assert ta.keys() == tb.keys()
    different = [k for k in ta if not torch.equal(ta[k], tb[k])]
    assert not different, f"{len(different)} tensors differ, first {different[:3]}"


def ddp_worker(rank: int, world: int, port: int, data: str, run_dir: str, dump_dir: str) -> None:
    """One rank of the spawned 2-process gloo run: train, then dump this rank's final weights and buffers."""
    import os

    from safetensors.torch import save_file

    from edgecalc.train.run import run_training
    from edgecalc.train.stage import Hooks

    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    torch.set_num_threads(1)
    cfg = tiny_config(Path(data), steps_stage1=2, steps_stage2=2, batch_size=2)

    def on_epoch_end(stage: int, epoch: int, model: torch.nn.Module) -> None:
        if (stage, epoch) == (2, 1):  # the last round: 2 steps at eval_every 2
            state = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
            save_file(state, str(Path(dump_dir) / f"rank{rank}.safetensors"))

    run_training(cfg, run_dir, hooks=Hooks(on_epoch_end=on_epoch_end))
