"""The names ``edgecalc export`` offers, in a module that imports nothing (no torch, no onnx), so the CLI
builds its ``--calib-method`` and ``--via`` choices from them; ``int8`` and ``torch_tensorrt_export`` import them."""

from __future__ import annotations

#: INT8 calibration methods, by CLI name, and the default, chosen by measurement (docs/export.md).
CALIB_METHODS = ("minmax", "entropy", "percentile")
DEFAULT_CALIB_METHOD = "minmax"
#: ``--via``: the ONNX route only, or also torch-tensorrt's compiled TorchScript module.
VIA_CHOICES = ("onnx", "torch-tensorrt")
