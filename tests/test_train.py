"""Two-stage training on a tiny phantom: run folder, pseudo masks, stage-one -> stage-two hand-over,
bit-identical resume, the NaN stop."""

from __future__ import annotations

import csv
import json

import pytest
import torch

from edgecalc.train.run import resume_training, run_training
from edgecalc.train.stage import Hooks, TrainingDiverged
from train_helpers import assert_identical, one_thread, tensors, tiny_config, tiny_data  # noqa: F401 (fixtures)


@pytest.fixture(scope="module")
def reference_run(tiny_data, tmp_path_factory):
    """One uninterrupted run; records the CS-AGnet's state when stage two starts."""
    seen: dict[str, dict[str, torch.Tensor]] = {}

    def on_stage_start(stage: int, model: torch.nn.Module) -> None:
        seen[f"stage{stage}"] = {k: v.detach().clone() for k, v in model.state_dict().items()}

    run_dir = tmp_path_factory.mktemp("runs") / "reference"
    run_training(tiny_config(tiny_data), run_dir, hooks=Hooks(on_stage_start=on_stage_start))
    return run_dir, seen


def test_run_folder_has_every_file(reference_run):
    run_dir, _ = reference_run
    for name in ("config.json", "split.json", "log.csv", "log.jsonl", "metrics.json", "final.safetensors", "final.json",
                 "checkpoints/stage1-epoch0002.safetensors", "checkpoints/stage1.json",
                 "checkpoints/stage2-epoch0002.safetensors", "checkpoints/stage2.json", "stage1/best.safetensors", "stage1/last.safetensors",
                 "stage2/best.safetensors", "stage2/last.safetensors", "pseudo_masks.json",
                 "eval/metrics.json", "eval/roc.png", "eval/attention.png"):
        assert (run_dir / name).is_file(), name
    assert not list(run_dir.rglob("*.tmp*")), "temporary files left behind"
    assert len(list((run_dir / "checkpoints").glob("*.safetensors"))) == 2, "older epochs' tensors not removed"
    rows = list(csv.DictReader((run_dir / "log.csv").open()))
    assert [(r["stage"], r["epoch"]) for r in rows] == [("1", "1"), ("1", "2"), ("2", "1"), ("2", "2")]
    assert len((run_dir / "log.jsonl").read_text().splitlines()) == 4
    metrics = json.loads((run_dir / "metrics.json").read_text())
    for key in ("accuracy", "sensitivity", "specificity", "auc", "confusion_matrix", "dice_positives"):
        assert key in metrics["test"]
    ckpt = json.loads((run_dir / "checkpoints/stage2.json").read_text())
    assert ckpt["done"] and ckpt["epoch"] == 2 and ckpt["step"] == 4
    assert ckpt["optimizer"]["param_groups"][0]["lr"] < 0.1 * tiny_config(run_dir).lr_stage2  # the cosine has decayed


def test_split_and_pseudo_masks_cover_every_training_image(reference_run):
    run_dir, _ = reference_run
    split = json.loads((run_dir / "split.json").read_text())
    ind = split["indices"]
    assert set(ind["train"]).isdisjoint(ind["val"]) and set(ind["train"]).isdisjoint(ind["test"])
    assert set(ind["val"]).isdisjoint(ind["test"])
    assert len(ind["train"]) + len(ind["val"]) + len(ind["test"]) == split["n"] == 24
    assert set(ind["mask_draw"]) <= set(ind["train"]) and 0 < len(ind["mask_draw"]) < len(ind["train"])
    pseudo = sorted(p.stem for p in (run_dir / "pseudo_masks").glob("*.png"))
    assert pseudo == sorted(split["ids"]["train"])


def test_stage_two_starts_from_stage_one_weights(reference_run):
    run_dir, seen = reference_run
    best1 = tensors(run_dir / "stage1" / "best.safetensors")
    start2 = seen["stage2"]
    shared = [k for k in best1 if k.startswith(("encoder.", "decoder."))]
    assert shared and all(torch.equal(best1[k], start2[k]) for k in shared)
    assert any(k.startswith("classifier.") for k in start2)
    # and stage two trained them further
    final = tensors(run_dir / "stage2" / "last.safetensors")
    assert any(not torch.equal(final[k], best1[k]) for k in shared if final[k].dtype.is_floating_point)


def _interrupt_at(stage: int, epoch: int) -> Hooks:
    def on_epoch_end(s: int, e: int, model) -> None:
        if (s, e) == (stage, epoch):
            raise KeyboardInterrupt(f"test interrupt after stage {s} epoch {e}")

    return Hooks(on_epoch_end=on_epoch_end)


def test_resume_is_bit_identical(reference_run, tiny_data, tmp_path):
    ref_dir, _ = reference_run
    run_dir = tmp_path / "interrupted"
    with pytest.raises(KeyboardInterrupt):
        run_training(tiny_config(tiny_data), run_dir, hooks=_interrupt_at(1, 1))
    assert not (run_dir / "pseudo_masks.json").exists()
    with pytest.raises(KeyboardInterrupt):
        resume_training(run_dir, hooks=_interrupt_at(2, 1))
    assert json.loads((run_dir / "checkpoints/stage2.json").read_text())["epoch"] == 1
    resume_training(run_dir)
    assert_identical(ref_dir / "stage1" / "last.safetensors", run_dir / "stage1" / "last.safetensors")
    assert_identical(ref_dir / "stage2" / "last.safetensors", run_dir / "stage2" / "last.safetensors")
    assert_identical(ref_dir / "final.safetensors", run_dir / "final.safetensors")
    assert_identical(ref_dir / "checkpoints" / "stage2-epoch0002.safetensors", run_dir / "checkpoints" / "stage2-epoch0002.safetensors")
    assert len((run_dir / "log.jsonl").read_text().splitlines()) == 4


def test_new_run_refuses_an_existing_run_folder(reference_run, tiny_data):
    run_dir, _ = reference_run
    with pytest.raises(FileExistsError, match="--resume"):
        run_training(tiny_config(tiny_data), run_dir)


def test_nan_loss_stops_with_a_clear_message(tiny_data, tmp_path, monkeypatch):
    import edgecalc.train.stage as stage_mod

    real = stage_mod.combined_loss
    state = {"poison": False}

    def poisoned(output, target, labels=None, **kwargs):
        total, parts = real(output, target, labels, **kwargs)
        return (total * float("nan"), parts) if state["poison"] else (total, parts)

    monkeypatch.setattr(stage_mod, "combined_loss", poisoned)

    def on_epoch_end(s, e, model):
        state["poison"] = True

    run_dir = tmp_path / "nan"
    with pytest.raises(TrainingDiverged, match=r"stage 1, epoch 2, step \d+: the loss is nan.*last good checkpoint .*stage1\.json \(after epoch 1\) is kept"):
        run_training(tiny_config(tiny_data), run_dir, hooks=Hooks(on_epoch_end=on_epoch_end))
    ckpt = json.loads((run_dir / "checkpoints" / "stage1.json").read_text())
    assert ckpt["epoch"] == 1 and not ckpt["done"]


def test_schedule_decays_per_step_and_head_factor_applies_to_module_c():
    from edgecalc.model import CSAGNet, DSAGNet, get_preset
    from edgecalc.train.schedule import make_optimizer

    cfg = get_preset("lite", 32)
    opt, sched = make_optimizer(CSAGNet(cfg), lr=1e-3, decay=0.5, head_lr_factor=10)
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([1e-3, 1e-2])
    n_head = sum(p.numel() for p in opt.param_groups[1]["params"])
    assert n_head == sum(p.numel() for p in CSAGNet(cfg).classifier.parameters())
    for _ in range(2):
        opt.step()
        sched.step()
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([1e-3 / 2, 1e-2 / 2])  # lr / (1 + 0.5 * 2)
    opt1, _ = make_optimizer(DSAGNet(cfg), lr=1e-4, decay=1e-6, head_lr_factor=10)
    assert len(opt1.param_groups) == 1


def test_sigterm_becomes_an_interrupt_with_a_resume_hint(tiny_data, tmp_path, monkeypatch):
    """`kill` is handled like Ctrl-C: the CLI stops with exit code 130 and says how to resume."""
    import os
    import signal

    from rich.console import Console

    import edgecalc.train.run as run_mod
    from edgecalc.train.commands import train_cmd

    previous = signal.getsignal(signal.SIGTERM)

    def killed(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGTERM)
        raise AssertionError("SIGTERM did not interrupt")

    monkeypatch.setattr(run_mod, "_run", killed)
    console = Console(record=True, width=200)
    try:
        code = train_cmd(None, console=console, out=tmp_path / "run", **tiny_config(tiny_data).to_dict())
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert code == 130
    assert f"edgecalc train --resume {tmp_path / 'run'}" in console.export_text()


def test_resume_is_bit_identical_under_bf16_autocast(tiny_data, tmp_path):
    """The same guarantee with bfloat16 autocast (what `--precision auto` picks on a CPU with native bf16)."""
    cfg = tiny_config(tiny_data, precision="bf16", steps_stage1=2, steps_stage2=4, eval_every=2)
    ref, run_dir = tmp_path / "ref", tmp_path / "interrupted"
    run_training(cfg, ref)
    assert json.loads((ref / "metrics.json").read_text())["precision"] == "bf16"
    with pytest.raises(KeyboardInterrupt):
        run_training(cfg, run_dir, hooks=_interrupt_at(2, 1))
    resume_training(run_dir)
    assert_identical(ref / "final.safetensors", run_dir / "final.safetensors")
