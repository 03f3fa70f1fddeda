"""Building blocks of DS-AGnet / CS-AGnet, one job per module."""

from edgecalc.model.blocks.attention_gate import GridAttentionGate
from edgecalc.model.blocks.cam import class_activation_map, labels_only_output
from edgecalc.model.blocks.classifier import AttentionPoolingClassifier
from edgecalc.model.blocks.conv import ConvBlock, UpConv
from edgecalc.model.blocks.linear_head import PooledLinearHead
from edgecalc.model.blocks.pyramid import PyramidInput
from edgecalc.model.blocks.stack import ConvStack

__all__ = ["AttentionPoolingClassifier", "ConvBlock", "ConvStack", "GridAttentionGate", "PooledLinearHead", "PyramidInput", "UpConv", "class_activation_map",
           "labels_only_output"]
