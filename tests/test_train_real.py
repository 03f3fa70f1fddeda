"""Training on a data set without pixel masks (real crops): image labels only, fine-tuning, sim-to-real
stage one on another folder, given stage-one weights, and the phantom mixed into stage two."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from edgecalc.model.weights import load_model
from edgecalc.train.losses import combined_loss, deep_supervision_loss
from edgecalc.train.run import run_training
from edgecalc.train.stage import StageSpec, _with_mix
from train_helpers import assert_identical, one_thread, tensors, tiny_config, tiny_data  # noqa: F401 (fixtures)


@pytest.fixture(scope="module")
def maskless(tiny_data, tmp_path_factory):
    """The tiny phantom without its masks/ folder: what a folder of real crops with case labels looks like."""
    out = tmp_path_factory.mktemp("real") / "maskless"
    shutil.copytree(tiny_data, out)
    shutil.rmtree(out / "masks")
    return out


def test_a_maskless_folder_needs_a_stage_one_source(maskless, tmp_path):
    with pytest.raises(ValueError, match="--stage1-data"):
        run_training(tiny_config(maskless), tmp_path / "run")


def test_image_labels_only_has_no_stage_one_and_no_pseudo_masks(maskless, tmp_path):
    run = tmp_path / "p0"
    run_training(tiny_config(maskless, mask_fraction=0.0), run)
    assert not (run / "stage1").exists() and not (run / "pseudo_masks").exists()
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["n_masks_stage1"] == 0 and "stage1" not in metrics["train_seconds"]
    assert json.loads((run / "split.json").read_text())["indices"]["mask_draw"] == []


def test_sim_to_real_trains_stage_one_on_the_other_folder(maskless, tiny_data, tmp_path):
    run = tmp_path / "s2r"
    run_training(tiny_config(maskless, stage1_data=str(tiny_data)), run)
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["n_masks_stage1"] > 0 and metrics["stage1_data"] == str(tiny_data)
    split = json.loads((run / "split.json").read_text())
    assert sorted(p.stem for p in (run / "pseudo_masks").glob("*.png")) == sorted(split["ids"]["train"])
    # stage two starts from stage one's encoder: the given-weights run reproduces it bit for bit
    again = tmp_path / "given"
    run_training(tiny_config(maskless, stage1_weights=str(run)), again)
    assert_identical(run / "stage1" / "best.safetensors", again / "stage1" / "best.safetensors")
    assert_identical(run / "final.safetensors", again / "final.safetensors")


def test_fine_tuning_starts_from_the_given_weights(maskless, tmp_path):
    base = tmp_path / "base"
    run_training(tiny_config(maskless, mask_fraction=0.0), base)
    seen = {}

    from edgecalc.train.stage import Hooks

    def start(stage, model):
        seen.update({k: v.detach().clone() for k, v in model.state_dict().items()})

    run_training(tiny_config(maskless, mask_fraction=0.0, init_weights=str(base), seed=3), tmp_path / "ft",
                 hooks=Hooks(on_stage_start=start))
    init = tensors(base / "final.safetensors")
    assert all(torch.equal(seen[k], init[k]) for k in init)


def test_init_weights_move_to_another_size_but_not_another_preset(maskless, tmp_path):
    base = tmp_path / "base"
    run_training(tiny_config(maskless, mask_fraction=0.0), base)
    run_training(tiny_config(maskless, mask_fraction=0.0, init_weights=str(base), size=48), tmp_path / "bigger")
    assert load_model(tmp_path / "bigger" / "final.safetensors").cfg.input_size == 48
    with pytest.raises(ValueError, match="is a lite model; this run trains paper"):
        run_training(tiny_config(maskless, mask_fraction=0.0, init_weights=str(base), preset="paper"), tmp_path / "other")


def test_mix_puts_the_share_of_every_batch_in_the_mix_set():
    spec = StageSpec(stage=2, epochs=1, lr=1e-3, decay=0.0, batch_size=8, seed=0, mix_ratio=0.25)
    batches = [torch.arange(i * 8, i * 8 + 8) for i in range(3)]
    mixed = _with_mix(batches, n_main=24, n_mix=10, spec=spec, round_index=0)
    for b, m in zip(batches, mixed):
        assert m.numel() == 8 and torch.equal(m[:6], b[:6])
        assert bool(((m[6:] >= 24) & (m[6:] < 34)).all())
    assert all(torch.equal(a, b) for a, b in zip(mixed, _with_mix(batches, 24, 10, spec, 0)))  # seeded


def test_mixed_run_trains(maskless, tiny_data, tmp_path):
    run = tmp_path / "mix"
    run_training(tiny_config(maskless, stage1_data=str(tiny_data), mix_data=str(tiny_data), mix_ratio=0.5), run)
    assert json.loads((run / "metrics.json").read_text())["mix_ratio"] == 0.5
    assert load_model(run / "final.safetensors") is not None


def test_segmentation_terms_skip_images_without_a_target():
    from edgecalc.model import CSAGNet
    from edgecalc.model.config import get_preset

    torch.manual_seed(0)
    net = CSAGNet(get_preset("lite", 32))
    x = torch.rand(4, 1, 32, 32)
    target = torch.zeros(4, 1, 32, 32)
    target[0, 0, 10:14, 10:14] = 1
    labels = torch.tensor([1, 0, 1, 0])
    out = net(x)
    has = torch.tensor([True, True, False, False])
    loss, _ = combined_loss(out, target, labels, seg_loss="bce-dice", has_target=has)
    seg_only, _ = deep_supervision_loss([p[:2] for p in out.pyramid], target[:2], seg_loss="bce-dice")
    ce = torch.nn.functional.cross_entropy(out.logits, labels)
    assert torch.allclose(loss, seg_only + ce)
    none, parts = combined_loss(out, target, labels, seg_loss="bce-dice", has_target=torch.zeros(4, dtype=torch.bool))
    assert torch.allclose(none, ce) and none.requires_grad


def test_config_refuses_contradictory_sources(tiny_data):
    with pytest.raises(ValueError, match="not both"):
        tiny_config(tiny_data, stage1_data="a", stage1_weights="b")
    with pytest.raises(ValueError, match="go together"):
        tiny_config(tiny_data, mix_data="a")
    assert not tiny_config(tiny_data, mask_fraction=0.0).has_stage1


def test_a_data_set_that_cannot_train_leaves_no_run_folder(maskless, tmp_path):
    # no pixel mask for stage one: refused before the run folder is made, so a rerun is not "already a run"
    with pytest.raises(ValueError, match="--stage1-data"):
        run_training(tiny_config(maskless), tmp_path / "run")
    assert not (tmp_path / "run").exists()
    with pytest.raises(ValueError, match="not a folder"):
        run_training(tiny_config(tmp_path / "no-such-folder"), tmp_path / "run2")
    assert not (tmp_path / "run2").exists()
