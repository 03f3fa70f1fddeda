"""The network's configuration: one frozen dataclass, saved as JSON beside the weights.

Every network of the registry (``edgecalc/model/registry.py``) is built from it: the comparison
networks read ``input_size``, ``in_channels``, ``width`` (through ``scaled``) and ``batch_norm``, and
keep their own published layer layout; the remaining fields shape CS-AGnet / VGG_U-net.

The ``paper`` preset is CS-AGnet exactly as published (192 x 192, one channel, 32/64/128/256 filters
in the four VGG16 blocks, a 2 x 512 bridge, Grid-AGs on the three skips below full resolution).
Everything that changes the tensors' shapes lives here, so a config plus a safetensors file is a
complete, pickle-free checkpoint.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

#: Where CS-AGnet's score comes from: ``attention-pooling`` = module C (the paper); ``encoder-linear`` =
#: one linear layer on the encoder's pooled features (``blocks/linear_head.py``, fitted by
#: ``edgecalc train --linear-probe`` for small real data sets; module C stays in the weights).
SCORE_HEADS = ("attention-pooling", "encoder-linear")

#: Every encoder level halves the resolution and there are four max-pools before the bridge.
SIZE_DIVISOR = 16

#: Bounds a config is held to, far above any network here (2-3 convolutions a block, 192 px inputs) and
#: low enough that a weights file's damaged or hostile JSON cannot make building the network loop or
#: allocate without end before the weights are compared with it (a count of 10^30 convolutions did,
#: even on the meta device; the encoder-linear head's regions take input_size^2 / 4 floats on the CPU).
MAX_CONVS = 64
MAX_INPUT_SIZE = 8192


def nearest_valid_sizes(size: int) -> tuple[int, ...]:
    """The multiples of 16 just below and just above ``size`` (only the upper one if below 16)."""
    lower = (size // SIZE_DIVISOR) * SIZE_DIVISOR
    upper = lower + SIZE_DIVISOR
    return (lower, upper) if lower >= SIZE_DIVISOR else (upper,)


def check_input_size(height: int, width: int | None = None) -> None:
    """Raise ValueError unless both sides are positive multiples of 16 (four 2x2 max-pools)."""
    for side in (height, height if width is None else width):
        if side < SIZE_DIVISOR or side % SIZE_DIVISOR:
            near = " or ".join(str(s) for s in nearest_valid_sizes(int(side)))
            raise ValueError(
                f"input size {side} is not a multiple of {SIZE_DIVISOR} (the encoder max-pools four "
                f"times); use {near}"
            )


@dataclass(frozen=True)
class ModelConfig:
    """Shapes of DS-AGnet / CS-AGnet.

    ``width`` scales every filter count (rounded to a multiple of 8, at least 8). ``gated_levels``
    names the encoder blocks whose skip connection passes a Grid-AG, 1 being the full-resolution
    block; the classifier (module C) reads the three gated levels closest to the output, so at least
    three are required. The paper gates blocks 2, 3, 4 (Abraham & Khan's ``attn_reg`` layout; the
    paper's Fig. 1 shows three Grid-AGs, numbered 1 = next to the bridge ... 3 = closest to output).
    """

    input_size: int = 192
    in_channels: int = 1
    width: float = 1.0
    #: Filters of encoder blocks 1-4 and of the bridge at width 1.0 (paper section 2.1).
    base_filters: tuple[int, int, int, int, int] = (32, 64, 128, 256, 512)
    #: 3x3 convolutions per encoder block: the first four VGG16 blocks.
    encoder_convs: tuple[int, int, int, int] = (2, 2, 3, 3)
    bridge_convs: int = 2
    decoder_convs: int = 2
    gated_levels: tuple[int, ...] = (2, 3, 4)
    #: Kernel = stride of the gate's W_x (Oktay's sub-sample factor); 1 gives a plain 1x1 W_x.
    gate_subsample: int = 2
    #: Average-pooled image injected at 1/2, 1/4, 1/8 (Abraham & Khan's input pyramid).
    pyramid_input: bool = True
    #: BatchNorm after every 3x3 convolution (the paper is silent; attn_reg uses it).
    batch_norm: bool = True
    #: One of ``SCORE_HEADS``; only CS-AGnet reads it.
    score_head: str = "attention-pooling"
    #: ``encoder-linear`` only: the features pool over the ellipse inscribed in this central share of
    #: each map (>= 1.42 = the whole map), averaged over the image and its mirror when ``linear_head_flip``.
    linear_head_share: float = 0.7
    linear_head_flip: bool = True
    #: ``encoder-linear`` only: the segmentation mask's mean and maximum over the same ellipse join the
    #: features (two more weights; the probe's inner cross-validation decides, docs/real-data.md).
    linear_head_mask: bool = False
    name: str = field(default="custom", compare=False)

    def __post_init__(self) -> None:
        # JSON gives lists; keep tuples so configs compare and hash.
        for f in ("base_filters", "encoder_convs", "gated_levels"):
            object.__setattr__(self, f, tuple(int(v) for v in getattr(self, f)))
        self.validate()

    def validate(self) -> None:
        """Raise ValueError naming the first inconsistent field."""
        check_input_size(self.input_size)
        if self.input_size > MAX_INPUT_SIZE:
            raise ValueError(f"input_size {self.input_size} is above the {MAX_INPUT_SIZE} px a config may ask for")
        if self.in_channels < 1:
            raise ValueError(f"in_channels must be >= 1, got {self.in_channels}")
        if not self.width > 0:
            raise ValueError(f"width must be > 0, got {self.width}")
        if len(self.base_filters) != 5 or min(self.base_filters) < 1:
            raise ValueError(f"base_filters needs 5 positive counts (4 blocks + bridge), got {self.base_filters}")
        if len(self.encoder_convs) != 4 or min(self.encoder_convs) < 1:
            raise ValueError(f"encoder_convs needs 4 counts >= 1, got {self.encoder_convs}")
        if self.bridge_convs < 1 or self.decoder_convs < 1:
            raise ValueError("bridge_convs and decoder_convs must be >= 1")
        if max(*self.encoder_convs, self.bridge_convs, self.decoder_convs) > MAX_CONVS:
            raise ValueError(f"encoder_convs {self.encoder_convs}, bridge_convs {self.bridge_convs} and decoder_convs "
                             f"{self.decoder_convs} must each be at most {MAX_CONVS} convolutions a block")
        levels = self.gated_levels
        if len(set(levels)) != len(levels) or not set(levels) <= {1, 2, 3, 4}:
            raise ValueError(f"gated_levels must be distinct encoder blocks among 1..4, got {levels}")
        if len(levels) < 3:
            raise ValueError(f"module C reads three Grid-AGs: gated_levels needs >= 3 levels, got {levels}")
        if self.score_head not in SCORE_HEADS:
            raise ValueError(f"score_head must be one of {list(SCORE_HEADS)}, got {self.score_head!r}")
        if not 0 < self.linear_head_share <= 2:
            raise ValueError(f"linear_head_share must lie in (0, 2], got {self.linear_head_share}")
        if self.gate_subsample not in (1, 2):
            raise ValueError(f"gate_subsample must be 1 or 2, got {self.gate_subsample}")

    def scaled(self, filters: int) -> int:
        """A filter count after the width multiplier: rounded to a multiple of 8, at least 8 (every network's rule)."""
        return max(8, int(filters * self.width / 8 + 0.5) * 8)

    @property
    def filters(self) -> tuple[int, int, int, int, int]:
        """Filters of blocks 1-4 and the bridge after the width multiplier."""
        return tuple(self.scaled(f) for f in self.base_filters)  # type: ignore[return-value]

    @property
    def classifier_levels(self) -> tuple[int, int, int]:
        """The gated levels read by module C, ordered Grid-AG 1 (coarsest) .. 3 (closest to output)."""
        return tuple(sorted(self.gated_levels)[:3][::-1])  # type: ignore[return-value]

    def with_(self, **changes: Any) -> "ModelConfig":
        """A copy with some fields changed (validated)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ModelConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown model config field(s) {unknown}; known: {sorted(known)}")
        return cls(**data)

    @classmethod
    def from_json(cls, text: str) -> "ModelConfig":
        return cls.from_dict(json.loads(text))


#: ``lite``'s width was chosen by measurement: see docs/model.md and ``python -m edgecalc.model.info --sweep``.
PRESETS: dict[str, ModelConfig] = {
    "paper": ModelConfig(name="paper"),
    "lite": ModelConfig(width=0.25, name="lite"),
}


def get_preset(name: str, input_size: int | None = None) -> ModelConfig:
    """A preset by name, optionally at another input size (ValueError lists the presets)."""
    if name not in PRESETS:
        raise ValueError(f"unknown model preset {name!r}; choose one of {sorted(PRESETS)}")
    cfg = PRESETS[name]
    return cfg if input_size is None else cfg.with_(input_size=input_size)
