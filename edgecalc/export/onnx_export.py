"""Float32 ONNX export (opset 17, TorchScript-based exporter) with a dynamic batch axis, checked with onnxruntime.

``dynamo=False`` and opset 17 because onnxruntime's quantizer rejects opset >= 21 and its CUDA
provider lacks Resize-19 (design notes section 4). The bilinear resizes (align_corners=False) are
the op most likely to drift in export, so the check runs the file in onnxruntime against eager.
The one ONNX export of the kit: the model's bundle (``edgecalc export``) and the nodule locator's
members (``python -m edgecalc.locator.train``, one ``mask`` output) both go through ``export_onnx``.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnx
import torch

from edgecalc.atomic import atomic_write
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


def run_onnx(session, images: np.ndarray, batch: int = 16, *, input_name: str = INPUT_NAME,
             output_names: Sequence[str] = OUTPUT_NAMES) -> list[np.ndarray]:
    """Outputs in ``output_names`` order for ``images`` (N, C, S, S) float32, run in chunks."""
    chunks = [session.run(list(output_names), {input_name: images[i:i + batch].astype(np.float32)})
              for i in range(0, len(images), batch)]
    return [np.concatenate([c[k] for c in chunks]) for k in range(len(output_names))]


def export_onnx(wrapper: torch.nn.Module, example: torch.Tensor, path: str | Path,
                check: torch.Tensor | None = None, tolerance: float = TOLERANCE, *,
                input_name: str = INPUT_NAME, output_names: Sequence[str] = OUTPUT_NAMES) -> dict[str, float]:
    """Write the float32 ONNX model, check it with onnx.checker and against eager in onnxruntime.

    ``check`` (default ``example``) is run through both; a batch size other than the example's
    proves the dynamic batch axis. ``wrapper`` returns one tensor or a tuple in ``output_names``
    order. Returns max abs difference per output; ParityError above tolerance. The file is written
    atomically and only once it passed: a failed check leaves whatever was at ``path`` before.
    """
    wrapper = wrapper.eval()
    names = list(output_names)
    axes = {input_name: {0: "batch"}, **{name: {0: "batch"} for name in names}}
    batch = example if check is None else check
    diffs: dict[str, float] = {}

    def write_and_check(tmp: Path) -> None:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the legacy-exporter deprecation notice
            torch.onnx.export(wrapper, (example,), str(tmp), opset_version=OPSET, dynamo=False,
                              input_names=[input_name], output_names=names,
                              dynamic_axes=axes, do_constant_folding=True)
        onnx.checker.check_model(onnx.load(str(tmp)))
        with torch.no_grad():
            out = wrapper(batch)
        ref = [t.numpy() for t in ((out,) if isinstance(out, torch.Tensor) else out)]
        got = run_onnx(ort_session(tmp), batch.numpy(), input_name=input_name, output_names=names)
        diffs.update(max_abs_diffs(ref, got, names))
        worst = max(diffs.values())
        if not worst <= tolerance:
            raise ParityError(f"float32 ONNX differs from eager by {worst:.3g} (> {tolerance:g}): {diffs}")

    atomic_write(path, write_and_check)
    return diffs
