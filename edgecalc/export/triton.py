"""The bundle as a Triton Inference Server model repository, so serving at scale runs on Triton.

Layout (one model per artifact Triton can serve)::

    DIR/edgecalc_onnx_<p>/config.pbtxt      backend onnxruntime (platform onnxruntime_onnx)
    DIR/edgecalc_onnx_<p>/1/model.onnx
    DIR/edgecalc_trt_<p>/config.pbtxt       platform tensorrt_plan (only when an engine exists)
    DIR/edgecalc_trt_<p>/1/model.plan
"""

from __future__ import annotations

import shutil
from pathlib import Path

from edgecalc.runtime.engine.bundle import Bundle


def _config(name: str, platform: str, max_batch: int, manifest) -> str:
    c, s = manifest.input["shape"][1], manifest.input["shape"][-1]
    lines = [f'name: "{name}"', f'platform: "{platform}"', f"max_batch_size: {max_batch}",
             "input [", "  {", f'    name: "{manifest.input["name"]}"', "    data_type: TYPE_FP32",
             f"    dims: [ {c}, {s}, {s} ]", "  }", "]", "output ["]
    outs = []
    for out in manifest.outputs:
        dims = ", ".join(str(d) for d in out["shape"][1:])
        outs.append("\n".join(["  {", f'    name: "{out["name"]}"', "    data_type: TYPE_FP32",
                               f"    dims: [ {dims} ]", "  }"]))
    lines.append(",\n".join(outs))
    lines += ["]", "dynamic_batching { }", "instance_group [ { kind: KIND_GPU } ]"
              if platform == "tensorrt_plan" else "instance_group [ { kind: KIND_AUTO } ]"]
    return "\n".join(lines) + "\n"


def write_triton_repository(bundle: Bundle, out_dir: str | Path, max_batch: int) -> list[Path]:
    """Write the model repository for every ONNX model and engine of ``bundle``; returns the model folders."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    made = []
    for art in bundle.manifest.artifacts:
        if art.kind == "onnx":
            name, platform, fname = f"edgecalc_onnx_{art.precision}", "onnxruntime_onnx", "model.onnx"
        elif art.kind == "engine":
            name, platform, fname = f"edgecalc_trt_{art.precision}", "tensorrt_plan", "model.plan"
        else:
            continue
        folder = out / name
        (folder / "1").mkdir(parents=True, exist_ok=True)
        shutil.copyfile(bundle.root / art.file, folder / "1" / fname)
        (folder / "config.pbtxt").write_text(_config(name, platform, max_batch, bundle.manifest), encoding="utf-8")
        made.append(folder)
    return made
