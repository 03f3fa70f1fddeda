"""Calibration sets and INT8 calibration for quantized export."""

from edgecalc.calibration.calibration_set import (
    CalibrationError,
    CalibrationSet,
    from_folder,
    from_phantom,
    stratified_choice,
)

__all__ = ["CalibrationError", "CalibrationSet", "from_folder", "from_phantom", "stratified_choice"]
