"""CS-AGnet = module A (encoder) + module B (attention-gated decoder) + module C (classifier).

B and C share A and have no connection to each other (paper section 2.1). With
``score_head="encoder-linear"`` (``ModelConfig``) the score comes instead from one linear layer on
A's pooled features (``blocks/linear_head.py``, the small-real-data transfer head); module C is kept
and still gives ``scale_probs``. ``CSAGNet`` returns a
typed ``CSAGNetOutput`` in Python; ``ExportWrapper`` is the form traced for TorchScript / ONNX and
returns the fixed tuple ``OUTPUT_NAMES = ("mask", "score", "attention")``:

- ``mask``: float32 (N, 1, H, W), the full-resolution sigmoid calcification probability per pixel.
- ``score``: float32 (N, 1), P(calcification) = the final softmax's positive-class (index 1) value.
  Kept 2-D so every output has a batch axis and a feature axis (simple for TensorRT bindings).
- ``attention``: float32 (N, 3, H, W) in [0, 1], the three Grid-AG maps read by module C, resized
  bilinearly (align_corners=False) to the input size; channel 0 = Grid-AG 1 (next to the bridge),
  channel 2 = Grid-AG 3 (closest to the output, the map the paper shows).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from edgecalc.model.blocks import AttentionPoolingClassifier, PooledLinearHead
from edgecalc.model.config import ModelConfig
from edgecalc.model.dsagnet import Decoder, Encoder, EncoderFeatures, check_input
from edgecalc.model.output import CSAGNetOutput

OUTPUT_NAMES = ("mask", "score", "attention")
INPUT_NAME = "image"


class CSAGNet(nn.Module):
    """CS-AGnet: segmentation (A + B) and classification (A + C) sharing the encoder."""

    def __init__(self, cfg: ModelConfig | None = None) -> None:
        super().__init__()
        self.cfg = cfg or ModelConfig()
        self.encoder = Encoder(self.cfg)
        self.decoder = Decoder(self.cfg)
        self.levels = self.cfg.classifier_levels
        self.classifier = AttentionPoolingClassifier(tuple(self.cfg.filters[l - 1] for l in self.levels))
        self.linear_head = None
        if self.cfg.score_head == "encoder-linear":
            sides = tuple(self.cfg.input_size // 2 ** k for k in (1, 2, 3, 4))  # blocks 2-4, bridge
            self.linear_head = PooledLinearHead(self.cfg.filters[1:], sides, self.cfg.linear_head_share,
                                                self.cfg.linear_head_flip,
                                                self.cfg.input_size if self.cfg.linear_head_mask else None)

    def forward(self, x: torch.Tensor) -> CSAGNetOutput:
        check_input(x, self.cfg)
        enc = self.encoder(x)
        dec = self.decoder(enc)
        feats = [dec.gate_inputs[l] for l in self.levels]
        alphas = [dec.alphas[l] for l in self.levels]
        logits, probs, scale_probs = self.classifier(feats, alphas)
        if self.linear_head is not None:
            head = self.linear_head
            mirrored, mask, mirrored_mask = None, None, None
            if head.flip:
                enc_m = self.encoder(torch.flip(x, dims=[3]))
                mirrored = encoder_features(enc_m)
                if head.mask_side is not None:  # the mirror's mask (pooled over a symmetric ellipse: no flip back)
                    mirrored_mask = self.decoder(enc_m).pyramid[-1]
            if head.mask_side is not None:
                mask = dec.pyramid[-1]
            logits = head(encoder_features(enc), mirrored, mask, mirrored_mask)
            probs = torch.softmax(logits, dim=1)
        return CSAGNetOutput(dec.pyramid[-1], tuple(dec.pyramid), logits, probs, scale_probs, tuple(alphas))


@torch.no_grad()
def score_evidence(model: CSAGNet, x: torch.Tensor) -> torch.Tensor:
    """(N, H, W): each pixel's share of the linear score head's logit (mirror pass averaged back in);
    the map sums to the logit minus the bias. ValueError for a network scored by module C."""
    head = model.linear_head
    if head is None:
        raise ValueError("score_evidence needs a CS-AGnet with score_head 'encoder-linear'")
    size = (int(x.shape[2]), int(x.shape[3]))

    def one_pass(image: torch.Tensor) -> torch.Tensor:
        enc = model.encoder(image)
        ev = head.evidence(encoder_features(enc), size)
        if head.mask_side is not None:
            ev = ev + head.mask_evidence(model.decoder(enc).pyramid[-1])
        return ev

    ev = one_pass(x)
    if head.flip:
        ev = 0.5 * (ev + torch.flip(one_pass(torch.flip(x, dims=[3])), dims=[2]))
    return ev


def encoder_features(enc: EncoderFeatures) -> list[torch.Tensor]:
    """What ``PooledLinearHead`` reads: encoder blocks 2-4 and the bridge, in that order."""
    return [*enc.skips[1:], enc.bridge]


def stack_attention(
    attention: tuple[torch.Tensor, ...] | list[torch.Tensor], size: tuple[int, int], levels: tuple[int, ...]
) -> torch.Tensor:
    """Resize each (N, 1, h, w) map bilinearly (align_corners=False) to ``size`` and stack -> (N, k, H, W).

    ``levels`` are the maps' encoder levels: a level-1 map is already at input size (no resize).
    """
    maps = [a if level == 1 else F.interpolate(a, size=size, mode="bilinear", align_corners=False) for a, level in zip(attention, levels)]
    return torch.cat(maps, dim=1)


class ExportWrapper(nn.Module):
    """The export form: image (N, C, H, W) float32 in [0, 1] -> ``(mask, score, attention)``.

    See the module docstring for the exact shapes. Put the wrapped model in eval mode first.
    """

    output_names = OUTPUT_NAMES

    def __init__(self, model: CSAGNet) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        out = self.model(x)
        return out.mask, out.probs[:, 1:2], stack_attention(out.attention, (x.shape[2], x.shape[3]), self.model.levels)
