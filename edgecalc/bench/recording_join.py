"""What the segmented recording costs at a clean stop: the time `Recorder.close()` takes to join.

    python -m edgecalc.bench.recording_join [--minutes 10] [--fps 20] [--segment 10] [--ext .mp4]

Records ``minutes`` of phantom frames (560 x 360, the live overlay's size) at ``fps`` through the
recorder, its segments cut by a clock that advances 1/fps per frame (so the segment count is exact
and does not depend on how fast this machine encodes), then times ``close()``: closing the last
segment, the stream-copy join and its check. The encoding itself is not timed (it runs during the
recording, on the recorder's thread).
"""

from __future__ import annotations

import argparse
import itertools
import json
import tempfile
import time
from pathlib import Path


def measure(minutes: float, fps: float, segment_s: float, ext: str) -> dict:
    from edgecalc.runtime.live.recorder import Recorder
    from edgecalc.runtime.source.phantom import PhantomCineReader

    frames = PhantomCineReader(n_frames=60).frames
    n = int(round(minutes * 60 * fps))
    with tempfile.TemporaryDirectory() as tmp:
        video = Path(tmp) / f"recording{ext}"
        tick = itertools.count()
        rec = Recorder(video, None, fps=fps, segment_s=segment_s, clock=lambda: next(tick) / fps)
        for i in range(n):
            rec.submit(frames[i % len(frames)], None)
        t0 = time.perf_counter()
        rec.close()
        join_s = time.perf_counter() - t0
        size_mb = video.stat().st_size / 1e6
    return {"ext": ext, "frames": rec.frames_written, "fps": fps, "segment_s": segment_s,
            "segments": len(rec.segments) or 1, "close_s": round(join_s, 2), "size_mb": round(size_mb, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=10.0, help="length of the recording (default 10)")
    ap.add_argument("--fps", type=float, default=20.0, help="its frame rate (default 20)")
    ap.add_argument("--segment", type=float, default=10.0, help="segment length in seconds (default 10)")
    ap.add_argument("--ext", default=".mp4", choices=[".mp4", ".avi"], help="container (default .mp4)")
    args = ap.parse_args()
    print(json.dumps(measure(args.minutes, args.fps, args.segment, args.ext)))


if __name__ == "__main__":
    main()
