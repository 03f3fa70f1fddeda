"""Distributed data parallel on the CPU (gloo): two processes end with identical weights, and
``torchrun -m edgecalc train`` runs the real command."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

from train_helpers import ddp_worker, make_tiny_phantom, tensors


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory) -> Path:
    return make_tiny_phantom(tmp_path_factory.mktemp("phantom") / "tiny")


def test_two_process_ddp_ranks_hold_identical_weights(tiny_data, tmp_path):
    dump = tmp_path / "dump"
    dump.mkdir()
    run_dir = tmp_path / "ddp"
    mp.spawn(ddp_worker, args=(2, _free_port(), str(tiny_data), str(run_dir), str(dump)), nprocs=2, join=True)
    r0, r1 = tensors(dump / "rank0.safetensors"), tensors(dump / "rank1.safetensors")
    assert r0.keys() == r1.keys() and any("running_mean" in k for k in r0)
    different = [k for k in r0 if not torch.equal(r0[k], r1[k])]
    assert not different, f"ranks differ in {different[:3]}"
    # rank 0 wrote the run folder, and its final checkpoint holds those weights
    last = tensors(run_dir / "stage2" / "last.safetensors")
    assert all(torch.equal(last[k], r0[k]) for k in r0)
    assert (run_dir / "metrics.json").is_file()


@pytest.mark.slow
def test_torchrun_launches_the_training_command(tiny_data, tmp_path):
    torchrun = shutil.which("torchrun") or str(Path(sys.executable).with_name("torchrun"))
    if not Path(torchrun).exists():
        pytest.skip("torchrun not found beside the Python interpreter")
    run_dir = tmp_path / "torchrun"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = [torchrun, "--standalone", "--nproc_per_node", "2", "-m", "edgecalc", "train", str(tiny_data), "--size", "32",
           "--epochs-stage1", "1", "--epochs-stage2", "1", "--batch-size", "2", "--folds", "4", "--val-fraction", "0.25",
           "--mask-fraction", "0.5", "--out", str(run_dir), "--no-progress", "--threads", "1"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert (run_dir / "final.safetensors").is_file()
    assert json.loads((run_dir / "checkpoints" / "stage2.json").read_text())["done"]
