"""Checkpoints as safetensors + a JSON config beside them; never pickle.

``save_model(model, "run/model.safetensors")`` writes ``run/model.safetensors`` and
``run/model.json`` (``{"architecture": "csagnet" | "dsagnet" | ..., "network": "csagnet", "config": {...}}``:
the architecture names the class, the network the registry entry it belongs to), each atomically
(temporary file in the same folder, then ``os.replace``), so a crash never leaves half a checkpoint.
``load_model`` rebuilds the network from the JSON and refuses weights that do not fit it, naming the
first mismatching tensor.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from edgecalc.atomic import atomic_write
from edgecalc.model.config import ModelConfig
from edgecalc.model.csagnet import CSAGNet
from edgecalc.model.dsagnet import DSAGNet
from edgecalc.model.registry import architectures, network_class, network_of_architecture, stage_one_class

#: Every network of the registry and its stage-one network (``edgecalc/model/registry.py``), by architecture name.
ARCHITECTURES: dict[str, type[torch.nn.Module]] = architectures()
FORMAT_VERSION = 1


class WeightsError(ValueError):
    """A weights file or its JSON config that cannot be read or does not fit; the message names the file.

    A ValueError, so every command that reports bad input as ValueError (exit 2) reports this too.
    """


def config_path(weights_path: str | Path) -> Path:
    """The JSON config that belongs to a ``.safetensors`` file (same name, ``.json``)."""
    return Path(weights_path).with_suffix(".json")


def architecture_of(model: torch.nn.Module) -> str:
    for name, cls in ARCHITECTURES.items():
        if type(model) is cls:
            return name
    raise TypeError(f"cannot save a {type(model).__name__}; expected one of {sorted(ARCHITECTURES)}")


def save_model(model: torch.nn.Module, weights_path: str | Path) -> Path:
    """Write ``weights_path`` (safetensors) and its JSON config atomically; return the weights path."""
    weights_path = Path(weights_path)
    if weights_path.suffix != ".safetensors":
        raise ValueError(f"weights file {weights_path} should end in .safetensors")
    arch = architecture_of(model)
    cfg: ModelConfig = model.cfg
    meta = {"architecture": arch, "network": network_of_architecture(arch), "format_version": FORMAT_VERSION,
            "config": cfg.to_dict()}
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    # Weights first, config last: a config on disk always describes complete weights.
    try:
        atomic_write(weights_path, lambda p: save_file(tensors, str(p), metadata={"edgecalc": json.dumps(meta)}))
    except SafetensorError as exc:  # safetensors reports a full disk or a read-only folder as its own error
        raise OSError(f"cannot write {weights_path}: {exc}") from None
    atomic_write(config_path(weights_path), lambda p: p.write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n"))
    return weights_path


def read_config(weights_path: str | Path) -> tuple[str, ModelConfig]:
    """(architecture, config) from the JSON beside ``weights_path``; WeightsError naming it when malformed."""
    cpath = config_path(weights_path)
    if not cpath.is_file():
        raise FileNotFoundError(f"config {cpath} not found beside {weights_path}")
    try:
        meta = json.loads(cpath.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise WeightsError(f"{cpath} is not valid JSON: {exc}") from None
    if not isinstance(meta, dict):
        raise WeightsError(f"{cpath} holds a JSON {type(meta).__name__}, not an object")
    arch = meta.get("architecture")
    if not isinstance(arch, str) or arch not in ARCHITECTURES:
        raise WeightsError(f"{cpath}: architecture {arch!r} is not one of {sorted(ARCHITECTURES)}")
    if not isinstance(meta.get("config"), dict):
        raise WeightsError(f"{cpath}: 'config' is missing or not an object")
    try:
        return arch, ModelConfig.from_dict(meta["config"])
    except (TypeError, ValueError, OverflowError) as exc:
        raise WeightsError(f"{cpath}: bad model config: {exc}") from None


def _file_shapes(weights_path: Path) -> dict[str, torch.Tensor]:
    """The file's tensor names and shapes (as meta tensors) from its header alone, nothing loaded."""
    try:
        with safe_open(str(weights_path), framework="pt") as fh:
            return {k: torch.empty(fh.get_slice(k).get_shape(), device="meta") for k in fh.keys()}
    except SafetensorError as exc:
        raise WeightsError(f"{weights_path} is not a readable safetensors file: {exc}") from None
    except OSError as exc:
        raise WeightsError(f"{weights_path} cannot be read: {exc}") from None


def check_state_dict(expected: dict[str, torch.Tensor], found: dict[str, torch.Tensor], source: str = "weights") -> None:
    """Raise ValueError naming the first tensor (in the model's order) that is missing, misshapen or unexpected."""
    for name, t in expected.items():
        if name not in found:
            raise ValueError(f"{source} do not match the config: tensor {name!r} (expected shape {tuple(t.shape)}) is missing")
        if tuple(found[name].shape) != tuple(t.shape):
            raise ValueError(
                f"{source} do not match the config: tensor {name!r} has shape {tuple(found[name].shape)}, "
                f"expected {tuple(t.shape)}"
            )
    extra = [k for k in found if k not in expected]
    if extra:
        raise ValueError(f"{source} do not match the config: unexpected tensor {extra[0]!r} ({len(extra)} unexpected in all)")


def load_model(weights_path: str | Path, map_location: str = "cpu") -> torch.nn.Module:
    """Rebuild a DSAGNet / CSAGNet from ``weights_path`` + its JSON config (eval mode)."""
    arch, cfg = read_config(weights_path)
    # shapes first, on the meta device: a config claiming a huge network allocates nothing, and the
    # real network is built only once the file (whose size bounds the memory) is known to fit it
    try:
        with torch.device("meta"):
            skeleton = ARCHITECTURES[arch](cfg)
    except (RuntimeError, ValueError, TypeError, OverflowError) as exc:  # e.g. sizes that overflow, a count of 1.0
        raise WeightsError(f"{config_path(weights_path)}: the config describes no buildable network: {exc}") from None
    check_state_dict(skeleton.state_dict(), _file_shapes(Path(weights_path)), source=str(weights_path))
    model = ARCHITECTURES[arch](cfg)
    try:
        state = load_file(str(weights_path), device=map_location)
    except SafetensorError as exc:
        raise WeightsError(f"{weights_path} is not a readable safetensors file: {exc}") from None
    check_state_dict(model.state_dict(), state, source=str(weights_path))
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:  # e.g. a dtype that cannot be copied into a float parameter
        raise WeightsError(f"{weights_path}: {exc}") from None
    return model.eval()


def csagnet_from_dsagnet(checkpoint: str | Path | DSAGNet) -> CSAGNet:
    """A CS-AGnet whose modules A (encoder) and B (decoder) come from a stage-one DS-AGnet; C fresh.

    ``checkpoint`` is a DS-AGnet ``.safetensors`` path (with its JSON) or a DSAGNet instance.
    """
    ds = load_model(checkpoint) if not isinstance(checkpoint, torch.nn.Module) else checkpoint
    if not isinstance(ds, DSAGNet):
        raise ValueError(f"{checkpoint} holds a {type(ds).__name__}, not a stage-one DSAGNet")
    cs = CSAGNet(ds.cfg)
    _copy_encoder_decoder(ds, cs)
    return cs.train(ds.training)


def _copy_encoder_decoder(src: torch.nn.Module, dst: torch.nn.Module) -> None:
    """Modules A (encoder) and B (decoder) of ``src`` into ``dst``, checked tensor by tensor."""
    for part in ("encoder", "decoder"):
        state = getattr(src, part).state_dict()
        check_state_dict(getattr(dst, part).state_dict(), state, source=f"{type(src).__name__} {part}")
        getattr(dst, part).load_state_dict(state)


def dsagnet_from_csagnet(model: CSAGNet) -> DSAGNet:
    """The DS-AGnet inside a CS-AGnet (modules A + B, the same tensors copied): a trained CS-AGnet as stage one."""
    if not isinstance(model, CSAGNet):
        raise ValueError(f"expected a CSAGNet, got a {type(model).__name__}")
    ds = DSAGNet(model.cfg)
    _copy_encoder_decoder(model, ds)
    return ds.train(model.training)



def network_from_stage_one(stage_one: torch.nn.Module, network: str) -> torch.nn.Module:
    """Network ``network`` (two-stage: CS-AGnet, VGG_U-net) with modules A + B of its trained stage one; C fresh."""
    expected = stage_one_class(network)
    if type(stage_one) is not expected:
        raise ValueError(f"a {type(stage_one).__name__} is not the stage one of {network} (expected {expected.__name__})")
    net = network_class(network)(stage_one.cfg)
    _copy_encoder_decoder(stage_one, net)
    return net.train(stage_one.training)
