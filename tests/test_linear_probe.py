"""The linear-probe transfer: a linear score head fitted on a frozen CS-AGnet's pooled encoder
features (``--linear-probe``), folded into an ordinary, exportable weights file."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from edgecalc.model.blocks.linear_head import ellipse_weights, pool_features
from edgecalc.model.config import ModelConfig, get_preset
from edgecalc.model.csagnet import CSAGNet
from edgecalc.model.weights import load_model, save_model
from edgecalc.train.config import TrainConfig
from edgecalc.train.linear_probe import fit_linear_probe, pooled_features
from edgecalc.train.run import run_training
from train_helpers import one_thread, tensors, tiny_config, tiny_data  # noqa: F401 (fixtures)


def _spot_images(n: int, seed: int, size: int, background: tuple[int, int], spot: int, side: int,
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Seeded speckle crops in ``background`` gray levels; the positives (every other) hold a
    ``side`` x ``side`` spot of gray level ``spot`` near the centre."""
    rng = np.random.default_rng(seed)
    images = rng.integers(*background, size=(n, 1, size, size)).astype(np.uint8)
    labels = np.arange(n) % 2
    for i in np.flatnonzero(labels):
        y, x = rng.integers(size // 2 - 5, size // 2 + 5 - side + 1, size=2)
        images[i, 0, y:y + side, x:x + side] = spot
    return images, labels


def _blob_images(n: int, seed: int, size: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """The easy task: dark speckle, the positives hold a bright 3 x 3 spot."""
    return _spot_images(n, seed, size, (40, 110), 250, 3)


def _dark_spot_images(n: int, seed: int, size: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """Another "domain": bright speckle, the positives hold a dark 4 x 4 hole (a cue the blob task lacks)."""
    return _spot_images(n, seed, size, (150, 230), 5, 4)


@pytest.fixture(scope="module")
def start_model() -> CSAGNet:
    torch.manual_seed(0)
    return CSAGNet(get_preset("lite", 32)).eval()


def test_the_pooling_region_is_a_centred_never_empty_ellipse():
    assert ellipse_weights(8, 1.5).sum() == 64  # beyond sqrt(2): the whole map
    w = ellipse_weights(12, 0.5)
    assert 0 < w.sum() < 144 and w[0, 0] == 0 and w[6, 6] == 1
    assert torch.equal(w, torch.flip(w, dims=[1])) and torch.equal(w, w.T)
    assert ellipse_weights(2, 0.05).sum() > 0  # too small to hold a cell centre: the central cells


def test_region_maximum_ignores_what_lies_outside():
    f = torch.zeros(1, 1, 6, 6)
    f[0, 0, 0, 0] = 9.0  # a corner, outside a 0.5 ellipse
    f[0, 0, 3, 3] = 2.0
    pooled = pool_features([f], [ellipse_weights(6, 0.5)])
    assert pooled[0, 1] == 2.0 and pooled[0, 0] == pytest.approx(2.0 / ellipse_weights(6, 0.5).sum())


def test_the_fitted_head_is_the_logistic_regression_and_leaves_the_rest_alone(start_model):
    images, labels = _blob_images(40, seed=1)
    groups = np.repeat(np.arange(20), 2)  # two crops per patient
    probe, info = fit_linear_probe(start_model, images, labels, groups, seed=0)
    assert probe.cfg.score_head == "encoder-linear" and probe.cfg.linear_head_share == info["share"]
    # every share x C, with and without the mask's features
    assert info["c"] in (0.001, 0.003, 0.01, 0.03, 0.1) and len(info["inner_auc"]) == 40
    assert probe.cfg.linear_head_mask == info["mask"]
    x = torch.from_numpy(images).float() / 255.0
    with torch.no_grad():
        out, before = probe(x), start_model(x)
    # the score is sigmoid(w . f + b) on the features the fitter computed
    f = pooled_features(start_model, images, (info["share"],), mask=info["mask"])[info["share"]]
    w = probe.linear_head.fc.weight.detach().double().numpy()[0]
    b = float(probe.linear_head.fc.bias.detach())
    np.testing.assert_allclose(out.probs[:, 1].numpy(), 1 / (1 + np.exp(-(f @ w + b))), atol=1e-5)
    # mask, attention and module C's per-scale softmaxes are the starting network's
    assert torch.allclose(out.mask, before.mask) and torch.allclose(out.scale_probs, before.scale_probs)
    assert all(torch.allclose(a, c) for a, c in zip(out.attention, before.attention))
    # and it learned the task: the bright spot ranks the positives first on unseen crops
    test_images, test_labels = _blob_images(40, seed=2)
    with torch.no_grad():
        s = probe(torch.from_numpy(test_images).float() / 255.0).probs[:, 1].numpy()
    from edgecalc.eval.metrics import roc_auc

    assert roc_auc(test_labels, s) > 0.9


def test_the_head_does_not_care_which_way_the_probe_was_held(start_model):
    images, labels = _blob_images(30, seed=3)
    probe, _ = fit_linear_probe(start_model, images, labels, None)
    x = torch.from_numpy(images).float() / 255.0
    with torch.no_grad():
        a, b = probe(x).probs[:, 1], probe(torch.flip(x, dims=[3])).probs[:, 1]
    assert torch.allclose(a, b, atol=1e-6)


def test_a_head_with_the_mask_is_the_fit_it_was_given_and_keeps_its_properties(start_model, tmp_path):
    """mask_grid=(True,) forces the mask's mean and maximum into the features: the graph computes what the
    fitter fitted, still ignores the probe's side, round-trips, exports, and its evidence adds up."""
    from edgecalc.model.csagnet import score_evidence

    images, labels = _blob_images(30, seed=21)
    probe, info = fit_linear_probe(start_model, images, labels, None, mask_grid=(True,))
    assert info["mask"] and probe.cfg.linear_head_mask and info["features"] == 2 * sum(start_model.cfg.filters[1:]) + 2
    assert len(info["inner_auc"]) == 20 and all(", mask, C" in k for k in info["inner_auc"])
    x = torch.from_numpy(images).float() / 255.0
    f = pooled_features(start_model, images, (info["share"],), mask=True)[info["share"]]
    # the last two columns are the mask's mean and maximum over the ellipse, averaged over both passes
    with torch.no_grad():
        masks = [start_model(x).mask, start_model(torch.flip(x, dims=[3])).mask]
    region = ellipse_weights(32, info["share"])
    expect = np.mean([pool_features([m], [region]).double().numpy() for m in masks], axis=0)
    np.testing.assert_allclose(f[:, -2:], expect, atol=1e-6)
    w = probe.linear_head.fc.weight.detach().double().numpy()[0]
    b = float(probe.linear_head.fc.bias.detach())
    with torch.no_grad():
        out = probe(x)
        flipped = probe(torch.flip(x, dims=[3]))
    np.testing.assert_allclose(out.probs[:, 1].numpy(), 1 / (1 + np.exp(-(f @ w + b))), atol=1e-5)
    assert torch.allclose(out.probs[:, 1], flipped.probs[:, 1], atol=1e-6)
    again = load_model(save_model(probe, tmp_path / "probe-mask.safetensors"))
    assert again.cfg.linear_head_mask
    with torch.no_grad():
        assert torch.equal(again(x).probs, out.probs)
    ev = score_evidence(probe, x[:4])
    torch.testing.assert_close(ev.sum(dim=(1, 2)) + probe.linear_head.fc.bias.detach(), out.logits[:4, 1],
                               atol=1e-4, rtol=1e-4)
    with pytest.raises(ValueError, match="at least one choice"):
        fit_linear_probe(start_model, images, labels, None, mask_grid=())


def test_onnx_export_keeps_the_score_of_a_head_with_the_mask(start_model, tmp_path):
    pytest.importorskip("onnxruntime")
    from edgecalc.export.onnx_export import export_onnx
    from edgecalc.model.csagnet import ExportWrapper

    images, labels = _blob_images(30, seed=22)
    probe, _ = fit_linear_probe(start_model, images, labels, None, mask_grid=(True,))
    x = torch.from_numpy(images[:2]).float() / 255.0
    diffs = export_onnx(ExportWrapper(probe), x, tmp_path / "probe.onnx", check=torch.from_numpy(images[:3]).float() / 255.0)
    assert max(diffs.values()) < 1e-4


def test_one_class_is_refused_by_name(start_model):
    images, _ = _blob_images(10, seed=4)
    with pytest.raises(ValueError, match="both classes"):
        fit_linear_probe(start_model, images, np.ones(10, np.int64), None)


def test_probe_weights_round_trip_and_old_configs_keep_module_c(start_model, tmp_path):
    images, labels = _blob_images(30, seed=5)
    probe, _ = fit_linear_probe(start_model, images, labels, None)
    path = save_model(probe, tmp_path / "probe.safetensors")
    meta = json.loads(path.with_suffix(".json").read_text())
    assert meta["config"]["score_head"] == "encoder-linear"
    again = load_model(path)
    x = torch.from_numpy(images[:4]).float() / 255.0
    with torch.no_grad():
        assert torch.equal(again(x).probs, probe(x).probs)
    # a config written before the field existed is module C's
    legacy = {k: v for k, v in ModelConfig().to_dict().items() if not k.startswith(("score_head", "linear_head"))}
    assert ModelConfig.from_dict(legacy).score_head == "attention-pooling"
    assert not ModelConfig.from_dict(legacy).linear_head_mask  # and no mask features
    with pytest.raises(ValueError, match="score_head must be one of"):
        ModelConfig(score_head="mlp")


def test_the_head_runs_at_another_input_size(start_model):
    images, labels = _blob_images(30, seed=6)
    probe, _ = fit_linear_probe(start_model, images, labels, None)
    with torch.no_grad():
        out = probe(torch.rand(2, 1, 64, 64))
    assert out.probs.shape == (2, 2) and torch.isfinite(out.probs).all()


def test_onnx_export_keeps_the_probe_score(start_model, tmp_path):
    pytest.importorskip("onnxruntime")
    from edgecalc.export.onnx_export import export_onnx
    from edgecalc.model.csagnet import ExportWrapper

    images, labels = _blob_images(30, seed=7)
    probe, _ = fit_linear_probe(start_model, images, labels, None)
    x = torch.from_numpy(images[:2]).float() / 255.0
    diffs = export_onnx(ExportWrapper(probe), x, tmp_path / "probe.onnx", check=torch.from_numpy(images[:3]).float() / 255.0)
    assert max(diffs.values()) < 1e-4


def test_a_mix_joins_the_fit_at_its_share_and_teaches_the_head_its_domain(start_model):
    from edgecalc.eval.metrics import roc_auc
    from edgecalc.train.linear_probe import _with_mix

    # the weights: the mix holds exactly `ratio` of the total, the real images keep weight 1
    feats, labels = np.zeros((10, 3)), np.arange(10) % 2
    x, y, w = _with_mix(feats, labels, np.arange(6), (np.ones((30, 3)), np.arange(30) % 2, 0.2))
    assert x.shape == (36, 3) and y.shape == (36,) and np.all(w[:6] == 1)
    assert w[6:].sum() / w.sum() == pytest.approx(0.2)
    assert _with_mix(feats, labels, np.arange(6), None)[2] is None
    # behaviour: fitted on the blob task alone, the head knows nothing of the dark-spot domain; with that
    # domain mixed in it ranks unseen dark-spot crops, and it still ranks unseen blob crops
    images, labels = _blob_images(40, seed=11)
    mix_images, mix_labels = _dark_spot_images(40, seed=12)
    alone, _ = fit_linear_probe(start_model, images, labels, None)
    mixed, info = fit_linear_probe(start_model, images, labels, None, mix=(mix_images, mix_labels, 0.5))
    assert info["n"] == 40 and info["n_mix"] == 40 and info["mix_ratio"] == 0.5 and len(info["inner_auc"]) == 40

    def auc_on(model, imgs, labs):
        with torch.no_grad():
            return roc_auc(labs, model(torch.from_numpy(imgs).float() / 255.0).probs[:, 1].numpy())

    dark, dark_labels = _dark_spot_images(40, seed=13)
    blob, blob_labels = _blob_images(40, seed=14)
    assert auc_on(mixed, dark, dark_labels) > 0.9 > auc_on(alone, dark, dark_labels)
    assert auc_on(mixed, blob, blob_labels) > 0.9
    with pytest.raises(ValueError, match=r"share of the fit must lie in \(0, 1\)"):
        fit_linear_probe(start_model, images, labels, None, mix=(mix_images, mix_labels, 1.0))


def test_config_demands_start_weights_and_no_stage_one(tiny_data):
    with pytest.raises(ValueError, match="needs init_weights"):
        tiny_config(tiny_data, mask_fraction=0.0, linear_probe=True)
    with pytest.raises(ValueError, match="--mask-fraction 0"):
        tiny_config(tiny_data, init_weights="w.safetensors", linear_probe=True)
    with pytest.raises(ValueError, match="network csagnet"):
        TrainConfig(data=str(tiny_data), network="vgg16", mask_fraction=0.0, init_weights="w", linear_probe=True)
    # a mix is allowed: its crops join the fit
    assert tiny_config(tiny_data, mask_fraction=0.0, init_weights="w", linear_probe=True, mix_data=str(tiny_data),
                       mix_ratio=0.25).mix_ratio == 0.25


def test_a_probe_run_fits_on_train_and_val_and_reports_its_choice(tiny_data, tmp_path):
    maskless = tmp_path / "maskless"
    shutil.copytree(tiny_data, maskless)
    shutil.rmtree(maskless / "masks")
    base = tmp_path / "base"
    run_training(tiny_config(maskless, mask_fraction=0.0), base)
    run = tmp_path / "probe"
    run_training(tiny_config(maskless, mask_fraction=0.0, init_weights=str(base), linear_probe=True), run)
    metrics = json.loads((run / "metrics.json").read_text())
    split = json.loads((run / "split.json").read_text())
    probe = metrics["linear_probe"]
    assert probe["n"] == len(split["indices"]["train"]) + len(split["indices"]["val"])
    assert metrics["best_epoch_stage2"] is None and not (run / "stage2").exists()
    assert "auc" in metrics["test"]
    # the encoder and decoder are the starting run's, bit for bit
    start, final = tensors(base / "final.safetensors"), tensors(run / "final.safetensors")
    assert all(torch.equal(start[k], final[k]) for k in start)
    assert {k for k in final if k not in start} == {"linear_head.fc.weight", "linear_head.fc.bias"}
    model = load_model(run / "final.safetensors")
    assert model.cfg.score_head == "encoder-linear" and model.cfg.linear_head_share == probe["share"]
    assert model.cfg.linear_head_mask == probe["mask"] and any(", mask, C" in k for k in probe["inner_auc"])
    assert probe["n_mix"] == 0
    # --no-probe-mask: the inner CV tries encoder features only
    plain = tmp_path / "probe-plain"
    run_training(tiny_config(maskless, mask_fraction=0.0, init_weights=str(base), linear_probe=True,
                             linear_probe_mask=False), plain)
    plain_probe = json.loads((plain / "metrics.json").read_text())["linear_probe"]
    assert not plain_probe["mask"] and not any("mask" in k for k in plain_probe["inner_auc"])
    assert not load_model(plain / "final.safetensors").cfg.linear_head_mask
    # a probe run's config written before the choice existed fitted encoder features only
    old = {k: v for k, v in TrainConfig.read(plain / "config.json").to_dict().items() if k != "linear_probe_mask"}
    assert TrainConfig.from_dict({**old, "linear_probe": True}).linear_probe_mask is False
    # with --mix-data the mixed-in folder's images join the fit (and its test fold is DATA's alone)
    mixed = tmp_path / "probe-mix"
    run_training(tiny_config(maskless, mask_fraction=0.0, init_weights=str(base), linear_probe=True,
                             mix_data=str(tiny_data), mix_ratio=0.3), mixed)
    mixed_metrics = json.loads((mixed / "metrics.json").read_text())
    assert mixed_metrics["linear_probe"]["n_mix"] == len(split["ids"]["train"]) + len(split["ids"]["val"]) + len(split["ids"]["test"])
    assert mixed_metrics["linear_probe"]["mix_ratio"] == 0.3 and mixed_metrics["n_test"] == metrics["n_test"]


def test_fine_tuning_from_a_probe_run_keeps_and_trains_its_head(tiny_data, tmp_path):
    """Linear probe, then fine-tuning (LP-FT): the run takes the weights' score head, not the preset's."""
    maskless = tmp_path / "maskless"
    shutil.copytree(tiny_data, maskless)
    shutil.rmtree(maskless / "masks")
    base, probe, tuned = tmp_path / "base", tmp_path / "probe", tmp_path / "lpft"
    run_training(tiny_config(maskless, mask_fraction=0.0), base)
    run_training(tiny_config(maskless, mask_fraction=0.0, init_weights=str(base), linear_probe=True), probe)
    run_training(tiny_config(maskless, mask_fraction=0.0, init_weights=str(probe)), tuned)
    before, after = load_model(probe / "final.safetensors"), load_model(tuned / "final.safetensors")
    assert after.cfg.score_head == "encoder-linear" and after.cfg.linear_head_share == before.cfg.linear_head_share
    assert not torch.equal(before.linear_head.fc.weight, after.linear_head.fc.weight)  # the head was trained


def test_init_weights_of_another_preset_name_the_fields_that_differ(tiny_data, tmp_path):
    from edgecalc.model import CSAGNet
    from edgecalc.model.config import get_preset
    from edgecalc.train.run import _fit_config

    cfg = tiny_config(tiny_data, mask_fraction=0.0, init_weights="w", preset="paper")
    with pytest.raises(ValueError, match=r"this run trains paper: width .*\(this run: 1\.0\)"):
        _fit_config(CSAGNet(get_preset("lite", 32)), cfg, tmp_path / "w.safetensors")


def test_the_shipped_ddti_weights_are_the_full_mask_network_with_fitted_heads(tmp_path, monkeypatch):
    """`ddti` (real crops only) and `ddti-phantom` (real crops + phantom) are `phantom-masks` with one
    linear score head each; the default `ddti-phantom-12k` is `phantom-masks-12k` with such a head."""
    from edgecalc.export.weights_source import WeightsNotFound, resolve_weights
    from edgecalc.model.shipped import DEFAULT_SHIPPED_NAME, SHIPPED_WEIGHTS, default_weights_path, shipped_weights_path

    assert DEFAULT_SHIPPED_NAME == "ddti-phantom-12k" and resolve_weights(DEFAULT_SHIPPED_NAME) == default_weights_path()
    assert resolve_weights("ddti") == shipped_weights_path("ddti")
    heads = {}
    for name, network in (("ddti", "phantom-masks"), ("ddti-phantom", "phantom-masks"), ("ddti-phantom-12k", "phantom-masks-12k")):
        base, fitted = tensors(shipped_weights_path(network)), tensors(shipped_weights_path(name))
        assert all(torch.equal(base[k], fitted[k]) for k in base), name
        assert set(fitted) - set(base) == {"linear_head.fc.weight", "linear_head.fc.bias"}, name
        assert load_model(shipped_weights_path(name)).cfg.score_head == "encoder-linear"
        heads[name] = fitted["linear_head.fc.weight"]
    assert not torch.equal(heads["ddti"], heads["ddti-phantom"])
    # a real path of the same name wins over the shipped name
    (tmp_path / "ddti").mkdir()
    monkeypatch.chdir(tmp_path)
    with pytest.raises(WeightsNotFound, match="holds none of"):
        resolve_weights("ddti")
    with pytest.raises(WeightsNotFound, match=", ".join(SHIPPED_WEIGHTS)):
        resolve_weights(tmp_path / "no-such-weights")


def test_every_shipped_weights_name_loads_a_lite_csagnet():
    from edgecalc.export.weights_source import resolve_weights
    from edgecalc.model.shipped import SHIPPED_WEIGHTS, shipped_weights_path

    for name in SHIPPED_WEIGHTS:
        path = resolve_weights(name)
        assert path == shipped_weights_path(name) and path.with_suffix(".json").is_file()
        model = load_model(path)
        assert model.cfg.width == 0.25 and model(torch.zeros(1, 1, 96, 96)).mask.shape == (1, 1, 96, 96)
    # the full-mask network is its own training (every tensor of phantom's, other values), not a new head
    p30, masks, masks12k = (tensors(resolve_weights(n)) for n in ("phantom", "phantom-masks", "phantom-masks-12k"))
    for other in (masks, masks12k):
        assert set(p30) == set(other) and not any(torch.equal(p30[k], other[k]) for k in p30 if k.endswith("weight"))
    assert not any(torch.equal(masks[k], masks12k[k]) for k in masks if k.endswith("weight"))


def test_the_evidence_map_adds_up_to_the_logit(start_model):
    from edgecalc.studies.compare import positive_evidence
    from edgecalc.model.csagnet import score_evidence

    images, labels = _blob_images(30, seed=8)
    probe, _ = fit_linear_probe(start_model, images, labels, None)
    x = torch.from_numpy(images[:4]).float() / 255.0
    ev = score_evidence(probe, x)
    with torch.no_grad():
        logit = probe(x).logits[:, 1]
    assert ev.shape == (4, 32, 32)
    torch.testing.assert_close(ev.sum(dim=(1, 2)) + probe.linear_head.fc.bias.detach(), logit, atol=1e-4, rtol=1e-4)
    shown = positive_evidence(probe, x.numpy())
    assert shown.min() >= 0 and shown.max() == pytest.approx(1.0)
    with pytest.raises(ValueError, match="encoder-linear"):
        score_evidence(start_model, x)
