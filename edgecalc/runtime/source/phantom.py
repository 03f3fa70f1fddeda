"""`--source phantom`: the built-in phantom cine as a frame source, so everything runs with no hardware.

By default the cine is the demo's (``edgecalc.data.phantom.cine.generate_demo_cine``): a positive
nodule with clearly visible calcifications for the first half of the frames, then a negative
nodule; ``segments`` and ``truth`` carry the ground truth of every frame. ``positive=True/False``
gives a single scan of one nodule instead (``generate_cine(seed, n_frames, positive)``).

Frames are rendered once into memory (about 15 ms each) and then served like a video file, so the
frame rate seen by the pipeline is the pipeline's, not the generator's. With `fps` set, `read`
paces itself like a frame grabber (one frame every 1/fps s, however slow the consumer), which is
what `--realtime` uses to measure live behaviour: dropped frames and capture-to-display latency.
"""

from __future__ import annotations

from edgecalc.runtime.source.capture import MemoryFrameReader


class PhantomCineReader(MemoryFrameReader):
    """A FrameReader over `n_frames` of the phantom cine (BGR frames, like a capture card's).

    ``positive=None`` (default): the two-scan demo cine (``seed`` ignored; its seeds are the demo's);
    ``segments`` lists the scans, ``labels`` the ground truth per frame, ``truth`` the calcification
    mask per frame ((y0, x0, bool mask over its bounding box) or None). With ``positive`` True or
    False: one scan from ``seed``, ``segments`` None.
    """

    def __init__(self, seed: int = 0, n_frames: int = 90, positive: bool | None = None, loops: int = 1,
                 fps: float | None = None) -> None:
        import cv2

        self.segments = None
        self._cine = None
        if positive is None:
            from edgecalc.data.phantom.cine import generate_demo_cine

            cine = self._cine = generate_demo_cine(n_frames)
            gray = cine.images
            self.segments, self.labels, self.truth = cine.segments, cine.labels, cine.truth
        else:
            from edgecalc.data.phantom import generate_cine

            frames = list(generate_cine(seed, n_frames, positive))
            gray = [f.image for f in frames]
            self.labels = [int(bool(positive))] * len(frames)
            self.truth = [None] * len(frames)
        super().__init__([cv2.cvtColor(g, cv2.COLOR_GRAY2BGR) for g in gray], loops, fps)
        from edgecalc.data.phantom.config import PhantomConfig

        # the phantom knows its pixels exactly: the live loop reads these for calcification sizes in mm
        self.spacing_mm = (PhantomConfig().frame_pixel_spacing_mm,) * 2
        self.spacing_source = "phantom"

    def segment_of(self, index: int):
        """The demo segment frame ``index`` (a read count, loops included) belongs to; None for a single scan."""
        return self._cine.segment_of(index) if self._cine is not None else None
