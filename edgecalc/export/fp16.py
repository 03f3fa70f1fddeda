"""FP16 ONNX: weights and compute in half precision, float32 inputs and outputs, sensitive ops in float32.

TensorRT 11 is strongly typed, so FP16 has to be in the graph itself (design notes section 4).
NVIDIA ModelOpt's AutoCast does this where installed; otherwise (the usual case, and the only one
tested here) the kit's own conversion below runs. It keeps in float32:

- ``Sigmoid`` and ``Softmax`` (the mask, the attention maps, the scores),
- ``ReduceSum`` / ``ReduceMean`` / ``Div`` and the epsilon ``Add`` of module C's attention-weighted
  average (``sum(alpha * x) / (sum(alpha) + eps)``: sums over a whole map overflow or lose digits in
  half precision),
- the ``Resize`` of alpha (and of the attention maps stacked for the output).

Every other float tensor (convolutions, ReLU, pools, concatenations, the FC layers) runs in FP16;
``Cast`` nodes are inserted where a tensor crosses between the two. Pass-through ops (Concat, Slice,
Reshape, Identity, ...) stay in float32 when all their float inputs are float32, to avoid cast pairs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

#: Ops always computed in float32.
KEEP_FP32_OPS = frozenset({"Sigmoid", "Softmax", "ReduceSum", "ReduceMean", "Div"})
#: Ops whose float32-ness follows their (data) input: fed by a float32-kept op, they stay float32.
FOLLOW_FP32_OPS = frozenset({"Resize", "Add"})
#: Ops that move data without arithmetic: float32 when all float inputs already are.
PASS_THROUGH_OPS = frozenset({"Concat", "Slice", "Reshape", "Identity", "Unsqueeze", "Squeeze", "Flatten",
                              "Transpose", "Gather", "Expand", "Split"})
#: Inputs (by op) that must keep their own type whatever the node's precision (Resize roi/scales).
DATA_INPUTS_ONLY = {"Resize": 1, "Upsample": 1}
#: Ops whose float outputs have a type fixed by an attribute or by definition, not by the inputs.
OWN_TYPE_OPS = frozenset({"Cast", "Shape", "Size", "ConstantOfShape", "CastLike"})

FLOAT, HALF = TensorProto.FLOAT, TensorProto.FLOAT16


def _float_tensors(model: onnx.ModelProto) -> set[str]:
    """Names of every float32 tensor in the graph (from shape inference, initializers and I/O)."""
    inferred = onnx.shape_inference.infer_shapes(model)
    g = inferred.graph
    names = {vi.name for vi in list(g.value_info) + list(g.input) + list(g.output)
             if vi.type.tensor_type.elem_type == FLOAT}
    names |= {init.name for init in g.initializer if init.data_type == FLOAT}
    return names


def _constants_to_initializers(model: onnx.ModelProto) -> None:
    """Float Constant nodes -> initializers, so their values can be converted like weights."""
    g = model.graph
    keep = []
    for node in g.node:
        if node.op_type == "Constant" and len(node.attribute) == 1 and node.attribute[0].name == "value" \
                and node.attribute[0].t.data_type == FLOAT:
            t = onnx.TensorProto()
            t.CopyFrom(node.attribute[0].t)
            t.name = node.output[0]
            g.initializer.append(t)
        else:
            keep.append(node)
    del g.node[:]
    g.node.extend(keep)


def fp32_nodes(model: onnx.ModelProto) -> set[str]:
    """Names of the nodes the conversion keeps in float32 (see the module docstring)."""
    inits = {i.name for i in model.graph.initializer}
    producer_keep: set[str] = set()
    keep: set[str] = set()
    for node in model.graph.node:
        if node.op_type in KEEP_FP32_OPS:
            kept = True
        elif node.op_type in FOLLOW_FP32_OPS:
            data = [i for i in node.input[:1 if node.op_type == "Resize" else None] if i and i not in inits]
            kept = bool(data) and all(i in producer_keep for i in data)
        else:
            kept = False
        if kept:
            keep.add(node.name)
            producer_keep.update(node.output)
    return keep


def convert_to_fp16(model: onnx.ModelProto) -> onnx.ModelProto:
    """The kit's FP16 conversion (float32 I/O kept); returns a new, checked model."""
    model = onnx.ModelProto.FromString(model.SerializeToString())
    for i, node in enumerate(model.graph.node):
        if not node.name:
            node.name = f"{node.op_type}_{i}"
    _constants_to_initializers(model)
    floats = _float_tensors(model)
    keep = fp32_nodes(model)
    g = model.graph
    inits = {i.name: i for i in g.initializer}
    dtype: dict[str, int] = {i.name: FLOAT for i in g.input if i.name in floats}
    dtype.update({name: FLOAT for name in inits if name in floats})
    half_inits: dict[str, str] = {}
    casts: dict[tuple[str, int], str] = {}
    new_nodes: list[onnx.NodeProto] = []
    graph_outputs = {o.name for o in g.output}

    def as_type(name: str, want: int) -> str:
        if dtype.get(name) == want:
            return name
        if name in inits and want == HALF:
            if name not in half_inits:
                arr = numpy_helper.to_array(inits[name]).astype(np.float16)
                half = name + "__fp16"
                g.initializer.append(numpy_helper.from_array(arr, half))
                half_inits[name], dtype[half] = half, HALF
            return half_inits[name]
        key = (name, want)
        if key not in casts:
            out = f"{name}__to_{'fp16' if want == HALF else 'fp32'}"
            new_nodes.append(helper.make_node("Cast", [name], [out], to=want, name=f"Cast_{out}"))
            casts[key], dtype[out] = out, want
        return casts[key]

    for node in g.node:
        float_inputs = [k for k, name in enumerate(node.input) if name and name in floats]
        limit = DATA_INPUTS_ONLY.get(node.op_type)
        if limit is not None:
            float_inputs = [k for k in float_inputs if k < limit]
        if node.op_type in OWN_TYPE_OPS:
            want = None
        elif node.name in keep:
            want = FLOAT
        elif node.op_type in PASS_THROUGH_OPS and float_inputs and all(dtype.get(node.input[k]) == FLOAT for k in float_inputs):
            want = FLOAT
        else:
            want = HALF
        if want is not None:
            for k in float_inputs:
                node.input[k] = as_type(node.input[k], want)
        for out in node.output:
            if out in floats:
                if node.op_type == "Cast":
                    dtype[out] = next(a.i for a in node.attribute if a.name == "to")
                elif want is not None:
                    dtype[out] = want
                else:
                    dtype[out] = FLOAT
        new_nodes.append(node)
    # Graph outputs stay float32: rename a half-precision producer's output and cast it back.
    tail = []
    for out in g.output:
        if dtype.get(out.name) == HALF:
            inner = out.name + "__fp16"
            for node in new_nodes:
                node.input[:] = [inner if i == out.name else i for i in node.input]
                node.output[:] = [inner if o == out.name else o for o in node.output]
            tail.append(helper.make_node("Cast", [inner], [out.name], to=FLOAT, name=f"Cast_{out.name}_to_fp32"))
    assert not (graph_outputs - {o.name for o in g.output})
    del g.node[:]
    g.node.extend(new_nodes + tail)
    # Drop float32 initializers no node reads any more (their fp16 copies replaced them).
    used = {i for n in g.node for i in n.input}
    kept_inits = [i for i in g.initializer if i.name in used]
    del g.initializer[:]
    g.initializer.extend(kept_inits)
    del g.value_info[:]
    model = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    onnx.checker.check_model(model)
    return model


def modelopt_autocast_available() -> bool:
    """True where NVIDIA ModelOpt's ONNX AutoCast can be imported."""
    try:
        from modelopt.onnx.autocast import convert_to_f16  # noqa: F401
    except Exception:  # noqa: BLE001 - any failure means "use the kit's conversion"
        return False
    return True


def export_fp16(fp32_path: str | Path, out_path: str | Path, use_modelopt: bool | None = None) -> str:
    """Write the FP16 model; returns which converter ran ("modelopt-autocast" or "edgecalc")."""
    model = onnx.load(str(fp32_path))
    if use_modelopt is None:
        use_modelopt = modelopt_autocast_available()
    if use_modelopt:
        from modelopt.onnx.autocast import convert_to_f16

        converted = convert_to_f16(model, low_precision_type="fp16", keep_io_types=True,
                                   op_block_list=sorted(KEEP_FP32_OPS | {"Resize"}))
        onnx.save(converted, str(out_path))
        return "modelopt-autocast"
    onnx.save(convert_to_fp16(model), str(out_path))
    return "edgecalc"
