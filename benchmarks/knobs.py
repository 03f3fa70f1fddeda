"""What moves CPU latency beyond the engine choice: onnxruntime graph-optimisation level and IO
binding, PyTorch channels-last. Median of 30 batch-1 calls after 5 warm-up calls.

    python benchmarks/knobs.py BUNDLE WEIGHTS.safetensors

(docs/performance.md: BUNDLE = the `paper` bundle, WEIGHTS = the weights it was exported from.)
"""

from __future__ import annotations

import sys
import warnings

import numpy as np

from edgecalc.bench.timing import time_calls


def median_ms(fn, n: int = 30, warmup: int = 5) -> float:
    return time_calls(fn, n, warmup).median


def main(bundle: str, weights: str) -> None:
    import onnxruntime as ort
    import torch

    from edgecalc.model.csagnet import ExportWrapper
    from edgecalc.model.weights import load_model
    from edgecalc.runtime.engine.bundle import load_bundle

    warnings.simplefilter("ignore")
    size = load_bundle(bundle).input_size
    x = np.random.default_rng(0).random((1, 1, size, size), dtype=np.float32)
    levels = {"BASIC": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
              "EXTENDED": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
              "ALL": ort.GraphOptimizationLevel.ORT_ENABLE_ALL}
    for prec in ("fp32", "int8"):
        path = f"{bundle}/model.{prec}.onnx"
        for name, level in levels.items():
            opts = ort.SessionOptions()
            opts.graph_optimization_level = level
            s = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
            print(f"onnxruntime {prec} {name}: {median_ms(lambda: s.run(None, {'image': x})):.2f} ms")
        s = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        binding = s.io_binding()
        binding.bind_cpu_input("image", x)
        for out in s.get_outputs():
            binding.bind_output(out.name)
        print(f"onnxruntime {prec} ALL + IO binding: {median_ms(lambda: s.run_with_iobinding(binding)):.2f} ms")
    model = ExportWrapper(load_model(weights)).eval()
    t = torch.from_numpy(x)
    with torch.inference_mode():
        print(f"pytorch eager fp32 NCHW: {median_ms(lambda: model(t)):.2f} ms")
        mc = model.to(memory_format=torch.channels_last)
        tc = t.contiguous(memory_format=torch.channels_last)
        print(f"pytorch eager fp32 channels-last: {median_ms(lambda: mc(tc)):.2f} ms")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
