"""How much of the frame budget the live pipeline itself costs, on the same frames as the engine alone.

    python -m edgecalc.bench.live_overhead [--bundle B] [--backend onnxruntime] [--precision fp32]
                                           [--frames 120] [--fps 15] [--threads 0] [--locator-every 20]
                                           [--repeats 3] [--loop auto] [--json OUT]

Four measurements in one process, on one phantom cine:
1. the engine alone: the model call on the crops the pipeline would cut (inference FPS);
2. the whole pipeline as `edgecalc live --source phantom --headless --record` runs it, every frame
   processed (end-to-end FPS; the ratio to 1. is the overhead of capture, crop, overlay, recording);
3. the same without `--record` (what the loop itself costs; encoding is the recorder thread's);
4. a paced source at `--fps` (a capture card), newest frame only, recording: capture-to-display
   latency and dropped frames, against the inference latency.
Peak RSS of the process is reported too (VmHWM).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from edgecalc.bench.memory import peak_rss_mb
from edgecalc.data.preprocess import preprocess, to_gray_u8
from edgecalc.runtime.live.loop import LOOP_MODES


def measure(bundle: str | None, backend: str, precision: str, frames: int, fps: float, threads: int = 0,
            locator_every: int | None = None, repeats: int = 3, loop: str = "auto") -> dict:
    from edgecalc.runtime.source.capture import parse_source
    from edgecalc.runtime.live.loop import LiveHooks, LiveOptions, run_live
    from edgecalc.runtime.live.build import build_pipeline
    from edgecalc.runtime.source.phantom import PhantomCineReader
    from edgecalc.runtime.live.recorder import Recorder

    from edgecalc.runtime.locate.cropper import LOCATOR_EVERY

    locator_every = locator_every or LOCATOR_EVERY
    pipelined = LOOP_MODES[loop]
    setup = build_pipeline(bundle, backend=backend, precision=precision, crop="auto", threads=threads,
                           locator_every=locator_every)
    pipe, be = setup.pipeline, setup.selection.backend
    cine = PhantomCineReader(n_frames=frames).frames
    # the crops the pipeline cuts, from its own cropper, so 1. and 2. see the same pixels
    crops = []
    for i, f in enumerate(cine):
        d = pipe.cropper(to_gray_u8(f), i)
        if d.crop is not None:
            x, y, w, h = d.crop
            crops.append(preprocess(to_gray_u8(f)[y:y + h, x:x + w], setup.bundle.input_size)[None])
    for c in crops[:5]:
        be.infer(c)

    def engine_alone() -> tuple[float, float]:
        t = time.perf_counter()
        ms = []
        for c in crops:
            t1 = time.perf_counter()
            be.infer(c)
            ms.append((time.perf_counter() - t1) * 1000)
        return len(crops) / (time.perf_counter() - t), float(np.median(ms))

    # the three throughput measurements are interleaved and repeated, and the medians reported:
    # a shared 2-core machine drifts by tens of percent between runs seconds apart
    engine_runs, full_runs, bare_runs = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(max(1, repeats)):
            engine_runs.append(engine_alone())
            rec = Recorder(Path(tmp) / f"out{r}.mp4", Path(tmp) / f"log{r}.jsonl", fps=fps)
            options = LiveOptions(headless=True, phantom_frames=frames, pipelined=pipelined)
            full_runs.append(run_live(parse_source(None, "phantom"), pipe, be.describe(), options, LiveHooks(recorder=rec)))
            bare_runs.append(run_live(parse_source(None, "phantom"), pipe, be.describe(), options))
        rec = Recorder(Path(tmp) / "paced.mp4", Path(tmp) / "paced.jsonl", fps=fps)
        paced = run_live(parse_source(None, "phantom"), pipe, be.describe(),
                         LiveOptions(headless=True, phantom_frames=frames, realtime=True, fps_hint=fps, pipelined=pipelined),
                         LiveHooks(recorder=rec))
    engine_fps = float(np.median([e[0] for e in engine_runs]))
    full_fps = float(np.median([s.fps for s in full_runs]))
    bare_fps = float(np.median([s.fps for s in bare_runs]))
    be.close()
    return {
        "bundle": str(setup.bundle.root), "preset": setup.bundle.manifest.model.get("preset"),
        "input_size": setup.bundle.input_size, "engine": setup.selection.reason, "frames": frames,
        "threads": threads, "locator_every": locator_every,
        "loop": loop,
        "crops_found": len(crops),
        "repeats": max(1, repeats),
        "engine_alone": {"fps": engine_fps, "infer_ms_p50": float(np.median([e[1] for e in engine_runs])),
                         "fps_runs": [e[0] for e in engine_runs]},
        "pipeline_every_frame": {"fps": full_fps, "ratio_to_engine_fps": full_fps / engine_fps,
                                 "processed": full_runs[0].processed, "fps_runs": [s.fps for s in full_runs],
                                 "infer_ms_p50": float(np.median([s.infer_ms_p50 for s in full_runs]))},
        "pipeline_every_frame_no_record": {"fps": bare_fps, "ratio_to_engine_fps": bare_fps / engine_fps,
                                           "processed": bare_runs[0].processed, "fps_runs": [s.fps for s in bare_runs],
                                           "infer_ms_p50": float(np.median([s.infer_ms_p50 for s in bare_runs]))},
        "paced_source": {"fps_offered": fps, "processed": paced.processed, "dropped": paced.dropped,
                         "latency_ms_p50": paced.latency_ms_p50, "latency_ms_p99": paced.latency_ms_p99,
                         "latency_p50_over_infer_p50": (paced.latency_ms_p50 / paced.infer_ms_p50
                                                        if paced.latency_ms_p50 and paced.infer_ms_p50 else None)},
        "peak_rss_mb": peak_rss_mb(),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bundle", default=None, help="bundle folder (default: the shipped one)")
    ap.add_argument("--backend", default="onnxruntime")
    ap.add_argument("--precision", default="fp32")
    ap.add_argument("--frames", type=int, default=120)
    ap.add_argument("--fps", type=float, default=15.0, help="frame rate of the paced source")
    ap.add_argument("--threads", type=int, default=0, help="engine threads (0: the engine's default)")
    ap.add_argument("--locator-every", type=int, default=None,
                    help="run the nodule locator every k frames (default: the live loop's, 20)")
    ap.add_argument("--repeats", type=int, default=3, help="interleaved repeats of 1.-3. (medians reported)")
    ap.add_argument("--loop", choices=tuple(LOOP_MODES), default="auto",
                    help="pipelined: the model call on a worker thread, overlapped with crop and overlay; serial: "
                         "one after the other; auto: as `edgecalc live` (pipelined for GPU engines)")
    ap.add_argument("--json", default=None, help="also write the result here")
    a = ap.parse_args(argv)
    res = measure(a.bundle, a.backend, a.precision, a.frames, a.fps, a.threads, a.locator_every, a.repeats,
                  loop=a.loop)
    text = json.dumps(res, indent=2)
    print(text)
    if a.json:
        Path(a.json).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
