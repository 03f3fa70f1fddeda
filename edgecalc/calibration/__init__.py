"""Calibration sets and INT8 calibration for quantized export."""
