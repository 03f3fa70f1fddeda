"""CS-AGnet and DS-AGnet (PyTorch): the attention-gated U-Net with its classification branch."""

from edgecalc.model.config import PRESETS, ModelConfig, get_preset
from edgecalc.model.csagnet import OUTPUT_NAMES, CSAGNet, CSAGNetOutput, ExportWrapper
from edgecalc.model.dsagnet import DSAGNet, DSAGNetOutput

__all__ = [
    "CSAGNet",
    "CSAGNetOutput",
    "DSAGNet",
    "DSAGNetOutput",
    "ExportWrapper",
    "ModelConfig",
    "OUTPUT_NAMES",
    "PRESETS",
    "get_preset",
]
