"""INT8 ONNX with explicit Q/DQ nodes, calibrated with onnxruntime, valid for onnxruntime and TensorRT.

TensorRT 11 has no calibrators and no INT8 flag: INT8 must be explicit Q/DQ in the ONNX graph, with
zero points 0 (TensorRT rejects others). So: onnxruntime ``quantize_static`` in QDQ format, symmetric
INT8 activations and weights, per-channel weights. Only the convolutions (and transposed
convolutions) are quantized: they carry >99 % of the FLOPs (the three that read a Concat stay float,
``excluded_nodes`` says why). Everything else stays float, in
particular the sigmoids, the softmaxes, module C's attention normalisation
(``sum(alpha * x) / (sum(alpha) + eps)``), the alpha resizes and module C's tiny FC layers (their
inputs are probabilities and normalised averages, where an 8-bit grid costs accuracy for no
speed). ``check_qdq_structure`` proves the result follows these rules.
"""

from __future__ import annotations

import contextlib
import io
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

from edgecalc.export.choices import CALIB_METHODS as METHODS, DEFAULT_CALIB_METHOD as DEFAULT_METHOD  # by CLI name
from edgecalc.model.csagnet import INPUT_NAME

QUANTIZED_OPS = ("Conv", "ConvTranspose")
#: Ops never quantized (nodes_to_exclude), and that no Q/DQ may touch directly.
FLOAT_ONLY_OPS = ("Sigmoid", "Softmax")
ATTENTION_NORM_OPS = ("ReduceSum", "ReduceMean", "Div")
Q_OPS = ("QuantizeLinear", "DequantizeLinear")


def ort_method(name: str):
    """The onnxruntime CalibrationMethod for a CLI method name (ValueError lists the choices)."""
    from onnxruntime.quantization import CalibrationMethod

    table = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
             "percentile": CalibrationMethod.Percentile}
    if name not in table:
        raise ValueError(f"unknown calibration method {name!r}; choose one of {', '.join(METHODS)}")
    return table[name]


#: The manifest's note on the INT8 model: how ``quantize_int8`` quantizes, and what ``excluded_nodes`` keeps float.
MANIFEST_NOTES = ("symmetric int8, zero point 0, per-channel weights; Q/DQ on Conv/ConvTranspose inputs only, "
                  "the convolutions reading a Concat kept float (export/int8.py excluded_nodes)")


def excluded_nodes(model: onnx.ModelProto) -> list[str]:
    """Nodes kept float: sigmoids, softmaxes, the attention normalisation, the resizes, module C's FCs,
    and the convolutions that read a Concat (the first of encoder ``blocks.1``-``blocks.3``, on the image
    pyramid's concatenation).

    Why the last: OpenVINO 2026.4's CPU plugin on an AMD EPYC (AVX-512 VNNI, no AMX) computes those
    three wrongly in int8 (mean |score - float32| 0.43 on phantom crops, 0.003 with them float;
    onnxruntime is right either way), bisected by convolution groups in docs/export.md. 3 of 51 convolutions.
    """
    names = []
    made_by = {o: n.op_type for n in model.graph.node for o in n.output}
    for node in model.graph.node:
        if node.op_type in FLOAT_ONLY_OPS + ATTENTION_NORM_OPS + ("Resize", "Gemm", "MatMul"):
            names.append(node.name)
        elif node.op_type == "Conv" and made_by.get(node.input[0]) == "Concat":
            names.append(node.name)
    return names


class _Reader:
    """onnxruntime CalibrationDataReader over a preprocessed (N, 1, S, S) array, in small batches."""

    def __init__(self, images: np.ndarray, batch: int = 8) -> None:
        self.images, self.batch = images.astype(np.float32), batch
        self._it: Iterator | None = None
        self.rewind()

    def rewind(self) -> None:
        self._it = iter(range(0, len(self.images), self.batch))

    def get_next(self) -> dict[str, np.ndarray] | None:
        i = next(self._it, None)  # type: ignore[arg-type]
        return None if i is None else {INPUT_NAME: self.images[i:i + self.batch]}

    def __len__(self) -> int:
        return (len(self.images) + self.batch - 1) // self.batch

    def set_range(self, start_index: int, end_index: int) -> None:  # onnxruntime's strided option
        self._it = iter(range(start_index * self.batch, min(end_index * self.batch, len(self.images)), self.batch))


@dataclass
class Int8Result:
    path: Path
    method: str
    cache_path: Path | None
    cache_hit: bool
    excluded: list[str]


def quantize_int8(fp32_path: str | Path, out_path: str | Path, images: np.ndarray, method: str = DEFAULT_METHOD,
                  cache_path: str | Path | None = None) -> Int8Result:
    """Calibrate on ``images`` (already preprocessed) and write the Q/DQ model; checks its structure.

    ``cache_path``: onnxruntime's JSON range cache; an existing file is reused (no calibration runs).
    """
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static

    model = onnx.load(str(fp32_path))
    for i, node in enumerate(model.graph.node):
        if not node.name:
            node.name = f"{node.op_type}_{i}"
    excluded = excluded_nodes(model)
    hit = cache_path is not None and Path(cache_path).is_file()
    _fold_initializer_identities(model)
    # QuantizeBias False: TensorRT takes int8 Q/DQ only; an int32-quantized bias is refused there.
    # OpTypesToExcludeOutputQuantization: Q/DQ go on the convolutions' inputs only, never between a
    # convolution and the sigmoid / ReLU after it (TensorRT fuses conv + activation itself).
    extra = {"ActivationSymmetric": True, "WeightSymmetric": True, "QuantizeBias": False,
             "OpTypesToExcludeOutputQuantization": list(QUANTIZED_OPS)}
    if method == "percentile":
        extra["CalibPercentile"] = 99.999
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # onnxruntime's "consider pre-processing" notices
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # the entropy/percentile calibrators print progress
            quantize_static(
                model, str(out_path), calibration_data_reader=_Reader(images),
                quant_format=QuantFormat.QDQ, op_types_to_quantize=list(QUANTIZED_OPS), per_channel=True,
                reduce_range=False, activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
                nodes_to_exclude=excluded, calibrate_method=ort_method(method), extra_options=extra,
                calibration_cache_path=str(cache_path) if cache_path is not None else None,
            )
    finally:
        root.setLevel(level)
    problems = check_qdq_structure(onnx.load(str(out_path)))
    if problems:
        raise RuntimeError(f"INT8 model {out_path} is not valid for TensorRT: " + "; ".join(problems[:5]))
    return Int8Result(Path(out_path), method, Path(cache_path) if cache_path else None, hit, excluded)


def _fold_initializer_identities(model: onnx.ModelProto) -> None:
    """Remove Identity nodes that only rename an initializer (the exporter leaves them on folded
    convolution biases; the quantizer wants biases as plain initializers)."""
    g = model.graph
    inits = {i.name for i in g.initializer}
    outputs = {o.name for o in g.output}
    rename = {}
    keep = []
    for n in g.node:
        if n.op_type == "Identity" and n.input[0] in inits and n.output[0] not in outputs:
            rename[n.output[0]] = n.input[0]
        else:
            keep.append(n)
    for n in keep:
        n.input[:] = [rename.get(i, i) for i in n.input]
    del g.node[:]
    g.node.extend(keep)


def check_qdq_structure(model: onnx.ModelProto) -> list[str]:
    """Problems that would make TensorRT refuse the graph or break the float-only rules ([] if none).

    Every QuantizeLinear / DequantizeLinear must have an int8 zero point equal to 0 (symmetric), and
    no Q/DQ may feed, or be fed by, a Sigmoid or Softmax.
    """
    g = model.graph
    inits = {i.name: i for i in g.initializer}
    consts = {n.output[0]: n.attribute[0].t for n in g.node if n.op_type == "Constant" and n.attribute}
    producer = {o: n for n in g.node for o in n.output}
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for n in g.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    problems = []
    qdq = [n for n in g.node if n.op_type in Q_OPS]
    if not qdq:
        problems.append("no QuantizeLinear/DequantizeLinear nodes at all")
    for n in qdq:
        if len(n.input) < 3 or not n.input[2]:
            problems.append(f"{n.op_type} {n.name}: no zero point given (the default is uint8)")
            continue
        zp = inits.get(n.input[2]) or consts.get(n.input[2])
        if zp is None:
            problems.append(f"{n.op_type} {n.name}: zero point {n.input[2]} is not a constant")
            continue
        arr = numpy_helper.to_array(zp)
        if arr.dtype != np.int8:
            problems.append(f"{n.op_type} {n.name}: zero point is {arr.dtype}, not int8")
        if np.any(arr != 0):
            problems.append(f"{n.op_type} {n.name}: non-zero zero point")
        src = producer.get(n.input[0])
        if src is not None and src.op_type in FLOAT_ONLY_OPS:
            problems.append(f"{n.op_type} {n.name} is fed by {src.op_type} {src.name}")
        for c in consumers.get(n.output[0], []):
            if c.op_type in FLOAT_ONLY_OPS:
                problems.append(f"{n.op_type} {n.name} feeds {c.op_type} {c.name}")
    return problems
