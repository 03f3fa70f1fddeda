"""The training recipes: one home for their settings, the CLI's word for them, schedules, augmentation, losses."""

from __future__ import annotations

import json

import pytest
import torch

from edgecalc.train.config import LEGACY, RECIPES, TrainConfig


def test_recipes_resolve_and_explicit_options_win():
    cpu = TrainConfig.for_recipe("cpu", data="d")
    assert (cpu.preset, cpu.size, cpu.optimizer, cpu.schedule, cpu.seg_loss, cpu.augment) == \
        ("lite", 96, "adamw", "cosine", "bce-dice", "batch")
    assert cpu.steps_stage1 and cpu.steps_stage2
    paper = TrainConfig.for_recipe("paper", data="d")
    assert (paper.preset, paper.input_size, paper.optimizer, paper.lr_stage1, paper.lr_stage2, paper.decay) == \
        ("paper", 192, "adam", 1e-4, 5e-5, 1e-6)
    assert (paper.steps_stage1, paper.epochs_stage1, paper.seg_loss, paper.augment) == (None, 20, "tversky", "flips")
    mixed = TrainConfig.for_recipe("paper", data="d", lr_stage1=3e-4, size=None, seg_loss=None)
    assert mixed.lr_stage1 == 3e-4 and mixed.seg_loss == "tversky"  # None = the recipe's value
    with pytest.raises(ValueError, match="unknown recipe 'fast'"):
        TrainConfig.for_recipe("fast", data="d")
    with pytest.raises(ValueError, match="seg_loss must be one of"):
        TrainConfig.for_recipe("cpu", data="d", seg_loss="dice")


def test_an_epoch_count_switches_that_stage_to_epochs():
    cfg = TrainConfig.for_recipe("cpu", data="d", epochs_stage1=3)
    assert cfg.steps_stage1 is None and cfg.epochs_stage1 == 3 and cfg.steps_stage2 == RECIPES["cpu"].get(
        "steps_stage2", TrainConfig.__dataclass_fields__["steps_stage2"].default)
    both = TrainConfig.for_recipe("cpu", data="d", epochs_stage1=3, steps_stage1=7)
    assert both.steps_stage1 == 7


def test_a_run_folder_from_before_the_recipes_reads_back_as_it_trained(tmp_path):
    old = {k: v for k, v in TrainConfig(data="d").to_dict().items() if k in (
        "data", "mask_fraction", "preset", "size", "epochs_stage1", "epochs_stage2", "batch_size", "lr_stage1",
        "lr_stage2", "decay", "head_lr_factor", "fold", "folds", "val_fraction", "seed", "keep_true_masks",
        "mask_threshold", "device", "progress")}
    old.update(size=96, lr_stage1=1e-3, lr_stage2=5e-4, epochs_stage1=12)
    (tmp_path / "config.json").write_text(json.dumps(old))
    cfg = TrainConfig.read(tmp_path / "config.json")
    assert (cfg.optimizer, cfg.schedule, cfg.seg_loss, cfg.augment, cfg.precision) == ("adam", "time-decay", "tversky", "flips", "fp32")
    assert (cfg.steps_stage1, cfg.epochs_stage1, cfg.size, cfg.lr_stage1) == (None, 12, 96, 1e-3)
    assert set(LEGACY) <= set(cfg.to_dict())


def test_warmup_cosine_schedule():
    from edgecalc.train.schedule import WarmupCosine, make_optimizer

    f = WarmupCosine(total=100, warmup=10, floor=0.1)
    assert f(0) == pytest.approx(0.1) and f(9) == pytest.approx(1.0)
    assert f(10) == pytest.approx(1.0) and f(55) == pytest.approx(0.55) and f(100) == pytest.approx(0.1)
    assert all(f(s) >= f(s + 1) for s in range(10, 120))
    model = torch.nn.Linear(2, 1)
    opt, sched = make_optimizer(model, lr=1e-2, optimizer="adamw", weight_decay=0.01, schedule="cosine",
                                total_steps=20, warmup_steps=0, min_lr_factor=0.0)
    assert isinstance(opt, torch.optim.AdamW)
    for _ in range(20):
        opt.step()
        sched.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ValueError, match="total number of steps"):
        make_optimizer(model, lr=1e-2, schedule="cosine")


def test_batch_augment_keeps_image_and_mask_together_and_never_flips_vertically():
    from edgecalc.train.augment import batch_augment

    img = torch.zeros(64, 1, 32, 32, dtype=torch.uint8)
    mask = torch.zeros(64, 1, 32, 32)
    img[:, 0, 6:9, 14:17] = 255  # a bright focus in the top half...
    mask[:, 0, 6:9, 14:17] = 1
    img[:, 0, 9:, 14:17] = 40  # ...and its shadow-like streak below it
    g = torch.Generator().manual_seed(0)
    x, m = batch_augment(img, mask, g)
    assert x.dtype == torch.float32 and 0 <= float(x.min()) and float(x.max()) <= 1
    assert ((m == 0) | (m == 1)).all() and (m.flatten(1).sum(1) > 0).all()  # the focus survives zoom and shift
    ys = torch.arange(32).float()
    row = (m[:, 0].sum(2) * ys).sum(1) / m[:, 0].sum((1, 2))
    assert (row < 12).all(), "a mask moved to the bottom half: a vertical flip"
    inside = (x * m).flatten(1).sum(1) / m.flatten(1).sum(1)
    outside = (x * (1 - m)).flatten(1).sum(1) / (1 - m).flatten(1).sum(1)
    assert (inside > outside + 0.3).all(), "the mask no longer covers the bright focus"
    x2, m2 = batch_augment(img, mask, torch.Generator().manual_seed(0))
    assert torch.equal(x, x2) and torch.equal(m, m2)


def test_batch_summed_losses_do_not_punish_a_negative_like_a_missed_calcification():
    """The collapse mechanism (train/losses.py): per-image Tversky makes 3 false pixels on a negative cost
    about half of missing a 10-pixel calcification; summed over the batch they cost little."""
    from edgecalc.train.losses import segmentation_term

    pos_t = torch.zeros(1, 1, 32, 32)
    pos_t[0, 0, 10, 10:20] = 1
    neg_t = torch.zeros(1, 1, 32, 32)
    hit = pos_t.clone()
    fp3 = torch.zeros(1, 1, 32, 32)
    fp3[0, 0, 5, 5:8] = 1
    target = torch.cat([pos_t, neg_t])

    def cost(kind, pred):
        return float(segmentation_term(pred, target, kind, final=True))

    perfect = torch.cat([hit, neg_t])
    with_fp = torch.cat([hit, fp3])
    missed = torch.cat([neg_t, neg_t])
    per_image = (cost("tversky", with_fp) - cost("tversky", perfect)) / (cost("tversky", missed) - cost("tversky", perfect))
    batch = (cost("bce-dice", with_fp) - cost("bce-dice", perfect)) / (cost("bce-dice", missed) - cost("bce-dice", perfect))
    tb = (cost("tversky-batch", with_fp) - cost("tversky-batch", perfect)) / (cost("tversky-batch", missed) - cost("tversky-batch", perfect))
    assert per_image > 0.4
    assert batch < 0.3 and tb < 0.3


def test_precision_auto_asks_the_hardware(monkeypatch):
    from edgecalc.train import precision as prec

    cpu = torch.device("cpu")
    assert prec.resolve_precision("fp32", cpu) == "fp32" and prec.resolve_precision("bf16", cpu) == "bf16"
    monkeypatch.setattr(prec, "cpu_has_native_bf16", lambda: False)
    assert prec.resolve_precision("auto", cpu) == "fp32"
    monkeypatch.setattr(prec, "cpu_has_native_bf16", lambda: True)
    assert prec.resolve_precision("auto", cpu) == "bf16"
    with pytest.raises(ValueError, match="precision must be"):
        prec.resolve_precision("fp16", cpu)
    with prec.autocast("bf16", cpu):
        y = torch.nn.Linear(4, 4)(torch.rand(2, 4))
    assert y.dtype == torch.bfloat16
