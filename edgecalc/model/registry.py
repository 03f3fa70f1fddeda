"""The one list of networks the kit trains, compares and exports: name -> class, stage one, supervision.

Torch-free on purpose: the CLI builds its ``--network`` choices and ``TrainConfig`` validates its
``network`` field from ``NETWORKS`` without importing torch; the classes are imported only when
``network_class`` is asked for one.

Supervision (how ``edgecalc train`` trains the network, ``train/run.py``):

* ``two-stage`` — the paper's collaborative scheme: the stage-one segmentation network on the
  ``mask_fraction`` draw, pseudo masks for every training image, then the full network.
* ``all-masks`` — one stage on every training image with its true pixel mask and image label
  (deep supervision of every decoder output + cross-entropy); no stage one, no pseudo masks.
* ``labels`` — one stage on image labels only (cross-entropy); no pixel target at all.

Every class takes a ``ModelConfig`` (input size, channels, width multiplier, BatchNorm; the
``lite`` / ``paper`` presets) and returns a ``CSAGNetOutput``, so training, evaluation and
``ExportWrapper`` (``mask``, ``score``, ``attention``) serve every network alike.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

SUPERVISIONS = ("two-stage", "all-masks", "labels")


@dataclass(frozen=True)
class NetworkSpec:
    summary: str
    cls: str  #: "module:Class" of the network trained to the end (the one exported)
    supervision: str
    stage_one: str | None = None  #: "module:Class" of the stage-one segmentation network (two-stage only)
    #: architecture name of the stage-one class in the weights' JSON (two-stage only)
    stage_one_name: str | None = None
    #: what the third (shown) channel of the ``attention`` output is, for figures and the bundle manifest
    attention: str = "Grid-AG 3"

    @property
    def two_stage(self) -> bool:
        return self.supervision == "two-stage"

    @property
    def fixed_mask_fraction(self) -> float | None:
        """The share of training masks the supervision implies (1 or 0); None = ``mask_fraction`` decides."""
        return {"all-masks": 1.0, "labels": 0.0}.get(self.supervision)


NETWORKS: dict[str, NetworkSpec] = {
    "csagnet": NetworkSpec("CS-AGnet: attention-gated U-Net + attention-pooled classifier (the paper's network)",
                           "edgecalc.model.csagnet:CSAGNet", "two-stage", "edgecalc.model.dsagnet:DSAGNet", "dsagnet"),
    "vgg-unet": NetworkSpec("VGG_U-net: CS-AGnet's layers without the Grid-AGs, the same classification branch",
                            "edgecalc.model.vgg_unet:VGGUNet", "two-stage", "edgecalc.model.vgg_unet:VGGUNetSeg",
                            "vgg-unet-seg", attention="CAM of the finest scale's head"),
    "alexnet-seg": NetworkSpec("Alexnet-Seg: AlexNet encoder, de-convolution decoder with deep supervision, FC classifier "
                               "on the encoder's features (all masks)", "edgecalc.model.alexnet_seg:AlexNetSeg", "all-masks",
                               attention="the full-resolution segmentation output"),
    "sononet-ag": NetworkSpec("AG-Sononet-FT-8: Sononet-8 with two grid attention gates and the ft aggregation "
                              "(image labels)", "edgecalc.model.sononet_ag:SononetAG", "labels",
                              attention="the attention gate on conv3 (the finest)"),
    "vgg16": NetworkSpec("VGG-16 (BatchNorm, global average pooling + FC for CAM; image labels)",
                         "edgecalc.model.vgg16:VGG16", "labels", attention="CAM"),
    "resnet50": NetworkSpec("ResNet-50 (bottleneck blocks 3-4-6-3, global average pooling + FC; image labels)",
                            "edgecalc.model.resnet50:ResNet50", "labels", attention="CAM"),
}
DEFAULT_NETWORK = "csagnet"


def get_spec(name: str) -> NetworkSpec:
    """The network's entry; ValueError listing the names."""
    if name not in NETWORKS:
        raise ValueError(f"unknown network {name!r}; choose one of {', '.join(NETWORKS)}")
    return NETWORKS[name]


def _load(path: str) -> type:
    module, cls = path.split(":")
    return getattr(importlib.import_module(module), cls)


def network_class(name: str) -> type:
    """The class of network ``name`` (imports torch)."""
    return _load(get_spec(name).cls)


def stage_one_class(name: str) -> type:
    """The stage-one segmentation class of a two-stage network (ValueError otherwise)."""
    spec = get_spec(name)
    if spec.stage_one is None:
        raise ValueError(f"network {name} has no stage one (supervision: {spec.supervision})")
    return _load(spec.stage_one)


def architectures() -> dict[str, type]:
    """Every class a weights file may hold, by its architecture name (networks and stage-one networks)."""
    out: dict[str, type] = {}
    for name, spec in NETWORKS.items():
        out[name] = _load(spec.cls)
        if spec.stage_one is not None and spec.stage_one_name is not None:
            out[spec.stage_one_name] = _load(spec.stage_one)
    return out


def network_of_architecture(arch: str) -> str | None:
    """The network name a weights file's architecture belongs to (a stage-one name maps to its network)."""
    for name, spec in NETWORKS.items():
        if arch in (name, spec.stage_one_name):
            return name
    return None
