"""Which convolutions OpenVINO computes wrongly in int8 (docs/export.md, "On an AMD EPYC with AVX-512 VNNI").

The kit's own INT8 quantization (``edgecalc.export.int8.quantize_int8``) with only some convolutions
quantized, each variant run in OpenVINO (float32 elsewhere, as the kit's backend asks) and compared
with onnxruntime's float32 on the same file's source: the mean |difference| on mask, score and
attention. Each variant (``VARIANTS``) names the convolutions kept int8 by a regular expression on
their names, or ``concat-float`` (the kit's rule since 2026-12-06: every convolution but those reading
a Concat); two more quantize every convolution with 7-bit weights or with the Concat quantized too.

    python docs/experiments/int8_openvino_bisect.py --data /work/phantom/val-31337    # every variant
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import cv2
import numpy as np
import onnx
import onnxruntime as ort
import openvino as ov

import edgecalc.export.int8 as int8
from edgecalc.data.preprocess import resize_gray
from edgecalc.runtime.shipped import SHIPPED_BUNDLE

VARIANTS = {
    "every convolution (2026-12-03's rule)": "all",
    "transposed convolutions only": "ConvTranspose",
    "the decoder's only": "/model/decoder",
    "the encoder's only": "/model/encoder/",
    "encoder blocks.1 only": "encoder/blocks.1/",
    "encoder blocks.2 only": "encoder/blocks.2/",
    "encoder blocks.3 only": "encoder/blocks.3/",
    "the Concat-fed first convolutions of blocks.1-3 only": r"blocks\.[123]/blocks\.[123]\.0/",
    "blocks.1-3 without their first convolutions": r"blocks\.[123]/blocks\.[123]\.[3-9]/",
    "all but the Concat-fed (the kit's rule since 2026-12-06)": "concat-float",
    "every convolution, 7-bit weights (reduce_range)": "all+reduce_range",
    "every convolution and the encoder's Concats": "all+Concat",
}


def quantized(fp32: Path, out: Path, calib: np.ndarray, variant: str) -> Path:
    """``fp32`` quantized by the kit with only ``variant``'s convolutions int8."""
    import onnxruntime.quantization as oq

    kit_rule, kit_quantize = int8.excluded_nodes, oq.quantize_static
    variant, _, extra = variant.partition("+")
    made_by_concat = {o for n in onnx.load(str(fp32)).graph.node if n.op_type == "Concat" for o in n.output}

    def excluded(model: onnx.ModelProto) -> list[str]:
        names = kit_rule(model)
        if variant == "concat-float":
            return names
        names = [n.name for n in model.graph.node if n.name in names and not (n.op_type == "Conv" and n.input[0] in made_by_concat)]
        names += [n.name for n in model.graph.node if n.op_type in int8.QUANTIZED_OPS and variant != "all"
                  and not re.search(variant, n.name + n.op_type)]
        # a quantized Concat: the encoder's (the pyramid's) only; module C's feed its softmax, which stays float
        return names + [n.name for n in model.graph.node if n.op_type == "Concat" and "/model/encoder/" not in n.name]

    def quantize(*a, **k):  # the kit's call, with the variant's one change
        if extra == "reduce_range":
            k["reduce_range"] = True
        elif extra:
            k["op_types_to_quantize"] = [*k["op_types_to_quantize"], extra]
        return kit_quantize(*a, **k)

    int8.excluded_nodes, oq.quantize_static = excluded, quantize
    try:
        int8.quantize_int8(fp32, out, calib)
    finally:
        int8.excluded_nodes, oq.quantize_static = kit_rule, kit_quantize
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, help="phantom data set whose images/ give calibration and test crops")
    ap.add_argument("--fp32", default=str(SHIPPED_BUNDLE / "model.fp32.onnx"), help="float32 ONNX (default: the shipped bundle's)")
    ap.add_argument("--work", default="/tmp/int8-bisect")
    args = ap.parse_args()
    files = sorted(Path(args.data, "images").glob("*.png"))
    crops = np.stack([resize_gray(cv2.imread(str(f), cv2.IMREAD_GRAYSCALE), 96) for f in files]).astype(np.float32)[:, None] / 255
    calib, test = crops[:64], crops[128:144]
    ref_sess = ort.InferenceSession(args.fp32, providers=["CPUExecutionProvider"])
    name = ref_sess.get_inputs()[0].name
    ref = ref_sess.run(None, {name: test})
    Path(args.work).mkdir(parents=True, exist_ok=True)
    print("| int8 convolutions | mean abs diff mask | score | attention |\n|---|---|---|---|")
    for i, (label, variant) in enumerate(VARIANTS.items()):
        path = quantized(Path(args.fp32), Path(args.work) / f"v{i}.onnx", calib, variant)
        compiled = ov.Core().compile_model(str(path), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
        got = compiled({name: test})
        d = [float(np.abs(got[compiled.output(j)] - ref[j]).mean()) for j in range(3)]
        print(f"| {label} | {d[0]:.4f} | {d[1]:.4f} | {d[2]:.4f} |")


if __name__ == "__main__":
    main()
