"""CS-AGnet / DS-AGnet: shapes and ranges of every output, input-size errors, gradients, tracing."""

from __future__ import annotations

import pytest
import torch

from edgecalc.model import OUTPUT_NAMES, CSAGNet, DSAGNet, ExportWrapper, ModelConfig, get_preset
from edgecalc.train.losses import combined_loss


@pytest.fixture(autouse=True)
def _deterministic():
    torch.manual_seed(0)
    torch.use_deterministic_algorithms(True)
    yield
    torch.use_deterministic_algorithms(False)


def _check_csagnet_outputs(model: CSAGNet, size: int, batch: int = 2) -> None:
    model.eval()
    with torch.no_grad():
        out = model(torch.rand(batch, 1, size, size))
    assert out.mask.shape == (batch, 1, size, size)
    assert [tuple(p.shape[-2:]) for p in out.pyramid] == [(size // 8,) * 2, (size // 4,) * 2, (size // 2,) * 2, (size,) * 2]
    assert torch.equal(out.pyramid[-1], out.mask)
    for p in out.pyramid:
        assert p.shape[:2] == (batch, 1) and p.min() >= 0 and p.max() <= 1
    assert out.logits.shape == (batch, 2) and out.probs.shape == (batch, 2)
    assert torch.allclose(out.probs.sum(1), torch.ones(batch), atol=1e-6)
    assert out.scale_probs.shape == (batch, 3, 2)
    assert torch.allclose(out.scale_probs.sum(-1), torch.ones(batch, 3), atol=1e-6)
    assert out.score.shape == (batch,)
    # Grid-AG 1 (next to the bridge) .. 3 (closest to the output), at their skips' sizes.
    assert [tuple(a.shape) for a in out.attention] == [(batch, 1, size // s, size // s) for s in (8, 4, 2)]
    for a in out.attention:
        assert a.min() >= 0 and a.max() <= 1

    mask, score, attention = ExportWrapper(model)(torch.rand(batch, 1, size, size))
    assert mask.shape == (batch, 1, size, size)
    assert score.shape == (batch, 1) and score.min() >= 0 and score.max() <= 1
    assert attention.shape == (batch, 3, size, size) and attention.min() >= 0 and attention.max() <= 1


def test_paper_preset_at_192():
    cfg = get_preset("paper")
    assert (cfg.input_size, cfg.in_channels, cfg.filters) == (192, 1, (32, 64, 128, 256, 512))
    _check_csagnet_outputs(CSAGNet(cfg), 192, batch=1)


def test_paper_preset_at_another_size():
    _check_csagnet_outputs(CSAGNet(get_preset("paper", 48)), 48)


@pytest.mark.parametrize("size", [192, 64])
def test_lite_preset(size):
    _check_csagnet_outputs(CSAGNet(get_preset("lite", size)), size)


def test_model_accepts_any_multiple_of_16_and_rejects_others():
    model = CSAGNet(get_preset("lite", 64)).eval()
    with torch.no_grad():
        assert model(torch.rand(1, 1, 80, 96)).mask.shape == (1, 1, 80, 96)
    with pytest.raises(ValueError, match=r"input size 100 .* use 96 or 112"):
        model(torch.rand(1, 1, 100, 100))
    with pytest.raises(ValueError, match=r"expected input \(N, 1, H, W\)"):
        model(torch.rand(1, 3, 64, 64))


def test_config_validation_names_the_size():
    with pytest.raises(ValueError, match=r"input size 200 .* use 192 or 208"):
        ModelConfig(input_size=200)
    with pytest.raises(ValueError, match=r"use 16"):
        get_preset("paper", 8)
    with pytest.raises(ValueError, match="three Grid-AGs"):
        ModelConfig(gated_levels=(3, 4))
    with pytest.raises(ValueError, match="unknown model preset"):
        get_preset("huge")


def test_config_json_roundtrip():
    cfg = get_preset("lite").with_(input_size=96, gated_levels=(1, 2, 3, 4))
    assert ModelConfig.from_json(cfg.to_json()) == cfg
    with pytest.raises(ValueError, match="unknown model config field"):
        ModelConfig.from_dict({"input_size": 96, "depth": 3})


def test_dsagnet_outputs():
    model = DSAGNet(get_preset("lite", 64)).eval()
    with torch.no_grad():
        out = model(torch.rand(2, 1, 64, 64))
    assert out.mask.shape == (2, 1, 64, 64) and len(out.pyramid) == 4 and len(out.attention) == 3
    assert all(0 <= float(a.min()) and float(a.max()) <= 1 for a in out.attention)


def test_all_four_skips_gated_classifier_reads_the_three_closest_to_output():
    cfg = get_preset("lite", 32).with_(gated_levels=(1, 2, 3, 4))
    assert cfg.classifier_levels == (3, 2, 1)
    out = CSAGNet(cfg).eval()(torch.rand(1, 1, 32, 32))
    assert [a.shape[-1] for a in out.attention] == [8, 16, 32]


@pytest.mark.parametrize("arch", [CSAGNet, DSAGNet])
def test_gradients_reach_every_parameter(arch):
    model = arch(get_preset("lite", 64).with_(width=0.5)).train()
    x = torch.rand(4, 1, 64, 64)
    target = (torch.rand(4, 1, 64, 64) > 0.9).float()
    labels = torch.tensor([0, 1, 0, 1])
    loss, _ = combined_loss(model(x), target, labels)
    loss.backward()
    dead = [n for n, p in model.named_parameters() if p.grad is None or not torch.any(p.grad != 0)]
    assert not dead, f"no gradient reaches {dead}"


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_trace_matches_eager():
    model = CSAGNet(get_preset("lite", 64)).eval()
    wrapper = ExportWrapper(model).eval()
    x = torch.rand(2, 1, 64, 64)
    with torch.no_grad():
        eager = wrapper(x)
        traced = torch.jit.trace(wrapper, x)
        again = traced(torch.rand(2, 1, 64, 64) * 0 + x)
    assert len(again) == len(OUTPUT_NAMES) == 3
    for name, a, b in zip(OUTPUT_NAMES, eager, again):
        assert a.shape == b.shape, name
        assert (a - b).abs().max() <= 1e-5, name
