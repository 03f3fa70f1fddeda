"""Float32 ONNX export (opset 17, TorchScript-based exporter) with a dynamic batch axis, checked with onnxruntime.

``dynamo=False`` and opset 17 because onnxruntime's quantizer rejects opset >= 21 and its CUDA
provider lacks Resize-19 (design notes section 4). The bilinear resizes (align_corners=False) are
the op most likely to drift in export, so the check runs the file in onnxruntime against eager.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import onnx
import torch

from edgecalc.export.verify import ParityError, max_abs_diffs
from edgecalc.model.csagnet import INPUT_NAME, OUTPUT_NAMES

OPSET = 17
TOLERANCE = 1e-4


def ort_session(path: str | Path, threads: int | None = None):
    """An onnxruntime CPU session (graph optimisations on)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    if threads:
        opts.intra_op_num_threads = threads
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def run_onnx(session, images: np.ndarray, batch: int = 16) -> list[np.ndarray]:
    """Outputs in ``OUTPUT_NAMES`` order for ``images`` (N, C, S, S) float32, run in chunks."""
    chunks = [session.run(list(OUTPUT_NAMES), {INPUT_NAME: images[i:i + batch].astype(np.float32)})
              for i in range(0, len(images), batch)]
    return [np.concatenate([c[k] for c in chunks]) for k in range(len(OUTPUT_NAMES))]


def export_onnx(wrapper: torch.nn.Module, example: torch.Tensor, path: str | Path,
                check: torch.Tensor | None = None, tolerance: float = TOLERANCE) -> dict[str, float]:
    """Write the float32 ONNX model, check it with onnx.checker and against eager in onnxruntime.

    ``check`` (default ``example``) is run through both; a batch size other than the example's
    proves the dynamic batch axis. Returns max abs difference per output; ParityError above tolerance.
    """
    wrapper = wrapper.eval()
    axes = {INPUT_NAME: {0: "batch"}, **{name: {0: "batch"} for name in OUTPUT_NAMES}}
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the legacy-exporter deprecation notice
        torch.onnx.export(wrapper, (example,), str(path), opset_version=OPSET, dynamo=False,
                          input_names=[INPUT_NAME], output_names=list(OUTPUT_NAMES),
                          dynamic_axes=axes, do_constant_folding=True)
    model = onnx.load(str(path))
    onnx.checker.check_model(model)
    batch = example if check is None else check
    with torch.no_grad():
        ref = [t.numpy() for t in wrapper(batch)]
    got = run_onnx(ort_session(path), batch.numpy())
    diffs = max_abs_diffs(ref, got)
    worst = max(diffs.values())
    if not worst <= tolerance:
        raise ParityError(f"float32 ONNX differs from eager by {worst:.3g} (> {tolerance:g}): {diffs}")
    return diffs
