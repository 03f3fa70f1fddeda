"""The Table-2 networks: one output contract, weights with their network name, training by supervision, export."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from edgecalc.model import ExportWrapper, get_preset
from edgecalc.model.registry import NETWORKS, get_spec, network_class, stage_one_class
from edgecalc.model.weights import load_model, network_from_stage_one, read_config, save_model
from edgecalc.train.config import TrainConfig
from train_helpers import one_thread, tiny_config, tiny_data  # noqa: F401 (fixtures)

SIZE = 64


def tiny(name: str, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return network_class(name)(get_preset("lite", SIZE).with_(width=0.125, name="tiny")).eval()


@pytest.mark.parametrize("name", list(NETWORKS))
def test_every_network_keeps_the_output_contract(name):
    model = tiny(name)
    x = torch.rand(3, 1, SIZE, SIZE)
    with torch.no_grad():
        out = model(x)
        mask, score, attention = ExportWrapper(model)(x)
    assert mask.shape == (3, 1, SIZE, SIZE) and score.shape == (3, 1) and attention.shape == (3, 3, SIZE, SIZE)
    for t in (mask, score, attention):
        assert torch.isfinite(t).all() and t.min() >= 0 and t.max() <= 1
    assert torch.allclose(out.probs.sum(1), torch.ones(3)) and torch.equal(score[:, 0], out.probs[:, 1])
    assert out.logits.shape == (3, 2) and out.pyramid[-1] is out.mask
    if get_spec(name).supervision == "labels":  # no segmentation: the mask is score x the shown map
        shown = attention[:, 2:3]
        assert torch.allclose(mask, score[:, :, None, None] * shown, atol=1e-6)
    # the maps depend on the image: two different crops give different attention
    assert not torch.equal(attention[0], attention[1])


def test_the_gate_free_and_gated_maps_are_what_the_docstrings_say():
    from edgecalc.model.blocks import class_activation_map

    vgg = tiny("vgg16")
    x = torch.rand(2, 1, SIZE, SIZE)
    h = vgg.features(x)[-1]
    cam = class_activation_map(h, vgg.head)
    # the CAM's logit averaged over positions is the head's logit difference (Zhou et al.)
    logit = torch.logit(cam.double()).mean(dim=(1, 2, 3))
    z = vgg.head(h.mean(dim=(2, 3))).double()
    assert torch.allclose(logit, z[:, 1] - z[:, 0], atol=1e-4)
    sono = tiny("sononet-ag")
    with torch.no_grad():
        a = sono(x).attention
    assert [tuple(m.shape[-2:]) for m in a] == [(4, 4), (8, 8), (16, 16)]  # conv5, conv4, conv3
    with torch.no_grad():  # a gate whose psi varies (as after training): its map spans [0, 1] and pools like mean-flow
        sono.gate3.psi.weight.mul_(1e4)
        conv = [x, *sono.features(x)]
        alpha = sono.gate3(conv[3], conv[5])
        phi = torch.nn.functional.interpolate(sono.gate3.phi(conv[5]), size=(16, 16), mode="bilinear", align_corners=False)
        psi = sono.gate3.psi(torch.relu(sono.gate3.theta(conv[3]) + phi)).flatten(2)
        flow = (psi - psi.min(2, keepdim=True)[0]) / (psi - psi.min(2, keepdim=True)[0]).sum(2, keepdim=True)
        reference = (flow * conv[3].flatten(2)).sum(2)  # the reference code's sum of the mean-flow-weighted feature
        ours = sono.classifier.pool(conv[3], alpha)
    flat = alpha.flatten(1)
    assert torch.allclose(flat.min(1)[0], torch.zeros(2)) and torch.allclose(flat.max(1)[0], torch.ones(2), atol=1e-3)
    assert torch.allclose(ours, reference, rtol=1e-3, atol=1e-5)
    assert not any(n.startswith("gate3.out") for n, _ in sono.named_parameters())  # use_W=False


@pytest.mark.parametrize("name", list(NETWORKS))
def test_weights_round_trip_with_the_network_name(name, tmp_path):
    model = tiny(name, seed=3)
    path = save_model(model, tmp_path / "m.safetensors")
    meta = json.loads(path.with_suffix(".json").read_text())
    assert meta["architecture"] == name and meta["network"] == name
    back = load_model(path)
    assert type(back) is type(model)
    x = torch.rand(2, 1, SIZE, SIZE)
    with torch.no_grad():
        assert torch.equal(model(x).probs, back(x).probs)


def test_old_weights_without_a_network_name_load_as_csagnet(tmp_path):
    path = save_model(tiny("csagnet"), tmp_path / "old.safetensors")
    meta = json.loads(path.with_suffix(".json").read_text())
    del meta["network"]
    path.with_suffix(".json").write_text(json.dumps(meta))
    assert read_config(path)[0] == "csagnet" and type(load_model(path)).__name__ == "CSAGNet"
    old_run = TrainConfig(data="d").to_dict()
    del old_run["network"]
    assert TrainConfig.from_dict(old_run).network == "csagnet"


def test_vgg_unet_takes_a_and_b_from_its_stage_one():
    seg = stage_one_class("vgg-unet")(get_preset("lite", SIZE))
    net = network_from_stage_one(seg, "vgg-unet")
    for part in ("encoder", "decoder"):
        a, b = getattr(seg, part).state_dict(), getattr(net, part).state_dict()
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert not any("gates" in k for k in net.state_dict())
    with pytest.raises(ValueError, match="not the stage one of vgg-unet"):
        network_from_stage_one(stage_one_class("csagnet")(get_preset("lite", SIZE)), "vgg-unet")


def test_supervision_decides_the_masks():
    assert TrainConfig.for_recipe("cpu", data="d", network="vgg16", mask_fraction=0.3).mask_fraction == 0.0
    assert TrainConfig.for_recipe("cpu", data="d", network="alexnet-seg", mask_fraction=0.3).mask_fraction == 1.0
    assert TrainConfig.for_recipe("cpu", data="d", network="vgg-unet", mask_fraction=0.3).mask_fraction == 0.3
    assert not TrainConfig(data="d", network="alexnet-seg", mask_fraction=1.0).has_stage1
    with pytest.raises(ValueError, match="trains on labels"):
        TrainConfig(data="d", network="resnet50", mask_fraction=0.3)
    with pytest.raises(ValueError, match="unknown network 'unet3'"):
        TrainConfig(data="d", network="unet3")
    with pytest.raises(ValueError, match="no stage one"):
        TrainConfig(data="d", network="vgg16", mask_fraction=0.0, stage1_data="p")


@pytest.mark.parametrize("name", ["vgg-unet", "alexnet-seg", "sononet-ag"])
def test_training_follows_the_network_supervision(name, tiny_data, tmp_path):
    from edgecalc.train.run import run_training

    opts = {**tiny_config(tiny_data).to_dict(), "network": name}
    cfg = TrainConfig.for_recipe(opts.pop("recipe"), **opts)
    run = tmp_path / name
    final = run_training(cfg, run)
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["network"] == name and read_config(final)[0] == name
    assert (run / "stage1" / "best.safetensors").is_file() == (name == "vgg-unet")
    assert (run / "pseudo_masks").is_dir() == (name == "vgg-unet")
    log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert {r["stage"] for r in log} == ({1, 2} if name == "vgg-unet" else {2})
    assert (metrics["n_masks_stage1"] > 0) == (name == "vgg-unet") and metrics["mask_fraction"] == cfg.mask_fraction
    assert 0 <= metrics["test"]["auc"] <= 1


@pytest.mark.parametrize("name", list(NETWORKS))
def test_every_network_exports_and_runs_in_the_runtime(name, tmp_path):
    from edgecalc.export.pipeline import ExportOptions, export_bundle
    from edgecalc.runtime.engine.backends import open_backend
    from edgecalc.runtime.engine.bundle import load_bundle

    save_model(tiny(name), tmp_path / "run" / "model.safetensors")
    export_bundle(ExportOptions(tmp_path / "run", "fp32", None, 16, "minmax", 0, False, 4, tmp_path / "b", None, 8,
                                command="test"), log=lambda m: None)
    bundle = load_bundle(tmp_path / "b")
    assert bundle.manifest.model["architecture"] == name
    assert get_spec(name).attention in next(o for o in bundle.manifest.outputs if o["name"] == "attention")["meaning"] \
        or name == "csagnet"
    art = bundle.manifest.artifact("onnx", "fp32")
    x = np.random.default_rng(0).random((2, 1, SIZE, SIZE), dtype=np.float32)
    with open_backend("onnxruntime", tmp_path / "b" / art.file) as be:
        got = be.infer(x)
    with torch.no_grad():
        ref = [t.numpy() for t in ExportWrapper(tiny(name))(torch.from_numpy(x))]
    for k, r in zip(("mask", "score", "attention"), ref):
        assert np.abs(got[k] - r).max() <= 1e-4, k
    pytest.importorskip("openvino", reason="OpenVINO is not installed (the [openvino] extra)")
    with open_backend("openvino", tmp_path / "b" / art.file) as be:  # finds every output by its bundle name
        got = be.infer(x)
    for k, r in zip(("mask", "score", "attention"), ref):
        assert np.abs(got[k] - r).max() <= 1e-4, k


def test_the_registry_and_the_cli_choices_need_no_torch():
    from test_foundation import run_without_torch

    res = run_without_torch("from edgecalc.model.registry import NETWORKS\nfrom edgecalc.train.config import TrainConfig\n"
                            "import edgecalc.cli, sys\nassert 'torch' not in sys.modules\n"
                            "assert TrainConfig(data='d', network='vgg16', mask_fraction=0.0).network == 'vgg16'")
    assert res.returncode == 0, res.stderr


@pytest.mark.parametrize("name, title, shown", [("vgg16", "VGG-16 evaluation", "CAM"),
                                                ("csagnet", "CS-AGnet evaluation", "Grid-AG 3")])
def test_eval_names_the_network_and_its_map(name, title, shown, tmp_path, one_thread):
    from rich.console import Console

    from edgecalc.eval.evaluate import evaluate_arrays

    rng = np.random.default_rng(0)
    n = 6
    images = rng.random((n, 1, SIZE, SIZE), dtype=np.float32)
    masks = np.zeros_like(images)
    masks[:3, :, 10:14, 10:14] = 1
    labels = np.array([1, 1, 1, 0, 0, 0])
    console = Console(record=True, width=200)
    m = evaluate_arrays(tiny(name), images, masks, np.ones(n, bool), labels, [f"i{i}" for i in range(n)], tmp_path,
                        console=console)
    assert m["network"] == name and m["attention_map"] == shown
    text = console.export_text()
    assert title in text and f"{shown} peak in calcification" in text
    assert json.loads((tmp_path / "metrics.json").read_text())["network"] == name
