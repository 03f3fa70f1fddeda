"""Checkpoints: safetensors + JSON round trip, mismatches refused by name, stage one -> stage two."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from edgecalc.model import CSAGNet, DSAGNet, get_preset
from edgecalc.model.weights import config_path, csagnet_from_dsagnet, load_model, save_model


@pytest.fixture
def cfg():
    torch.manual_seed(0)
    return get_preset("lite", 32)


def _same_state(a: torch.nn.Module, b: torch.nn.Module, prefix: str = "") -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return all(torch.equal(sa[k], sb[k]) for k in sa if k.startswith(prefix))


def test_roundtrip(tmp_path, cfg):
    model = CSAGNet(cfg).eval()
    path = save_model(model, tmp_path / "run" / "model.safetensors")
    assert path.is_file() and config_path(path).is_file()
    assert sorted(p.name for p in path.parent.iterdir()) == ["model.json", "model.safetensors"]  # no temp files left
    meta = json.loads(config_path(path).read_text())
    assert meta["architecture"] == "csagnet" and meta["config"]["width"] == cfg.width
    loaded = load_model(path)
    assert isinstance(loaded, CSAGNet) and loaded.cfg == cfg and _same_state(model, loaded)
    x = torch.rand(1, 1, 32, 32)
    with torch.no_grad():
        assert torch.equal(model(x).probs, loaded(x).probs)


def test_config_weights_mismatch_names_first_tensor(tmp_path, cfg):
    path = save_model(CSAGNet(cfg), tmp_path / "m.safetensors")
    meta = json.loads(config_path(path).read_text())
    meta["config"]["width"] = 0.5
    config_path(path).write_text(json.dumps(meta))
    with pytest.raises(ValueError, match=r"tensor 'encoder\.pyramid\.convs\.0\.0\.weight' has shape \(16, 1, 3, 3\), expected \(32, 1, 3, 3\)"):
        load_model(path)


def test_missing_and_unexpected_tensors_are_named(tmp_path, cfg):
    path = save_model(CSAGNet(cfg), tmp_path / "m.safetensors")
    tensors = load_file(str(path))
    name = "classifier.fuse.bias"
    del tensors[name]
    save_file(tensors, str(path))
    with pytest.raises(ValueError, match=rf"tensor '{name}' \(expected shape \(2,\)\) is missing"):
        load_model(path)
    tensors[name] = torch.zeros(2)
    tensors["extra.weight"] = torch.zeros(1)
    save_file(tensors, str(path))
    with pytest.raises(ValueError, match=r"unexpected tensor 'extra\.weight'"):
        load_model(path)


def test_csagnet_from_dsagnet_copies_a_and_b(tmp_path, cfg):
    ds = DSAGNet(cfg)
    path = save_model(ds, tmp_path / "stage1.safetensors")
    cs = csagnet_from_dsagnet(path)
    assert isinstance(cs, CSAGNet) and cs.cfg == cfg
    assert _same_state(ds, cs, "encoder.") and _same_state(ds, cs, "decoder.")
    assert any(k.startswith("classifier.") for k in cs.state_dict())
    ds.eval(), cs.eval()
    x = torch.rand(2, 1, 32, 32)
    with torch.no_grad():
        assert torch.equal(ds(x).mask, cs(x).mask)


def test_csagnet_from_dsagnet_refuses_a_csagnet(tmp_path, cfg):
    path = save_model(CSAGNet(cfg), tmp_path / "cs.safetensors")
    with pytest.raises(ValueError, match="not a stage-one DSAGNet"):
        csagnet_from_dsagnet(path)
